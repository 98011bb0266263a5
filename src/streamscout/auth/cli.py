"""``streamscout seed-tokens`` and ``streamscout tokens check``.

Both print one line ``error: <reason>; <fix>`` and exit with the error's ``exit_code`` (see
``docs/auth.md``) when the token file cannot be used. Neither ever prints a token or the secret.
"""

from __future__ import annotations

import asyncio
import ipaddress
import sys
import time
import urllib.parse
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, TypeVar

import click

from streamscout.auth import oauth
from streamscout.auth.errors import (
    RESEED,
    AuthServiceUnavailable,
    ClientCredentialsError,
    DeviceFlowTimeout,
    MissingScope,
    TokenError,
)
from streamscout.auth.provider import SyncTokenProvider
from streamscout.auth.store import REQUIRED_SCOPES, TokenFile, TokenPair, TokenStore, utc_now
from streamscout.cli import get_settings
from streamscout.common.config import Settings

T = TypeVar("T")

SECRET_ON_COMMAND_LINE = (
    "warning: --client-secret puts the secret in the process list and shell history; "
    "use --client-secret-file or STREAMSCOUT_TWITCH_CLIENT_SECRET_FILE instead"
)


def _exit_on_token_error(action: Callable[[], T]) -> T:
    try:
        return action()
    except TokenError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)


