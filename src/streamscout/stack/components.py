"""The eight components of the local stack, each a small object: prepare, start, health, stop.

A component owns a directory under the state directory, one log file and one pid file
(:class:`~streamscout.stack.process.Daemon`). ``start`` only launches; the orchestration in
:mod:`streamscout.stack.stack` waits for ``healthy()``, then calls ``after_healthy()`` for
one-time work such as creating the database or the topics.
"""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import yaml

from streamscout.common.config import Settings
from streamscout.stack import render
from streamscout.stack.ports import Endpoint, endpoint_of_url, parse_host_port
from streamscout.stack.process import Daemon, alive_with_markers

REPO_ROOT = Path(__file__).resolve().parents[3]
CONFIGS_DIR = REPO_ROOT / "configs"
POSTGRES_BIN = Path("/usr/lib/postgresql/15/bin")
PROMETHEUS_BIN = "/usr/bin/prometheus"
ALERTMANAGER_BIN = "/usr/bin/prometheus-alertmanager"
REDIS_BIN = "/usr/bin/redis-server"
NODE_EXPORTER_BIN = "/usr/bin/prometheus-node-exporter"
# The node exporter's usual 9100 is the monitor's; configs/prometheus.yml scrapes 9101.
NODE_EXPORTER_PORT = 9101
# Where a fresh Alertmanager sends Discord notifications unless told otherwise: the discard
# port on loopback, so a developer stack never posts anywhere by accident.
DEFAULT_WEBHOOK_URL = "http://127.0.0.1:9/discord-webhook-not-configured"


class StackError(RuntimeError):
    """A component could not be started or is unhealthy; the message says which and where to look."""


@dataclass(frozen=True)
class StackContext:
    """Settings plus the absolute paths every component derives its files from."""

    settings: Settings
    state_dir: Path

    @classmethod
    def from_settings(cls, settings: Settings) -> "StackContext":
        return cls(settings, settings.state_dir.resolve())

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "log"

    @property
    def run_dir(self) -> Path:
        return self.state_dir / "run"

    @property
    def jars_dir(self) -> Path:
        return self.state_dir / "jars"

    @property
    def venv_python(self) -> Path:
        # The interpreter running this command is the venv's (`.venv/bin/streamscout`);
        # not resolved, so the symlink keeps pointing into the venv.
        return Path(sys.prefix) / "bin" / "python"

    def daemon(self, name: str, *markers: str) -> Daemon:
        return Daemon(name, self.run_dir / f"{name}.pid", self.log_dir / f"{name}.log", markers)


def _http_ok(url: str, timeout: float = 2.0) -> bytes | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            if response.status == 200:
                return response.read()
    except (urllib.error.URLError, OSError, ValueError):
        return None
    return None


def _reload(component: str, url: str) -> None:
    """POST a /-/reload; an invalid config is reported with the server's own message."""
    request = urllib.request.Request(url, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30):
            pass
    except urllib.error.HTTPError as exc:
        raise StackError(f"{component}: reloading the config failed: {exc.read().decode(errors='replace').strip()}") from None


class Component:
    name: str = ""
    stop_signal: int = signal.SIGTERM
    start_timeout: float = 60.0

    def __init__(self, ctx: StackContext) -> None:
        self.ctx = ctx

    @property
    def daemon(self) -> Daemon:
        # Built on each use: Postgres's identity (its resolved data dir) can change on first start.
        return self._daemon()

    # --- what subclasses provide ------------------------------------------------------
    def _daemon(self) -> Daemon:
        raise NotImplementedError

    def endpoints(self) -> list[Endpoint]:
        """Every address the component listens on (checked free before it starts)."""
        raise NotImplementedError

    def address(self) -> str:
        """What a client uses: DSN, URL or bootstrap servers."""
        raise NotImplementedError

    def healthy(self) -> bool:
        raise NotImplementedError

    def start(self) -> None:
        raise NotImplementedError

    def after_healthy(self) -> str | None:
        """One-time work once healthy (idempotent); returns a note for the status line."""
        return None

    # --- shared behaviour ---------------------------------------------------------------
    @property
    def log_file(self) -> Path:
        return self.daemon.log_file

    def running(self) -> bool:
        return self.daemon.running()

    def stop(self) -> bool:
        return self.daemon.stop(self.stop_signal)

    def state(self) -> str:
        if not self.running():
            return "stopped"
        return "running" if self.healthy() else "unhealthy"


