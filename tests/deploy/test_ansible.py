"""The ansible playbook and role: syntax, lint, and the values it writes agreeing with the
NixOS module (same Flink config, valid STREAMSCOUT_* settings, every unit of systemd/ installed)."""

from __future__ import annotations

import grp
import json
import os
import re
import subprocess
from pathlib import Path

import jinja2
import pytest
import yaml

from streamscout.common.config import load_settings

from deploy_support import ANSIBLE_DIR, REPO, SYSTEMD_DIR, require_tool
from test_nix import nix_eval

pytestmark = pytest.mark.unit

DEFAULTS = yaml.safe_load((ANSIBLE_DIR / "roles/streamscout/defaults/main.yml").read_text())


def _render(value: object) -> object:
    """Resolve the role's own {{ var }} references against its defaults."""
    if isinstance(value, str) and "{{" in value:
        return jinja2.Template(value).render(**DEFAULTS)
    return value


def test_playbook_syntax_check() -> None:
    tool = require_tool("ansible-playbook")
    result = subprocess.run(
        [tool, "--syntax-check", "-i", "inventory.example.ini", "site.yml"],
        cwd=ANSIBLE_DIR, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_ansible_lint_passes() -> None:
    tool = require_tool("ansible-lint")
    result = subprocess.run(
        [tool, "--offline", "-q"], cwd=ANSIBLE_DIR, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("simulator", [False, True])
def test_environment_file_holds_valid_settings(simulator: bool) -> None:
    settings = {k: _render(v) for k, v in DEFAULTS["streamscout_settings"].items()}
    if simulator:
        settings |= DEFAULTS["streamscout_simulator_settings"]
    loaded = load_settings({k: str(v) for k, v in settings.items()})
    assert str(loaded.resolved_token_file()) == "/var/lib/streamscout/tokens.json"


def test_flink_config_equals_the_nixos_module() -> None:
    ansible = {k: _render(v) for k, v in DEFAULTS["streamscout_flink_config"].items()}
    nix = nix_eval(
        "let d = import ./nix/defaults.nix; in import ./nix/flink-config.nix {"
        ' role = "jobmanager"; flink = d.flink; pythonExecutable = "/opt/streamscout/venv/bin/python";'
        " stateDir = d.stateDir; }"
    )
    nix.pop("metrics.reporter.prom.port")  # the plain units pass it per role with -D
    assert json.loads(json.dumps(ansible)) == nix


def test_role_installs_every_unit() -> None:
    installed = set(DEFAULTS["streamscout_units"])
    assert installed == {p.name for p in SYSTEMD_DIR.iterdir() if p.suffix in {".service", ".target"}}


def test_templates_render_with_ansible(tmp_path) -> None:
    """Renders the role's templates with ansible itself (local connection, nothing installed),
    in simulator mode, the variant whose settings differ from the role's plain defaults."""
    simulator = True
    tool = require_tool("ansible-playbook")
    role = ANSIBLE_DIR / "roles" / "streamscout"
    playbook = tmp_path / "render.yml"
    playbook.write_text(yaml.safe_dump([{
        "hosts": "localhost",
        "connection": "local",
        "gather_facts": False,
        "vars_files": [str(role / "defaults" / "main.yml")],
        "tasks": [
            {"name": f"Render {name}", "ansible.builtin.template": {
                "src": str(role / "templates" / f"{name}.j2"), "dest": str(tmp_path / name), "mode": "0600"}}
            for name in ["streamscout.env", "flink-config.yaml", "server.properties"]
        ],
    }]))
    extra = json.dumps({"streamscout_simulator": simulator})
    result = subprocess.run([tool, "-i", "localhost,", "-e", extra, str(playbook)], capture_output=True, text=True,
                            timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    lines = [line for line in (tmp_path / "streamscout.env").read_text().splitlines()
             if line and not line.startswith("#")]
    environment = dict(line.split("=", 1) for line in lines)
    settings = load_settings(environment)
    assert settings.twitch_helix_url == "http://127.0.0.1:8900/helix/"
    assert settings.twitch_client_id == DEFAULTS["streamscout_simulator_settings"]["STREAMSCOUT_TWITCH_CLIENT_ID"]

    flink = yaml.safe_load((tmp_path / "flink-config.yaml").read_text())
    nix = nix_eval(
        "let d = import ./nix/defaults.nix; in import ./nix/flink-config.nix {"
        ' role = "jobmanager"; flink = d.flink; pythonExecutable = "/opt/streamscout/venv/bin/python";'
        " stateDir = d.stateDir; }"
    )
    nix.pop("metrics.reporter.prom.port")
    assert flink == nix

    kafka = dict(line.split("=", 1) for line in (tmp_path / "server.properties").read_text().splitlines()
                 if line and not line.startswith("#"))
    render = pytest.importorskip("streamscout.stack.render", reason="the stack package is not importable")
    from streamscout.stack.ports import parse_host_port

    stack_text = render.kafka_server_properties(parse_host_port(settings.kafka_bootstrap),
                                                settings.kafka_controller_port, Path("/var/lib/kafka"),
                                                settings.kafka_partitions)
    stack = dict(line.split("=", 1) for line in stack_text.splitlines() if line and not line.startswith("#"))
    assert kafka == stack


def test_every_config_file_the_role_copies_exists() -> None:
    tasks = "\n".join(p.read_text() for p in (ANSIBLE_DIR / "roles/streamscout/tasks").glob("*.yml"))
    paths = [value for key, value in DEFAULTS.items()
             if isinstance(value, str) and value.startswith("configs/") and f"{{{{ {key} }}}}" in tasks]
    paths += ["configs/prometheus.yml", "configs/prometheus", "configs/alertmanager.yml"]
    assert len(paths) >= 7
    for relative in paths:
        assert (REPO / relative).exists(), f"the ansible role copies {relative}, which is missing"


def test_alertmanager_tasks_produce_a_config_amtool_accepts(tmp_path) -> None:
    """Runs the role's alertmanager.yml tasks locally against this machine's Alertmanager (Debian
    12 ships 0.25, which needs the URL inline) and checks the result with amtool."""
    tool = require_tool("ansible-playbook")
    amtool = require_tool("amtool")
    require_tool("prometheus-alertmanager")
    if os.geteuid() != 0 or not _group_exists("prometheus"):
        pytest.skip("needs root and the prometheus group (the tasks chown to root:prometheus)")
    role = ANSIBLE_DIR / "roles" / "streamscout"
    webhook = tmp_path / "webhook"
    webhook.write_text("http://127.0.0.1:9/api/webhooks/1/test-token")  # never contacted
    config, url_file = tmp_path / "alertmanager.yml", tmp_path / "discord-webhook-url"
    playbook = tmp_path / "alertmanager-play.yml"
    playbook.write_text(yaml.safe_dump([{
        "hosts": "localhost", "connection": "local", "gather_facts": False,
        "vars_files": [str(role / "defaults" / "main.yml")],
        "tasks": [{"name": "Role tasks", "ansible.builtin.include_tasks": str(role / "tasks" / "alertmanager.yml")}],
        "handlers": [{"name": "Restart Alertmanager", "ansible.builtin.debug": {"msg": "restart"}}],
    }]))
    extra = json.dumps({"streamscout_repo_dir": str(REPO), "streamscout_discord_webhook_src": str(webhook),
                        "streamscout_alertmanager_config": str(config),
                        "streamscout_alertmanager_webhook_file": str(url_file)})
    result = subprocess.run([tool, "-i", "localhost,", "-e", extra, str(playbook)], capture_output=True,
                            text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "test-token" not in result.stdout  # no_log keeps the URL out of ansible's output
    assert oct(config.stat().st_mode & 0o777) == "0o640" and oct(url_file.stat().st_mode & 0o777) == "0o640"
    check = subprocess.run([amtool, "check-config", str(config)], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    receiver = yaml.safe_load(config.read_text())["receivers"][0]["discord_configs"][0]
    version = subprocess.run(["prometheus-alertmanager", "--version"], capture_output=True, text=True).stdout
    if re.search(r"version 0\.2[0-5]\.", version):
        assert receiver["webhook_url"] == webhook.read_text()
    else:
        assert receiver["webhook_url_file"] == str(url_file)


def _group_exists(name: str) -> bool:
    try:
        grp.getgrnam(name)
    except KeyError:
        return False
    return True