def _client_secret(settings: Settings, secret: str | None, secret_file: Path | None) -> str:
    if secret:
        click.echo(SECRET_ON_COMMAND_LINE, err=True)
        return secret
    if secret_file:
        try:
            return secret_file.read_text().strip()
        except OSError as exc:
            raise click.UsageError(f"cannot read --client-secret-file {secret_file}: {exc.strerror}") from None
    return settings.client_secret()


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h {rest // 60:02d}m" if hours else f"{rest // 60}m {rest % 60:02d}s"


def _when(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


token_file_option = click.option(
    "--token-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The shared token file [default: STREAMSCOUT_TOKEN_FILE, else /var/lib/streamscout/tokens.json "
    "when writable, else <STREAMSCOUT_STATE_DIR>/tokens.json, i.e. ./var/tokens.json].",
)
client_secret_file_option = click.option(
    "--client-secret-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="File holding the Twitch client secret [default: STREAMSCOUT_TWITCH_CLIENT_SECRET_FILE or "
    "STREAMSCOUT_TWITCH_CLIENT_SECRET].",
)
# Accepted for completeness but hidden: a secret in argv is visible to every user via ps.
client_secret_option = click.option("--client-secret", hidden=True)


# --- seed-tokens -------------------------------------------------------------------------------


@click.command("seed-tokens")
@click.option("--client-id", help="Twitch application client id [default: STREAMSCOUT_TWITCH_CLIENT_ID].")
@client_secret_file_option
@client_secret_option
@token_file_option
@click.option("--force", is_flag=True, help="Replace a token file that is still valid.")
@click.option(
    "--timeout", type=click.FloatRange(min=1), default=600, show_default=True,
    help="Seconds to wait for the code to be approved.",
)
@click.option(
    "--auto-approve-url",
    metavar="URL",
    help="SIMULATOR ONLY: POST the user code to this loopback URL (the simulator's "
    "/sim/device/approve) instead of waiting for a person. Real Twitch has no such endpoint.",
)
@click.pass_context
def seed_tokens(ctx, client_id, client_secret_file, client_secret, token_file, force, timeout, auto_approve_url):
    """Authorise StreamScout as a Twitch user, once, with the device-code grant.

    Prints a URL and a code: open the URL in any browser (another machine is fine), log in as
    the bot account, enter the code and allow chat:read and clips:edit. The tokens are written
    to the token file (mode 0600); the services refresh them from then on.

    The client secret is not sent during the device flow; when it is configured, the new refresh
    token is tried once so a wrong secret shows up now rather than in four hours.
    """
    settings = get_settings(ctx)
    client_id = client_id or settings.twitch_client_id
    if not client_id:
        raise click.UsageError("no client id: pass --client-id or set STREAMSCOUT_TWITCH_CLIENT_ID")
    if auto_approve_url:
        _require_loopback(auto_approve_url)
    secret = _client_secret(settings, client_secret, client_secret_file)
    store = TokenStore(token_file or settings.resolved_token_file())
    if not force:
        _refuse_to_replace_valid_file(store)

    tokens = _exit_on_token_error(
        lambda: asyncio.run(_device_flow(settings, store, client_id, timeout, auto_approve_url))
    )
    click.echo(
        f"Saved tokens for {tokens.user_login} (user id {tokens.user_id}) with scopes "
        f"{' '.join(tokens.scopes)} to {store.path} (mode 0600)."
    )
    if secret:
        provider = SyncTokenProvider(store, client_id, secret, settings.twitch_auth_url,
                                     timeout=settings.http_timeout_seconds)
        _exit_on_token_error(lambda: provider.validate(force_refresh=True))
        click.echo("Refresh verified: the client secret and the new refresh token work together.")
    else:
        click.echo("No client secret configured, so the refresh was not tried; the services need "
                   "STREAMSCOUT_TWITCH_CLIENT_SECRET_FILE to refresh.")


def _require_loopback(url: str) -> None:
    host = urllib.parse.urlsplit(url).hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise click.UsageError("--auto-approve-url must point at the local simulator (a loopback address)")


def _refuse_to_replace_valid_file(store: TokenStore) -> None:
    try:
        existing = store.load()
    except TokenError as exc:
        if store.path.exists():
            click.echo(f"Replacing the unusable token file: {exc.reason}.")
        return
    raise click.ClickException(
        f"{store.path} already holds tokens for {existing.user_login}; `streamscout tokens check` "
        "tests them, --force replaces them"
    )


async def _device_flow(settings: Settings, store: TokenStore, client_id: str, timeout: float,
                       auto_approve_url: str | None) -> TokenFile:
    import aiohttp
    from twitchAPI.oauth import CodeFlow
    from twitchAPI.twitch import Twitch

    from streamscout.auth.runtime import auth_scopes

    twitch = Twitch(client_id, authenticate_app=False, base_url=settings.twitch_helix_url,
                    auth_base_url=settings.twitch_auth_url,
                    session_timeout=aiohttp.ClientTimeout(total=settings.http_timeout_seconds))
    flow = CodeFlow(twitch, auth_scopes(REQUIRED_SCOPES), auth_base_url=settings.twitch_auth_url)
    try:
        user_code, verification_uri = await flow.get_code()
    except aiohttp.ClientError as exc:
        raise AuthServiceUnavailable(f"cannot reach Twitch OAuth to start the device flow ({type(exc).__name__})",
                                     "retry later") from None
    except (KeyError, ValueError):  # an error answer instead of a device code
        raise ClientCredentialsError(f"Twitch refused to start a device flow for client id {client_id}",
                                     "check STREAMSCOUT_TWITCH_CLIENT_ID") from None
    click.echo("")
    click.echo("  To authorise StreamScout, open this page in a browser and log in as the bot account:")
    click.echo(f"      {verification_uri}")
    click.echo(f"  and enter the code:  {user_code}")
    click.echo("")
    if auto_approve_url:
        await asyncio.to_thread(_approve_on_simulator, auto_approve_url, user_code, settings.http_timeout_seconds)
    waiter = asyncio.ensure_future(flow.wait_for_auth_complete())
    countdown = asyncio.ensure_future(_countdown(time.monotonic() + timeout))
    try:
        access_token, refresh_token = await asyncio.wait_for(waiter, timeout)
    except (asyncio.TimeoutError, TimeoutError):
        raise DeviceFlowTimeout(f"the code was not approved within {timeout:g} s",
                                "run `streamscout seed-tokens` again and approve it sooner") from None
    except aiohttp.ClientError as exc:
        raise AuthServiceUnavailable(f"lost Twitch OAuth while waiting for approval ({type(exc).__name__})",
                                     "retry later") from None
    finally:
        countdown.cancel()
        _clear_status_line()
    click.echo("Approved.")
    answer = await asyncio.to_thread(oauth.validate_token, settings.twitch_auth_url, access_token,
                                     settings.http_timeout_seconds)
    if answer is None:
        raise AuthServiceUnavailable("Twitch rejected the token it has just issued", "retry later")
    missing = [scope for scope in REQUIRED_SCOPES if scope not in answer.scopes]
    if missing:
        raise MissingScope(f"the authorisation did not grant {', '.join(missing)}", RESEED + " and allow every scope")
    now = utc_now()
    tokens = TokenFile(
        client_id=answer.client_id or client_id,
        user_id=answer.user_id,
        user_login=answer.login,
        scopes=answer.scopes,
        access_token=access_token,
        refresh_token=refresh_token,
        issued_at=now,
        obtained_at=now,
        expires_at=None,
    )
    if answer.expires_in:
        tokens = tokens.with_tokens(TokenPair(access_token, refresh_token, answer.expires_in), now)
    return await asyncio.to_thread(store.save, tokens)


def _approve_on_simulator(url: str, user_code: str, timeout: float) -> None:
    form = urllib.parse.urlencode({"user_code": user_code}).encode()
    request = urllib.request.Request(url, data=form, method="POST",
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    try:
        with urllib.request.urlopen(request, timeout=timeout):
            pass
    except OSError as exc:
        raise AuthServiceUnavailable(f"the simulator did not approve the code ({exc})", "is `streamscout sim` running?") from None
    click.echo("  (approved through the simulator)")


async def _countdown(deadline: float) -> None:
    """A spinner with the time left on a terminal; a line every 30 s when output is a log."""
    interactive = sys.stdout.isatty()
    frames = "|/-\\"
    tick = 0
    while True:
        left = deadline - time.monotonic()
        if interactive:
            click.echo(f"\r  {frames[tick % 4]} waiting for approval, {_duration(left)} left ", nl=False)
            await asyncio.sleep(0.25)
        else:
            click.echo(f"  waiting for approval, {_duration(left)} left")
            await asyncio.sleep(30)
        tick += 1


def _clear_status_line() -> None:
    if sys.stdout.isatty():
        click.echo("\r" + " " * 60 + "\r", nl=False)


# --- tokens check --------------------------------------------------------------------------------


@click.group()
def tokens() -> None:
    """Inspect the shared Twitch user-token file."""


@tokens.command("check")
@token_file_option
@click.option("--client-id", help="Expected client id [default: STREAMSCOUT_TWITCH_CLIENT_ID, else the file's].")
@client_secret_file_option
@client_secret_option
@click.option("--refresh", is_flag=True, help="Refresh even if the access token is still valid.")
@click.pass_context
def check(ctx, token_file, client_id, client_secret_file, client_secret, refresh):
    """Validate the stored token with Twitch, refreshing it if needed.

    Prints the user, scopes and expiry. Exits non-zero with a one-line reason when the file is
    missing (3), unreadable, unwritable or readable by others (4), corrupt (5), incomplete (6), lacks a scope
    (7), holds a revoked refresh token (8), or the client id / secret is wrong (9); 10 means
    Twitch could not be reached.
    """
    settings = get_settings(ctx)
    provider = SyncTokenProvider(
        TokenStore(token_file or settings.resolved_token_file()),
        client_id or settings.twitch_client_id,
        _client_secret(settings, client_secret, client_secret_file),
        settings.twitch_auth_url,
        timeout=settings.http_timeout_seconds,
    )
    before = _exit_on_token_error(provider.tokens)
    tokens_now, answer = _exit_on_token_error(lambda: provider.validate(force_refresh=refresh))
    refreshed = tokens_now.version != before.version
    click.echo(f"token file: {provider.store.path} (version {tokens_now.version})")
    click.echo(f"user:       {answer.login} (id {answer.user_id})")
    click.echo(f"client id:  {tokens_now.client_id}")
    click.echo(f"scopes:     {' '.join(answer.scopes)}")
    expiry = "unknown" if answer.expires_in is None else (
        f"in {_duration(answer.expires_in)} (at {_when(utc_now() + timedelta(seconds=answer.expires_in))})"
    )
    click.echo(f"expires:    {expiry}" + (" (refreshed just now)" if refreshed else ""))
    click.echo(f"authorised: {_when(tokens_now.issued_at)}")
    click.echo("ok")
