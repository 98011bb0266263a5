"""nix/module.nix evaluated by nixpkgs' own module system (lib.evalModules).

This machine has no nixpkgs checkout, only nixpkgs' lib/ (the nix-community/nixpkgs.lib mirror,
or <nixpkgs/lib> wherever NIX_PATH has one). tests/deploy/nix/eval-module.nix declares the NixOS
options the module sets as free-form and stands in for packages, so what is checked is the
module itself: its option types and defaults, assertions, mkIf/mkDefault merging, and the units,
environment and service settings it generates. Set NIXPKGS_LIB to a nixpkgs lib/
directory; without one these tests skip and say so.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from streamscout.common.config import Settings, env_name, load_settings

from deploy_support import REPO, SYSTEMD_DIR, parse_unit, require_tool

pytestmark = pytest.mark.unit

HARNESS = Path(__file__).parent / "nix" / "eval-module.nix"
OWN_UNITS = ["streamscout-monitor", "streamscout-api", "streamscout-migrate", "streamscout-kafka-topics",
             "streamscout-flink-submit", "flink-jobmanager", "flink-taskmanager", "streamscout-sim",
             "streamscout-sim-seed-tokens"]
SIM = "simulator.enable = true; discordWebhookFile = \"/run/keys/discord\";"


@pytest.fixture(scope="module")
def nixpkgs_lib() -> Path:
    tool = require_tool("nix-instantiate")
    candidates = [os.environ.get("NIXPKGS_LIB", "")]
    found = subprocess.run([tool, "--find-file", "nixpkgs/lib"], capture_output=True, text=True)
    candidates.append(found.stdout.strip())
    for candidate in candidates:
        if candidate and (Path(candidate) / "modules.nix").is_file():
            return Path(candidate)
    pytest.skip("no nixpkgs lib/ here (set NIXPKGS_LIB); the module cannot be evaluated")


def evaluate(lib: Path, settings: str, attribute: str = "") -> object:
    expression = f"(import {HARNESS} {{ lib = import {lib}; settings = {{ enable = true; {settings} }}; }})"
    if attribute:
        expression += f".{attribute}"
    result = subprocess.run(["nix-instantiate", "--eval", "--strict", "--json", "-E", expression],
                            capture_output=True, text=True, timeout=300, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def sim_host(nixpkgs_lib: Path) -> dict:
    return evaluate(nixpkgs_lib, SIM)


def test_simulator_host_passes_its_assertions_and_has_every_unit(sim_host: dict) -> None:
    assert sim_host["failedAssertions"] == []
    assert set(OWN_UNITS) <= set(sim_host["unitNames"])
    assert {"alertmanager", "streamscout-grafana-secret"} <= set(sim_host["unitNames"])


@pytest.mark.parametrize("settings, message", [
    ("discordWebhookFile = \"/run/keys/discord\";", "twitch.clientSecretFile must be set"),
    ("simulator.enable = true;", "discordWebhookFile must be set"),
    (SIM + " monitor.joinRank = 11;", "joinRank must not exceed leaveRank"),
])
def test_assertions_reject_incomplete_hosts(nixpkgs_lib: Path, settings: str, message: str) -> None:
    failed = evaluate(nixpkgs_lib, settings, "failedAssertions")
    assert any(message in m for m in failed), failed


def test_options_are_typed(nixpkgs_lib: Path) -> None:
    result = subprocess.run(
        ["nix-instantiate", "--eval", "--strict", "-E",
         f"(import {HARNESS} {{ lib = import {nixpkgs_lib}; settings = {{ enable = true; {SIM}"
         " api.port = \"eighty\"; }; }).units.streamscout-api.environment"],
        capture_output=True, text=True, timeout=300, cwd=REPO)
    assert result.returncode != 0 and "is not of type" in result.stderr


def test_hardening_matches_the_plain_units(sim_host: dict) -> None:
    """Each NixOS unit carries the sandbox the plain unit of the same name has (scored <= 2.5)."""
    plain_names = {"streamscout-monitor", "streamscout-api", "streamscout-migrate", "streamscout-kafka-topics",
                   "streamscout-flink-submit", "flink-jobmanager", "flink-taskmanager", "streamscout-sim"}
    keys = ["NoNewPrivileges", "ProtectSystem", "ProtectHome", "PrivateTmp", "PrivateDevices", "PrivateUsers",
            "ProtectKernelTunables", "ProtectKernelModules", "ProtectControlGroups", "RestrictNamespaces",
            "RestrictSUIDSGID", "LockPersonality", "SystemCallArchitectures", "CapabilityBoundingSet",
            "MemoryDenyWriteExecute", "ProcSubset", "UMask", "User", "Group"]
    for name in plain_names:
        nix = sim_host["units"][name]["serviceConfig"]
        plain = parse_unit(SYSTEMD_DIR / f"{name}.service")["Service"]
        for key in keys:
            expected = plain.get(key, [None])[-1]
            got = nix.get(key)
            if expected == "yes":
                expected = True
            assert got == expected, f"{name}: {key} is {got!r} on NixOS, {expected!r} in systemd/"
        assert " ".join(nix["RestrictAddressFamilies"]) == plain["RestrictAddressFamilies"][-1]
        assert nix["SystemCallFilter"][0] == "@system-service"


def test_service_environment_is_the_settings(sim_host: dict) -> None:
    known = {env_name(f.name) for f in dataclasses.fields(Settings)}
    for name in ["streamscout-monitor", "streamscout-api", "streamscout-flink-submit", "flink-taskmanager"]:
        environment = sim_host["units"][name]["environment"]
        ours = {k: v for k, v in environment.items() if k.startswith("STREAMSCOUT_")}
        assert set(ours) <= known
        settings = load_settings(ours)
        assert settings.twitch_helix_url == "http://127.0.0.1:8900/helix/"  # simulator, via mkDefault
        assert settings.twitch_client_id == "simclientid0000000000000000000"


def test_secrets_are_credentials_outside_the_store(nixpkgs_lib: Path) -> None:
    units = evaluate(nixpkgs_lib, 'twitch.clientSecretFile = "/run/keys/twitch"; discordWebhookFile = "/run/keys/discord";',
                     "units")
    for name in ["streamscout-monitor", "streamscout-flink-submit", "flink-taskmanager"]:
        assert units[name]["serviceConfig"]["LoadCredential"] == ["twitch-client-secret:/run/keys/twitch"]
        assert units[name]["environment"]["STREAMSCOUT_TWITCH_CLIENT_SECRET_FILE"] == "%d/twitch-client-secret"
    for name in ["streamscout-api", "streamscout-migrate"]:
        assert "LoadCredential" not in units[name]["serviceConfig"]
        assert "STREAMSCOUT_TWITCH_CLIENT_SECRET_FILE" not in units[name]["environment"]
    assert units["alertmanager"]["serviceConfig"]["LoadCredential"] == ["discord-webhook-url:/run/keys/discord"]
    assert units["streamscout-monitor"]["environment"]["STREAMSCOUT_TWITCH_HELIX_URL"] == "https://api.twitch.tv/helix/"


def test_units_start_in_pipeline_order(sim_host: dict) -> None:
    units = sim_host["units"]
    submit = units["streamscout-flink-submit"]
    for dependency in ["flink-jobmanager.service", "flink-taskmanager.service", "apache-kafka.service",
                       "streamscout-migrate.service", "streamscout-kafka-topics.service",
                       "streamscout-sim-seed-tokens.service"]:
        assert dependency in submit["after"]
    assert submit["serviceConfig"]["Type"] == "oneshot" and submit["serviceConfig"]["RemainAfterExit"] is True
    for name in ["streamscout-monitor", "streamscout-api"]:
        assert "streamscout-migrate.service" in units[name]["after"]
        assert "streamscout-migrate.service" in units[name]["requires"]
    assert units["streamscout-migrate"]["serviceConfig"]["ExecStart"].endswith("streamscout db migrate")
    assert "--auto-approve-url http://127.0.0.1:8900/sim/device/approve" in units["streamscout-sim-seed-tokens"]["script"]


def test_flink_units_run_the_distribution_with_their_own_config(sim_host: dict) -> None:
    for role in ["jobmanager", "taskmanager"]:
        unit = sim_host["units"][f"flink-{role}"]
        assert unit["serviceConfig"]["ExecStart"].endswith(f"/bin/{role}.sh start-foreground")
        assert unit["environment"]["FLINK_CONF_DIR"].endswith(f"streamscout-flink-{role}-conf")
        assert unit["environment"]["_FLINK_HOME_DETERMINED"] == "1"
    submit = sim_host["units"]["streamscout-flink-submit"]
    assert submit["serviceConfig"]["ExecStart"].endswith("/bin/python -m streamscout.cli detector submit")
    # The submitter runs PyFlink's bin/flink through the Python env's symlinks; without these two
    # it would take the symlink target's directory, which has no lib/, as FLINK_HOME.
    assert submit["environment"]["_FLINK_HOME_DETERMINED"] == "1"
    assert submit["environment"]["FLINK_HOME"].endswith("-flink-dist-2.2.0")


def test_submit_finds_the_connector_and_conf_where_streamscout_looks(sim_host: dict) -> None:
    stack = pytest.importorskip("streamscout.stack")
    settings = load_settings({"STREAMSCOUT_STATE_DIR": "/var/lib/streamscout"})
    links = {rule.split()[1] for rule in sim_host["tmpfiles"] if rule.startswith("L+")}
    assert str(stack.flink_conf_dir(settings)) in links
    jar = settings.state_dir / "jars" / "flink" / stack.FLINK_KAFKA_CONNECTOR
    assert str(jar) in links


def test_infrastructure_settings(sim_host: dict) -> None:
    render = pytest.importorskip("streamscout.stack.render", reason="the stack package is not importable")
    from streamscout.stack.ports import parse_host_port

    settings = Settings()
    stack_text = render.kafka_server_properties(parse_host_port(settings.kafka_bootstrap),
                                                settings.kafka_controller_port, Path("/var/lib/apache-kafka"),
                                                settings.kafka_partitions)
    stack = dict(line.split("=", 1) for line in stack_text.splitlines() if line and not line.startswith("#"))
    # nixpkgs' module writes lists comma-separated and booleans/numbers as text.
    kafka = {k: ",".join(map(str, v)) if isinstance(v, list) else str(v) for k, v in sim_host["kafka"].items()}
    assert kafka == stack
    assert sim_host["postgresql"]["ensureDatabases"] == ["streamscout"]
    assert sim_host["postgresql"]["ensureUsers"][0] == {"name": "streamscout", "ensureDBOwnership": True}
    assert sim_host["redis"]["streamscout"]["port"] == 56379
    assert sim_host["nodeExporterPort"] == 9101
    prometheus = yaml.safe_load(sim_host["prometheusConfig"])
    assert prometheus["rule_files"][0].endswith("alert_rules.yml") and prometheus["rule_files"][0].startswith("/")
    assert sim_host["alertmanagerConfig"] == (REPO / "configs/alertmanager.yml").read_text()


def test_optional_parts_can_be_switched_off(nixpkgs_lib: Path) -> None:
    host = evaluate(nixpkgs_lib, SIM + " alerting.enable = false; logs.enable = false; grafana.enable = false;")
    assert not {"alertmanager", "streamscout-grafana-secret"} & set(host["unitNames"])
    assert not host["files"]["alloyEnabled"] and not host["lokiEnabled"] and not host["grafanaEnabled"]


def test_logs_and_dashboards_use_the_committed_configs(sim_host: dict) -> None:
    files = sim_host["files"]
    assert files["lokiConfig"] == "configs/loki.yml"
    assert files["etc"]["alloy/config.alloy"] == "configs/alloy/config.alloy"  # nixpkgs' Alloy reads /etc/alloy
    assert files["alloyEnabled"] is True
    assert files["grafanaDatasources"] == "configs/grafana/provisioning/datasources"
    assert files["grafanaDashboards"] == "configs/grafana/provisioning/dashboards"
    # The committed dashboard provider loads from where the module links the dashboards.
    provider = yaml.safe_load(next((REPO / files["grafanaDashboards"]).glob("*.yml")).read_text())
    dashboards_dir = provider["providers"][0]["options"]["path"]
    assert files["etc"][dashboards_dir.removeprefix("/etc/")] == "configs/grafana/dashboards"
    assert files["grafanaSecretKey"].startswith("$__file{/var/lib/grafana/")
    for relative in files["etc"].values():
        assert (REPO / relative).exists()


def _render_unit(name: str, unit: dict) -> str:
    """The unit file NixOS writes for a systemd.services entry, following serviceToUnit and
    attrsToSection in nixpkgs' nixos/lib/systemd-lib.nix: lists become repeated lines, booleans
    true/false, environment lines Environment="K=V" (JSON-quoted), `path` becomes PATH, a
    `script` becomes ExecStart of a generated script."""
    def option(value: object) -> str:
        return {True: "true", False: "false"}.get(value, str(value)) if isinstance(value, bool) else str(value)

    lines = ["[Unit]", f"Description={unit['description']}"]
    for key in ["after", "requires", "wants"]:
        if unit[key]:
            lines.append(f"{key.capitalize()}={' '.join(unit[key])}")
    lines.append("[Service]")
    environment = dict(unit["environment"])
    if unit["path"]:
        environment["PATH"] = ":".join(f"{p}/bin" for p in unit["path"])
    for key in sorted(environment):
        lines.append("Environment=" + json.dumps(f"{key}={environment[key]}"))
    config = dict(unit["serviceConfig"])
    if unit["script"] is not None:
        config["ExecStart"] = f"/nix/store/00000000000000000000000000000000-unit-script-{name}-start/bin/{name}-start"
    for key in sorted(config):
        values = config[key] if isinstance(config[key], list) else [config[key]]
        lines += [f"{key}={option(v)}" for v in values]
    lines += ["[Install]", "WantedBy=multi-user.target"]
    return "\n".join(lines) + "\n"


NIXPKGS_UNITS = ["postgresql.service", "postgresql-setup.service", "redis-streamscout.service",
                 "apache-kafka.service"]


def test_generated_units_pass_systemd_analyze(sim_host: dict, tmp_path: Path) -> None:
    """The NixOS units, rendered as NixOS renders them, pass `systemd-analyze verify` (against a
    root with stub programs at their store paths) and score <= 2.5 in `security --offline`."""
    tool = require_tool("systemd-analyze")
    host_units = Path("/lib/systemd/system")
    if not (host_units / "sysinit.target").exists():
        pytest.skip("the host's systemd units (/lib/systemd/system) are missing")
    root = tmp_path / "root"
    shutil.copytree(host_units, root / "usr/lib/systemd/system", symlinks=True)
    for name in NIXPKGS_UNITS:
        (root / "usr/lib/systemd/system" / name).write_text("[Service]\nExecStart=/bin/true\n")
    system = root / "etc/systemd/system"
    system.mkdir(parents=True)
    names = [n for n in OWN_UNITS if n in sim_host["units"]]
    for name in names:
        text = _render_unit(name, sim_host["units"][name])
        (system / f"{name}.service").write_text(text)
        for line in text.splitlines():
            if line.startswith(("ExecStart=", "ExecStartPre=")):
                program = root / line.split("=", 1)[1].split()[0].lstrip("/")
                program.parent.mkdir(parents=True, exist_ok=True)
                program.write_text("#!/bin/sh\n")
                program.chmod(0o755)
    for name in names:
        verify = subprocess.run([tool, "verify", "--man=no", f"--root={root}", f"{name}.service"],
                                capture_output=True, text=True, timeout=60)
        assert verify.returncode == 0 and not verify.stderr.strip(), (name, verify.stderr)
        security = subprocess.run([tool, "security", "--offline=true", str(system / f"{name}.service")],
                                  capture_output=True, text=True, timeout=60)
        exposure = float(re.search(r"Overall exposure level for \S+: (\d+\.\d+)", security.stdout).group(1))
        print(f"NixOS {name}.service: exposure {exposure}")
        assert exposure <= 2.5, name


@pytest.fixture(scope="module")
def flake(nixpkgs_lib: Path) -> dict:
    expression = f"import {HARNESS.parent / 'eval-flake.nix'} {{ lib = import {nixpkgs_lib}; }}"
    result = subprocess.run(["nix-instantiate", "--eval", "--strict", "--json", "-E", expression],
                            capture_output=True, text=True, timeout=300, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


def test_flake_outputs_the_documented_commands_use(flake: dict) -> None:
    """nix run .#seed-tokens, nix run .#demo, nix flake check (vm), nixosModules.default."""
    assert {"seed-tokens", "demo"} <= set(flake["apps"]["x86_64-linux"])
    assert all(app["type"] == "app" for app in flake["apps"]["x86_64-linux"].values())
    assert flake["apps"]["x86_64-linux"]["demo"]["program"].endswith("/bin/run-streamscout-demo-vm")
    assert "default" in flake["packages"]["x86_64-linux"]
    assert {"vm", "package"} <= set(flake["checks"])
    assert flake["modules"]["default"] == str(REPO / "nix" / "module.nix")


