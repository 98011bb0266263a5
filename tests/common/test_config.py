import pytest

from streamscout.common.config import ConfigError, load_settings

pytestmark = pytest.mark.unit


def test_defaults_need_no_environment():
    settings = load_settings({})
    assert settings.api_port == 8080
    assert settings.detector_baseline_buckets == 60
    assert settings.float_list("detector_retry_offsets") == (2.0, 4.0)


def test_values_are_typed():
    settings = load_settings({"STREAMSCOUT_API_PORT": "9000", "STREAMSCOUT_DETECTOR_K": "2.5"})
    assert (settings.api_port, settings.detector_k) == (9000, 2.5)


@pytest.mark.parametrize(
    "variable, value",
    [
        ("STREAMSCOUT_API_PORT", "eighty"),
        ("STREAMSCOUT_DETECTOR_K", "3 sigma"),
        ("STREAMSCOUT_DETECTOR_RETRY_OFFSETS", "2,x"),
        ("STREAMSCOUT_STATE_DIR", ""),
    ],
)
def test_malformed_value_names_the_variable(variable, value):
    with pytest.raises(ConfigError, match=variable):
        load_settings({variable: value})


def test_unknown_variable_is_rejected():
    with pytest.raises(ConfigError, match="STREAMSCOUT_API_PROT"):
        load_settings({"STREAMSCOUT_API_PROT": "1"})


def test_join_rank_may_not_exceed_leave_rank():
    with pytest.raises(ConfigError, match="MONITOR_JOIN_RANK"):
        load_settings({"STREAMSCOUT_MONITOR_JOIN_RANK": "11"})


def test_secret_from_file(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("s3cr3t\n")
    settings = load_settings({"STREAMSCOUT_TWITCH_CLIENT_SECRET_FILE": str(secret)})
    assert settings.client_secret() == "s3cr3t"
    missing = load_settings({"STREAMSCOUT_TWITCH_CLIENT_SECRET_FILE": str(tmp_path / "nope")})
    with pytest.raises(ConfigError, match="SECRET_FILE"):
        missing.client_secret()
