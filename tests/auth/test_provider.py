"""SyncTokenProvider with injected Twitch calls: refresh decisions, checks, failure counting."""

from __future__ import annotations

import pickle
from datetime import timedelta

import pytest
from auth_helpers import make_tokens
from prometheus_client import CollectorRegistry

from streamscout.auth.errors import (
    AuthServiceUnavailable,
    ClientCredentialsError,
    MissingScope,
    RefreshTokenRevoked,
)
from streamscout.auth.oauth import Validation
from streamscout.auth.provider import SyncTokenProvider
from streamscout.auth.store import TokenPair, TokenStore, utc_now

pytestmark = pytest.mark.unit

AUTH = "http://127.0.0.1:9/oauth2/"


class FakeTwitch:
    """Remembers calls; ``valid`` is the set of access tokens it accepts."""

    def __init__(self, scopes=("chat:read", "clips:edit"), client_id="client-abc"):
        self.valid = set()
        self.refreshes = []
        self.scopes = scopes
        self.client_id = client_id
        self.refresh_error = None

    def refresh(self, auth_url, client_id, secret, refresh_token, timeout):
        assert (auth_url, secret) == (AUTH, "s3cret")
        if self.refresh_error:
            raise self.refresh_error
        self.refreshes.append((client_id, refresh_token))
        access = f"access-{len(self.refreshes)}"
        self.valid = {access}
        return TokenPair(access, refresh_token, 14400)

    def validate(self, auth_url, access_token, timeout):
        if access_token not in self.valid:
            return None
        return Validation(self.client_id, "1001", "scout_bot", tuple(self.scopes), 14000)


@pytest.fixture
def twitch():
    return FakeTwitch()


@pytest.fixture
def registry():
    return CollectorRegistry()


def provider_for(store, twitch, registry, client_id="client-abc", secret="s3cret"):
    return SyncTokenProvider(
        store, client_id, secret, AUTH, registry=registry,
        refresh_call=twitch.refresh, validate_call=twitch.validate,
    )


def failures(registry, reason):
    return registry.get_sample_value("streamscout_token_refresh_failures_total", {"reason": reason})


@pytest.fixture
def store(tmp_path):
    store = TokenStore(tmp_path / "tokens.json")
    store.save(make_tokens(expires_at=utc_now() + timedelta(hours=4)))
    return store


def test_validate_accepts_a_live_token_without_refreshing(store, twitch, registry):
    twitch.valid = {store.load().access_token}
    tokens, answer = provider_for(store, twitch, registry).validate()
    assert answer.login == "scout_bot" and twitch.refreshes == []
    assert tokens == store.load()


def test_validate_refreshes_a_stale_token_once_and_saves_it(store, twitch, registry):
    provider = provider_for(store, twitch, registry)
    tokens, _ = provider.validate()
    assert tokens.access_token == "access-1"
    assert twitch.refreshes == [("client-abc", "refresh-000000000000000000000000")]
    assert TokenStore(store.path).load().access_token == "access-1"
    assert registry.get_sample_value("streamscout_token_refreshes_total") == 1


def test_force_refresh(store, twitch, registry):
    twitch.valid = {store.load().access_token}
    tokens, _ = provider_for(store, twitch, registry).validate(force_refresh=True)
    assert tokens.access_token == "access-1" and len(twitch.refreshes) == 1


def test_refresh_after_401_uses_another_process_refresh(store, twitch, registry):
    provider = provider_for(store, twitch, registry)
    stale = provider.access_token()
    other = provider_for(TokenStore(store.path), twitch, registry)
    assert other.refresh_after_401(stale) == "access-1"
    assert provider.refresh_after_401(stale) == "access-1"
    assert len(twitch.refreshes) == 1


def test_access_token_follows_the_file(store, twitch, registry):
    provider = provider_for(store, twitch, registry)
    assert provider.access_token() == "access-0000000000000000000000000"
    TokenStore(store.path).refresh(provider.access_token(), lambda rt: TokenPair("access-elsewhere", rt))
    assert provider.access_token() == "access-elsewhere"


def test_access_token_refreshes_ahead_of_a_known_expiry(tmp_path, twitch, registry):
    store = TokenStore(tmp_path / "tokens.json")
    store.save(make_tokens(expires_at=utc_now() + timedelta(seconds=30)))
    assert provider_for(store, twitch, registry).access_token() == "access-1"


def test_revoked_refresh_token_is_counted_and_reported(store, twitch, registry):
    twitch.refresh_error = RefreshTokenRevoked("Twitch refused the refresh token (400)", "run seed")
    with pytest.raises(RefreshTokenRevoked):
        provider_for(store, twitch, registry).validate()
    assert failures(registry, "revoked") == 1
    assert failures(registry, "unavailable") == 0


def test_unreachable_twitch_is_counted_as_unavailable(store, twitch, registry):
    twitch.refresh_error = AuthServiceUnavailable("cannot reach Twitch OAuth")
    provider = provider_for(store, twitch, registry)
    with pytest.raises(AuthServiceUnavailable):
        provider.refresh_after_401(provider.access_token())
    assert failures(registry, "unavailable") == 1


def test_no_client_secret_means_no_refresh(store, twitch, registry):
    provider = provider_for(store, twitch, registry, secret="")
    with pytest.raises(ClientCredentialsError, match="no Twitch client secret is configured"):
        provider.validate()
    assert failures(registry, "client") == 1 and twitch.refreshes == []


def test_a_file_for_another_client_id_is_refused(store, twitch, registry):
    with pytest.raises(ClientCredentialsError, match="issued to client id client-abc, not the configured other"):
        provider_for(store, twitch, registry, client_id="other").tokens()


def test_client_id_defaults_to_the_files(store, twitch, registry):
    provider = provider_for(store, twitch, registry, client_id=None)
    provider.validate()
    assert twitch.refreshes[0][0] == "client-abc"


def test_twitch_granting_fewer_scopes_than_the_file_claims(store, twitch, registry):
    twitch.scopes = ("chat:read",)
    twitch.valid = {store.load().access_token}
    with pytest.raises(MissingScope, match="grants the token no clips:edit"):
        provider_for(store, twitch, registry).validate()


def test_twitch_saying_the_token_is_another_clients(store, twitch, registry):
    twitch.client_id = "someone-else"
    twitch.valid = {store.load().access_token}
    with pytest.raises(ClientCredentialsError, match="belongs to client id someone-else"):
        provider_for(store, twitch, registry).validate()


def test_a_token_rejected_right_after_refresh(store, twitch, registry):
    provider = provider_for(store, twitch, registry)
    twitch.validate = lambda *args: None
    provider._validate_call = twitch.validate
    with pytest.raises(RefreshTokenRevoked, match="even a freshly refreshed"):
        provider.validate()


def test_two_providers_share_one_registry(store, twitch, registry):
    provider_for(store, twitch, registry)
    provider_for(store, twitch, registry)  # no duplicate-registration error
    assert failures(registry, "other") == 0


def test_pickling_is_refused_so_the_secret_never_lands_in_a_flink_job_graph(store, twitch, registry):
    with pytest.raises(TypeError, match=r"build it in the operator's open\(\)"):
        pickle.dumps(provider_for(store, twitch, registry))
