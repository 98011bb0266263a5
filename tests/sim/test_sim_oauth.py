"""OAuth through pyTwitchAPI: device-code flow, refresh of expired tokens, validate, revoke."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from sim_helpers import SCOPES, app_client, user_client
from twitchAPI.oauth import CodeFlow, refresh_access_token, revoke_token, validate_token
from twitchAPI.type import AuthScope, InvalidRefreshTokenException

pytestmark = pytest.mark.unit


def test_device_code_flow_end_to_end_with_codeflow(sim):
    s = sim("demo")

    async def approve_over_http(user_code: str, as_json: bool):
        async with aiohttp.ClientSession() as session:
            kwargs = {"json": {"user_code": user_code}} if as_json else {"data": {"user_code": user_code}}
            async with session.post(s.base_url + "/sim/device/approve", **kwargs) as response:
                return response.status

    async def main(as_json: bool):
        twitch = await app_client(s)
        flow = CodeFlow(twitch, SCOPES, auth_base_url=s.info["auth_url"])
        user_code, url = await flow.get_code()
        assert url.startswith(s.base_url + "/activate")
        waiting = asyncio.create_task(flow.wait_for_auth_complete())
        await asyncio.sleep(0.3)
        assert not waiting.done()  # authorization_pending until the user clicks
        assert await approve_over_http(user_code, as_json) == 200
        token, refresh = await asyncio.wait_for(waiting, 5)
        await twitch.set_user_authentication(token, SCOPES, refresh)  # validates against /oauth2/validate
        return await twitch.create_clip("71092938")

    assert asyncio.run(main(as_json=False)).id
    assert asyncio.run(main(as_json=True)).id


def test_expired_user_token_is_refreshed_by_pytwitchapi(sim):
    s = sim("demo")

    async def main():
        twitch = await user_client(s)
        refreshed = []

        async def on_refresh(token: str, refresh: str) -> None:
            refreshed.append(token)

        twitch.user_auth_refresh_callback = on_refresh
        old = twitch.get_user_auth_token()
        s.expire_tokens()
        created = await twitch.create_clip("71092938")  # 401 -> refresh -> retry
        return old, refreshed, created

    old, refreshed, created = asyncio.run(main())
    assert created.id and len(refreshed) == 1 and refreshed[0] != old


def test_tokens_expire_on_the_configured_lifetime(sim):
    s = sim("demo", token_lifetime=2.0)

    async def main():
        token = s.issue_user_token(["clips:edit"])
        first = await validate_token(token["access_token"], auth_base_url=s.info["auth_url"])
        await asyncio.sleep(2.1)
        later = await validate_token(token["access_token"], auth_base_url=s.info["auth_url"])
        fresh, refresh = await refresh_access_token(token["refresh_token"], s.info["client_id"], s.info["client_secret"],
                                                    auth_base_url=s.info["auth_url"])
        return first, later, fresh, refresh, token

    first, later, fresh, refresh, token = asyncio.run(main())
    assert first["login"] == s.info["bot_login"] and first["user_id"] == s.info["bot_user_id"]
    assert first["scopes"] == [AuthScope.CLIPS_EDIT] and first["client_id"] == s.info["client_id"]
    assert later["status"] == 401
    assert fresh != token["access_token"] and refresh == token["refresh_token"]


def test_bad_refresh_token_and_revoke(sim):
    s = sim("demo")

    async def main():
        with pytest.raises(InvalidRefreshTokenException):
            await refresh_access_token("nope", s.info["client_id"], s.info["client_secret"], auth_base_url=s.info["auth_url"])
        token = s.issue_user_token(["clips:edit"])["access_token"]
        revoked = await revoke_token(s.info["client_id"], token, auth_base_url=s.info["auth_url"])
        again = await revoke_token(s.info["client_id"], token, auth_base_url=s.info["auth_url"])
        after = await validate_token(token, auth_base_url=s.info["auth_url"])
        return revoked, again, after

    revoked, again, after = asyncio.run(main())
    assert (revoked, again, after["status"]) == (True, False, 401)


def test_app_token_validates_without_a_user_and_wrong_secret_is_refused(sim):
    s = sim("demo")

    async def main():
        twitch = await app_client(s)
        info = await validate_token(twitch.get_app_token(), auth_base_url=s.info["auth_url"])
        async with aiohttp.ClientSession() as session:
            async with session.post(s.info["auth_url"] + "token", params={
                    "client_id": s.info["client_id"], "client_secret": "wrong", "grant_type": "client_credentials"}) as r:
                refused = (r.status, await r.json())
            async with session.post(s.info["auth_url"] + "token", data={"grant_type": "password"}) as r:
                unsupported = r.status
        return info, refused, unsupported

    info, refused, unsupported = asyncio.run(main())
    assert "login" not in info and info["client_id"] == s.info["client_id"]
    assert refused[0] == 403 and refused[1]["status"] == 403
    assert unsupported == 400


def test_approving_an_unknown_code_is_a_404(sim):
    s = sim("demo")
    assert s.approve("NOPE1234") is False

    async def main():
        async with aiohttp.ClientSession() as session:
            async with session.post(s.base_url + "/sim/device/approve", data={"user_code": "NOPE1234"}) as r:
                return r.status, await r.json()

    status, body = asyncio.run(main())
    assert status == 404 and body["status"] == 404
