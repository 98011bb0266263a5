"""The one place StreamScout reads its configuration.

Every setting is an environment variable ``STREAMSCOUT_<NAME>``. The defaults describe a
single-host install whose infrastructure was started by ``streamscout stack up``, so every
command works on a developer machine with no settings at all. Values are parsed once, here;
a value that does not parse stops the program with a message naming the variable.

    >>> settings = load_settings({"STREAMSCOUT_API_PORT": "8081"})
    >>> settings.api_port
    8081
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

PREFIX = "STREAMSCOUT_"
SYSTEM_STATE_DIR = Path("/var/lib/streamscout")


class ConfigError(ValueError):
    """A setting's value is missing or malformed; the message names the variable."""


def _setting(default: Any, doc: str, *, secret: bool = False) -> Any:
    return field(default=default, metadata={"doc": doc, "secret": secret})


@dataclass(frozen=True)
class Settings:
    """All settings, typed. Build with :func:`load_settings`; pass the instance around."""

    # --- local state and logging -------------------------------------------------------
    state_dir: Path = _setting(Path("var"), "Where `stack up` keeps data, logs and pid files.")
    log_level: str = _setting("INFO", "Log level of every service (DEBUG, INFO, WARNING, ERROR).")

    # --- infrastructure (the addresses `streamscout stack up` uses) ------------------
    postgres_dsn: str = _setting(
        "postgresql://streamscout@127.0.0.1:55432/streamscout", "Postgres connection string."
    )
    redis_url: str = _setting("redis://127.0.0.1:56379/0", "Redis URL.")
    kafka_bootstrap: str = _setting("127.0.0.1:59092", "Kafka bootstrap servers (comma separated).")
    kafka_controller_port: int = _setting(59093, "Kafka KRaft controller port (not 9093: Alertmanager's).")
    kafka_partitions: int = _setting(4, "Partitions of the StreamScout topics (keyed by broadcaster id).")
    topic_chat: str = _setting("chat-messages", "Kafka topic of chat messages.")
    topic_lifecycle: str = _setting("stream-lifecycle", "Kafka topic of online/offline events.")
    flink_rest_url: str = _setting("http://127.0.0.1:58081", "Flink JobManager REST URL.")
    flink_jobmanager_metrics_port: int = _setting(9249, "Flink JobManager Prometheus reporter port.")
    flink_taskmanager_metrics_port: int = _setting(9250, "Flink TaskManager Prometheus reporter port.")
    prometheus_port: int = _setting(9090, "Prometheus port.")
    alertmanager_port: int = _setting(9093, "Alertmanager port.")
    discord_webhook_url_file: str = _setting(
        "", "File holding the Discord webhook URL for Alertmanager (never committed)."
    )

    # --- Twitch -----------------------------------------------------------------------
    twitch_client_id: str = _setting("", "Twitch application client id.")
    twitch_client_secret: str = _setting("", "Twitch client secret (prefer the _FILE variant).", secret=True)
    twitch_client_secret_file: str = _setting("", "File holding the Twitch client secret.")
    twitch_helix_url: str = _setting("https://api.twitch.tv/helix/", "Helix base URL (the simulator's for demos).")
    twitch_auth_url: str = _setting("https://id.twitch.tv/oauth2/", "OAuth base URL.")
    twitch_chat_url: str = _setting("wss://irc-ws.chat.twitch.tv:443", "Chat (IRC over WebSocket) URL.")
    token_file: str = _setting(
        "", "Shared user token file; default /var/lib/streamscout/tokens.json if writable, else <state_dir>/tokens.json."
    )
    http_timeout_seconds: float = _setting(5.0, "Timeout of one Twitch HTTP call.")

    # --- stream monitor ---------------------------------------------------------------
    monitor_poll_seconds: float = _setting(120.0, "How often the monitor ranks live streams.")
    monitor_join_rank: int = _setting(5, "Join a channel's chat when it ranks this high or better.")
    monitor_leave_rank: int = _setting(10, "Leave only when it ranks worse than this (or goes offline).")
    monitor_liveness_ttl_seconds: float = _setting(
        150.0, "TTL of a channel's Redis liveness key; expiry means offline."
    )
    monitor_clipping_recheck_days: float = _setting(
        7.0, "Days before a channel that refused a clip is considered again."
    )
    monitor_host: str = _setting("127.0.0.1", "Address of the monitor's /metrics and /health.")
    monitor_port: int = _setting(9100, "Port of the monitor's /metrics and /health.")
    monitor_kafka_compression: str = _setting(
        "lz4", "Codec of the monitor's Kafka batches: lz4 (cheapest in CPU), gzip or none."
    )
    monitor_stall_seconds: float = _setting(
        90.0, "Rebuild the chat connection when joined channels deliver nothing for this long."
    )

    # --- clip detector ----------------------------------------------------------------
    detector_bucket_seconds: float = _setting(5.0, "Width of a chat-count bucket.")
    detector_baseline_buckets: int = _setting(60, "Buckets in the baseline (60 x 5 s = 5 minutes).")
    detector_k: float = _setting(3.0, "A bucket is a spike above mean + k standard deviations.")
    detector_min_excess: float = _setting(
        1.0, "A spike must also exceed the mean by at least this many messages (quiet channels)."
    )
    detector_variant: str = _setting("spec", "Detector variant (see `streamscout backtest --help`).")
    detector_cooldown_seconds: float = _setting(30.0, "No second detection per broadcaster within this time.")
    detector_clip_delay_seconds: float = _setting(10.0, "Create the clip this long after the detection.")
    detector_retry_offsets: str = _setting("2,4", "Seconds after the first Create Clip attempt to retry.")
    detector_fetch_offsets: str = _setting(
        "15,30,60", "Seconds after a successful create to look the clip up."
    )
    detector_parallelism: int = _setting(1, "Parallelism of the Flink job.")
    detector_checkpoint_seconds: float = _setting(10.0, "Flink checkpoint interval.")
    detector_out_of_orderness_seconds: float = _setting(2.0, "Watermark delay for late chat.")
    detector_idleness_seconds: float = _setting(10.0, "A partition this quiet stops holding back watermarks.")

    # --- API --------------------------------------------------------------------------
    api_host: str = _setting("127.0.0.1", "Address the API listens on.")
    api_port: int = _setting(8080, "Port the API listens on.")
    api_threads: int = _setting(8, "Waitress worker threads.")
    api_pool_min: int = _setting(1, "Minimum Postgres connections in the API pool.")
    api_pool_max: int = _setting(10, "Maximum Postgres connections in the API pool.")

    # --- simulator --------------------------------------------------------------------
    sim_port: int = _setting(8900, "Port of the Twitch simulator.")

    def resolved_token_file(self) -> Path:
        """The token file path, applying the documented default."""
        if self.token_file:
            return Path(self.token_file)
        if SYSTEM_STATE_DIR.is_dir() and os.access(SYSTEM_STATE_DIR, os.W_OK):
            return SYSTEM_STATE_DIR / "tokens.json"
        return self.state_dir / "tokens.json"

    def client_secret(self) -> str:
        """The Twitch client secret, from the _FILE variant when set."""
        if self.twitch_client_secret_file:
            path = Path(self.twitch_client_secret_file)
            try:
                return path.read_text().strip()
            except OSError as exc:
                raise ConfigError(
                    f"{PREFIX}TWITCH_CLIENT_SECRET_FILE: cannot read {path}: {exc.strerror}"
                ) from None
        return self.twitch_client_secret

    def float_list(self, name: str) -> tuple[float, ...]:
        """Parse a comma-separated list setting such as ``detector_retry_offsets``."""
        return _parse_float_list(env_name(name), getattr(self, name))

    def with_overrides(self, **changes: Any) -> "Settings":
        """A copy with some fields replaced (for tests and command-line options)."""
        return dataclasses.replace(self, **changes)


