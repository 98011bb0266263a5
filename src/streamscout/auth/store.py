"""The shared user-token file: load, validate, save atomically, and refresh under a lock.

The monitor and the Flink detector act as one Twitch user and both refresh its token. Twitch
rotates refresh tokens, so two processes refreshing with the same refresh token at once could
leave one of them (or the file) holding a dead token. Every refresh therefore runs through
:meth:`TokenStore.refresh`: take an exclusive ``fcntl`` lock on ``<file>.lock``, re-read the file,
and only call Twitch if the file still holds the access token the caller found stale; otherwise
another process already refreshed and its tokens are returned.

Writes go to a ``mkstemp`` file (created 0600, so never readable by others even for a moment) in
the same directory, which is fsynced, renamed over the old file and followed by an fsync of the
directory: a reader, or a writer killed half-way, sees the old file or the new one, never a mix.
Loading never writes, so a file that fails to load is left exactly as it was.

    store = TokenStore(settings.resolved_token_file())
    tokens = store.load()                       # TokenFile, or a TokenError subclass
    tokens = store.refresh(tokens.access_token, refresh_fn)   # refresh_fn(refresh_token) -> TokenPair
"""

from __future__ import annotations

import dataclasses
import errno
import fcntl
import json
import logging
import os
import stat
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, NamedTuple

from streamscout.auth.errors import (
    RESEED,
    MissingScope,
    TokenError,
    TokenFileCorrupt,
    TokenFileInvalid,
    TokenFileMissing,
    TokenFileUnreadable,
    TokenFileUnwritable,
    TokenLockTimeout,
)

log = logging.getLogger(__name__)

REQUIRED_SCOPES: tuple[str, ...] = ("chat:read", "clips:edit")
FILE_FORMAT = 1
_MAX_FILE_BYTES = 64 * 1024  # a token file is < 1 KB; anything huge is not ours
_NEVER = object()  # a file signature that never matches


class TokenPair(NamedTuple):
    """What a refresh returns. ``expires_in`` is seconds, or None when Twitch did not say."""

    access_token: str
    refresh_token: str
    expires_in: int | None = None


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class TokenFile:
    """The contents of the token file. The two tokens are left out of ``repr`` so that a logged or
    printed ``TokenFile`` can never leak them."""

    client_id: str
    """The Twitch application the tokens were issued to."""
    user_id: str
    user_login: str
    scopes: tuple[str, ...]
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    issued_at: datetime
    """When the user authorised (``seed-tokens`` ran); kept across refreshes."""
    obtained_at: datetime
    """When the current access token was obtained (seeding or the last refresh)."""
    expires_at: datetime | None = None
    """When Twitch said the current access token expires, if it said."""
    version: int = 0
    """Incremented by every save, so people and tests can see that a refresh happened."""

    def missing_scopes(self, required: tuple[str, ...] = REQUIRED_SCOPES) -> list[str]:
        return [scope for scope in required if scope not in self.scopes]

    def with_tokens(self, pair: TokenPair, now: datetime | None = None) -> "TokenFile":
        """The same grant with a refreshed token pair."""
        now = now or utc_now()
        expires_at = now + timedelta(seconds=pair.expires_in) if pair.expires_in else None
        return dataclasses.replace(
            self,
            access_token=pair.access_token,
            refresh_token=pair.refresh_token,
            obtained_at=now,
            expires_at=expires_at,
        )

    def expires_within(self, seconds: float, now: datetime | None = None) -> bool:
        """True when the access token is known to expire within ``seconds`` (False if unknown).

        The margin is capped at half the token's lifetime, so a short-lived token (a test
        simulator's) is not refreshed on every call.
        """
        if self.expires_at is None:
            return False
        lifetime = (self.expires_at - self.obtained_at).total_seconds()
        margin = min(seconds, max(lifetime, 0) / 2)
        return self.expires_at - (now or utc_now()) <= timedelta(seconds=margin)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FILE_FORMAT,
            "client_id": self.client_id,
            "user_id": self.user_id,
            "user_login": self.user_login,
            "scopes": list(self.scopes),
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "issued_at": self.issued_at.isoformat(),
            "obtained_at": self.obtained_at.isoformat(),
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "version": self.version,
        }

    @classmethod
    def from_json(cls, data: Any, source: str = "token file") -> "TokenFile":
        """Build from parsed JSON; raises :class:`TokenFileCorrupt` / :class:`TokenFileInvalid`
        naming the first bad field (never its value)."""
        if not isinstance(data, dict):
            raise TokenFileCorrupt(f"{source} is not a JSON object", RESEED)

        def text(name: str) -> str:
            value = data.get(name)
            if name not in data:
                raise TokenFileInvalid(f"{source} lacks field '{name}'", RESEED)
            if not isinstance(value, str) or not value.strip():
                raise TokenFileInvalid(f"{source}: field '{name}' must be a non-empty string", RESEED)
            return value

        def when(name: str, required: bool = True) -> datetime | None:
            if data.get(name) is None and not required:
                return None
            raw = text(name)
            try:
                parsed = datetime.fromisoformat(raw)
            except ValueError:
                raise TokenFileInvalid(f"{source}: field '{name}' is not an ISO 8601 time", RESEED) from None
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)

        fmt = data.get("format", FILE_FORMAT)
        if fmt != FILE_FORMAT:
            raise TokenFileInvalid(f"{source} has format {fmt!r}, this version reads {FILE_FORMAT}", RESEED)
        access_token = text("access_token")
        refresh_token = text("refresh_token")
        scopes = data.get("scopes")
        if "scopes" not in data:
            raise TokenFileInvalid(f"{source} lacks field 'scopes'", RESEED)
        if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
            raise TokenFileInvalid(f"{source}: field 'scopes' must be a list of strings", RESEED)
        version = data.get("version", 0)
        if not isinstance(version, int) or isinstance(version, bool) or version < 0:
            raise TokenFileInvalid(f"{source}: field 'version' must be a non-negative integer", RESEED)
        return cls(
            client_id=text("client_id"),
            user_id=text("user_id"),
            user_login=text("user_login"),
            scopes=tuple(scopes),
            access_token=access_token,
            refresh_token=refresh_token,
            issued_at=when("issued_at"),
            obtained_at=when("obtained_at"),
            expires_at=when("expires_at", required=False),
            version=version,
        )


