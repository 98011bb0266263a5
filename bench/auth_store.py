"""How much the shared token store costs: an atomic save, the per-request freshness check, and a
locked refresh against the simulator. Bounded (a few seconds); writes bench/results/auth.json.

    .venv/bin/python bench/auth_store.py
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

from prometheus_client import CollectorRegistry

from streamscout.auth.provider import SyncTokenProvider
from streamscout.auth.store import TokenFile, TokenStore, utc_now
from streamscout.sim import start_simulator

RESULTS = Path(__file__).parent / "results" / "auth.json"


def timed(fn, repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"n": len(samples), "median_ms": round(statistics.median(ordered), 4),
            "p95_ms": round(ordered[int(len(ordered) * 0.95) - 1], 4)}


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, start_simulator("steady") as sim:
        info = sim.info
        issued = sim.issue_user_token(["chat:read", "clips:edit"])
        now = utc_now()
        store = TokenStore(Path(tmp) / "tokens.json")
        store.save(TokenFile(client_id=info["client_id"], user_id=str(info["bot_user_id"]),
                             user_login=info["bot_login"], scopes=("chat:read", "clips:edit"),
                             access_token=issued["access_token"], refresh_token=issued["refresh_token"],
                             issued_at=now, obtained_at=now))
        tokens = store.load()
        save = timed(lambda: store.save(tokens), 200)
        current = timed(store.current, 5000)
        provider = SyncTokenProvider(store, info["client_id"], info["client_secret"], info["auth_url"],
                                     registry=CollectorRegistry())
        refresh = timed(lambda: provider.refresh_after_401(provider.access_token()), 100)
        adopt = timed(lambda: provider.refresh_after_401("an-old-token"), 200)
    results = {
        "what": "token store costs on a shared 2-core VM (ext4 under /tmp; other engineers busy), simulator on loopback",
        "atomic_save_with_fsync": summary(save),
        "current_freshness_check": summary(current),
        "locked_refresh_via_simulator": summary(refresh),
        "adopt_other_process_refresh": summary(adopt),
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