KAFKA_CODECS = ("lz4", "gzip", "none")


def env_name(field_name: str) -> str:
    return PREFIX + field_name.upper()


def _parse_float_list(variable: str, raw: str) -> tuple[float, ...]:
    try:
        return tuple(float(part) for part in raw.split(",") if part.strip())
    except ValueError:
        raise ConfigError(f"{variable}: expected comma-separated numbers, got {raw!r}") from None


def _parse(variable: str, kind: type, raw: str) -> Any:
    text = raw.strip()
    try:
        if kind is int:
            return int(text)
        if kind is float:
            return float(text)
        if kind is Path:
            if not text:
                raise ValueError
            return Path(text)
        return raw
    except ValueError:
        label = {int: "an integer", float: "a number", Path: "a path"}[kind]
        raise ConfigError(f"{variable}: expected {label}, got {raw!r}") from None


_TYPES = {"int": int, "float": float, "Path": Path, "str": str}


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read every ``STREAMSCOUT_*`` variable; unknown ``STREAMSCOUT_*`` names are rejected too."""
    environ = os.environ if environ is None else environ
    known = {env_name(f.name) for f in dataclasses.fields(Settings)}
    unknown = sorted(k for k in environ if k.startswith(PREFIX) and k not in known)
    if unknown:
        raise ConfigError(f"{unknown[0]}: unknown setting (see the configuration table in README.md)")
    values: dict[str, Any] = {}
    for f in dataclasses.fields(Settings):
        variable = env_name(f.name)
        if variable in environ:
            values[f.name] = _parse(variable, _TYPES[f.type], environ[variable])
    settings = Settings(**values)
    for list_field in ("detector_retry_offsets", "detector_fetch_offsets"):
        settings.float_list(list_field)
    if settings.monitor_kafka_compression not in KAFKA_CODECS:
        raise ConfigError(
            f"{env_name('monitor_kafka_compression')}: expected one of {', '.join(KAFKA_CODECS)},"
            f" got {settings.monitor_kafka_compression!r}"
        )
    if settings.monitor_join_rank > settings.monitor_leave_rank:
        raise ConfigError(
            f"{env_name('monitor_join_rank')}: must not exceed {env_name('monitor_leave_rank')}"
        )
    return settings


def settings_table() -> list[tuple[str, str, str]]:
    """(variable, default, description) rows, for the README's configuration table."""
    rows = []
    for f in dataclasses.fields(Settings):
        rows.append((env_name(f.name), str(f.default), f.metadata["doc"]))
    return rows
