"""The plain systemd units in systemd/ (what ansible installs on Debian/Ubuntu hosts).

`systemd-analyze verify` checks syntax, dependencies and that every ExecStart program exists.
The programs live on the target host (/opt/streamscout/venv, /opt/flink, /opt/kafka), so the test
verifies against a temporary root that holds the host's own systemd units, stub units for the
distribution services we order against (postgresql, redis-server) and empty executables at the
paths the units name: a typo in a path or a unit name still fails.
`systemd-analyze security --offline` scores each service's sandbox from the unit file alone,
so it runs without systemd as PID 1.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from streamscout.common.config import Settings, env_name

from deploy_support import SYSTEMD_DIR, cli_environment, parse_unit, require_tool

pytestmark = pytest.mark.unit

UNITS = sorted(p for p in SYSTEMD_DIR.iterdir() if p.suffix in {".service", ".target"})
SERVICES = [p for p in UNITS if p.suffix == ".service"]
JVM_SERVICES = {"flink-jobmanager.service", "flink-taskmanager.service", "kafka.service",
                "streamscout-kafka-topics.service", "streamscout-flink-submit.service"}
DISTRO_UNITS = ["postgresql.service", "redis-server.service"]
MAX_EXPOSURE = 2.5

# Every own service carries these, whatever it runs.
REQUIRED = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectControlGroups": "yes",
    "RestrictNamespaces": "yes",
    "RestrictSUIDSGID": "yes",
    "LockPersonality": "yes",
    "SystemCallArchitectures": "native",
    "CapabilityBoundingSet": "",
    "UMask": "0077",
}


def _exec_programs(unit: dict[str, dict[str, list[str]]]) -> set[str]:
    service = unit.get("Service", {})
    lines = service.get("ExecStart", []) + service.get("ExecStartPre", [])
    return {line.lstrip("-@:+!").split()[0] for line in lines}


@pytest.fixture(scope="module")
def verify_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("root")
    host_units = Path("/lib/systemd/system")
    if not (host_units / "sysinit.target").exists():
        pytest.skip("the host's systemd units (/lib/systemd/system) are missing")
    shutil.copytree(host_units, root / "usr/lib/systemd/system", symlinks=True)
    for name in DISTRO_UNITS:  # shipped by the Debian packages ansible installs
        (root / "usr/lib/systemd/system" / name).write_text(
            "[Unit]\nDescription=stub of the distribution's unit\n[Service]\nExecStart=/bin/true\n"
        )
    system = root / "etc/systemd/system"
    system.mkdir(parents=True)
    for unit in UNITS:
        shutil.copy(unit, system / unit.name)
        for program in _exec_programs(parse_unit(unit)):
            stub = root / program.lstrip("/")
            stub.parent.mkdir(parents=True, exist_ok=True)
            stub.write_text("#!/bin/sh\n")
            stub.chmod(0o755)
    print(f"verify root {root}: stub executables and {', '.join(DISTRO_UNITS)}")
    return root


def test_units_exist() -> None:
    names = {p.name for p in UNITS}
    assert {"streamscout-monitor.service", "streamscout-api.service", "streamscout-migrate.service",
            "streamscout-flink-submit.service", "flink-jobmanager.service",
            "flink-taskmanager.service", "kafka.service", "streamscout.target"} <= names


@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_systemd_analyze_verify(unit: Path, verify_root: Path) -> None:
    tool = require_tool("systemd-analyze")
    result = subprocess.run(
        [tool, "verify", "--man=no", f"--root={verify_root}", unit.name],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


@pytest.mark.parametrize("unit", SERVICES, ids=lambda p: p.name)
def test_systemd_analyze_security(unit: Path) -> None:
    tool = require_tool("systemd-analyze")
    result = subprocess.run(
        [tool, "security", "--offline=true", str(unit)], capture_output=True, text=True, timeout=60
    )
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert match, result.stdout + result.stderr
    exposure = float(match.group(1))
    print(f"{unit.name}: exposure {exposure}")
    assert exposure <= MAX_EXPOSURE


@pytest.mark.parametrize("unit", SERVICES, ids=lambda p: p.name)
def test_hardening_directives(unit: Path) -> None:
    """Checked from the file too, so a host without systemd-analyze still catches a regression."""
    service = parse_unit(unit)["Service"]
    for key, value in REQUIRED.items():
        assert service.get(key, [None])[-1] == value, f"{unit.name}: {key}={value} missing"
    assert "@system-service" in service["SystemCallFilter"]
    families = service["RestrictAddressFamilies"][-1].split()
    assert set(families) <= {"AF_UNIX", "AF_INET", "AF_INET6", "AF_NETLINK"}
    # The JIT needs writable+executable memory; every other service must forbid it.
    expected_mdwe = None if unit.name in JVM_SERVICES else "yes"
    assert service.get("MemoryDenyWriteExecute", [None])[-1] == expected_mdwe
    assert service.get("User", ["root"])[-1] != "root"
    kind = service.get("Type", ["simple"])[-1]
    if kind == "oneshot":
        assert service.get("RemainAfterExit") == ["yes"]
    else:
        assert service.get("Restart", [None])[-1] == "always"


def test_secrets_come_from_credentials_not_the_environment_file() -> None:
    for unit in SERVICES:
        service = parse_unit(unit)["Service"]
        environment = " ".join(service.get("Environment", []))
        assert "STREAMSCOUT_TWITCH_CLIENT_SECRET=" not in environment
        if "STREAMSCOUT_TWITCH_CLIENT_SECRET_FILE=%d/twitch-client-secret" in environment:
            assert any(c.startswith("twitch-client-secret:") for c in service["LoadCredential"])


def test_token_file_readers_share_user_and_state_directory() -> None:
    """Monitor, detector (TaskManager) and submit read one token file: one user, one StateDirectory."""
    readers = ["streamscout-monitor.service", "flink-taskmanager.service", "streamscout-flink-submit.service"]
    for name in readers:
        service = parse_unit(SYSTEMD_DIR / name)["Service"]
        assert service["User"] == ["streamscout"] and service["Group"] == ["streamscout"]
        assert "streamscout" in service["StateDirectory"][-1].split()
        assert service["StateDirectoryMode"] == ["0700"]


def test_pipeline_ordering() -> None:
    submit = parse_unit(SYSTEMD_DIR / "streamscout-flink-submit.service")["Unit"]
    after = submit["After"][-1].split()
    for dependency in ["flink-jobmanager.service", "flink-taskmanager.service", "kafka.service",
                       "streamscout-migrate.service"]:
        assert dependency in after
    for name in ["streamscout-monitor.service", "streamscout-api.service"]:
        unit = parse_unit(SYSTEMD_DIR / name)["Unit"]
        assert "streamscout-migrate.service" in unit["After"][-1].split()
        assert "streamscout-migrate.service" in unit["Requires"][-1].split()
    target = parse_unit(SYSTEMD_DIR / "streamscout.target")["Unit"]["Wants"][-1].split()
    assert {p.name for p in SERVICES} - set(target) == {"streamscout-sim.service"}


def test_environment_variables_in_units_are_known_settings() -> None:
    """load_settings rejects unknown STREAMSCOUT_* names, so a typo here would stop the service."""
    known = {env_name(f.name) for f in dataclasses.fields(Settings)}
    for unit in UNITS:
        for name in re.findall(r"\bSTREAMSCOUT_[A-Z_]+", unit.read_text()):
            assert name in known, f"{unit.name}: {name} is not a setting"


def _streamscout_commands() -> set[tuple[str, ...]]:
    commands = set()
    for unit in SERVICES:
        for line in parse_unit(unit)["Service"].get("ExecStart", []):
            words = line.split()
            if words[0] == "/opt/streamscout/venv/bin/streamscout":
                commands.add(tuple(w for w in words[1:3] if not w.startswith(("-", "$"))))
    return commands


@pytest.mark.parametrize("command", sorted(_streamscout_commands()), ids=" ".join)
def test_units_run_existing_streamscout_commands(command: tuple[str, ...]) -> None:
    """The stubbed verify root cannot catch a misspelt sub-command; the real CLI can."""
    cli = Path(sys.executable).parent / "streamscout"
    if not cli.exists():
        pytest.skip(f"{cli} is not installed")
    result = subprocess.run([str(cli), *command, "--help"], capture_output=True, text=True, timeout=120,
                            env=cli_environment())
    assert result.returncode == 0, result.stderr


def test_flink_units_run_scripts_of_the_pyflink_distribution() -> None:
    pyflink = pytest.importorskip("pyflink", reason="apache-flink is not installed")
    home = Path(pyflink.__file__).parent
    for name in ["flink-jobmanager.service", "flink-taskmanager.service"]:
        program = parse_unit(SYSTEMD_DIR / name)["Service"]["ExecStart"][-1].split()[0]
        assert program.startswith("/opt/flink/bin/")
        assert (home / "bin" / Path(program).name).is_file(), program
