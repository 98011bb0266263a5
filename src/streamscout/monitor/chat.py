"""pyTwitchAPI's ``Chat``, hardened for a long-running monitor.

What changes, and why:

* Every received line stamps :attr:`MonitorChat.last_line_at`, so the service can tell a
  connection that stopped delivering (pyTwitchAPI's reconnect loop can end silently, upstream
  issue #318) from a quiet one, and rebuild it.
* Lines are parsed by :func:`streamscout.monitor.irc.parse_line`: a malformed line is counted
  and skipped instead of raising inside pyTwitchAPI's receive task, which would end that task.
* PRIVMSG and USERNOTICE lines become records right in the receive loop and go to ``on_record``
  (a non-blocking hand-off to the Kafka publisher). pyTwitchAPI would build a ``ChatMessage``
  and schedule one asyncio task per line, which costs more than the work and breaks on a line
  without ``tmi-sent-ts``. Every other command (PING, JOIN, PART, ROOMSTATE, RECONNECT, ...)
  still goes through pyTwitchAPI's own handlers.
* ``join``/``leave``/``stop`` are called from the service's event loop and run on the chat's
  own thread and loop, each with a timeout: ``leave_room`` can hang, ``start`` spins forever
  when the server cannot be reached.

pyTwitchAPI runs the socket in a thread of its own; ``on_record`` is called on that thread.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any, Callable, Mapping, Optional

from twitchAPI.chat import Chat

from streamscout.monitor import irc
from streamscout.monitor.metrics import MonitorMetrics

log = logging.getLogger(__name__)

OnRecord = Callable[[dict[str, Any]], None]


class MonitorChat(Chat):
    """A ``Chat`` that hands every chat line to ``on_record`` as a ``chat-messages`` record."""

    def __init__(
        self,
        twitch: Any,
        on_record: OnRecord,
        metrics: MonitorMetrics,
        *,
        connection_url: Optional[str] = None,
        channel_ids: Optional[Mapping[str, int]] = None,
        is_verified_bot: bool = False,
    ) -> None:
        super().__init__(twitch, connection_url=connection_url, is_verified_bot=is_verified_bot)
        self._on_record = on_record
        self._metrics = metrics
        self._channel_ids = channel_ids if channel_ids is not None else {}
        self.last_line_at = time.monotonic()
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._loop_ready = threading.Event()
        # Fail fast instead of pyTwitchAPI's 4 minutes of retries: the service rebuilds us.
        self.reconnect_delay_steps = [0, 1, 2, 4]

    # --- receive path (chat thread) ---------------------------------------------------
    def _parse_irc_message(self, message: str):
        self.last_line_at = time.monotonic()
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
            self._loop_ready.set()
        try:
            parsed = irc.parse_line(message, self._command)
        except Exception:  # parse_line does not raise; pyTwitchAPI's command parser might
            parsed = None
        if parsed is None:
            return None
        command = parsed["command"]["command"]
        if command == "PRIVMSG":
            self._emit(irc.chat_record(parsed, int(time.time() * 1000), self._channel_ids))
            return None
        if command == "USERNOTICE":
            self._emit(irc.event_record(parsed, int(time.time() * 1000), self._channel_ids))
            return None
        return parsed

    _parse_irc_tags = staticmethod(irc.parse_tags)

    def _command(self, raw: str):
        # The answer to our own PING; pyTwitchAPI would log every one as unexpected.
        if raw.startswith("PONG"):
            return {"command": "PONG"}
        return self._parse_irc_command(raw)

    def _emit(self, record: Optional[dict[str, Any]]) -> None:
        if record is None:
            self._metrics.malformed_lines.inc()
            return
        self._metrics.messages_received.inc()
        try:
            self._on_record(record)
        except Exception:  # the receive loop must survive whatever the sink does
            log.exception("record hand-off failed")

    # --- control (service loop -> chat loop) -------------------------------------------
    async def _on_chat_loop(self, coro, timeout: float):
        if self._loop is None or self._loop.is_closed():
            coro.close()
            raise ConnectionError("chat loop is not running")
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), timeout)
        except asyncio.TimeoutError:
            future.cancel()
            raise

    async def start_connected(self, timeout: float) -> None:
        """``start()`` on a worker thread; raises TimeoutError when the server never answers.

        pyTwitchAPI's ``start`` polls a private flag forever when connecting fails; on timeout
        that flag is set so the polling thread ends instead of leaking.
        """
        if self.username is None:  # what ``await Chat(...)`` does: look up the bot's login
            await asyncio.wait_for(self._get_username(), timeout)
        worker = asyncio.get_running_loop().run_in_executor(None, self.start)
        try:
            await asyncio.wait_for(asyncio.shield(worker), timeout)
            await asyncio.wait_for(asyncio.get_running_loop().run_in_executor(None, self._wait_ready, timeout), timeout + 1)
        except asyncio.TimeoutError:
            self._Chat__startup_complete = True  # releases start()'s polling loop
            raise TimeoutError("chat server did not complete the handshake") from None

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not (self._loop_ready.is_set() and self.is_ready()):
            if time.monotonic() > deadline:
                raise asyncio.TimeoutError
            time.sleep(0.02)

    async def join(self, logins: list[str], timeout: float) -> list[str]:
        """Join channels (pyTwitchAPI applies the join rate limit); returns those that failed."""
        failed = await self._on_chat_loop(self.join_room(logins), timeout)
        return list(failed or [])

    async def leave(self, logins: list[str], timeout: float) -> bool:
        """Leave channels; False if the server did not confirm in time (we stop listening anyway:
        pyTwitchAPI drops them from its rejoin list before it waits)."""
        try:
            await self._on_chat_loop(self.leave_room(logins), timeout)
            return True
        except (asyncio.TimeoutError, ConnectionError):
            return False

    async def ping(self, timeout: float = 2.0) -> None:
        """Send a client PING; the server's PONG stamps ``last_line_at`` even in quiet channels."""
        await self._on_chat_loop(self._send_message("PING :streamscout"), timeout)

    async def shutdown(self, timeout: float) -> None:
        """``stop()`` on a worker thread with a timeout (a wedged socket loop cannot block us)."""
        try:
            await asyncio.wait_for(asyncio.get_running_loop().run_in_executor(None, self.stop), timeout)
        except Exception as exc:  # not running, timed out, socket already gone
            log.info("chat stop incomplete", extra={"error": repr(exc)})
