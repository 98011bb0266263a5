"""Shared helpers of the simulator tests: pyTwitchAPI clients pointed at a simulator."""

from __future__ import annotations

import asyncio
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
