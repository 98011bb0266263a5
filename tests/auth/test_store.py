"""The token file: validation errors, atomic 0600 saves, change detection, locked refresh."""

from __future__ import annotations

import json
import os
import stat
import threading
from datetime import timedelta

import pytest
from auth_helpers import T0, make_tokens, unprivileged

from streamscout.auth.errors import (
    MissingScope,
    RefreshTokenRevoked,
    TokenFileCorrupt,
    TokenFileInvalid,
    TokenFileMissing,
    TokenFileUnreadable,
    TokenFileUnwritable,
    TokenLockTimeout,
)
from streamscout.auth.store import TokenFile, TokenPair, TokenStore

pytestmark = pytest.mark.unit


@pytest.fixture
def path(tmp_path):
    return tmp_path / "state" / "tokens.json"


@pytest.fixture
def store(path):
    return TokenStore(path)


def write_raw(path, content: bytes, mode: int = 0o600) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    os.chmod(path, mode)


def valid_json(**changes) -> dict:
    return make_tokens(**changes).to_json()


def test_save_then_load_round_trips_and_counts_versions(store):
    saved = store.save(make_tokens())
    assert saved.version == 1
    loaded = TokenStore(store.path).load()
    assert loaded == saved
    assert store.save(loaded).version == 2


def test_saved_file_and_lock_are_0600_even_with_a_permissive_umask(store):
    old = os.umask(0)
    try:
        store.save(make_tokens())
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(store.lock_path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(store.path.parent).st_mode) == 0o700


def test_save_replaces_a_world_readable_file_with_a_private_one(store, path):
    write_raw(path, json.dumps(valid_json()).encode(), mode=0o644)
    store.save(make_tokens())
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_repr_never_shows_tokens():
    tokens = make_tokens()
    assert tokens.access_token not in repr(tokens)
    assert tokens.refresh_token not in repr(tokens)


GOOD = json.dumps(valid_json()).encode()


def _without(field):
    data = valid_json()
    del data[field]
    return json.dumps(data).encode()


def _with(**changes):
    data = valid_json()
    data.update(changes)
    return json.dumps(data).encode()


