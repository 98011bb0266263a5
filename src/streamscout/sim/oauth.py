"""``/oauth2/``: the endpoints of id.twitch.tv that pyTwitchAPI and our auth service call.

``device`` + ``token`` (device-code grant, refresh_token, client_credentials), ``validate``,
``revoke``. The user's click on the activation page is ``POST /sim/device/approve`` (or
the button on ``GET /activate``).
"""

from __future__ import annotations

from aiohttp import web

from streamscout.sim.errors import read_params, twitch_error
from streamscout.sim.tokens import Token
from streamscout.sim.world import World

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


def routes(world: World) -> list[web.RouteDef]:
    store = world.tokens

    async def device(request: web.Request) -> web.Response:
        params = await read_params(request)
        if isinstance(params, web.Response):
            return params
        if not store.check_client(params.get("client_id")):
            return twitch_error(400, "invalid client")
        scopes = tuple(s for s in params.get("scopes", params.get("scope", "")).split() if s)
        code = store.start_device_flow(params["client_id"], scopes)
        base = str(request.url.origin())
        return web.json_response({
            "device_code": code.device_code,
            "expires_in": int(store.device_code_lifetime),
            "interval": 1,
            "user_code": code.user_code,
            "verification_uri": f"{base}/activate?device-code={code.user_code}",
        })

    async def token(request: web.Request) -> web.Response:
        params = await read_params(request)
        if isinstance(params, web.Response):
            return params
        grant = params.get("grant_type")
        client_id = params.get("client_id")
        if grant == "client_credentials":
            if not store.check_client(client_id, params.get("client_secret", "")):
                return twitch_error(403, "invalid client secret")
            issued = store.issue_app_token()
            return web.json_response({"access_token": issued.access_token,
                                      "expires_in": issued.expires_in(store.clock()), "token_type": "bearer"})
        if grant == "refresh_token":
            issued = store.refresh(params.get("refresh_token", ""), client_id or "", params.get("client_secret", ""))
            if issued is None:
                return twitch_error(400, "Invalid refresh token")
            return _user_token_answer(issued, store.clock())
        if grant == DEVICE_GRANT:
            result = store.redeem_device_code(params.get("device_code", ""), client_id or "")
            if isinstance(result, str):
                return twitch_error(400, result)
            return _user_token_answer(result, store.clock())
        return twitch_error(400, f"unsupported grant type: {grant}")

    async def validate(request: web.Request) -> web.Response:
        header = request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        token = store.valid(value.strip()) if scheme.lower() in ("oauth", "bearer") else None
        if token is None:
            return twitch_error(401, "invalid access token")
        body = {"client_id": token.client_id, "scopes": list(token.scopes), "expires_in": token.expires_in(store.clock())}
        if token.user_id is not None:
            body.update(login=token.login, user_id=token.user_id)
        return web.json_response(body)

    async def revoke(request: web.Request) -> web.Response:
        params = await read_params(request)
        if isinstance(params, web.Response):
            return params
        if not store.check_client(params.get("client_id")):
            return twitch_error(404, "client does not exist")
        if not store.revoke(params.get("token", ""), params["client_id"]):
            return twitch_error(400, "Invalid token")
        return web.Response(status=200)

    return [
        web.post("/oauth2/device", device),
        web.post("/oauth2/token", token),
        web.get("/oauth2/validate", validate),
        web.post("/oauth2/revoke", revoke),
    ]


def _user_token_answer(token: Token, now: float) -> web.Response:
    return web.json_response({
        "access_token": token.access_token, "refresh_token": token.refresh_token,
        "expires_in": token.expires_in(now), "scope": list(token.scopes), "token_type": "bearer",
    })
