"""Token bookkeeping on an injected clock: expiry, refresh, revoke, device codes."""

from __future__ import annotations

import pytest

from streamscout.sim.tokens import TokenStore

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def store(clock):
    return TokenStore("cid", "secret", "42", "bot", lifetime=60, clock=clock)


def test_tokens_expire_on_the_clock(store, clock):
    token = store.issue_user_token(("clips:edit",))
    assert store.valid(token.access_token) is token
    clock.now += 59
    assert store.valid(token.access_token).expires_in(clock.now) == 1
    clock.now += 1
    assert store.valid(token.access_token) is None


def test_refresh_keeps_the_refresh_token_and_retires_the_old_access_token(store):
    token = store.issue_user_token(("clips:edit",))
    fresh = store.refresh(token.refresh_token, "cid", "secret")
    assert fresh.refresh_token == token.refresh_token and fresh.scopes == ("clips:edit",)
    assert store.valid(token.access_token) is None and store.valid(fresh.access_token) is fresh
    assert store.refresh(token.refresh_token, "cid", "wrong") is None
    assert store.refresh("nope", "cid", "secret") is None


def test_expire_all_and_revoke(store):
    user, app = store.issue_user_token(()), store.issue_app_token()
    assert store.expire_all() == 2
    assert store.valid(user.access_token) is None and store.valid(app.access_token) is None
    fresh = store.refresh(user.refresh_token, "cid", "secret")
    assert store.revoke(fresh.access_token, "other") is False
    assert store.revoke(fresh.access_token, "cid") is True
    assert store.valid(fresh.access_token) is None


def test_device_code_pending_then_approved_then_used(store, clock):
    code = store.start_device_flow("cid", ("chat:read",))
    assert store.redeem_device_code(code.device_code, "cid") == "authorization_pending"
    assert store.approve("nope") is False
    assert store.approve(code.user_code.lower()) is True
    token = store.redeem_device_code(code.device_code, "cid")
    assert token.login == "bot" and token.scopes == ("chat:read",)
    assert store.redeem_device_code(code.device_code, "cid") == "invalid device code"


def test_device_code_expires(store, clock):
    code = store.start_device_flow("cid", ())
    clock.now += store.device_code_lifetime
    assert store.approve(code.user_code) is False
    assert store.redeem_device_code(code.device_code, "cid") == "expired_token"