BAD_FILES = [
    ("empty", b"", TokenFileCorrupt, "is empty"),
    ("blank", b" \n\t\n", TokenFileCorrupt, "is empty"),
    ("truncated", GOOD[: len(GOOD) // 2], TokenFileCorrupt, "not valid JSON"),
    ("garbage", b"\x00\x01not json", TokenFileCorrupt, "not valid JSON"),
    ("not utf-8", b"\xff\xfe{}", TokenFileCorrupt, "not UTF-8"),
    ("a list", b"[1, 2]", TokenFileCorrupt, "not a JSON object"),
    ("no refresh_token", _without("refresh_token"), TokenFileInvalid, "lacks field 'refresh_token'"),
    ("no access_token", _without("access_token"), TokenFileInvalid, "lacks field 'access_token'"),
    ("no scopes", _without("scopes"), TokenFileInvalid, "lacks field 'scopes'"),
    ("no user_id", _without("user_id"), TokenFileInvalid, "lacks field 'user_id'"),
    ("no client_id", _without("client_id"), TokenFileInvalid, "lacks field 'client_id'"),
    ("no issued_at", _without("issued_at"), TokenFileInvalid, "lacks field 'issued_at'"),
    ("numeric token", _with(access_token=12345), TokenFileInvalid, "'access_token' must be a non-empty string"),
    ("empty token", _with(refresh_token=""), TokenFileInvalid, "'refresh_token' must be a non-empty string"),
    ("scopes a string", _with(scopes="chat:read clips:edit"), TokenFileInvalid, "'scopes' must be a list"),
    ("bad time", _with(obtained_at="yesterday"), TokenFileInvalid, "'obtained_at' is not an ISO 8601"),
    ("bad version", _with(version=-1), TokenFileInvalid, "'version' must be a non-negative"),
    ("future format", _with(format=2), TokenFileInvalid, "has format 2"),
    ("no clips:edit", _with(scopes=["chat:read"]), MissingScope, "lacks scope clips:edit (granted: chat:read)"),
    ("no scopes at all", _with(scopes=[]), MissingScope, "lacks scope chat:read, clips:edit (granted: none)"),
]


@pytest.mark.parametrize("content, error, text", [b[1:] for b in BAD_FILES], ids=[b[0] for b in BAD_FILES])
def test_bad_files_give_one_line_reasons_and_stay_untouched(store, path, content, error, text):
    write_raw(path, content)
    before = os.stat(path)
    with pytest.raises(error) as caught:
        store.load()
    message = str(caught.value)
    assert text in message
    assert "\n" not in message
    assert str(path) in message
    assert "seed-tokens" in message
    assert "access-0000" not in message and "refresh-0000" not in message
    after = os.stat(path)
    assert path.read_bytes() == content
    assert (after.st_mtime_ns, after.st_ino, stat.S_IMODE(after.st_mode)) == (
        before.st_mtime_ns, before.st_ino, stat.S_IMODE(before.st_mode)
    )


@pytest.mark.parametrize("cut", range(1, len(GOOD) - 1, 7))
def test_every_truncation_of_a_valid_file_is_rejected(store, path, cut):
    write_raw(path, GOOD[:cut])
    with pytest.raises((TokenFileCorrupt, TokenFileInvalid)):
        store.load()


def test_missing_file(store):
    with pytest.raises(TokenFileMissing, match="does not exist; run `streamscout seed-tokens` again"):
        store.load()
    assert not store.path.exists()


def test_a_directory_is_not_a_token_file(tmp_path):
    with pytest.raises(TokenFileUnreadable, match="not a regular file"):
        TokenStore(tmp_path).load()


def test_a_file_this_user_may_not_read(store, path):
    write_raw(path, GOOD, mode=0o000)
    with unprivileged(), pytest.raises(TokenFileUnreadable, match=r"cannot open token file .*: Permission denied"):
        store.load()
    assert path.read_bytes() == GOOD


def test_an_unwritable_directory_gives_a_clear_error(tmp_path):
    directory = tmp_path / "read-only"
    directory.mkdir(mode=0o500)
    store = TokenStore(directory / "tokens.json")
    with unprivileged(), pytest.raises(TokenFileUnwritable, match=r"cannot create the lock file .*: Permission denied"):
        store.save(make_tokens())


def test_a_world_readable_file_is_refused_and_left_alone(store, path):
    write_raw(path, GOOD, mode=0o644)
    with pytest.raises(TokenFileUnreadable, match=r"accessible to other users \(mode 0644\)"):
        store.load()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644


def test_required_scopes_are_configurable(path):
    write_raw(path, _with(scopes=["chat:read"]))
    assert TokenStore(path, required_scopes=("chat:read",)).load().scopes == ("chat:read",)


def test_current_rereads_only_after_another_process_saved(store, path):
    first = store.save(make_tokens())
    assert store.current() is first
    other = TokenStore(path)
    newer = other.save(other.load().with_tokens(TokenPair("access-new", "refresh-new", 3600)))
    seen = store.current()
    assert seen == newer and seen.access_token == "access-new"
    assert store.current() is seen


def test_a_running_process_keeps_its_tokens_when_the_file_goes_bad(store, path, caplog):
    good = store.save(make_tokens())
    for damage in (lambda: path.write_text("{broken"), path.unlink):
        damage()
        with caplog.at_level("ERROR", logger="streamscout.auth.store"):
            assert store.current() is good
            assert store.current() is good
        assert [r.message for r in caplog.records] == ["token file became unusable; keeping the tokens read earlier"]
        assert good.access_token not in caplog.text
        caplog.clear()
    repaired = TokenStore(path).save(make_tokens(access_token="access-repaired"))
    assert store.current() == repaired
    with pytest.raises(TokenFileCorrupt):  # a refresh must read the file, so it fails loudly
        path.write_text("{broken")
        os.chmod(path, 0o600)
        store.refresh(repaired.access_token, lambda rt: TokenPair("a", "r"))


def test_stale_temp_files_of_killed_writers_are_cleaned_up(store, path):
    store.save(make_tokens())
    leftover = path.parent / f".{path.name}.abc123.tmp"
    leftover.write_text("{half")
    store.save(make_tokens())
    assert not leftover.exists()
    assert sorted(p.name for p in path.parent.iterdir()) == ["tokens.json", "tokens.json.lock"]


def test_refresh_calls_twitch_once_and_saves_the_new_pair(store):
    tokens = store.save(make_tokens())
    calls = []

    def refresh_fn(refresh_token):
        calls.append(refresh_token)
        return TokenPair("access-1", "refresh-1", 14400)

    result = store.refresh(tokens.access_token, refresh_fn)
    assert calls == [tokens.refresh_token]
    assert (result.access_token, result.refresh_token, result.version) == ("access-1", "refresh-1", 2)
    assert result.issued_at == tokens.issued_at and result.obtained_at > tokens.obtained_at
    assert TokenStore(store.path).load() == result


def test_refresh_adopts_a_pair_another_process_already_saved(store, path):
    tokens = store.save(make_tokens())
    other = TokenStore(path)
    other.refresh(tokens.access_token, lambda rt: TokenPair("access-other", "refresh-other"))

    def must_not_call(_):
        raise AssertionError("refreshed a token another process had refreshed already")

    assert store.refresh(tokens.access_token, must_not_call).access_token == "access-other"


def test_a_failed_refresh_leaves_the_file_untouched(store, path):
    tokens = store.save(make_tokens())
    before = path.read_bytes()

    def revoked(_):
        raise RefreshTokenRevoked("Twitch refused the refresh token (400)")

    with pytest.raises(RefreshTokenRevoked):
        store.refresh(tokens.access_token, revoked)
    assert path.read_bytes() == before


def test_record_refresh_saves_a_pair_obtained_elsewhere(store):
    store.save(make_tokens())
    saved = store.record_refresh(TokenPair("access-py", "refresh-py", 60))
    assert TokenStore(store.path).load().access_token == "access-py"
    assert saved.expires_at is not None


def test_threads_of_one_process_refresh_once(store):
    tokens = store.save(make_tokens())
    calls = []
    barrier = threading.Barrier(4)

    def refresh_fn(_):
        calls.append(1)
        return TokenPair(f"access-{len(calls)}", "refresh-x")

    results = []

    def worker():
        barrier.wait()
        results.append(store.refresh(tokens.access_token, refresh_fn).access_token)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert results == ["access-1"] * 4


def test_lock_waits_are_bounded(store, path):
    store.save(make_tokens())
    holder = TokenStore(path)
    impatient = TokenStore(path, lock_timeout=0.2)
    with holder.lock():
        with pytest.raises(TokenLockTimeout, match="for more than 0.2 s"):
            impatient.save(make_tokens())
    impatient.save(make_tokens())  # free again once released


@pytest.mark.parametrize(
    "lifetime, age, margin, expected",
    [
        (14400, 0, 60, False),
        (14400, 14330, 60, False),
        (14400, 14341, 60, True),
        (14400, 20000, 60, True),  # already expired
        (10, 4, 60, False),  # short-lived token: margin capped at 5 s
        (10, 5, 60, True),
    ],
)
def test_expires_within(lifetime, age, margin, expected):
    tokens = make_tokens(obtained_at=T0, expires_at=T0 + timedelta(seconds=lifetime))
    assert tokens.expires_within(margin, now=T0 + timedelta(seconds=age)) is expected


def test_with_tokens_without_expiry_clears_it():
    tokens = make_tokens().with_tokens(TokenPair("a", "r", None))
    assert tokens.expires_at is None and not tokens.expires_within(10**9)


def test_from_json_accepts_naive_times_as_utc():
    data = valid_json(expires_at=None)
    data["issued_at"] = "2026-11-27T23:00:00"
    tokens = TokenFile.from_json(data)
    assert tokens.issued_at.utcoffset().total_seconds() == 0 and tokens.expires_at is None