def test_demo_host_and_vm_machine_evaluate(flake: dict) -> None:
    for host in [flake["demo"], flake["vm"]["machine"]]:
        assert host["failedAssertions"] == []
        assert set(OWN_UNITS) <= set(host["unitNames"])
        assert host["helixUrl"] == "http://127.0.0.1:8900/helix/"
    assert flake["demo"]["apiHost"] == "0.0.0.0"  # reachable through the VM's port forward


def test_vm_test_waits_for_units_the_machine_has(flake: dict, nixpkgs_lib: Path) -> None:
    script = subprocess.run(
        ["nix-instantiate", "--eval", "--json", "-E", "(import ./nix/vm-test.nix { module = null; }).testScript"],
        capture_output=True, text=True, timeout=60, cwd=REPO)
    names = set(re.findall(r'"([\w-]+)\.service"', json.loads(script.stdout)))
    ours = {n for n in names if n.startswith(("streamscout", "flink"))}
    assert ours and ours <= set(flake["vm"]["machine"]["unitNames"])


def test_prometheus_and_alertmanager_configs_pass_their_checkers(sim_host: dict, tmp_path: Path) -> None:
    """What nixpkgs' checkConfig runs at build time: promtool on the generated prometheus.yml and
    amtool on Alertmanager's."""
    promtool = require_tool("promtool")
    amtool = require_tool("amtool")
    text = sim_host["prometheusConfig"]
    store_rules = yaml.safe_load(text)["rule_files"][0]
    assert re.fullmatch(r"/nix/store/[0-9a-z]{32}-alert_rules\.yml", store_rules)
    # Evaluation only computes the store path; the file there is configs/prometheus/alert_rules.yml.
    prometheus = tmp_path / "prometheus.yml"
    prometheus.write_text(text.replace(store_rules, str(REPO / "configs/prometheus/alert_rules.yml")))
    check = subprocess.run([promtool, "check", "config", str(prometheus)], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    text = sim_host["alertmanagerConfig"]
    version = subprocess.run([amtool, "--version"], capture_output=True, text=True).stdout
    if re.search(r"version 0\.2[0-5]\.", version):
        # Discord's webhook_url_file arrived in 0.26 (nixpkgs ships newer than this Debian amtool):
        # check everything else with the URL inline, as the ansible role does on such hosts.
        assert "webhook_url_file: /run/credentials/alertmanager.service/discord-webhook-url" in text
        text = re.sub(r"webhook_url_file: \S+", 'webhook_url: "http://127.0.0.1:9/never-contacted"', text)
    alertmanager = tmp_path / "alertmanager.yml"
    alertmanager.write_text(text)
    check = subprocess.run([amtool, "check-config", str(alertmanager)], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr


def test_admin_command_runs_streamscout_like_the_services(nixpkgs_lib: Path, tmp_path: Path) -> None:
    """streamscout-admin's script, run with a stand-in systemd-run that records its arguments:
    the transient unit gets the service user, the credential and settings load_settings accepts."""
    script = evaluate(nixpkgs_lib, 'twitch.clientSecretFile = "/run/keys/twitch"; discordWebhookFile = "/x";',
                      "adminScript")
    recorder = tmp_path / "systemd-run"
    recorder.write_text("#!/bin/sh\nexec python3 -c 'import json, sys; print(json.dumps(sys.argv[1:]))' \"$@\"\n")
    recorder.chmod(0o755)
    store_systemd_run = re.search(r"\S+/bin/systemd-run", script).group(0)
    result = subprocess.run(["bash", "-c", script.replace(store_systemd_run, str(recorder)), "admin",
                             "tokens", "check"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    argv = json.loads(result.stdout)
    assert argv[-3:][1:] == ["tokens", "check"] and argv[-3].endswith("/bin/streamscout")
    assert "User=streamscout" in argv and "LoadCredential=twitch-client-secret:/run/keys/twitch" in argv
    environment = dict(a.removeprefix("--setenv=").split("=", 1) for a in argv if a.startswith("--setenv="))
    settings = load_settings(environment)
    unit = next(a for a in argv if a.startswith("--unit=")).removeprefix("--unit=")
    assert settings.twitch_client_secret_file == f"/run/credentials/{unit}.service/twitch-client-secret"
    assert settings.postgres_dsn == "postgresql://streamscout@/streamscout?host=/run/postgresql"
