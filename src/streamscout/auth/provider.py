"""A blocking access-token source for code that makes plain HTTP calls (the Flink detector).

    provider = SyncTokenProvider.from_settings(settings)
    provider.validate()                      # at start-up: fail fast with a TokenError
    token = provider.access_token()          # before each call (re-reads the file if it changed)
    ... 401 from Helix ...
    token = provider.refresh_after_401(token)  # once, then retry the call

It has no asyncio and no pyTwitchAPI, so it works in a PyFlink Python worker. Refreshes go
through :meth:`TokenStore.refresh`, so this process and the monitor never spend the same refresh
token twice, and failures are counted in ``streamscout_token_refresh_failures_total{reason}``.
"""

from __future__ import annotations

import logging
import weakref
from pathlib import Path
from typing import Callable

from prometheus_client import REGISTRY, CollectorRegistry, Counter

from streamscout.auth import oauth
from streamscout.auth.errors import (
    RESEED,
    AuthServiceUnavailable,
    ClientCredentialsError,
    MissingScope,
    RefreshTokenRevoked,
    TokenError,
)
from streamscout.auth.store import TokenFile, TokenPair, TokenStore
from streamscout.common.config import Settings

log = logging.getLogger(__name__)

DEFAULT_AUTH_URL = "https://id.twitch.tv/oauth2/"

# reason label -> the errors it covers; every reason is pre-created at 0 so alerts see the series.
FAILURE_REASONS = {
    "revoked": (RefreshTokenRevoked,),
    "client": (ClientCredentialsError,),
    "unavailable": (AuthServiceUnavailable,),
    "other": (TokenError,),
}


class RefreshMetrics:
    """The refresh counters of one registry (created once per registry: tests pass their own)."""

    _by_registry: "weakref.WeakKeyDictionary[CollectorRegistry, RefreshMetrics]" = weakref.WeakKeyDictionary()

    def __init__(self, registry: CollectorRegistry) -> None:
        self.refreshes = Counter(
            "streamscout_token_refreshes",
            "User-token refreshes this process performed (not those it adopted from another process).",
            registry=registry,
        )
        self.failures = Counter(
            "streamscout_token_refresh_failures",
            "User-token refreshes that failed, by reason (revoked, client, unavailable, other).",
            ["reason"],
            registry=registry,
        )
        for reason in FAILURE_REASONS:
            self.failures.labels(reason)

    @classmethod
    def for_registry(cls, registry: CollectorRegistry) -> "RefreshMetrics":
        metrics = cls._by_registry.get(registry)
        if metrics is None:
            metrics = cls._by_registry[registry] = cls(registry)
        return metrics

    def count_failure(self, error: TokenError) -> None:
        reason = next(name for name, kinds in FAILURE_REASONS.items() if isinstance(error, kinds))
        self.failures.labels(reason).inc()


