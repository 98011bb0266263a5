"""An authenticated pyTwitchAPI ``Twitch`` whose refreshes are shared through the token store.

    twitch = await authenticated_twitch(settings)        # raises a TokenError: fail fast
    chat = await Chat(twitch, connection_url=settings.twitch_chat_url)
    ...
    await twitch.close()

pyTwitchAPI refreshes a user token by itself whenever a call gets a 401 (``refresh_used_token``),
with the refresh token it holds in memory. Another StreamScout process may have spent that refresh
token already, so :class:`StoreBackedTwitch` replaces that one method: the refresh goes through
:meth:`SyncTokenProvider.refresh` (file lock, re-read, refresh only if nobody else did, atomic
save) and the client adopts whatever pair the file then holds. ``user_auth_refresh_callback`` is
also set, so a refresh pyTwitchAPI makes on another path is saved to the file too.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
from prometheus_client import REGISTRY, CollectorRegistry
from twitchAPI.twitch import Twitch
from twitchAPI.type import AuthScope

from streamscout.auth.provider import SyncTokenProvider
from streamscout.auth.store import TokenPair
from streamscout.common.config import Settings

def auth_scopes(scopes: tuple[str, ...]) -> list[AuthScope]:
    """pyTwitchAPI's enum members for scope strings (unknown ones are dropped: pyTwitchAPI only
    uses the list to check calls' required scopes)."""
    known = {scope.value: scope for scope in AuthScope}
    return [known[s] for s in scopes if s in known]


class StoreBackedTwitch(Twitch):
    """A ``Twitch`` client whose user-token refreshes go through a :class:`SyncTokenProvider`."""

    def __init__(self, provider: SyncTokenProvider, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.provider = provider
        self.user_auth_refresh_callback = self._persist_refresh

    async def use_stored_tokens(self) -> None:
        """Validate the stored token with Twitch (refreshing once if stale) and install it."""
        tokens, _ = await asyncio.to_thread(self.provider.validate)
        await self.set_user_authentication(
            tokens.access_token, auth_scopes(tokens.scopes), tokens.refresh_token, validate=False
        )

    async def refresh_used_token(self) -> None:
        if not self._has_user_auth:
            return await super().refresh_used_token()
        stale = self.get_user_auth_token()
        tokens = await asyncio.to_thread(self.provider.refresh, stale)  # failures counted there
        # Concurrent 401s in this process all land here; the store makes all but the first adopt.
        await self.set_user_authentication(
            tokens.access_token, auth_scopes(tokens.scopes), tokens.refresh_token, validate=False
        )

    async def _persist_refresh(self, access_token: str, refresh_token: str) -> None:
        await asyncio.to_thread(self.provider.store.record_refresh, TokenPair(access_token, refresh_token))


async def authenticated_twitch(
    settings: Settings,
    *,
    token_file: Path | str | None = None,
    registry: CollectorRegistry = REGISTRY,
    provider: SyncTokenProvider | None = None,
) -> StoreBackedTwitch:
    """A ``Twitch`` client on ``settings.twitch_helix_url`` / ``twitch_auth_url`` authenticated as
    the stored user. Raises a :class:`TokenError` (missing file, bad scope, revoked, ...) so a
    service can exit at once with ``str(error)``.

    No app access token is requested: every call StreamScout makes accepts the user token.
    Each Helix request times out after ``settings.http_timeout_seconds``.
    """
    provider = provider or SyncTokenProvider.from_settings(settings, token_file=token_file, registry=registry)
    tokens = await asyncio.to_thread(provider.tokens)
    twitch = StoreBackedTwitch(
        provider,
        provider.client_id or tokens.client_id,
        settings.client_secret() or None,
        authenticate_app=False,
        base_url=settings.twitch_helix_url,
        auth_base_url=provider.auth_url,
        # pyTwitchAPI's default is aiohttp's 300 s per request: far too long for a service.
        session_timeout=aiohttp.ClientTimeout(total=settings.http_timeout_seconds),
    )
    await twitch.use_stored_tokens()
    return twitch
