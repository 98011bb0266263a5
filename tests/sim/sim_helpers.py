"""Shared helpers of the simulator tests: pyTwitchAPI clients pointed at a simulator."""

from __future__ import annotations

import asyncio

import aiohttp
from typing import Any, Callable

from twitchAPI.twitch import Twitch
from twitchAPI.type import AuthScope

SCOPES = [AuthScope.CLIPS_EDIT, AuthScope.CHAT_READ]


async def app_client(sim) -> Twitch:
    info = sim.info
    return await Twitch(info["client_id"], info["client_secret"], base_url=info["helix_url"], auth_base_url=info["auth_url"])


async def user_client(sim, scopes: list[AuthScope] = SCOPES) -> Twitch:
    twitch = await app_client(sim)
    token = sim.issue_user_token([s.value for s in scopes])
    await twitch.set_user_authentication(token["access_token"], scopes, token["refresh_token"])
    return twitch


async def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> Any:
    """Poll until predicate() is truthy; returns its value, or fails the test on timeout."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(interval)


class RawIrc:
    """A bare IRC-over-WebSocket client, for what pyTwitchAPI hides (421, NOTICEs, USERNOTICE)."""

    def __init__(self, session: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.session, self.ws, self.lines = session, ws, []

    @classmethod
    async def connect(cls, sim, token: str | None = None, nick: str | None = None) -> "RawIrc":
        session = aiohttp.ClientSession()
        client = cls(session, await session.ws_connect(sim.info["chat_url"]))
        token = token or sim.issue_user_token(["chat:read"])["access_token"]
        await client.send("CAP REQ :twitch.tv/membership twitch.tv/tags twitch.tv/commands",
                          f"PASS oauth:{token}", f"NICK {nick or sim.info['bot_login']}")
        return client

    async def send(self, *lines: str) -> None:
        for line in lines:
            await self.ws.send_str(line)

    async def read_until(self, predicate: Callable[[str], bool], timeout: float = 5.0) -> str:
        """Read lines until one matches; every line read stays in self.lines."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise AssertionError(f"no matching line within {timeout} s; last lines: {self.lines[-5:]}")
            message = await self.ws.receive(timeout=remaining)
            if message.type != aiohttp.WSMsgType.TEXT:
                raise ConnectionError(f"socket closed ({message.type.name})")
            for line in message.data.split("\r\n"):
                self.lines.append(line)
                if predicate(line):
                    return line

    async def close(self) -> None:
        await self.ws.close()
        await self.session.close()