class Postgres(Component):
    """Its own cluster under <state>/postgres; as root the server runs as the `postgres` user."""

    name = "postgres"
    stop_signal = signal.SIGINT  # "fast" shutdown: does not wait for the services' pools to close

    def _daemon(self) -> Daemon:
        return self.ctx.daemon(self.name, str(self.data_dir))

    @property
    def root(self) -> Path:
        return self.ctx.state_dir / "postgres"

    @property
    def data_dir(self) -> Path:
        # Resolved: when <state>/postgres is a symlink (see _prepare_root) the server must be
        # given a path the `postgres` user can traverse.
        return self.root.resolve() / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root.resolve() / "run"

    def endpoints(self) -> list[Endpoint]:
        return [endpoint_of_url(self.ctx.settings.postgres_dsn)]

    def address(self) -> str:
        return self.ctx.settings.postgres_dsn

    @property
    def _run_as(self) -> str | None:
        return "postgres" if os.geteuid() == 0 else None

    def _admin_dsn(self) -> str:
        return urlunsplit(urlsplit(self.ctx.settings.postgres_dsn)._replace(path="/postgres"))

    def healthy(self) -> bool:
        import psycopg

        try:
            with psycopg.connect(self._admin_dsn(), connect_timeout=2) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.Error:
            return False

    def _prepare_root(self) -> None:
        """Postgres refuses to run as root: hand its directory to the `postgres` user."""
        user = self._run_as
        if user is None:
            self.root.mkdir(parents=True, exist_ok=True)
            return
        if not self.root.exists() and not self.root.is_symlink():
            self.ctx.state_dir.mkdir(parents=True, exist_ok=True)
            reachable = subprocess.run(["runuser", "-u", user, "--", "test", "-x", str(self.ctx.state_dir)]).returncode == 0
            if not reachable:
                # e.g. a clone under /root (mode 0700): keep the cluster where `postgres` can reach it.
                digest = hashlib.sha256(str(self.ctx.state_dir).encode()).hexdigest()[:12]
                target = Path("/var/tmp/streamscout-postgres") / digest
                target.mkdir(parents=True, exist_ok=True)
                target.parent.chmod(0o755)
                self.root.symlink_to(target)
        self.root.resolve().mkdir(parents=True, exist_ok=True)
        entry = pwd.getpwnam(user)
        for path in [self.root.resolve(), *self.root.resolve().rglob("*")]:
            os.chown(path, entry.pw_uid, entry.pw_gid, follow_symlinks=False)

    def _pg(self, tool: str, *args: str) -> None:
        user = self._run_as
        result = subprocess.run(
            [str(POSTGRES_BIN / tool), *args],
            user=user, group=user, extra_groups=[] if user else None,
            stdin=subprocess.DEVNULL, capture_output=True, text=True,
        )
        if result.returncode != 0:
            raise StackError(f"postgres: {tool} failed: {result.stderr.strip() or result.stdout.strip()}")

    def start(self) -> None:
        self._prepare_root()
        data = self.data_dir
        if not (data / "PG_VERSION").exists():
            user = urlsplit(self.ctx.settings.postgres_dsn).username or "streamscout"
            self._pg("initdb", "-D", str(data), "-U", user, "--auth=trust", "-E", "UTF8",
                     "--locale=C.UTF-8", "--no-instructions")
            with open(data / "postgresql.conf", "a") as conf:
                conf.write("\ninclude_if_exists = 'streamscout.conf'\n")
        self._drop_stale_lock(data)
        self.socket_dir.mkdir(exist_ok=True)
        (data / "streamscout.conf").write_text(render.postgres_conf(self.endpoints()[0], self.socket_dir))
        (data / "pg_hba.conf").write_text(render.postgres_hba())
        self._prepare_root()  # chown what was just written
        self.daemon.spawn([str(POSTGRES_BIN / "postgres"), "-D", str(data)], user=self._run_as)

    @staticmethod
    def _drop_stale_lock(data: Path) -> None:
        """After a SIGKILL (e.g. the end of a CI run) postmaster.pid stays behind; if its pid is
        reused by an unrelated process, Postgres would refuse to start. Drop it when no postgres
        of this data dir is alive."""
        lock = data / "postmaster.pid"
        try:
            pid = int(lock.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return
        if not alive_with_markers(pid, (str(data),)):
            lock.unlink()

    def after_healthy(self) -> str | None:
        import psycopg

        from streamscout.common.db import migrate

        database = urlsplit(self.ctx.settings.postgres_dsn).path.lstrip("/") or "streamscout"
        with psycopg.connect(self._admin_dsn(), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{database}"')
        applied = migrate(self.ctx.settings.postgres_dsn)
        return f"migrations applied: {len(applied)}" if applied else "schema up to date"


class Redis(Component):
    name = "redis"

    def _daemon(self) -> Daemon:
        # redis-server rewrites its command line to "redis-server host:port".
        return self.ctx.daemon(self.name, "redis-server", str(self.endpoints()[0]))

    def endpoints(self) -> list[Endpoint]:
        return [endpoint_of_url(self.ctx.settings.redis_url)]

    def address(self) -> str:
        return self.ctx.settings.redis_url

    def healthy(self) -> bool:
        import redis

        try:
            return bool(redis.Redis.from_url(self.ctx.settings.redis_url, socket_timeout=2).ping())
        except redis.RedisError:
            return False

    def start(self) -> None:
        data = self.ctx.state_dir / "redis"
        data.mkdir(parents=True, exist_ok=True)
        self.daemon.spawn(render.redis_argv(REDIS_BIN, self.endpoints()[0], data))


class Kafka(Component):
    """One KRaft node (broker + controller) from the jars `make setup` resolved."""

    name = "kafka"
    start_timeout = 90.0

    @property
    def root(self) -> Path:
        return self.ctx.state_dir / "kafka"

    @property
    def properties(self) -> Path:
        return self.root / "config" / "server.properties"

    def _daemon(self) -> Daemon:
        return self.ctx.daemon(self.name, "kafka.Kafka", str(self.properties))

    def endpoints(self) -> list[Endpoint]:
        broker = parse_host_port(self.ctx.settings.kafka_bootstrap)
        return [broker, Endpoint(broker.host, self.ctx.settings.kafka_controller_port)]

    def address(self) -> str:
        return self.ctx.settings.kafka_bootstrap

    def _admin(self):
        from kafka import KafkaAdminClient

        return KafkaAdminClient(
            bootstrap_servers=self.ctx.settings.kafka_bootstrap,
            client_id="streamscout-stack",
            request_timeout_ms=5000,
        )

    def healthy(self) -> bool:
        from kafka.errors import KafkaError

        try:
            admin = self._admin()
        except (KafkaError, OSError, ValueError):
            return False
        try:
            admin.list_topics()
            return True
        except (KafkaError, OSError):
            return False
        finally:
            admin.close()

    def _java(self, *main: str) -> list[str]:
        jars = self.ctx.jars_dir / "kafka"
        if not any(jars.glob("kafka_2.13-*.jar")):
            raise StackError(f"kafka: no broker jars in {jars}; run `make setup`")
        return render.kafka_argv(shutil.which("java") or "java", jars, self.properties.parent, list(main))

    def start(self) -> None:
        config = self.properties.parent
        config.mkdir(parents=True, exist_ok=True)
        data = self.root / "data"
        self.properties.write_text(
            render.kafka_server_properties(
                self.endpoints()[0], self.ctx.settings.kafka_controller_port, data, self.ctx.settings.kafka_partitions
            )
        )
        (config / "log4j2.properties").write_text(render.kafka_log4j2())
        if not (data / "meta.properties").exists():
            id_file = self.root / "cluster-id"
            if not id_file.exists():
                id_file.write_text(render.kafka_cluster_id() + "\n")
            result = subprocess.run(
                self._java("kafka.tools.StorageTool", "format", "-t", id_file.read_text().strip(),
                           "-c", str(self.properties), "--ignore-formatted"),
                stdin=subprocess.DEVNULL, capture_output=True, text=True,
            )
            if result.returncode != 0:
                raise StackError(f"kafka: formatting {data} failed: {(result.stderr or result.stdout).strip()[-2000:]}")
        self.daemon.spawn(self._java("kafka.Kafka", str(self.properties)))

    def after_healthy(self) -> str | None:
        from kafka.admin import NewTopic

        settings = self.ctx.settings
        wanted = [settings.topic_chat, settings.topic_lifecycle]
        admin = self._admin()
        try:
            existing = set(admin.list_topics())
            missing = [t for t in wanted if t not in existing]
            if missing:
                admin.create_topics(
                    [NewTopic(t, num_partitions=settings.kafka_partitions, replication_factor=1) for t in missing]
                )
        finally:
            admin.close()
        return f"topics {', '.join(wanted)} ({settings.kafka_partitions} partitions)"


def pyflink_home() -> Path:
    """The Flink distribution inside the apache-flink wheel."""
    import importlib.util

    spec = importlib.util.find_spec("pyflink")
    if spec is None or spec.origin is None:
        raise StackError("flink: the apache-flink package is not installed in this Python; run `make setup`")
    return Path(spec.origin).parent


class _Flink(Component):
    start_timeout = 90.0
    script = ""

    @property
    def conf_dir(self) -> Path:
        return self.ctx.state_dir / "flink" / "conf"

    def _daemon(self) -> Daemon:
        # Both strings are on the launcher script's command line and on the java it execs, so
        # the component counts as running from the first moment (no second start in between).
        return self.ctx.daemon(self.name, *self._identity())

    def _identity(self) -> list[str]:
        return [f"metrics.reporter.prom.port={self.metrics_port()}", f"io.tmp.dirs={self.tmp_dir}"]

    @property
    def tmp_dir(self) -> Path:
        return self.ctx.state_dir / "flink" / "tmp"

    def rest(self) -> Endpoint:
        return endpoint_of_url(self.ctx.settings.flink_rest_url)

    def metrics_port(self) -> int:
        raise NotImplementedError

    def write_conf(self) -> None:
        """The shared conf dir: generated config.yaml plus the distribution's logging files."""
        home = pyflink_home()
        flink = self.ctx.state_dir / "flink"
        for sub in ("conf", "checkpoints", "savepoints", "tmp"):
            (flink / sub).mkdir(parents=True, exist_ok=True)
        for source in (home / "conf").glob("log*"):
            shutil.copyfile(source, self.conf_dir / source.name)
        config = render.flink_config(
            base=yaml.safe_load((home / "conf" / "config.yaml").read_text()) or {},
            rest=self.rest(), python=self.ctx.venv_python, checkpoint_dir=flink / "checkpoints", tmp_dir=self.tmp_dir
        )
        (self.conf_dir / "config.yaml").write_text(render.flink_config_yaml(config))

    def start(self) -> None:
        self.write_conf()
        home = pyflink_home()
        env = dict(os.environ)
        env.update(
            FLINK_HOME=str(home),
            FLINK_CONF_DIR=str(self.conf_dir),
            FLINK_LOG_DIR=str(self.ctx.log_dir / "flink"),
            FLINK_PID_DIR=str(self.ctx.run_dir / "flink"),
        )
        (self.ctx.log_dir / "flink").mkdir(parents=True, exist_ok=True)
        (self.ctx.run_dir / "flink").mkdir(parents=True, exist_ok=True)
        dynamic = [arg for setting in self._identity() for arg in ("-D", setting)]
        self.daemon.spawn(["bash", str(home / "bin" / self.script), "start-foreground", *dynamic], env=env)

    def _overview(self) -> dict | None:
        body = _http_ok(self.ctx.settings.flink_rest_url.rstrip("/") + "/overview")
        return json.loads(body) if body else None


class FlinkJobManager(_Flink):
    name = "flink-jobmanager"
    script = "jobmanager.sh"

    def metrics_port(self) -> int:
        return self.ctx.settings.flink_jobmanager_metrics_port

    def endpoints(self) -> list[Endpoint]:
        rest = self.rest()
        return [rest, Endpoint(rest.host, render.FLINK_RPC_PORT), Endpoint(rest.host, self.metrics_port())]

    def address(self) -> str:
        return self.ctx.settings.flink_rest_url

    def healthy(self) -> bool:
        return self._overview() is not None


class FlinkTaskManager(_Flink):
    name = "flink-taskmanager"
    script = "taskmanager.sh"

    def metrics_port(self) -> int:
        return self.ctx.settings.flink_taskmanager_metrics_port

    def endpoints(self) -> list[Endpoint]:
        return [Endpoint(self.rest().host, self.metrics_port())]

    def address(self) -> str:
        return f"{render.FLINK_TASK_SLOTS} slots via {self.ctx.settings.flink_rest_url}"

    def healthy(self) -> bool:
        overview = self._overview()
        return bool(overview and overview.get("taskmanagers", 0) >= 1)


class NodeExporter(Component):
    """Host metrics for the `node` scrape job (HighMemoryUsage), on loopback only."""

    name = "node-exporter"

    def _daemon(self) -> Daemon:
        return self.ctx.daemon(self.name, "node-exporter", f"127.0.0.1:{NODE_EXPORTER_PORT}")

    def endpoints(self) -> list[Endpoint]:
        return [Endpoint("127.0.0.1", NODE_EXPORTER_PORT)]

    def address(self) -> str:
        return f"http://{self.endpoints()[0]}/metrics"

    def healthy(self) -> bool:
        return _http_ok(self.address()) is not None

    def start(self) -> None:
        self.daemon.spawn(render.node_exporter_argv(NODE_EXPORTER_BIN, self.endpoints()[0]))


class Prometheus(Component):
    name = "prometheus"

    @property
    def data_dir(self) -> Path:
        return self.ctx.state_dir / "prometheus"

    def _daemon(self) -> Daemon:
        return self.ctx.daemon(self.name, "prometheus", str(self.data_dir))

    def endpoints(self) -> list[Endpoint]:
        return [Endpoint("127.0.0.1", self.ctx.settings.prometheus_port)]

    def address(self) -> str:
        return f"http://{self.endpoints()[0]}"

    def healthy(self) -> bool:
        return _http_ok(self.address() + "/-/ready") is not None

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.daemon.spawn(
            render.prometheus_argv(PROMETHEUS_BIN, CONFIGS_DIR / "prometheus.yml", self.endpoints()[0], self.data_dir)
        )

    def after_healthy(self) -> str | None:
        """A running Prometheus picks up edits to configs/ (scrape jobs, alert rules) on every `up`."""
        _reload(self.name, self.address() + "/-/reload")
        return "config loaded"


class Alertmanager(Component):
    """Runs the committed config with the Discord webhook taken from <state>/alertmanager/."""

    name = "alertmanager"

    @property
    def root(self) -> Path:
        return self.ctx.state_dir / "alertmanager"

    @property
    def webhook_url_file(self) -> Path:
        return self.root / "discord-webhook-url"

    @property
    def config_file(self) -> Path:
        return self.root / "alertmanager.yml"

    def _daemon(self) -> Daemon:
        return self.ctx.daemon(self.name, "alertmanager", str(self.root / "data"))

    def endpoints(self) -> list[Endpoint]:
        return [Endpoint("127.0.0.1", self.ctx.settings.alertmanager_port)]

    def address(self) -> str:
        return f"http://{self.endpoints()[0]}"

    def healthy(self) -> bool:
        return _http_ok(self.address() + "/-/ready") is not None

    def sync_webhook_file(self) -> None:
        """Copy the configured webhook URL file in, or default to the loopback discard port."""
        self.root.mkdir(parents=True, exist_ok=True)
        configured = self.ctx.settings.discord_webhook_url_file
        if configured:
            try:
                url = Path(configured).read_text().strip()
            except OSError as exc:
                raise StackError(f"alertmanager: cannot read STREAMSCOUT_DISCORD_WEBHOOK_URL_FILE {configured}: {exc.strerror}") from None
            self.webhook_url_file.write_text(url + "\n")
        elif not self.webhook_url_file.exists():
            self.webhook_url_file.write_text(DEFAULT_WEBHOOK_URL + "\n")
        self.webhook_url_file.chmod(0o600)

    def render_config(self) -> Path:
        """Write the generated config (mode 0600: it may hold the webhook URL)."""
        version = subprocess.run([ALERTMANAGER_BIN, "--version"], capture_output=True, text=True)
        text = render.render_alertmanager_config(
            (CONFIGS_DIR / "alertmanager.yml").read_text(),
            webhook_url_file=self.webhook_url_file,
            webhook_url=self.webhook_url_file.read_text().strip(),
            version=render.alertmanager_version(version.stdout + version.stderr),
        )
        fd = os.open(self.config_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(text)
        return self.config_file

    def start(self) -> None:
        (self.root / "data").mkdir(parents=True, exist_ok=True)
        self.sync_webhook_file()
        self.daemon.spawn(
            render.alertmanager_argv(ALERTMANAGER_BIN, self.render_config(), self.endpoints()[0], self.root / "data")
        )

    def after_healthy(self) -> str | None:
        """Re-render from configs/alertmanager.yml (keeping the current webhook file) and reload."""
        self.render_config()
        _reload(self.name, self.address() + "/-/reload")
        return "config loaded"

    def point_webhook(self, url: str) -> None:
        """Send Discord notifications to ``url`` from now on (tests use a local receiver)."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.webhook_url_file.write_text(url + "\n")
        self.webhook_url_file.chmod(0o600)
        self.render_config()
        if self.running():
            _reload(self.name, self.address() + "/-/reload")


COMPONENTS: list[type[Component]] = [
    Postgres, Redis, Kafka, FlinkJobManager, FlinkTaskManager, NodeExporter, Prometheus, Alertmanager
]


def all_components(ctx: StackContext) -> list[Component]:
    return [kind(ctx) for kind in COMPONENTS]
