"""``/helix/``: Get Streams, Get Users, Create Clip and Get Clips, with Twitch's rules.

Every call needs ``Client-Id`` and ``Authorization: Bearer`` (401 otherwise), costs one
point of an 800-points-per-minute bucket per token (``Ratelimit-*`` headers, 429 when
empty), and Create Clip needs a user token with ``clips:edit``.
"""

from __future__ import annotations

import base64
import datetime as dt
import time
from dataclasses import dataclass

from aiohttp import web

from streamscout.sim.errors import read_params, twitch_error
from streamscout.sim.tokens import Token
from streamscout.sim.world import World


@dataclass
class Bucket:
    """A token bucket refilled continuously (Twitch's Helix points bucket)."""

    capacity: int
    level: float
    updated: float

    def take(self, now: float) -> bool:
        self.level = min(self.capacity, self.level + (now - self.updated) * self.capacity / 60.0)
        self.updated = now
        if self.level < 1:
            return False
        self.level -= 1
        return True

    def headers(self, now: float) -> dict[str, str]:
        reset = now + (self.capacity - self.level) * 60.0 / self.capacity
        return {"Ratelimit-Limit": str(self.capacity), "Ratelimit-Remaining": str(int(self.level)),
                "Ratelimit-Reset": str(int(reset) + 1)}


RATELIMIT_HEADERS = web.RequestKey("ratelimit_headers", dict)


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f'{{"o":{offset}}}'.encode()).decode()


def _offset(cursor: str | None) -> int | None:
    """The page offset in a cursor; -1 for a cursor we never issued."""
    if not cursor:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor.encode()).decode()
        return int(text.removeprefix('{"o":').removesuffix("}"))
    except (ValueError, UnicodeDecodeError):
        return None


def _first(request: web.Request, default: int = 20) -> int | None:
    raw = request.query.get("first", str(default))
    try:
        value = int(raw)
    except ValueError:
        return None
    return value if 1 <= value <= 100 else None


