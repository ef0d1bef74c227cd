"""``openai-agents`` over rtlayer: client CPU per received audio delta, the SDK's own model as the anchor.

The same peer process as ``bench/test_transport_ws.py`` (``session.created``, then N audio deltas of 20 ms) is
read by the Agents SDK through:

- ``agents`` (the anchor): its ``OpenAIRealtimeWebSocketModel``, a listener counting ``RealtimeModelAudioEvent``;
- ``agents+rtlayer``: ``RtlayerRealtimeModel`` over ``WebSocketTransport``, the same listener;
- ``agents session`` / ``agents session+rtlayer``: the whole ``RealtimeRunner`` session, counting ``audio``
  session events, over each model;
- ``agents SIP`` / ``agents SIP+rtlayer``: a SIP call's control socket (attached with ``call_id``; the audio
  is on RTP, so the peer sends transcript deltas instead): the SDK's ``OpenAIRealtimeSIPModel`` and
  ``RtlayerRealtimeModel`` over ``SIPTransport``, a listener counting ``RealtimeModelTranscriptDeltaEvent``.

``python -m pytest bench/test_integration_openai_agents.py -s`` runs a smoke size (2,000 deltas);
``RTLAYER_BENCH_FULL=1 python bench/test_integration_openai_agents.py`` runs 20,000, five rounds, and prints
the table. Ratios are to the SDK's model in the same run; CPU is ``time.process_time`` of the client process.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_transport_ws import interleaved, one_round_us, recv_agents, recv_agents_session

FULL = os.environ.get("RTLAYER_BENCH_FULL") == "1"


def _rtlayer_model() -> Any:
    from rtlayer.integrations.openai_agents import RtlayerRealtimeModel
    from rtlayer.transports import WebSocketTransport

    return RtlayerRealtimeModel(transport=WebSocketTransport(reconnect=False, ping_interval=None))


async def recv_agents_rtlayer(url: str, n: int) -> None:
    await recv_agents(url, n, model=_rtlayer_model())


async def recv_agents_session_rtlayer(url: str, n: int) -> None:
    await recv_agents_session(url, n, model=_rtlayer_model())


async def recv_sip(url: str, n: int, model: Any = None) -> None:
    """A SIP call's control socket through the SDK: transcript deltas (default model: the SDK's SIP one)."""
    from agents.realtime.model import RealtimeModelListener
    from agents.realtime.model_events import RealtimeModelEvent, RealtimeModelTranscriptDeltaEvent
    from agents.realtime.openai_realtime import OpenAIRealtimeSIPModel

    done = asyncio.Event()

    class Counter(RealtimeModelListener):
        got = 0

        async def on_event(self, event: RealtimeModelEvent) -> None:
            if isinstance(event, RealtimeModelTranscriptDeltaEvent):
                self.got += 1
                if self.got >= n:
                    done.set()

    model = OpenAIRealtimeSIPModel() if model is None else model
    model.add_listener(Counter())
    await model.connect({"url": url, "api_key": "x", "call_id": "rtc_bench"})
    await done.wait()
    await model.close()


async def recv_sip_rtlayer(url: str, n: int) -> None:
    from rtlayer.integrations.openai_agents import RtlayerRealtimeModel
    from rtlayer.transports import SIPTransport

    await recv_sip(
        url, n, model=RtlayerRealtimeModel(transport=SIPTransport(reconnect=False, ping_interval=None))
    )


CLIENTS = {
    "agents": recv_agents,
    "agents+rtlayer": recv_agents_rtlayer,
    "agents session": recv_agents_session,
    "agents session+rtlayer": recv_agents_session_rtlayer,
}
SIP_CLIENTS = {"agents SIP": recv_sip, "agents SIP+rtlayer": recv_sip_rtlayer}


def measure(n: int) -> dict[str, float]:
    """Each client's CPU per delta: one untimed warm-up run each (the SDK builds pydantic schemas on first
    use: about 0.2 s, which would weigh on whichever client ran first), then ``interleaved`` rounds."""
    import agents.realtime.openai_realtime

    import rtlayer.integrations.openai_agents

    _ = (agents.realtime.openai_realtime, rtlayer.integrations.openai_agents)  # imports are not timed
    for client in CLIENTS.values():
        one_round_us("blast", client, 200)
    for client in SIP_CLIENTS.values():
        one_round_us("transcripts", client, 200)
    figures = interleaved("blast", CLIENTS, n)
    figures.update(interleaved("transcripts", SIP_CLIENTS, n))
    return figures


def report(n: int, figures: dict[str, float]) -> str:
    lines = [
        f"receive through the Agents SDK, {n} audio deltas ({n} transcript deltas on the SIP control socket)",
        "| client | CPU per delta (us) | vs the SDK's own model |",
        "|---|---|---|",
    ]
    for name, us in figures.items():
        anchor = figures[name.removesuffix("+rtlayer")]
        lines.append(f"| {name} | {us:.1f} | {us / anchor:.2f}x |")
    return "\n".join(lines)


def test_receive_through_the_agents_sdk(benchmark: Any) -> None:
    n = 20_000 if FULL else 2_000
    figures = benchmark.pedantic(measure, args=(n,), rounds=1, iterations=1)
    benchmark.extra_info.update({k: round(v, 2) for k, v in figures.items()})
    print("\n" + report(n, figures))
    assert all(v > 0 for v in figures.values())


if __name__ == "__main__":
    count = 20_000
    print(report(count, measure(count)))
    _ = pytest
