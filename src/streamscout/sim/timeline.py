"""Every channel's chat, tick by tick: the one loop the live chat server and offline users share.

    >>> timeline = Timeline(World(load_scenario("bursts")), tick=0.05)     # doctest: +SKIP
    >>> for step in range(1, 1201):                                        # one minute
    ...     for login, lines in timeline.step(step, now_ms=step * 50, wanted=lambda _: True).items():
    ...         ...

Counts are drawn for every live channel on every tick, so they only depend on the seed;
lines are built only for the channels ``wanted`` names (the live server: those with a
listener). Raids and gift floods are built when due, whoever listens.
"""

from __future__ import annotations

from typing import Callable

from streamscout.sim.chatmodel import ChannelChat
from streamscout.sim.scenario import Channel
from streamscout.sim.world import World


class Timeline:
    def __init__(self, world: World, tick: float = 0.05) -> None:
        self.world = world
        self.tick = tick  # wall seconds per step
        self.dt = tick * world.speed  # scenario seconds per step
        self.tick_ms = int(tick * 1000)
        self.chats: dict[str, ChannelChat] = {}
        self._events_done: set[int] = set()

    def chat(self, channel: Channel) -> ChannelChat:
        chat = self.chats.get(channel.login)
        if chat is None or chat.channel is not channel:
            chat = self.chats[channel.login] = ChannelChat(channel, self.world.seed)
        return chat

    def step(self, step: int, now_ms: int, wanted: Callable[[str], bool]) -> dict[str, list[str]]:
        """IRC lines per channel login for step ``step`` (1-based: it covers scenario time
        ``[(step-1)·dt, step·dt)``), stamped up to ``now_ms``."""
        world = self.world
        t = (step - 1) * self.dt
        out: dict[str, list[str]] = {}
        for index, ev in enumerate(world.scenario.events):
            if index in self._events_done or ev.at > t + self.dt or ev.type not in ("raid", "gift_subs"):
                continue
            self._events_done.add(index)
            channel = world.channels[ev.channel]
            chat = self.chat(channel)
            lines = (chat.raid(now_ms, channel.id, ev.source, ev.count or 500) if ev.type == "raid"
                     else chat.gift_subs(now_ms, channel.id, ev.count or 10))
            out.setdefault(ev.channel, []).extend(lines)
        for channel in list(world.channels.values()):
            if channel.chat.rate <= 0 or not channel.live_at(t):
                continue
            chat = self.chat(channel)
            multiplier = world.burst_multiplier(channel.login, t)
            n = chat.counts(t, self.dt, multiplier)
            if not n:
                continue
            built = wanted(channel.login)
            world.truth.count_chat(channel.login, generated=n, delivered=n if built else 0)
            if built:
                out.setdefault(channel.login, []).extend(
                    chat.lines(n, now_ms, self.tick_ms, channel.id, hype=multiplier > 1.5))
        return out
