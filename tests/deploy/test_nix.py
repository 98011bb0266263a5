"""The Nix side: every .nix file parses, and the pure parts of the NixOS module evaluate to what
the Python code and the committed configs expect.

Debian's nix-bin can parse and evaluate pure expressions but has no nixpkgs and no network, so
`nix build`, `nix flake check` and the VM test (nix/vm-test.nix) cannot run here; the pure files
(nix/defaults.nix, nix/env.nix, nix/flink-config.nix, nix/prometheus-config.nix) are what the
module feeds into systemd and the Flink/Prometheus configs, and they are checked for real.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from streamscout.common.config import Settings, env_name, load_settings

from deploy_support import NIX_DIR, REPO, cli_environment, require_tool

pytestmark = pytest.mark.unit

NIX_FILES = sorted([*REPO.glob("*.nix"), *NIX_DIR.glob("*.nix"), *(REPO / "tests/deploy/nix").glob("*.nix")])

# Settings the module deliberately sets to other values than the developer defaults.
SYSTEM_VALUES = {
    "state_dir": Path("/var/lib/streamscout"),
    "token_file": "/var/lib/streamscout/tokens.json",
    # The system PostgreSQL over its socket, peer authentication: no password to manage.
    "postgres_dsn": "postgresql://streamscout@/streamscout?host=/run/postgresql",
}
# Settings the module never puts into the shared environment, and why.
NOT_IN_ENVIRONMENT = {
    "twitch_client_secret",  # a secret: units get the _FILE variant pointing at their credential
    "twitch_client_secret_file",  # set per unit to %d/twitch-client-secret (LoadCredential)
    "discord_webhook_url_file",  # only Alertmanager reads it, as its own credential
}


def nix_eval(expression: str) -> object:
    tool = require_tool("nix-instantiate")
    result = subprocess.run(
        [tool, "--eval", "--strict", "--json", "-E", expression],
        capture_output=True, text=True, timeout=120, cwd=REPO,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("path", NIX_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_nix_file_parses(path: Path) -> None:
    tool = require_tool("nix-instantiate")
    result = subprocess.run([tool, "--parse", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


@pytest.fixture(scope="module")
def generated_env() -> dict[str, str]:
    env = nix_eval("import ./nix/env.nix (import ./nix/defaults.nix)")
    assert isinstance(env, dict) and all(isinstance(v, str) for v in env.values())
    return env


def test_generated_environment_is_accepted_by_load_settings(generated_env: dict[str, str]) -> None:
    load_settings(generated_env)  # raises on unknown names or unparsable values


def test_generated_environment_covers_every_setting(generated_env: dict[str, str]) -> None:
    fields = {f.name for f in dataclasses.fields(Settings)}
    covered = {name.removeprefix("STREAMSCOUT_").lower() for name in generated_env}
    assert fields - covered == NOT_IN_ENVIRONMENT
    assert covered <= fields


def test_module_defaults_equal_settings_defaults(generated_env: dict[str, str]) -> None:
    settings = load_settings(generated_env)
    defaults = Settings()
    for f in dataclasses.fields(Settings):
        if f.name in NOT_IN_ENVIRONMENT:
            continue
        expected = SYSTEM_VALUES.get(f.name, getattr(defaults, f.name))
        assert getattr(settings, f.name) == expected, env_name(f.name)


def test_changed_options_reach_the_environment() -> None:
    env = nix_eval(
        "let d = import ./nix/defaults.nix; in import ./nix/env.nix (d // {"
        " monitor = d.monitor // { joinRank = 3; leaveRank = 7; };"
        " detector = d.detector // { k = 4.5; retryOffsets = [ 1 2.5 ]; };"
        " kafka = d.kafka // { port = 19092; }; })"
    )
    settings = load_settings(env)
    assert (settings.monitor_join_rank, settings.monitor_leave_rank) == (3, 7)
    assert settings.detector_k == 4.5
    assert settings.float_list("detector_retry_offsets") == (1.0, 2.5)
    assert settings.kafka_bootstrap == "127.0.0.1:19092"


def _nix_flink_config(role: str) -> dict:
    return nix_eval(
        "let d = import ./nix/defaults.nix; in import ./nix/flink-config.nix {"
        f' role = "{role}"; flink = d.flink; pythonExecutable = "/env/bin/python"; stateDir = d.stateDir; }}'
    )


@pytest.mark.parametrize("role", ["jobmanager", "taskmanager"])
def test_flink_config_matches_the_dev_stack(role: str) -> None:
    render = pytest.importorskip("streamscout.stack.render", reason="the stack package is not importable")
    from streamscout.stack.ports import endpoint_of_url

    pyflink = pytest.importorskip("pyflink", reason="apache-flink is not installed")
    base = yaml.safe_load((Path(pyflink.__file__).parent / "conf" / "config.yaml").read_text())
    settings = Settings()
    stack = render.flink_config(
        base=base,
        rest=endpoint_of_url(settings.flink_rest_url),
        python=Path("/env/bin/python"),
        checkpoint_dir=Path("/var/lib/streamscout/flink/checkpoints"),
        tmp_dir=Path("/var/lib/streamscout/flink/tmp"),
    )
    nix = _nix_flink_config(role)
    # The stack shares one file and passes the reporter port with -D; NixOS writes one per role.
    port = nix.pop("metrics.reporter.prom.port")
    expected_port = {"jobmanager": settings.flink_jobmanager_metrics_port,
                     "taskmanager": settings.flink_taskmanager_metrics_port}[role]
    assert port == str(expected_port)
    assert nix == stack


def test_flink_config_is_valid_yaml_for_flink() -> None:
    """The module writes config.yaml with builtins.toJSON; a YAML parser must read it back."""
    config = _nix_flink_config("taskmanager")
    assert yaml.safe_load(json.dumps(config)) == config
    assert "flink-conf.yaml" not in (NIX_DIR / "module.nix").read_text()


PROMETHEUS_DEFAULT_PORTS = (
    "{ prometheus = 9090; alertmanager = 9093; monitor = 9100; jobmanagerMetrics = 9249;"
    " taskmanagerMetrics = 9250; node = 9101; api = 8080; }"
)


def _render_prometheus(ports: str) -> str:
    return nix_eval(
        "import ./nix/prometheus-config.nix { text = builtins.readFile ./configs/prometheus.yml;"
        f' rulesFile = "/store/alert_rules.yml"; ports = {ports}; }}'
    )


def test_prometheus_config_with_default_ports_is_the_committed_file() -> None:
    committed = (REPO / "configs/prometheus.yml").read_text()
    rendered = _render_prometheus(PROMETHEUS_DEFAULT_PORTS)
    assert rendered == committed.replace("- prometheus/alert_rules.yml", "- /store/alert_rules.yml")
    assert "- prometheus/alert_rules.yml" in committed, "the rule path the module rewrites has moved"


def test_prometheus_config_follows_changed_ports() -> None:
    ports = PROMETHEUS_DEFAULT_PORTS.replace("monitor = 9100", "monitor = 19100").replace("api = 8080", "api = 18080")
    config = yaml.safe_load(_render_prometheus(ports))
    targets = {job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]}
    assert targets["stream-monitoring"] == ["127.0.0.1:19100"]
    assert targets["api"] == ["127.0.0.1:18080"]
    assert targets["flink-taskmanager"] == ["127.0.0.1:9250"]
    committed = yaml.safe_load((REPO / "configs/prometheus.yml").read_text())
    assert set(targets) == {job["job_name"] for job in committed["scrape_configs"]}


def test_every_config_file_the_module_uses_exists() -> None:
    module = (NIX_DIR / "module.nix").read_text()
    paths = re.findall(r"\.\./configs/[\w./-]+", module)
    assert paths
    for relative in paths:
        assert (NIX_DIR / relative).resolve().exists(), f"nix/module.nix names {relative}, which is missing"


def test_alertmanager_config_reads_the_webhook_from_the_credential() -> None:
    config = yaml.safe_load((REPO / "configs/alertmanager.yml").read_text())
    discord = [c for r in config["receivers"] for c in r.get("discord_configs", [])]
    assert discord and all(
        c["webhook_url_file"] == "/run/credentials/alertmanager.service/discord-webhook-url" for c in discord
    )
    assert '"discord-webhook-url:${cfg.discordWebhookFile}"' in (NIX_DIR / "module.nix").read_text()


def test_unit_environment_names_in_module_are_settings() -> None:
    known = {env_name(f.name) for f in dataclasses.fields(Settings)}
    for path in NIX_FILES:
        for name in re.findall(r"\bSTREAMSCOUT_[A-Z_]+\b", path.read_text()):
            assert name in known, f"{path.name}: {name}"


def test_flake_lock_pins_the_flake_input() -> None:
    lock = json.loads((REPO / "flake.lock").read_text())
    node = lock["nodes"][lock["nodes"]["root"]["inputs"]["nixpkgs"]]
    assert re.fullmatch(r"[0-9a-f]{40}", node["locked"]["rev"])
    assert re.fullmatch(r"sha256-[A-Za-z0-9+/]{43}=", node["locked"]["narHash"])
    flake = (REPO / "flake.nix").read_text()
    original = node["original"]
    assert f'github:{original["owner"]}/{original["repo"]}/{original["ref"]}' in flake


def test_fixed_output_hashes_are_sri_sha256() -> None:
    text = (NIX_DIR / "packages.nix").read_text()
    hashes = re.findall(r'hash = "([^"]+)"', text)
    assert len(hashes) == 4
    for value in hashes:
        assert re.fullmatch(r"sha256-[A-Za-z0-9+/]{43}=", value), value


def test_kafka_connector_hash_matches_the_jar_setup_downloaded() -> None:
    """The jar `make setup` fetched from Maven Central must be the one the Nix fetch pins."""
    candidates = list(REPO.glob("var/jars/flink/flink-sql-connector-kafka-5.0.0-2.2.jar")) + list(
        Path.home().glob(".m2/repository/org/apache/flink/flink-sql-connector-kafka/5.0.0-2.2/*.jar")
    )
    if not candidates:
        pytest.skip("no local copy of flink-sql-connector-kafka-5.0.0-2.2.jar (make setup downloads it)")
    text = (NIX_DIR / "packages.nix").read_text()
    pinned = re.search(r"flink-sql-connector-kafka-5\.0\.0-2\.2\.jar\";\s*hash = \"([^\"]+)\"", text)
    assert pinned, "packages.nix no longer pins the 5.0.0-2.2 connector"
    digest = hashlib.sha256(candidates[0].read_bytes()).digest()
    assert pinned.group(1) == "sha256-" + base64.b64encode(digest).decode()


@pytest.mark.parametrize("role, command", [("jobmanager", "GET_JM_RESOURCE_PARAMS"),
                                           ("taskmanager", "GET_TM_RESOURCE_PARAMS")])
def test_flink_reads_the_generated_config_yaml(role: str, command: str, tmp_path: Path) -> None:
    """Flink's own start-up helper (what jobmanager.sh/taskmanager.sh call) parses the JSON
    config.yaml the module writes and sizes the JVM from its memory settings."""
    java = require_tool("java")
    pyflink = pytest.importorskip("pyflink", reason="apache-flink is not installed")
    home = Path(pyflink.__file__).parent
    (tmp_path / "config.yaml").write_text(json.dumps(_nix_flink_config(role)))
    result = subprocess.run(
        [java, "-cp", f"{home}/bin/bash-java-utils.jar:{home}/lib/*",
         "org.apache.flink.runtime.util.bash.BashJavaUtils", command, "--configDir", str(tmp_path)],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    dynamic = [line for line in result.stdout.splitlines() if line.startswith("BASH_JAVA_UTILS_EXEC_RESULT:-D")]
    sizes = dict(re.findall(r"-D (\S+)=(\d+)b", dynamic[0]))
    defaults = nix_eval("(import ./nix/defaults.nix).flink")
    process_mib = int(defaults[f"{role}Memory"].removesuffix("m"))
    if role == "jobmanager":
        parts = ["heap.size", "off-heap.size", "jvm-metaspace.size", "jvm-overhead.max"]
        total = sum(int(sizes[f"jobmanager.memory.{p}"]) for p in parts)
    else:
        parts = ["framework.heap.size", "task.heap.size", "framework.off-heap.size", "task.off-heap.size",
                 "network.max", "managed.size", "jvm-metaspace.size", "jvm-overhead.max"]
        total = sum(int(sizes[f"taskmanager.memory.{p}"]) for p in parts)
    assert total == process_mib * 1024 * 1024


def test_module_commands_exist_in_the_cli() -> None:
    """The module runs `python -m streamscout.cli detector submit` and seeds simulator tokens with
    `seed-tokens --force --auto-approve-url`; the real CLI must accept exactly that."""
    module = (NIX_DIR / "module.nix").read_text()
    assert "-m streamscout.cli detector submit" in module
    submit = subprocess.run([sys.executable, "-m", "streamscout.cli", "detector", "submit", "--help"],
                            capture_output=True, text=True, timeout=120, env=cli_environment())
    assert submit.returncode == 0, submit.stderr
    seed = subprocess.run([sys.executable, "-m", "streamscout.cli", "seed-tokens", "--help"],
                          capture_output=True, text=True, timeout=120, env=cli_environment())
    assert seed.returncode == 0, seed.stderr
    for flag in ["--force", "--auto-approve-url"]:
        assert flag in module and flag in seed.stdout
    check = subprocess.run([sys.executable, "-m", "streamscout.cli", "tokens", "check", "--help"],
                           capture_output=True, text=True, timeout=120, env=cli_environment())
    assert check.returncode == 0, check.stderr


def test_vm_test_script_is_valid_python() -> None:
    """The VM test's Python runs only inside the NixOS test driver; compile it here at least, and
    check it uses only the driver's names."""
    import ast
    import builtins

    script = nix_eval("(import ./nix/vm-test.nix { module = null; }).testScript")
    tree = ast.parse(script)
    assigned = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    imported = {a.asname or a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    driver = {"machine", "start_all", "subtest"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            assert node.id in driver | assigned | imported | set(dir(builtins)), node.id
