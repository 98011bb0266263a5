"""Against the Twitch simulator, with pyTwitchAPI's own CodeFlow and Twitch classes.

Covers the issue's "done means": the device flow writes a valid file, `tokens check` passes, a
token expired on the simulator's clock is refreshed and the new pair is on disk, two processes
refreshing at once end with one working file, and no token ever reaches the output.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import free_port
from prometheus_client import CollectorRegistry

from streamscout.auth.provider import SyncTokenProvider
from streamscout.auth.runtime import authenticated_twitch
from streamscout.auth.store import TokenFile, TokenStore, utc_now
from streamscout.common.config import load_settings

pytestmark = pytest.mark.integration

STREAMSCOUT = str(Path(sys.executable).with_name("streamscout"))


class Env:
    """A simulator plus the environment a StreamScout process needs to use it."""

    def __init__(self, sim, tmp_path: Path):
        self.sim = sim
        self.token_file = tmp_path / "state" / "tokens.json"
        secret_file = tmp_path / "client_secret"
        secret_file.write_text(sim.info["client_secret"] + "\n")
        secret_file.chmod(0o600)
        self.vars = {
            "STREAMSCOUT_TWITCH_AUTH_URL": sim.info["auth_url"],
            "STREAMSCOUT_TWITCH_HELIX_URL": sim.info["helix_url"],
            "STREAMSCOUT_TWITCH_CHAT_URL": sim.info["chat_url"],
            "STREAMSCOUT_TWITCH_CLIENT_ID": sim.info["client_id"],
            "STREAMSCOUT_TWITCH_CLIENT_SECRET_FILE": str(secret_file),
            "STREAMSCOUT_TOKEN_FILE": str(self.token_file),
            "STREAMSCOUT_STATE_DIR": str(tmp_path / "state"),
            "STREAMSCOUT_LOG_LEVEL": "DEBUG",
        }
        self.settings = load_settings(self.vars)
        self.outputs: list[str] = []

    def environ(self) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith("STREAMSCOUT_")}
        return {**base, **self.vars}

    def run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        done = subprocess.run([STREAMSCOUT, *args], env=self.environ(), capture_output=True, text=True,
                              timeout=timeout)
        self.outputs += [done.stdout, done.stderr]
        return done

    def seed(self) -> TokenFile:
        done = self.run("seed-tokens", "--auto-approve-url", self.sim.base_url + "/sim/device/approve",
                        "--timeout", "30")
        assert done.returncode == 0, done.stderr
        return TokenStore(self.token_file).load()

    def sim_accepts(self, access_token: str) -> bool:
        return self.sim._call(lambda: self.sim.world.tokens.valid(access_token)) is not None

    def record_issued_tokens(self) -> None:
        """Remember every user token the simulator issues (it forgets replaced ones)."""
        store = self.sim.world.tokens
        original = store.issue_user_token
        self.issued: list = []

        def recording(*args, **kwargs):
            token = original(*args, **kwargs)
            self.issued.append(token)
            return token

        store.issue_user_token = recording

    def every_secret(self) -> set[str]:
        """Every token and refresh token the simulator issued, device codes, and the secret."""
        device_codes = self.sim._call(lambda: set(self.sim.world.tokens.device_codes))
        issued = {t.access_token for t in self.issued} | {t.refresh_token for t in self.issued}
        return issued | device_codes | {self.sim.info["client_secret"]}


@pytest.fixture
def env(sim, tmp_path):
    return Env(sim("steady"), tmp_path)


def test_seed_tokens_waits_for_the_code_a_person_enters(env):
    """No auto-approve: the test reads the printed code and approves it as a browser would."""
    proc = subprocess.Popen([STREAMSCOUT, "seed-tokens", "--timeout", "30"], env=env.environ(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if "enter the code:" in line:
                break
        code = line.split("enter the code:")[1].strip()
        url = next(l.strip() for l in lines if l.strip().startswith("http://"))
        assert url.startswith(env.sim.base_url + "/activate")
        assert env.sim.approve(code)
        out = "".join(lines) + proc.stdout.read()  # not communicate(): it would skip buffered lines
        err = proc.stderr.read()
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "waiting for approval" in out and "Refresh verified" in out
    tokens = TokenStore(env.token_file).load()
    assert (tokens.user_login, tokens.user_id) == (env.sim.info["bot_login"], str(env.sim.info["bot_user_id"]))
    assert set(tokens.scopes) == {"chat:read", "clips:edit"}
    assert tokens.client_id == env.sim.info["client_id"]
    assert stat.S_IMODE(os.stat(env.token_file).st_mode) == 0o600
    assert env.sim_accepts(tokens.access_token)


def test_seed_tokens_refuses_to_replace_a_valid_file_without_force(env):
    first = env.seed()
    again = env.run("seed-tokens", "--timeout", "5")
    assert again.returncode == 1 and "already holds tokens for streamscout_bot" in again.stderr
    assert TokenStore(env.token_file).load() == first
    forced = env.run("seed-tokens", "--force", "--auto-approve-url", env.sim.base_url + "/sim/device/approve")
    assert forced.returncode == 0, forced.stderr
    assert TokenStore(env.token_file).load().access_token != first.access_token


def test_seed_tokens_times_out_with_a_clear_reason(env):
    done = env.run("seed-tokens", "--timeout", "2")
    assert done.returncode == 12
    assert done.stderr.strip().splitlines()[-1] == (
        "error: the code was not approved within 2 s; run `streamscout seed-tokens` again and approve it sooner"
    )
    assert not env.token_file.exists()


def test_seed_tokens_with_an_unknown_client_id(env):
    done = env.run("seed-tokens", "--client-id", "nobody", "--timeout", "5")
    assert done.returncode == 9 and "refused to start a device flow for client id nobody" in done.stderr


def test_auto_approve_refuses_non_loopback_addresses(env):
    done = env.run("seed-tokens", "--auto-approve-url", "http://example.com/sim/device/approve")
    assert done.returncode == 2 and "loopback" in done.stderr


def test_secret_on_the_command_line_is_warned_about(env):
    env.vars.pop("STREAMSCOUT_TWITCH_CLIENT_SECRET_FILE")
    env.seed()
    done = env.run("tokens", "check", "--refresh", "--client-secret", env.sim.info["client_secret"])
    assert done.returncode == 0, done.stderr
    assert "warning: --client-secret puts the secret in the process list" in done.stderr


def test_tokens_check_passes_and_refreshes_an_expired_token(env):
    seeded = env.seed()
    done = env.run("tokens", "check")
    assert done.returncode == 0, done.stderr
    assert "user:       streamscout_bot" in done.stdout and "scopes:     chat:read clips:edit" in done.stdout
    assert "refreshed just now" not in done.stdout

    assert env.sim.expire_tokens() >= 1
    assert not env.sim_accepts(seeded.access_token)
    done = env.run("tokens", "check")
    assert done.returncode == 0, done.stderr
    assert "refreshed just now" in done.stdout
    on_disk = TokenStore(env.token_file).load()
    assert on_disk.access_token != seeded.access_token and on_disk.version > seeded.version
    assert env.sim_accepts(on_disk.access_token)


def test_revoked_refresh_token_fails_with_the_fix_and_leaves_the_file(env):
    seeded = env.seed()
    store = TokenStore(env.token_file)
    store.save(TokenFile(**{**seeded.__dict__, "refresh_token": "revoked-by-the-user"}))
    env.sim.expire_tokens()
    before = env.token_file.read_bytes()
    done = env.run("tokens", "check")
    assert done.returncode == 8
    assert done.stderr.strip().splitlines()[-1] == (
        "error: Twitch refused the refresh token (400); run `streamscout seed-tokens` again"
    )
    assert env.token_file.read_bytes() == before


def test_a_token_twitch_grants_without_clips_edit(env):
    issued = env.sim.issue_user_token(["chat:read"])
    now = utc_now()
    TokenStore(env.token_file).save(TokenFile(
        client_id=env.sim.info["client_id"], user_id="1", user_login="x", scopes=("chat:read", "clips:edit"),
        access_token=issued["access_token"], refresh_token=issued["refresh_token"], issued_at=now, obtained_at=now,
    ))
    done = env.run("tokens", "check")
    assert done.returncode == 7 and "grants the token no clips:edit (granted: chat:read)" in done.stderr


@pytest.mark.parametrize(
    "content, code, reason",
    [
        (b"", 5, "is empty"),
        (b'{"access_token": "abc", "refr', 5, "not valid JSON"),
        (b'{"format": 1}', 6, "lacks field 'access_token'"),
        (None, 3, "does not exist"),
    ],
)
def test_tokens_check_exit_codes_for_bad_files(env, content, code, reason):
    if content is not None:
        env.token_file.parent.mkdir(parents=True)
        env.token_file.write_bytes(content)
        env.token_file.chmod(0o600)
    done = env.run("tokens", "check")
    assert done.returncode == code
    assert len(done.stderr.strip().splitlines()) == 1 and reason in done.stderr
    if content is not None:
        assert env.token_file.read_bytes() == content


def test_tokens_check_when_twitch_is_unreachable(env):
    env.seed()
    env.vars["STREAMSCOUT_TWITCH_AUTH_URL"] = f"http://127.0.0.1:{free_port()}/oauth2/"
    done = env.run("tokens", "check")
    assert done.returncode == 10
    assert done.stderr.strip() == "error: cannot reach Twitch OAuth for token validation (ConnectionRefusedError); retry later"


def test_tokens_check_with_another_configured_client_id(env):
    env.seed()
    env.vars["STREAMSCOUT_TWITCH_CLIENT_ID"] = "another-app"
    done = env.run("tokens", "check")
    assert done.returncode == 9 and "not the configured another-app" in done.stderr


def test_runtime_twitch_refreshes_an_expired_token_and_persists_it(env):
    seeded = env.seed()

    async def scenario():
        twitch = await authenticated_twitch(env.settings, registry=CollectorRegistry())
        try:
            first = [u async for u in twitch.get_users()]
            env.sim.expire_tokens()
            second = [u async for u in twitch.get_users()]  # 401 -> shared refresh -> retry
            chat_token = await twitch.get_refreshed_user_auth_token()  # what pyTwitchAPI's Chat calls
            return first, second, twitch.get_user_auth_token(), chat_token
        finally:
            await twitch.close()

    first, second, in_memory, chat_token = asyncio.run(scenario())
    assert first[0].login == second[0].login == "streamscout_bot"
    on_disk = TokenStore(env.token_file).load()
    assert on_disk.access_token == in_memory == chat_token != seeded.access_token
    assert env.sim_accepts(on_disk.access_token)


def test_runtime_starts_from_an_already_expired_token(env):
    seeded = env.seed()
    env.sim.expire_tokens()

    async def scenario():
        twitch = await authenticated_twitch(env.settings, registry=CollectorRegistry())
        await twitch.close()
        return twitch.get_user_auth_token()

    token = asyncio.run(scenario())
    assert token == TokenStore(env.token_file).load().access_token != seeded.access_token


def test_a_refresh_pytwitchapi_makes_by_itself_is_saved_through_the_callback(env):
    """set_user_authentication(validate=True) with an expired token refreshes inside pyTwitchAPI."""
    seeded = env.seed()

    async def scenario():
        twitch = await authenticated_twitch(env.settings, registry=CollectorRegistry())
        env.sim.expire_tokens()
        await twitch.set_user_authentication(seeded.access_token, twitch.get_user_auth_scope(),
                                             seeded.refresh_token)  # validate=True: refreshes itself
        await twitch.close()
        return twitch.get_user_auth_token()

    token = asyncio.run(scenario())
    on_disk = TokenStore(env.token_file).load()
    assert on_disk.access_token == token != seeded.access_token
    assert on_disk.version > seeded.version and env.sim_accepts(token)


def test_chat_logs_in_with_a_token_refreshed_through_the_store(env):
    """pyTwitchAPI's Chat validates the token before PASS; an expired one is refreshed our way."""
    from twitchAPI.chat import Chat

    seeded = env.seed()

    async def scenario():
        twitch = await authenticated_twitch(env.settings, registry=CollectorRegistry())
        env.sim.expire_tokens()
        chat = await Chat(twitch, connection_url=env.settings.twitch_chat_url)
        chat.start()
        try:
            for _ in range(400):  # up to 20 s
                if chat.is_ready():
                    break
                await asyncio.sleep(0.05)
            return chat.is_ready(), twitch.get_user_auth_token()
        finally:
            chat.stop()
            await twitch.close()

    ready, token = asyncio.run(scenario())
    assert ready
    on_disk = TokenStore(env.token_file).load()
    assert on_disk.access_token == token != seeded.access_token