class TokenStore:
    """One token file on disk, shared by every StreamScout process of a host.

    ``required_scopes`` are checked on every load, so a file granted without ``clips:edit`` fails
    at start-up instead of at the first clip. ``lock_timeout`` bounds how long a process waits for
    another one's refresh (a refresh is one HTTP call with its own timeout, so this is generous).
    """

    def __init__(
        self,
        path: Path | str,
        *,
        required_scopes: tuple[str, ...] = REQUIRED_SCOPES,
        lock_timeout: float = 30.0,
    ) -> None:
        self.path = Path(path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self.required_scopes = tuple(required_scopes)
        self.lock_timeout = lock_timeout
        self._cached: TokenFile | None = None
        self._signature: tuple[int, int, int] | None = None
        self._unusable_signature: object = _NEVER
        # flock belongs to an open file, not a thread: the RLock keeps this object's threads
        # out of each other's way and lets save() run inside refresh() without a second flock.
        self._thread_lock = threading.RLock()
        self._lock_fd: int | None = None
        self._lock_depth = 0

    def __repr__(self) -> str:
        return f"TokenStore({str(self.path)!r})"

    # --- reading ------------------------------------------------------------------------

    def load(self) -> TokenFile:
        """Read and validate the file now. Raises a :class:`TokenError` subclass; never writes."""
        source = f"token file {self.path}"
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)  # a FIFO must not hang us
        except FileNotFoundError:
            raise TokenFileMissing(f"{source} does not exist", RESEED) from None
        except OSError as exc:
            raise TokenFileUnreadable(f"cannot open {source}: {exc.strerror}", "check its owner and mode") from None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise TokenFileUnreadable(f"{source} is not a regular file", "point --token-file at the JSON file")
            if info.st_mode & 0o007:
                raise TokenFileUnreadable(
                    f"{source} is accessible to other users (mode {stat.S_IMODE(info.st_mode):04o})",
                    f"run `chmod 600 {self.path}` (and consider the tokens leaked: seed again)",
                )
            try:
                raw = os.read(fd, _MAX_FILE_BYTES + 1)
            except OSError as exc:
                raise TokenFileUnreadable(f"cannot read {source}: {exc.strerror}", "check the disk") from None
        finally:
            os.close(fd)
        tokens = self._parse(raw, source)
        missing = tokens.missing_scopes(self.required_scopes)
        if missing:
            raise MissingScope(
                f"{source} lacks scope {', '.join(missing)} (granted: {', '.join(tokens.scopes) or 'none'})",
                RESEED,
            )
        with self._thread_lock:
            self._cached = tokens
            self._signature = _signature(info)
        return tokens

    @staticmethod
    def _parse(raw: bytes, source: str) -> TokenFile:
        if len(raw) > _MAX_FILE_BYTES:
            raise TokenFileCorrupt(f"{source} is larger than {_MAX_FILE_BYTES} bytes", RESEED)
        if not raw.strip():
            raise TokenFileCorrupt(f"{source} is empty", RESEED)
        try:
            data = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise TokenFileCorrupt(f"{source} is not UTF-8 text", RESEED) from None
        except json.JSONDecodeError as exc:
            # exc.msg and the position never include the document's text.
            raise TokenFileCorrupt(
                f"{source} is not valid JSON, truncated or corrupt ({exc.msg} at line {exc.lineno} "
                f"column {exc.colno})",
                RESEED,
            ) from None
        return TokenFile.from_json(data, source)

    def current(self) -> TokenFile:
        """The tokens, re-read only when the file changed since this process last read or wrote
        it (another process refreshed). Cheap enough to call before every request: one stat.

        If a running process finds the file changed into something unusable (deleted, edited by
        hand), it logs the reason once and keeps the tokens it already has: they still work with
        Twitch, and the next refresh, which must read the file, fails loudly and is counted.
        """
        with self._thread_lock:
            cached, signature, unusable = self._cached, self._signature, self._unusable_signature
        if cached is None:
            return self.load()
        try:
            now = _signature(os.stat(self.path))
        except OSError:
            now = None
        if now == signature or now == unusable:
            return cached
        try:
            return self.load()
        except TokenError as exc:
            with self._thread_lock:
                self._unusable_signature = now
            log.error(
                "token file became unusable; keeping the tokens read earlier",
                extra={"token_file": str(self.path), "reason": str(exc)},
            )
            return cached

    # --- writing ------------------------------------------------------------------------

    def save(self, tokens: TokenFile) -> TokenFile:
        """Atomically replace the file with ``tokens`` (its version incremented); returns what was
        written. Takes the lock, so it never interleaves with another process's refresh."""
        with self.lock():
            try:
                return self._write(tokens)
            except OSError as exc:
                raise TokenFileUnwritable(
                    f"cannot write token file {self.path}: {exc.strerror}",
                    "check the directory's owner and mode, or pass --token-file",
                ) from None

    def _write(self, tokens: TokenFile) -> TokenFile:
        """Write a temp file, fsync it, rename it into place, fsync the directory."""
        saved = dataclasses.replace(tokens, version=tokens.version + 1)
        payload = (json.dumps(saved.to_json(), indent=2) + "\n").encode()
        directory = self.path.parent
        self._remove_stale_temp_files()
        fd, tmp_name = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=directory)
        try:
            os.fchmod(fd, 0o600)  # mkstemp already uses 0600; this documents and insists
            view = memoryview(payload)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            os.unlink(tmp_name)
            raise
        os.close(fd)
        try:
            os.replace(tmp_name, self.path)
        except BaseException:
            os.unlink(tmp_name)
            raise
        _fsync_directory(directory)
        with self._thread_lock:
            self._cached = saved
            self._signature = _signature(os.stat(self.path))
        return saved

    def _remove_stale_temp_files(self) -> None:
        """Temp files left by a writer that was killed mid-save (only ever ours: same prefix)."""
        for leftover in self.path.parent.glob(f".{self.path.name}.*.tmp"):
            try:
                leftover.unlink()
            except FileNotFoundError:
                pass

    # --- coordination between processes ---------------------------------------------------

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the exclusive inter-process lock (re-entrant within this object).

        Waits at most ``lock_timeout`` seconds, then raises :class:`TokenLockTimeout`.
        """
        with self._thread_lock:
            if self._lock_depth == 0:
                self._lock_fd = self._acquire_file_lock()
            self._lock_depth += 1
            try:
                yield
            finally:
                self._lock_depth -= 1
                if self._lock_depth == 0:
                    fd, self._lock_fd = self._lock_fd, None
                    fcntl.flock(fd, fcntl.LOCK_UN)
                    os.close(fd)

    def _acquire_file_lock(self) -> int:
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise TokenFileUnwritable(
                f"cannot create the lock file {self.lock_path}: {exc.strerror}",
                "check the directory's owner and mode, or pass --token-file",
            ) from None
        deadline = time.monotonic() + self.lock_timeout
        delay = 0.005
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                    os.close(fd)
                    raise
            if time.monotonic() >= deadline:
                os.close(fd)
                raise TokenLockTimeout(
                    f"another process held {self.lock_path} for more than {self.lock_timeout:g} s",
                    "check for a hung StreamScout process",
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.1)

    def refresh(self, stale_access_token: str, refresh_fn: Callable[[str], TokenPair]) -> TokenFile:
        """Replace ``stale_access_token`` with a fresh pair, at most once across all processes.

        Under the lock the file is re-read: if it no longer holds ``stale_access_token``, another
        process has refreshed already and its tokens are returned without calling Twitch.
        Otherwise ``refresh_fn(refresh_token)`` is called and its pair saved. Exceptions from
        ``refresh_fn`` propagate and leave the file untouched.
        """
        with self.lock():
            tokens = self.load()
            if tokens.access_token != stale_access_token:
                log.info(
                    "token already refreshed by another process; using it",
                    extra={"token_file": str(self.path), "token_version": tokens.version},
                )
                return tokens
            pair = refresh_fn(tokens.refresh_token)
            saved = self.save(tokens.with_tokens(pair))
            log.info(
                "refreshed the user token",
                extra={"token_file": str(self.path), "token_version": saved.version, "user_login": saved.user_login},
            )
            return saved

    def record_refresh(self, pair: TokenPair) -> TokenFile:
        """Persist a pair that other code (pyTwitchAPI) already obtained from Twitch outside
        :meth:`refresh`. It is the newest grant whatever the file holds, so it is saved as is."""
        with self.lock():
            saved = self.save(self.load().with_tokens(pair))
            log.info(
                "saved a token refreshed by pyTwitchAPI",
                extra={"token_file": str(self.path), "token_version": saved.version},
            )
            return saved


def _signature(info: os.stat_result) -> tuple[int, int, int]:
    # A save renames a new inode into place, so the inode alone changes on every save;
    # mtime and size cover editors that rewrite in place.
    return (info.st_ino, info.st_mtime_ns, info.st_size)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
