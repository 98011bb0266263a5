"""Why the shared token file cannot be used, as exception types a command maps to an exit code.

Every message is one line, names the file or setting at fault and says what fixes it. No message
ever contains a token or the client secret: they are built from field names, paths and Twitch's
status codes only, never from file contents or response bodies.
"""

from __future__ import annotations

RESEED = "run `streamscout seed-tokens` again"


class TokenError(Exception):
    """Base class: the stored user token cannot be used. ``exit_code`` is what commands exit with."""

    exit_code = 1

    def __init__(self, reason: str, fix: str | None = None) -> None:
        self.reason = reason
        self.fix = fix
        super().__init__(f"{reason}; {fix}" if fix else reason)


class TokenFileMissing(TokenError):
    """The file does not exist (never seeded, or the wrong path)."""

    exit_code = 3


class TokenFileUnreadable(TokenError):
    """The file exists but cannot be opened or read (permissions, a directory, I/O error), or it is
    readable by other users and therefore refused."""

    exit_code = 4


class TokenFileUnwritable(TokenError):
    """The file or its lock cannot be created or replaced (directory owner or mode)."""

    exit_code = 4


class TokenFileCorrupt(TokenError):
    """The file is empty, truncated or not a JSON object."""

    exit_code = 5


class TokenFileInvalid(TokenError):
    """The JSON lacks a field or a field has the wrong type."""

    exit_code = 6


class MissingScope(TokenError):
    """The token was granted without a scope StreamScout needs (``chat:read``, ``clips:edit``)."""

    exit_code = 7


class RefreshTokenRevoked(TokenError):
    """Twitch refused the refresh token (the user disconnected the app or changed the password)."""

    exit_code = 8


class ClientCredentialsError(TokenError):
    """The token belongs to another client id, no client secret is configured for a refresh, or
    Twitch rejected the client id / secret."""

    exit_code = 9


class AuthServiceUnavailable(TokenError):
    """Twitch's OAuth server could not be reached or answered 5xx: transient, retry later."""

    exit_code = 10


class TokenLockTimeout(TokenError):
    """Another process held the token file's lock for too long (a refresh that hangs)."""

    exit_code = 11


class DeviceFlowTimeout(TokenError):
    """Nobody approved the device code before ``seed-tokens`` gave up."""

    exit_code = 12