def routes(world: World) -> list[web.RouteDef]:
    buckets: dict[str, Bucket] = {}

    def authorize(request: web.Request, scope: str | None = None, user: bool = False) -> Token | web.Response:
        client_id = request.headers.get("Client-Id")
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not value:
            return twitch_error(401, "OAuth token is missing")
        token = world.tokens.valid(value.strip())
        if token is None:
            return twitch_error(401, "Invalid OAuth token")
        if client_id != token.client_id:
            return twitch_error(401, "Client ID and OAuth token do not match")
        if user and token.user_id is None:
            return twitch_error(401, "Missing User OAUTH Token")
        if scope and scope not in token.scopes:
            return twitch_error(401, f"Missing scope: {scope}")
        now = time.time()
        bucket = buckets.setdefault(token.access_token, Bucket(world.rate_limit, world.rate_limit, now))
        if not bucket.take(now):
            return twitch_error(429, "Too Many Requests", headers=bucket.headers(now))
        request[RATELIMIT_HEADERS] = bucket.headers(now)
        return token

    def answer(request: web.Request, body: dict, status: int = 200) -> web.Response:
        return web.json_response(body, status=status, headers=request.get(RATELIMIT_HEADERS))

    async def get_streams(request: web.Request) -> web.Response:
        token = authorize(request)
        if isinstance(token, web.Response):
            return token
        first = _first(request)
        if first is None:
            return twitch_error(400, "The parameter \"first\" was malformed: the value must be between 1 and 100")
        if request.query.get("type", "all") not in ("all", "live"):
            return twitch_error(400, "The parameter \"type\" was malformed")
        offset = _offset(request.query.get("after"))
        if offset is None:
            return twitch_error(400, "The parameter \"after\" was malformed")
        streams = world.live_streams()
        ids, logins = request.query.getall("user_id", []), [x.lower() for x in request.query.getall("user_login", [])]
        if ids or logins:
            streams = [s for s in streams if s["user_id"] in ids or s["user_login"] in logins]
        for key, field in (("game_id", "game_id"), ("language", "language")):
            wanted = request.query.getall(key, [])
            if wanted:
                streams = [s for s in streams if s[field] in wanted]
        page = streams[offset:offset + first]
        more = offset + first < len(streams)
        return answer(request, {"data": page, "pagination": {"cursor": _cursor(offset + first)} if more else {}})

    async def get_users(request: web.Request) -> web.Response:
        token = authorize(request)
        if isinstance(token, web.Response):
            return token
        ids, logins = request.query.getall("id", []), [x.lower() for x in request.query.getall("login", [])]
        if len(ids) + len(logins) > 100:
            return twitch_error(400, "The total number of id and login parameters must not exceed 100")
        if not ids and not logins:
            if token.user_id is None:
                return twitch_error(400, "The ID or login parameter is required for an app access token")
            return answer(request, {"data": [world.bot_user()]})
        users = [world.user(ch) for ch in world.channels.values() if ch.id in ids or ch.login in logins]
        bot = world.bot_user()
        if bot["id"] in ids or bot["login"] in logins:
            users.append(bot)
        return answer(request, {"data": users})

    async def create_clip(request: web.Request) -> web.Response:
        arrived = world.ms()
        broadcaster_id = request.query.get("broadcaster_id")
        params = await read_params(request)  # newer API versions send title/duration; bad JSON -> 400
        if isinstance(params, web.Response):
            world.record_clip_request(broadcaster_id, arrived, params.status, "bad_request")
            return params
        token = authorize(request, scope="clips:edit", user=True)
        if isinstance(token, web.Response):
            world.record_clip_request(broadcaster_id, arrived, token.status,
                                      "rate_limited" if token.status == 429 else "unauthorized")
            return token
        if not broadcaster_id:
            world.record_clip_request(None, arrived, 400, "bad_request")
            return twitch_error(400, "Missing required parameter \"broadcaster_id\"")
        channel = world.channel(broadcaster_id)
        if channel is None or channel.id != broadcaster_id or not channel.live_at(world.now()):
            world.record_clip_request(broadcaster_id, arrived, 404, "offline")
            return twitch_error(404, "Clipping is not possible for an offline channel.")
        if not channel.clipping:
            world.record_clip_request(broadcaster_id, arrived, 403, "clipping_disabled")
            return twitch_error(403, "User does not have permissions to clip this channel")
        clip = world.create_clip(channel, token.user_id or "", token.login or "")
        world.record_clip_request(broadcaster_id, arrived, 202, "created", clip.id)
        return answer(request, {"data": [{"id": clip.id, "edit_url": f"https://clips.twitch.tv/{clip.id}/edit"}]}, 202)

    async def get_clips(request: web.Request) -> web.Response:
        token = authorize(request)
        if isinstance(token, web.Response):
            return token
        ids = request.query.getall("id", [])
        broadcaster = request.query.get("broadcaster_id")
        game = request.query.get("game_id")
        if sum(bool(x) for x in (ids, broadcaster, game)) != 1:
            return twitch_error(400, "One of id, broadcaster_id or game_id must be specified")
        if len(ids) > 100:
            return twitch_error(400, "The parameter \"id\" may be given at most 100 times")
        first = _first(request)
        offset = _offset(request.query.get("after"))
        if first is None or offset is None:
            return twitch_error(400, "The parameter \"first\" or \"after\" was malformed")
        now = world.ms()
        clips = world.ready_clips()
        if ids:
            clips = [c for c in clips if c.id in ids]
        elif broadcaster:
            clips = [c for c in clips if c.broadcaster_id == broadcaster]
        else:
            clips = [c for c in clips if c.game_id == game]
        for name, keep in (("started_at", lambda c, ms: c.created_ms >= ms), ("ended_at", lambda c, ms: c.created_ms < ms)):
            if name in request.query:
                try:
                    bound = int(dt.datetime.fromisoformat(request.query[name].replace("Z", "+00:00")).timestamp() * 1000)
                except ValueError:
                    return twitch_error(400, f"The parameter \"{name}\" was malformed: expected an RFC3339 time")
                clips = [c for c in clips if keep(c, bound)]
        rows = sorted((c.as_helix(now) for c in clips), key=lambda r: (-r["view_count"], r["id"]))
        if ids:
            return answer(request, {"data": rows, "pagination": {}})
        page = rows[offset:offset + first]
        more = offset + first < len(rows)
        return answer(request, {"data": page, "pagination": {"cursor": _cursor(offset + first)} if more else {}})

    return [
        web.get("/helix/streams", get_streams),
        web.get("/helix/users", get_users),
        web.post("/helix/clips", create_clip),
        web.get("/helix/clips", get_clips),
    ]