CONCURRENT = textwrap.dedent(
    """
    import asyncio, os, sys, time
    from prometheus_client import CollectorRegistry
    from streamscout.common.config import load_settings
    kind, go = sys.argv[1:3]
    settings = load_settings()
    registry = CollectorRegistry()

    def wait_for_go():
        while not os.path.exists(go):
            time.sleep(0.002)

    if kind == "pytwitchapi":  # the monitor's way
        from streamscout.auth.runtime import authenticated_twitch

        async def main():
            twitch = await authenticated_twitch(settings, registry=registry)
            print("ready", flush=True)
            await asyncio.to_thread(wait_for_go)
            users = [u async for u in twitch.get_users()]
            await twitch.close()
            return users[0].login, twitch.get_user_auth_token()

        login, token = asyncio.run(main())
    else:  # the detector's way: plain HTTP
        import json, urllib.request
        from streamscout.auth.provider import SyncTokenProvider
        provider = SyncTokenProvider.from_settings(settings, registry=registry)
        provider.validate()
        print("ready", flush=True)
        wait_for_go()
        token = provider.access_token()
        def get_users(token):
            request = urllib.request.Request(settings.twitch_helix_url + "users", headers={
                "Client-Id": settings.twitch_client_id, "Authorization": f"Bearer {token}"})
            return json.load(urllib.request.urlopen(request, timeout=5))
        try:
            body = get_users(token)
        except urllib.error.HTTPError as exc:
            assert exc.code == 401
            token = provider.refresh_after_401(token)
            body = get_users(token)
        login = body["data"][0]["login"]
    refreshes = registry.get_sample_value("streamscout_token_refreshes_total")
    print(login, int(refreshes), token == open(settings.resolved_token_file()).read().split('"access_token": "')[1].split('"')[0], flush=True)
    """
)