class SyncTokenProvider:
    """The user token of the shared file, refreshed when Twitch says it is stale.

    ``client_id`` defaults to the one recorded in the file; when given it must match the file.
    ``refresh_margin`` seconds before the known expiry, :meth:`access_token` refreshes ahead of
    time instead of waiting for a 401.
    """

    def __init__(
        self,
        store: TokenStore,
        client_id: str | None,
        client_secret: str,
        auth_url: str = DEFAULT_AUTH_URL,
        *,
        timeout: float = 5.0,
        refresh_margin: float = 60.0,
        registry: CollectorRegistry = REGISTRY,
        refresh_call: Callable[..., TokenPair] = oauth.refresh_token,
        validate_call: Callable[..., oauth.Validation | None] = oauth.validate_token,
    ) -> None:
        self.store = store
        self.client_id = client_id or None
        self._client_secret = client_secret
        self.auth_url = auth_url if auth_url.endswith("/") else auth_url + "/"
        self.timeout = timeout
        self.refresh_margin = refresh_margin
        self.metrics = RefreshMetrics.for_registry(registry)
        self._refresh_call = refresh_call
        self._validate_call = validate_call

    def __repr__(self) -> str:
        return f"SyncTokenProvider({self.store!r}, client_id={self.client_id!r})"

    def __getstate__(self):
        # PyFlink pickles operators into the job graph, which Flink stores and ships around.
        raise TypeError(
            "SyncTokenProvider is not picklable: it holds the client secret; build it in the "
            "operator's open() from settings instead"
        )

    @classmethod
    def from_settings(
        cls, settings: Settings, *, token_file: Path | str | None = None, registry: CollectorRegistry = REGISTRY
    ) -> "SyncTokenProvider":
        """Built from ``STREAMSCOUT_TWITCH_*`` settings; ``token_file`` overrides the setting."""
        return cls(
            TokenStore(token_file or settings.resolved_token_file()),
            settings.twitch_client_id,
            settings.client_secret(),
            settings.twitch_auth_url,
            timeout=settings.http_timeout_seconds,
            registry=registry,
        )

    def tokens(self) -> TokenFile:
        """The file's tokens (re-read when another process changed it), checked against the
        configured client id."""
        tokens = self.store.current()
        if self.client_id and tokens.client_id != self.client_id:
            raise ClientCredentialsError(
                f"token file {self.store.path} was issued to client id {tokens.client_id}, "
                f"not the configured {self.client_id}",
                RESEED + " with the configured client id",
            )
        return tokens

    def access_token(self) -> str:
        """The access token to send now; refreshed first if it is about to expire."""
        tokens = self.tokens()
        if tokens.expires_within(self.refresh_margin):
            tokens = self.refresh(tokens.access_token)
        return tokens.access_token

    def refresh_after_401(self, stale_access_token: str) -> str:
        """Twitch answered 401 to ``stale_access_token``: return a token to retry with (another
        process's fresher one if it already refreshed, else a new one from Twitch)."""
        return self.refresh(stale_access_token).access_token

    def refresh(self, stale_access_token: str) -> TokenFile:
        """Refresh through the store's lock; failures are counted and re-raised."""
        try:
            return self.store.refresh(stale_access_token, self._refresh_with_twitch)
        except TokenError as exc:
            self.metrics.count_failure(exc)
            log.error("user token refresh failed", extra={"reason": exc.reason, "token_file": str(self.store.path)})
            raise

    def _refresh_with_twitch(self, refresh_token: str) -> TokenPair:
        if not self._client_secret:
            raise ClientCredentialsError(
                "no Twitch client secret is configured, so the token cannot be refreshed",
                "set STREAMSCOUT_TWITCH_CLIENT_SECRET_FILE",
            )
        client_id = self.client_id or self.store.current().client_id
        pair = self._refresh_call(self.auth_url, client_id, self._client_secret, refresh_token, self.timeout)
        self.metrics.refreshes.inc()
        return pair

    def validate(self, *, force_refresh: bool = False) -> tuple[TokenFile, oauth.Validation]:
        """Check the token with Twitch (refreshing once if it is stale, or always with
        ``force_refresh``) and that Twitch grants it the client id and scopes we need.

        Returns the tokens in use and Twitch's answer; raises a :class:`TokenError` otherwise.
        """
        tokens = self.tokens()
        if force_refresh:
            tokens = self.refresh(tokens.access_token)
        answer = self._validate_call(self.auth_url, tokens.access_token, self.timeout)
        if answer is None:
            tokens = self.refresh(tokens.access_token)
            answer = self._validate_call(self.auth_url, tokens.access_token, self.timeout)
            if answer is None:
                raise RefreshTokenRevoked("Twitch rejects even a freshly refreshed access token", RESEED)
        if answer.client_id and answer.client_id != tokens.client_id:
            raise ClientCredentialsError(
                f"Twitch says the token belongs to client id {answer.client_id}, the file says {tokens.client_id}",
                RESEED,
            )
        missing = [scope for scope in self.store.required_scopes if scope not in answer.scopes]
        if missing:
            raise MissingScope(
                f"Twitch grants the token no {', '.join(missing)} (granted: {', '.join(answer.scopes) or 'none'})",
                RESEED,
            )
        return tokens, answer
