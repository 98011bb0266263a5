"""The simulator's HTTP app and the handle tests use to run it in a background thread.

    >>> from streamscout.sim import start_simulator
    >>> with start_simulator("demo", clip_delay=0.5) as sim:      # doctest: +SKIP
    ...     twitch = await Twitch(sim.info["client_id"], sim.info["client_secret"],
    ...                           base_url=sim.info["helix_url"], auth_base_url=sim.info["auth_url"])
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from pathlib import Path
from typing import Any, Awaitable, Callable, Mapping

from aiohttp import web

from streamscout.sim import helix, oauth
from streamscout.sim.chat import ChatServer
from streamscout.sim.errors import read_json_object, read_params, twitch_error
from streamscout.sim.scenario import HTTP_FAULTS, Scenario, ScenarioError, load_scenario, parse_fault
from streamscout.sim.world import World

log = logging.getLogger(__name__)
HANG_SECONDS = 3600.0
ACTIVATE_PAGE = """<!doctype html><title>Activate (StreamScout simulator)</title>
<h1>Activate your device</h1><p>This stands in for twitch.tv/activate.</p>
<form method="post" action="/sim/device/approve"><input name="user_code" value="{code}">
<button type="submit">Authorize</button></form>"""


def build_app(world: World, chat: ChatServer) -> web.Application:
    """One aiohttp app: Helix, OAuth, chat WebSocket and the `/sim/` control endpoints."""

    @web.middleware
    async def twitch_behaviour(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]):
        path = request.path
        if path.startswith(("/helix/", "/oauth2/")):
            fault = world.take_fault(HTTP_FAULTS, method=request.method, path=path)
            if fault is not None:
                if request.method == "POST" and path == "/helix/clips":
                    world.record_clip_request(request.query.get("broadcaster_id"), world.ms(),
                                              fault.status if fault.type == "status" else 0, f"fault:{fault.type}")
                if fault.type == "status":
                    headers = None
                    if fault.status == 429:
                        headers = {"Ratelimit-Limit": str(world.rate_limit), "Ratelimit-Remaining": "0",
                                   "Ratelimit-Reset": str(int(world.clock()) + 2)}
                    return twitch_error(fault.status, "simulated fault", headers=headers)
                if fault.type == "garbage":
                    return web.Response(status=200, text="<html>502 Bad Gateway", content_type="application/json")
                if fault.type == "hang":
                    await _hang(request)
                    return twitch_error(504, "simulated hang")  # only seen if the client waited an hour
                await asyncio.sleep(fault.delay)
        try:
            return await handler(request)
        except web.HTTPNotFound:
            return twitch_error(404, f"Not Found: {path}")
        except web.HTTPMethodNotAllowed:
            return twitch_error(405, f"Method {request.method} not allowed on {path}")

    app = web.Application(middlewares=[twitch_behaviour])
    app.add_routes(oauth.routes(world) + helix.routes(world) + chat.routes() + control_routes(world, chat))
    return app


async def _hang(request: web.Request) -> None:
    """Never answer; give up only when the client does (or after an hour)."""
    deadline = asyncio.get_running_loop().time() + HANG_SECONDS
    while asyncio.get_running_loop().time() < deadline:
        transport = request.transport
        if transport is None or transport.is_closing():
            return
        await asyncio.sleep(0.1)


def control_routes(world: World, chat: ChatServer) -> list[web.RouteDef]:
    async def info(request: web.Request) -> web.Response:
        return web.json_response(sim_info(world, str(request.url.origin())))

    async def ground_truth(request: web.Request) -> web.Response:
        return web.json_response(world.truth.as_dict())

    async def approve(request: web.Request) -> web.Response:
        params = await read_params(request)
        if isinstance(params, web.Response):
            return params
        code = params.get("user_code", "")
        if not world.tokens.approve(code):
            return twitch_error(404, f"no pending device code {code!r}")
        return web.json_response({"approved": True, "user_code": code.upper()})

    async def activate(request: web.Request) -> web.Response:
        code = request.query.get("device-code", "").replace('"', "")
        return web.Response(text=ACTIVATE_PAGE.format(code=code), content_type="text/html")

    async def faults(request: web.Request) -> web.Response:
        body = await read_json_object(request)
        if isinstance(body, web.Response):
            return body
        try:
            fault = parse_fault(body)
        except ScenarioError as exc:
            return twitch_error(400, str(exc))
        world.add_fault(fault)  # chat faults fire on the next chat tick
        return web.json_response({"added": fault.type}, status=201)

    async def expire_tokens(request: web.Request) -> web.Response:
        return web.json_response({"expired": world.tokens.expire_all()})

    async def chat_reconnect(request: web.Request) -> web.Response:
        return web.json_response({"connections": await chat.reconnect_all()})

    async def chat_drop(request: web.Request) -> web.Response:
        return web.json_response({"connections": await chat.drop_all()})

    return [
        web.get("/sim/info", info),
        web.get("/sim/ground-truth", ground_truth),
        web.post("/sim/device/approve", approve),
        web.get("/activate", activate),
        web.post("/sim/faults", faults),
        web.post("/sim/tokens/expire", expire_tokens),
        web.post("/sim/chat/reconnect", chat_reconnect),
        web.post("/sim/chat/drop", chat_drop),
    ]


def sim_info(world: World, origin: str) -> dict[str, Any]:
    s = world.scenario
    ws = origin.replace("http://", "ws://", 1).replace("https://", "wss://", 1)
    return {
        "helix_url": f"{origin}/helix/", "auth_url": f"{origin}/oauth2/", "chat_url": f"{ws}/chat",
        "client_id": s.client_id, "client_secret": s.client_secret,
        "bot_login": s.bot_login, "bot_user_id": s.bot_id,
        "scenario": s.name, "seed": world.seed, "speed": world.speed,
        "started_ms": world.truth.started_ms, "clip_delay": world.clip_delay,
        "channels": len(world.channels),
    }


class Simulator:
    """A running simulator (server in a background thread). Use as a context manager.

    ``info`` is the ``/sim/info`` dict; the methods below run on the server's loop, so tests
    can call them from any thread.
    """

    def __init__(self, world: World, chat: ChatServer, port: int, host: str = "127.0.0.1") -> None:
        self.world = world
        self.chat = chat
        self.host = host
        self.port = port
        self.base_url = f"http://{host}:{port}"
        self.info = sim_info(world, self.base_url)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._stopped: asyncio.Event | None = None

    # --- lifecycle -------------------------------------------------------------------
    def start(self) -> "Simulator":
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._serve(ready))
            except BaseException as exc:  # surfaced to the caller of start()
                failure.append(exc)
                ready.set()
            finally:
                loop.close()

        self._thread = threading.Thread(target=run, name=f"sim:{self.port}", daemon=True)
        self._thread.start()
        ready.wait(30)
        if failure:
            raise failure[0]
        return self

    async def _serve(self, ready: threading.Event) -> None:
        self._stopped = asyncio.Event()
        await self.run_until(self._stopped, on_ready=ready.set)

    async def run_until(self, stop: asyncio.Event, on_ready: Callable[[], None] | None = None) -> None:
        """Serve on the current loop until ``stop`` is set (the CLI calls this directly)."""
        self._loop = asyncio.get_running_loop()
        self._stopped = stop
        app = build_app(self.world, self.chat)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        tasks = [asyncio.create_task(self.chat.run()), asyncio.create_task(self._write_truth_periodically())]
        log.info("simulator listening", extra={"url": self.base_url, "scenario": self.world.scenario.name})
        if on_ready:
            on_ready()
        try:
            await stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.chat.close_all()
            await self._runner.cleanup()
            self.world.write_ground_truth()

    async def _write_truth_periodically(self) -> None:
        while True:
            await asyncio.sleep(2)
            self.world.write_ground_truth()

    def stop(self) -> None:
        if self._loop is None or self._stopped is None or self._loop.is_closed():
            return
        self._loop.call_soon_threadsafe(self._stopped.set)
        if self._thread is not None:
            self._thread.join(15)

    def __enter__(self) -> "Simulator":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _call(self, fn: Callable[[], Any]) -> Any:
        """Run fn on the server loop and return its result (the world is loop-owned)."""
        async def wrapper() -> Any:
            result = fn()
            return await result if asyncio.iscoroutine(result) else result

        assert self._loop is not None, "simulator not started"
        return asyncio.run_coroutine_threadsafe(wrapper(), self._loop).result(15)

    # --- test helpers ------------------------------------------------------------------
    def ground_truth(self) -> dict[str, Any]:
        return self._call(self.world.truth.as_dict)

    def approve(self, user_code: str) -> bool:
        return self._call(lambda: self.world.tokens.approve(user_code))

    def issue_user_token(self, scopes: list[str] | tuple[str, ...] = ("clips:edit", "chat:read"),
                         lifetime: float | None = None) -> dict[str, Any]:
        """A user token for the bot user, as the device flow would give: access, refresh, scopes."""
        token = self._call(lambda: self.world.tokens.issue_user_token(tuple(scopes), lifetime=lifetime))
        return {"access_token": token.access_token, "refresh_token": token.refresh_token,
                "scopes": list(token.scopes), "expires_in": token.expires_in(self.world.clock())}

    def expire_tokens(self) -> int:
        return self._call(self.world.tokens.expire_all)

    def inject_fault(self, **fault: Any) -> None:
        """Add a fault now (same fields as a scenario's `faults` entry; `at` counts from now)."""
        parsed = parse_fault(fault)
        self._call(lambda: self.world.add_fault(parsed))

    def reconnect_chat(self) -> int:
        return self._call(self.chat.reconnect_all)

    def drop_chat(self) -> int:
        return self._call(self.chat.drop_all)


def free_tcp_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def create_simulator(scenario: str | Path | Mapping[str, Any] | Scenario = "demo", *, port: int | None = None,
                     host: str = "127.0.0.1", seed: int | None = None, speed: float = 1.0,
                     clip_delay: float = 15.0, token_lifetime: float = 14400.0, rate_limit: int = 800,
                     replay: list[str | Path] | tuple[str | Path, ...] = (), replay_speed: float | None = None,
                     ground_truth_path: str | Path | None = None, tick: float = 0.05) -> Simulator:
    """Build (not start) a simulator; see :func:`start_simulator` for the options."""
    if speed <= 0:
        raise ValueError("speed must be positive")
    loaded = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    world = World(loaded, seed=seed, speed=speed, clip_delay=clip_delay, token_lifetime=token_lifetime,
                  rate_limit=rate_limit, ground_truth_path=ground_truth_path)
    chat = ChatServer(world, tick=tick)
    for path in replay:
        chat.add_replay(Path(path), speed=replay_speed or speed)
    return Simulator(world, chat, port or free_tcp_port(), host)


def start_simulator(scenario: str | Path | Mapping[str, Any] | Scenario = "demo", **options: Any) -> Simulator:
    """Start a simulator in a background thread and return its handle (a context manager).

    ``scenario`` is a shipped name, a YAML/JSON path, a dict or a :class:`Scenario`. Options:
    ``port`` (default: a free one), ``seed``, ``speed`` (scenario seconds per wall second),
    ``clip_delay`` (wall seconds before a created clip is visible, default 15),
    ``token_lifetime`` (wall seconds, default 4 h), ``rate_limit`` (Helix points/minute),
    ``replay`` (recorded chat files), ``replay_speed``, ``ground_truth_path``, ``tick``.
    """
    return create_simulator(scenario, **options).start()
