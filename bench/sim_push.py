"""How fast the simulator's chat server pushes messages over loopback WebSocket.

The simulator runs in this process (its chat model generating one channel at a high
offered rate); a receiver in a separate process logs in like a bot, joins the channel and
counts PRIVMSG lines for a fixed time. The number is what one simulator process can feed a
pipeline, generation included. Bounded: ``--seconds`` (default 10) plus ~2 s of set-up.

    .venv/bin/python bench/sim_push.py [--seconds 10] [--offered 250000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import time
from pathlib import Path

RESULTS = Path(__file__).with_name("results") / "sim_push.json"
TARGET = 50_000


def receive(chat_url: str, token: str, nick: str, seconds: float, out: multiprocessing.Queue) -> None:
    import aiohttp

    async def main() -> tuple[int, float, int]:
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(chat_url, max_msg_size=0) as ws:
                await ws.send_str("CAP REQ :twitch.tv/membership twitch.tv/tags twitch.tv/commands")
                await ws.send_str(f"PASS oauth:{token}")
                await ws.send_str(f"NICK {nick}")
                await ws.send_str("JOIN #bench")
                count, frames, started = 0, 0, None
                while True:
                    message = await ws.receive()
                    if message.type != aiohttp.WSMsgType.TEXT:
                        raise RuntimeError(f"socket closed: {message.type.name}")
                    data = message.data
                    if started is None:
                        if " PRIVMSG " not in data:
                            continue
                        started = time.perf_counter()  # count from the first chat frame on
                        continue
                    frames += 1
                    count += data.count(" PRIVMSG #bench ")
                    elapsed = time.perf_counter() - started
                    if elapsed >= seconds:
                        return count, elapsed, frames

    out.put(asyncio.run(main()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--offered", type=float, default=250_000.0, help="chat model rate, messages/s")
    parser.add_argument("--tick", type=float, default=0.05)
    args = parser.parse_args()

    from streamscout.sim import start_simulator

    scenario = {"name": "bench", "channels": [{"login": "bench", "id": "1", "chat": {
        "rate": args.offered, "burstiness": 0, "excitation": 0, "replies": 0, "timeouts": 0, "chatters": 5000}}]}
    with start_simulator(scenario, tick=args.tick) as sim:
        token = sim.issue_user_token(["chat:read"])["access_token"]
        queue: multiprocessing.Queue = multiprocessing.get_context("spawn").Queue()
        receiver = multiprocessing.get_context("spawn").Process(
            target=receive, args=(sim.info["chat_url"], token, sim.info["bot_login"], args.seconds, queue))
        cpu_before = time.process_time()
        receiver.start()
        count, elapsed, frames = queue.get(timeout=args.seconds + 60)
        cpu_server = time.process_time() - cpu_before
        receiver.join(10)

    rate = count / elapsed
    result = {
        "benchmark": "simulator chat push rate over loopback WebSocket",
        "messages": count, "seconds": round(elapsed, 3), "messages_per_second": round(rate),
        "frames": frames, "messages_per_frame": round(count / max(frames, 1), 1),
        "offered_rate": args.offered, "tick_seconds": args.tick, "target": TARGET, "meets_target": rate >= TARGET,
        "server_process_cpu_seconds": round(cpu_server, 2),
        # load-independent: the machine is shared, so wall-clock rates vary with the neighbours
        "messages_per_server_cpu_second": round(count / cpu_server) if cpu_server else None,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load_avg_1m": os.getloadavg()[0]},
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"chat push: {count} messages in {elapsed:.1f} s = {rate:,.0f} msg/s (target {TARGET:,}); "
          f"{result['messages_per_server_cpu_second']:,} per server CPU-second; "
          f"{result['messages_per_frame']} per frame -> {RESULTS}")


if __name__ == "__main__":
    main()
