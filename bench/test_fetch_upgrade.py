"""FetchUpgradeTransport's receive path against WebSocketTransport's, on the same blasting peer.

The peer and the measurement are the WebSocket transport benchmark's own (imported from
``bench/test_transport_ws.py``, not copied): a ``websockets`` server in its own process sends
``session.created`` then N ``response.output_audio.delta`` events (20 ms of 24 kHz PCM each), and each
client's CPU time (``time.process_time``) is counted from connect to the N-th decoded ``audio`` event,
the app feeding a ``PlaybackTracker``. The clients:

- ``websocket``: ``WebSocketTransport`` (the anchor of this comparison; ``rtlayer`` in the ws benchmark);
- ``fetch-upgrade``: ``FetchUpgradeTransport`` with the default httpx fetch: the same session code, but
  the upgrade made by httpx and the frames parsed by websockets' sans-I/O protocol on httpcore's stream;
- the same two with a ``*`` listener (``+raw``), which forces the full JSON parse of every event.

The goal (issue 7): ``fetch-upgrade`` within 10% of ``websocket`` in events per CPU-second.
``python -m pytest bench/test_fetch_upgrade.py -s`` runs a smoke size (2,000 events); ``python
bench/test_fetch_upgrade.py`` (or ``RTLAYER_BENCH_FULL=1``) runs 20,000 and prints the table for
``bench/README.md``. The minimum CPU of several rounds is kept for each client.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

if __name__ == "__main__":
    # The ws benchmark keeps the minimum of several rounds only for full runs (its smoke run does 1 round, which
    # would count this transport's first-use imports); a direct run of this file is a full run.
    os.environ.setdefault("RTLAYER_BENCH_FULL", "1")

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from test_transport_ws import interleaved, receive_audio_events, recv_rtlayer, recv_rtlayer_raw

FULL = os.environ.get("RTLAYER_BENCH_FULL") == "1"


async def recv_fetch_upgrade(url: str, n: int) -> None:
    await receive_audio_events("FetchUpgradeTransport", url, n, raw=False)


async def recv_fetch_upgrade_raw(url: str, n: int) -> None:
    await receive_audio_events("FetchUpgradeTransport", url, n, raw=True)


RECEIVE: dict[str, Callable[[str, int], Awaitable[None]]] = {
    "websocket": recv_rtlayer,
    "fetch-upgrade": recv_fetch_upgrade,
    "websocket+raw": recv_rtlayer_raw,
    "fetch-upgrade+raw": recv_fetch_upgrade_raw,
}


def measure(n: int) -> dict[str, float]:
    """CPU microseconds per received delta, per client (interleaved: a drifting machine hits both)."""
    return interleaved("blast", RECEIVE, n)


def report(n: int, figures: dict[str, float]) -> str:
    lines = [
        f"receive, {n} audio deltas",
        "| client | CPU per event (us) | events per CPU-second | vs websocket |",
        "|---|---|---|---|",
    ]
    for name, us in figures.items():
        anchor = figures["websocket+raw" if name.endswith("+raw") else "websocket"]
        lines.append(f"| {name} | {us:.1f} | {1e6 / us:,.0f} | {anchor / us:.2f}x |")
    return "\n".join(lines)


def test_fetch_upgrade_receive_path(benchmark: Any) -> None:
    n = 20_000 if FULL else 2_000
    figures = benchmark.pedantic(measure, args=(n,), rounds=1, iterations=1)
    benchmark.extra_info.update({k: round(v, 2) for k, v in figures.items()})
    ratio = figures["websocket"] / figures["fetch-upgrade"]
    benchmark.extra_info["fetch_upgrade_vs_websocket_events_per_cpu_s"] = round(ratio, 3)
    print("\n" + report(n, figures))
    assert all(v > 0 for v in figures.values())


if __name__ == "__main__":
    count = 20_000
    print(report(count, measure(count)))