@pytest.mark.parametrize("kinds", [("pytwitchapi", "pytwitchapi"), ("pytwitchapi", "plain"), ("plain", "plain")])
def test_two_processes_refreshing_at_once_end_with_one_working_file(env, tmp_path, kinds):
    seeded = env.seed()
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", CONCURRENT, kind, str(go)], env=env.environ(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for kind in kinds]
    try:
        for proc in procs:
            assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
        env.sim.expire_tokens()
        go.touch()
        results = [proc.communicate(timeout=60) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    env.outputs += [text for pair in results for text in pair]
    lines = [out.strip().splitlines()[-1].split() for out, _ in results]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in results]
    assert [line[0] for line in lines] == ["streamscout_bot"] * 2
    assert sum(int(line[1]) for line in lines) == 1, "exactly one process called Twitch to refresh"
    assert [line[2] for line in lines] == ["True", "True"], "both ended on the token in the file"
    final = TokenStore(env.token_file).load()
    assert final.access_token != seeded.access_token and env.sim_accepts(final.access_token)


def test_no_token_or_secret_ever_reaches_the_output(env, caplog):
    """A full run: seed, check, expiry, refresh by CLI, runtime and a second process, failures."""
    caplog.set_level("DEBUG")
    env.record_issued_tokens()
    seeded = env.seed()
    env.run("tokens", "check")
    env.sim.expire_tokens()
    env.run("tokens", "check")
    env.run("tokens", "check", "--refresh")
    env.sim.expire_tokens()

    async def runtime():
        twitch = await authenticated_twitch(env.settings, registry=CollectorRegistry())
        [u async for u in twitch.get_users()]
        env.sim.expire_tokens()
        [u async for u in twitch.get_users()]
        await twitch.close()

    asyncio.run(runtime())
    provider = SyncTokenProvider.from_settings(env.settings, registry=CollectorRegistry())
    env.sim.expire_tokens()
    provider.validate()
    TokenStore(env.token_file).save(TokenFile(**{**seeded.__dict__, "refresh_token": "x" * 30}))
    env.sim.expire_tokens()
    failed = env.run("tokens", "check")
    assert failed.returncode == 8
    env.outputs.append(caplog.text)
    env.outputs.append(repr(TokenStore(env.token_file).load()))

    secrets = env.every_secret()
    assert len(env.issued) >= 7 and len(secrets) >= 9
    everything = "\n".join(env.outputs)
    assert "refreshed the user token" in everything  # the logs were captured
    leaked = sorted(s for s in secrets if s in everything)
    assert leaked == []
    assert not re.search(r"\b[a-z0-9]{30}\b", everything.replace(env.sim.info["client_id"], "")), \
        "something token-shaped was printed"
    json.loads(env.token_file.read_text())  # still a valid file after all that
