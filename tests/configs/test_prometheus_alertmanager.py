"""configs/prometheus*, alert rules and Alertmanager, checked by the real tools (promtool, amtool)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from streamscout.stack import render

pytestmark = pytest.mark.unit

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
RULES = CONFIGS / "prometheus" / "alert_rules.yml"
RULE_TESTS = CONFIGS / "prometheus" / "alert_rules_test.yml"

SPEC_ALERTS = {
    "KafkaConsumerLagHigh": ("warning", "5m"),
    "FlinkTaskManagerDown": ("critical", "2m"),
    "FlinkJobManagerDown": ("critical", "2m"),
    "HighMemoryUsage": ("warning", "5m"),
    "StreamMonitoringDown": ("critical", "2m"),
    "NoChatMessagesProcessed": ("warning", "5m"),
}
PIPELINE_ALERTS = {"NoClipsCreated", "ClipFailureRatioHigh", "DetectorJobNotRunning", "ApiDown", "TokenRefreshFailing"}


def tool(*argv: str) -> subprocess.CompletedProcess:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def alert_rules() -> dict[str, dict]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {rule["alert"]: rule for group in groups for rule in group["rules"]}


def test_promtool_check_config():
    assert "SUCCESS" in tool("promtool", "check", "config", str(CONFIGS / "prometheus.yml")).stdout


def test_promtool_check_rules():
    assert "SUCCESS" in tool("promtool", "check", "rules", str(RULES)).stdout


def test_promtool_rule_unit_tests_pass():
    assert "SUCCESS" in tool("promtool", "test", "rules", str(RULE_TESTS)).stdout


def test_scrape_jobs_and_targets():
    config = yaml.safe_load((CONFIGS / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]}
    assert jobs == {
        "prometheus": ["127.0.0.1:9090"],
        "stream-monitoring": ["127.0.0.1:9100"],
        "flink-jobmanager": ["127.0.0.1:9249"],
        "flink-taskmanager": ["127.0.0.1:9250"],
        "node": ["127.0.0.1:9101"],
        "api": ["127.0.0.1:8080"],
    }
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["127.0.0.1:9093"]


def test_spec_alerts_have_their_severity_and_duration():
    rules = alert_rules()
    for name, (severity, duration) in SPEC_ALERTS.items():
        assert rules[name]["labels"]["severity"] == severity, name
        assert rules[name]["for"] == duration, name
    assert "> 10000" in rules["KafkaConsumerLagHigh"]["expr"]
    assert "> 85" in rules["HighMemoryUsage"]["expr"]
    assert PIPELINE_ALERTS <= set(rules)


def test_every_alert_is_annotated():
    for name, rule in alert_rules().items():
        assert rule["labels"]["severity"] in {"warning", "critical"}, name
        assert rule["annotations"]["summary"].strip(), name
        assert rule["annotations"]["description"].strip(), name


def test_every_alert_has_a_firing_and_a_silent_unit_test():
    fired, silent = set(), set()
    for case in yaml.safe_load(RULE_TESTS.read_text())["tests"]:
        for check in case["alert_rule_test"]:
            (fired if check["exp_alerts"] else silent).add(check["alertname"])
    assert fired == set(alert_rules())
    assert silent == set(alert_rules())


@pytest.fixture(scope="module")
def alertmanager_config() -> dict:
    return yaml.safe_load((CONFIGS / "alertmanager.yml").read_text())


def test_alertmanager_timings(alertmanager_config):
    route = alertmanager_config["route"]
    assert (route["group_wait"], route["group_interval"], route["repeat_interval"]) == ("30s", "5m", "4h")
    critical = [r for r in route["routes"] if r["matchers"] == ['severity="critical"']]
    assert len(critical) == 1
    assert (critical[0]["group_wait"], critical[0]["repeat_interval"]) == ("10s", "1h")


def test_alertmanager_webhook_url_is_never_in_the_file(alertmanager_config):
    [receiver] = alertmanager_config["receivers"]
    [discord] = receiver["discord_configs"]
    assert set(discord) >= {"webhook_url_file"}
    assert "webhook_url" not in discord


def _installed_alertmanager_version() -> tuple[int, int]:
    out = subprocess.run(["prometheus-alertmanager", "--version"], capture_output=True, text=True)
    return render.alertmanager_version(out.stdout + out.stderr)


@pytest.mark.parametrize("version", [(0, 25), (0, 26)])
def test_amtool_accepts_the_config_as_the_stack_runs_it(tmp_path, version):
    """The committed config, rendered as `stack up` does, for the installed and a newer Alertmanager."""
    if version > _installed_alertmanager_version():
        pytest.skip(f"the installed amtool predates Alertmanager {version[0]}.{version[1]}'s webhook_url_file")
    rendered = render.render_alertmanager_config(
        (CONFIGS / "alertmanager.yml").read_text(),
        webhook_url_file=tmp_path / "url", webhook_url="http://127.0.0.1:9/hook", version=version,
    )
    config = tmp_path / "alertmanager.yml"
    config.write_text(rendered)
    assert "SUCCESS" in tool("amtool", "check-config", str(config)).stdout
