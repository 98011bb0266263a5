"""The simulator's OAuth state: app and user tokens, refresh tokens, pending device codes.

Tokens expire after ``lifetime`` wall seconds on an injected clock, so tests can make a
token expire in a second and watch a client refresh it. All state lives in one object the
HTTP handlers and the chat server share.
"""

from __future__ import annotations

import secrets
import string
import time
from dataclasses import dataclass, field
from typing import Callable

USER_CODE_ALPHABET = string.ascii_uppercase.replace("O", "").replace("I", "") + "23456789"


@dataclass
class Token:
    access_token: str
    client_id: str
    scopes: tuple[str, ...]
    expires_at: float
    user_id: str | None = None  # None: an app token
    login: str | None = None
    refresh_token: str | None = None

    def expires_in(self, now: float) -> int:
        return max(0, int(self.expires_at - now))


@dataclass
class DeviceCode:
    device_code: str
    user_code: str
    client_id: str
    scopes: tuple[str, ...]
    expires_at: float
    approved: bool = False
    redeemed: bool = False


@dataclass
class TokenStore:
    """Every token the simulator has issued. ``clock`` returns wall seconds."""

    client_id: str
    client_secret: str
    user_id: str
    user_login: str
    lifetime: float = 14400.0
    device_code_lifetime: float = 1800.0
    clock: Callable[[], float] = time.time
    tokens: dict[str, Token] = field(default_factory=dict)
    refresh_tokens: dict[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)  # -> (client_id, scopes)
    device_codes: dict[str, DeviceCode] = field(default_factory=dict)

    def check_client(self, client_id: str | None, client_secret: str | None = None) -> bool:
        if client_id != self.client_id:
            return False
        return client_secret is None or secrets.compare_digest(client_secret, self.client_secret)

    def issue_app_token(self) -> Token:
        token = Token(_token(), self.client_id, (), self.clock() + self.lifetime)
        self.tokens[token.access_token] = token
        return token

    def issue_user_token(self, scopes: tuple[str, ...], refresh_token: str | None = None,
                         lifetime: float | None = None) -> Token:
        refresh = refresh_token or _token(50)
        token = Token(_token(), self.client_id, tuple(scopes),
                      self.clock() + (self.lifetime if lifetime is None else lifetime),
                      user_id=self.user_id, login=self.user_login, refresh_token=refresh)
        self.tokens[token.access_token] = token
        self.refresh_tokens[refresh] = (self.client_id, tuple(scopes))
        return token

    def valid(self, access_token: str | None) -> Token | None:
        """The token if it exists and has not expired."""
        token = self.tokens.get(access_token or "")
        if token is None or token.expires_at <= self.clock():
            return None
        return token

    def refresh(self, refresh_token: str, client_id: str, client_secret: str) -> Token | None:
        """A fresh access token for a refresh token; Twitch keeps the refresh token the same."""
        entry = self.refresh_tokens.get(refresh_token)
        if entry is None or not self.check_client(client_id, client_secret):
            return None
        for old in [t for t in self.tokens.values() if t.refresh_token == refresh_token]:
            del self.tokens[old.access_token]
        return self.issue_user_token(entry[1], refresh_token=refresh_token)

    def revoke(self, access_token: str, client_id: str) -> bool:
        token = self.tokens.get(access_token)
        if token is None or token.client_id != client_id:
            return False
        del self.tokens[access_token]
        return True

    def expire_all(self) -> int:
        """Make every access token expire now (refresh tokens stay valid)."""
        now = self.clock()
        for token in self.tokens.values():
            token.expires_at = min(token.expires_at, now)
        return len(self.tokens)

    def start_device_flow(self, client_id: str, scopes: tuple[str, ...]) -> DeviceCode:
        user_code = "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(8))
        code = DeviceCode(_token(40), user_code, client_id, scopes, self.clock() + self.device_code_lifetime)
        self.device_codes[code.device_code] = code
        return code

    def approve(self, user_code: str) -> bool:
        """What the user's click on the activation page does."""
        for code in self.device_codes.values():
            if code.user_code == user_code.strip().upper() and code.expires_at > self.clock():
                code.approved = True
                return True
        return False

    def redeem_device_code(self, device_code: str, client_id: str) -> Token | str:
        """A user token, or the OAuth error string (authorization_pending, invalid device code)."""
        code = self.device_codes.get(device_code)
        if code is None or code.client_id != client_id or code.redeemed:
            return "invalid device code"
        if code.expires_at <= self.clock():
            return "expired_token"
        if not code.approved:
            return "authorization_pending"
        code.redeemed = True
        return self.issue_user_token(code.scopes)


def _token(length: int = 30) -> str:
    alphabet = string.ascii_lowercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))
