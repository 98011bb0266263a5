"""The token store across real processes: writers killed mid-save, concurrent refreshes."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from auth_helpers import make_tokens

from streamscout.auth.store import TokenStore

pytestmark = pytest.mark.unit

SAVER = textwrap.dedent(
    """
    import sys
    from datetime import datetime, timezone
    from streamscout.auth.store import TokenFile, TokenPair, TokenStore
    store = TokenStore(sys.argv[1])
    tokens = store.load()
    i = 0
    while True:
        i += 1
        tokens = store.save(tokens.with_tokens(TokenPair(f"access-{i}", f"refresh-{i}", 3600)))
        if i == 1:
            print("ready", flush=True)
    """
)

REFRESHER = textwrap.dedent(
    """
    import os, sys, time
    from streamscout.auth.store import TokenPair, TokenStore
    path, go, calls = sys.argv[1:4]
    store = TokenStore(path)
    stale = store.load().access_token
    print("ready", flush=True)
    while not os.path.exists(go):
        time.sleep(0.005)

    def refresh_fn(refresh_token):
        with open(calls, "a") as log:
            log.write(f"{os.getpid()} {refresh_token}\\n")
        time.sleep(0.3)  # a slow Twitch: the other process must wait, not refresh too
        return TokenPair(f"access-from-{os.getpid()}", "refresh-rotated", 14400)

    print(store.refresh(stale, refresh_fn).access_token, flush=True)
    """
)


def _python(script, *args):
    return subprocess.Popen(
        [sys.executable, "-c", script, *map(str, args)], stdout=subprocess.PIPE, text=True
    )


def test_a_writer_killed_mid_save_leaves_the_old_or_the_new_file(tmp_path):
    path = tmp_path / "tokens.json"
    TokenStore(path).save(make_tokens())
    rng = random.Random(4)
    seen_versions = set()
    interrupted = 0
    for _ in range(25):
        writer = _python(SAVER, path)
        try:
            assert writer.stdout.readline().strip() == "ready"
            time.sleep(rng.uniform(0, 0.03))
        finally:
            os.kill(writer.pid, signal.SIGKILL)
            writer.wait()
            writer.stdout.close()
        interrupted += any(p.name.endswith(".tmp") for p in tmp_path.iterdir())
        tokens = TokenStore(path).load()  # raises if half-written
        n = int(tokens.access_token.removeprefix("access-"))
        assert tokens.refresh_token == f"refresh-{n}"
        assert json.loads(path.read_text())["version"] == tokens.version
        seen_versions.add(tokens.version)
    print(f"\n{len(seen_versions)} distinct versions survived; {interrupted} kills left a temp file behind")
    assert len(seen_versions) > 1


def test_two_processes_refreshing_at_once_call_twitch_once(tmp_path):
    path = tmp_path / "tokens.json"
    go = tmp_path / "go"
    calls = tmp_path / "calls.log"
    original = TokenStore(path).save(make_tokens())
    children = [_python(REFRESHER, path, go, calls) for _ in range(2)]
    try:
        for child in children:
            assert child.stdout.readline().strip() == "ready"
        go.touch()
        outputs = [child.communicate(timeout=30)[0].strip() for child in children]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    lines = calls.read_text().splitlines()
    assert len(lines) == 1, lines
    refresher_pid, used_refresh_token = lines[0].split()
    assert used_refresh_token == original.refresh_token
    assert outputs == [f"access-from-{refresher_pid}"] * 2
    final = TokenStore(path).load()
    assert (final.access_token, final.refresh_token, final.version) == (
        f"access-from-{refresher_pid}", "refresh-rotated", original.version + 1
    )
