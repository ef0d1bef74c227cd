"""The RTP pacer: the native sending thread (``rtlayer_native.Pacer``) and the SIP front's use of it.

No timing is asserted here (lateness figures belong to ``bench/test_sip.py``); what is checked is
what the caller receives and what the session counts: the order packets leave in, that a clear drops
every packet not sent yet and counts it, that the truncation equals what was sent, that the RTP
stream stays contiguous across a clear, and that the thread stops cleanly.
"""

from __future__ import annotations

import array
import asyncio
import gc
import itertools
import json
import math
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from sip_helpers import Caller, PhoneApp, RtpSink

from rtlayer.audio import PCMU
from rtlayer.server.core.conversation import AudioRecord, Conversation
from rtlayer.server.core.media_output import MediaOutput, clear_playback, pull_playback
from rtlayer.server.realtime_server import RealtimeServer
from rtlayer.server.responders import AudioPart
from rtlayer.server.sip.call import SipCall
from rtlayer.server.sip.pacer import RtpPacer
from rtlayer.server.sip.sdp import parse_offer
from rtlayer.transports.sip import build_initial_config
from rtlayer_native import Pacer, monotonic_ns

pytestmark = pytest.mark.timeout(30)

FAR = 3600 * 10**9  # a deadline an hour away: the packet waits in the queue for the whole test


@pytest.fixture
def udp() -> Iterator[tuple[socket.socket, socket.socket]]:
    """A sending socket and a receiving one on 127.0.0.1."""
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx.bind(("127.0.0.1", 0))
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(5.0)
    try:
        yield tx, rx
    finally:
        tx.close()
        rx.close()


def test_packets_leave_in_deadline_order_across_streams(udp: tuple[socket.socket, socket.socket]) -> None:
    tx, rx = udp
    pacer = Pacer()
    port = rx.getsockname()[1]
    a, b = (
        pacer.open_stream(tx.fileno(), "127.0.0.1", port),
        pacer.open_stream(tx.fileno(), "127.0.0.1", port),
    )
    base = monotonic_ns() - 10**9  # all due already: the thread sends them at once, in order
    # (stream, deadline offset, payload): queued out of order; equal deadlines keep their queueing order
    plan = [(a, 30, b"a3"), (b, 10, b"b1"), (a, 10, b"a1"), (b, 40, b"b4"), (a, 20, b"a2"), (b, 20, b"b2")]
    for sid, offset, payload in plan:
        assert pacer.enqueue(sid, base + offset, payload)
    assert pacer.queued(a) == 3 and pacer.queued(b) == 3
    pacer.start()
    got = [rx.recv(100) for _ in plan]
    assert got == [b"b1", b"a1", b"a2", b"b2", b"a3", b"b4"]
    assert [pacer.stream_stats(s) for s in (a, b)] == [(0, 3, 0, 0), (0, 3, 0, 0)]  # queued, sent, ...
    pacer.close()
    assert pacer.stats()["sent"] == 6
    lateness = array.array("q", pacer.drain_lateness())
    assert len(lateness) == 6 and min(lateness) >= 0  # one record per packet sent, never early
    assert pacer.drain_lateness() == b""


def test_drop_removes_only_that_streams_unsent_packets_and_counts_them(
    udp: tuple[socket.socket, socket.socket],
) -> None:
    tx, rx = udp
    pacer = Pacer()
    pacer.start()
    port = rx.getsockname()[1]
    a, b = (
        pacer.open_stream(tx.fileno(), "127.0.0.1", port),
        pacer.open_stream(tx.fileno(), "127.0.0.1", port),
    )
    now = monotonic_ns()
    for i in range(4):
        pacer.enqueue(a, now + FAR + i, b"a")
    pacer.enqueue(b, now + FAR, b"b")
    assert pacer.drop(a) == 4
    assert pacer.drop(a) == 0
    assert pacer.queued(a) == 0 and pacer.queued(b) == 1
    pacer.enqueue(a, now - 1, b"late")  # the stream goes on after a drop
    assert rx.recv(100) == b"late"
    assert pacer.close_stream(b) == 1  # its end drops (and counts) what it still had queued
    pacer.close()
    assert pacer.stats() | {"queued": 0} == {
        "queued": 0,
        "sent": 1,
        "dropped": 5,
        "refused": 0,
        "send_errors": 0,
        "lateness_lost": 0,
    }
    with pytest.raises(KeyError):
        pacer.enqueue(b, now, b"x")


def test_a_full_queue_refuses_and_counts_bad_input_is_a_clear_error(
    udp: tuple[socket.socket, socket.socket],
) -> None:
    tx, rx = udp
    pacer = Pacer(max_packets=2, packet_size=200)
    sid = pacer.open_stream(tx.fileno(), "127.0.0.1", rx.getsockname()[1])
    assert [pacer.enqueue(sid, FAR, b"x") for _ in range(3)] == [True, True, False]
    assert pacer.stats()["refused"] == 1
    with pytest.raises(ValueError, match="201 bytes"):
        pacer.enqueue(sid, FAR, b"x" * 201)
    with pytest.raises(ValueError, match="numeric"):
        pacer.open_stream(tx.fileno(), "localhost", 5000)
    with pytest.raises(ValueError, match="port"):
        pacer.open_stream(tx.fileno(), "127.0.0.1", 0)
    pacer.close()
    assert pacer.stats()["dropped"] == 2  # closing drops (and counts) what never left
    with pytest.raises(RuntimeError, match="closed"):
        pacer.start()


def test_an_ipv6_stream(udp: tuple[socket.socket, socket.socket]) -> None:
    tx6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    rx6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    try:
        tx6.bind(("::1", 0))
        rx6.bind(("::1", 0))
        rx6.settimeout(5.0)
        pacer = Pacer()
        pacer.start()
        pacer.enqueue(pacer.open_stream(tx6.fileno(), "::1", rx6.getsockname()[1]), 0, b"v6")
        assert rx6.recv(10) == b"v6"
        pacer.close()
    finally:
        tx6.close()
        rx6.close()


def test_the_thread_stops_on_close_on_collection_and_at_interpreter_exit() -> None:
    pacer = Pacer()
    pacer.start()
    assert pacer.running and pacer.scheduling in ("slice", "default", "fifo")
    pacer.close()
    pacer.close()  # idempotent
    assert not pacer.running
    forgotten = Pacer()
    forgotten.start()
    del forgotten
    gc.collect()  # __dealloc__ joins the thread before freeing what it uses
    code = (
        "from rtlayer_native import Pacer, monotonic_ns\n"
        "import socket\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "p = Pacer(); p.start()\n"
        "sid = p.open_stream(s.fileno(), '127.0.0.1', 9)\n"
        "p.enqueue(sid, monotonic_ns() + 10**12, b'x')\n"
        "print('exiting with the thread running')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=20)
    assert done.returncode == 0 and "exiting" in done.stdout, done.stderr


class _ScriptedCall:
    """A paced call whose session has audio for the frames in ``audio_at`` (by frame index)."""

    def __init__(self, call_id: str, audio_at: set[int], ptime_ms: int = 20) -> None:
        self.id = call_id
        self.ended = False
        self.ptime_ns = ptime_ms * 1_000_000
        self.audio_at = audio_at
        self.asked: list[int] = []  # deadlines the pacer asked frames for
        self.skipped_ns = 0  # frame times without audio since the last packet, as SipCall counts them
        self.rewound_ns = 0

    def queue_frame(self, deadline_ns: int) -> bool:
        if self.id == "broken":
            raise RuntimeError("a bug in one call")
        self.asked.append(deadline_ns)
        audio = len(self.asked) - 1 in self.audio_at
        self.skipped_ns = 0 if audio else self.skipped_ns + self.ptime_ns
        return audio

    def has_audio(self) -> bool:
        return len(self.asked) in self.audio_at

    def rewind_silence(self, ns: int) -> int:
        ns = min(ns, self.skipped_ns)
        self.skipped_ns -= ns
        self.rewound_ns += ns
        return ns


def test_fill_runs_ahead_only_while_a_call_talks_and_keeps_each_calls_phase() -> None:
    ms = 1_000_000
    failed: list[str] = []
    pacer = RtpPacer(lookahead=0.04, run_ahead=0.2, on_error=lambda call: failed.append(call.id))
    silent, talking, broken = (
        _ScriptedCall("silent", set()),
        _ScriptedCall("talking", set(range(100))),
        _ScriptedCall("broken", set()),
    )
    pacer.add(silent, 1000 * ms)
    pacer.add(talking, 1005 * ms)  # its own phase: 5 ms after the other
    pacer.add(broken, 1000 * ms)
    offgrid = _ScriptedCall("offgrid", set())
    pacer.add(offgrid, 1000 * ms + 300_000)  # phases fall on a 1 ms grid, so calls share sender wake-ups
    pacer.fill_once(1000 * ms)
    assert offgrid.asked[0] == 1001 * ms
    assert silent.asked == [(1000 + 20 * i) * ms for i in range(3)]  # up to now + 40 ms
    assert talking.asked == [(1005 + 20 * i) * ms for i in range(10)]  # up to now + 200 ms
    assert failed == ["broken"]
    pacer.fill_once(1020 * ms)  # the next tick: one more frame each (the run-ahead is already full)
    assert silent.asked[-1] == 1060 * ms and talking.asked[-1] == 1205 * ms
    talking.audio_at = set()  # no more audio yet: a frame time beyond the lookahead is not skipped
    pacer.fill_once(1040 * ms)  # (a producer a little behind must not leave a gap inside the answer)
    assert talking.asked[-1] == 1205 * ms
    assert silent.asked[-1] == 1080 * ms
    silent.ended = offgrid.ended = True
    pacer.fill_once(2000 * ms)  # a stall of ~1 s: a talking call's clock is resynchronized, no burst
    assert silent.asked[-1] == 1080 * ms  # an ended call is forgotten
    assert pacer.resyncs == 1 and talking.asked[-1] == 2040 * ms and pacer.late_fills == 1
    assert pacer.stats()["resyncs"] == 1
    pacer.native.close()


class _PacedFrames:
    """The media output's ``ahead`` consumer, as the SIP call is: frames go into a native stream."""

    def __init__(self, pacer: Pacer, sid: int) -> None:
        self.pacer, self.sid = pacer, sid

    def unsent_frames(self) -> int:
        return self.pacer.queued(self.sid)

    def recall(self) -> int:
        return self.pacer.drop(self.sid)


def test_frames_pulled_ahead_and_not_sent_are_taken_back_before_truncation(
    udp: tuple[socket.socket, socket.socket],
) -> None:
    tx, rx = udp
    conversation = Conversation("conv_1")
    item = {"id": "item_1", "type": "message", "role": "assistant", "content": [{"transcript": "one two"}]}
    conversation.add(item)
    conversation.audio["item_1"] = AudioRecord(PCMU, nbytes=800)
    out = MediaOutput(PCMU)
    out.write("resp_1", "item_1", b"\x10" * 800)  # 100 ms
    pacer = Pacer()
    sid = pacer.open_stream(tx.fileno(), "127.0.0.1", rx.getsockname()[1])
    out.ahead = _PacedFrames(pacer, sid)
    now = monotonic_ns()
    for i in range(5):  # everything pulled ahead: two frames already due, three an hour away
        frame, _events = pull_playback(out, 160, conversation, {"resp_1"})
        assert frame is not None
        pacer.enqueue(sid, now - 1 if i < 2 else now + FAR, frame)
    pacer.start()
    assert rx.recv(200) == rx.recv(200) == b"\x10" * 160
    assert (
        len(out) == 3 * 160
    )  # nothing left in the buffer, but three frames still unplayed: a barge-in clears

    events = clear_playback(out, conversation, "resp_1")
    assert len(out) == 0
    pacer.close()
    assert events[0]["type"] == "conversation.item.truncated" and events[0]["audio_end_ms"] == 40
    assert events[-1] == {"type": "output_audio_buffer.cleared", "response_id": "resp_1"}
    assert conversation.audio["item_1"].played_bytes == 320
    assert pacer.stats()["sent"] == 2 and pacer.stats()["dropped"] == 3


def test_stopped_comes_when_the_last_packet_pulled_ahead_has_left(
    udp: tuple[socket.socket, socket.socket],
) -> None:
    tx, rx = udp
    conversation = Conversation("conv_1")
    out = MediaOutput(PCMU)
    out.write("resp_1", "item_1", b"\x10" * 320)  # 40 ms
    pacer = Pacer()
    sid = pacer.open_stream(tx.fileno(), "127.0.0.1", rx.getsockname()[1])
    out.ahead = _PacedFrames(pacer, sid)
    first, events = pull_playback(out, 160, conversation, set())
    assert events == [{"type": "output_audio_buffer.started", "response_id": "resp_1"}]
    second, events = pull_playback(out, 160, conversation, set())
    assert first is not None and second is not None and events == []
    for queued in (first, second):  # both frames pulled ahead, the sender not running yet
        pacer.enqueue(sid, monotonic_ns() - 1, queued)
    # the response is done and its buffer empty, but its last packets have not left: no stopped yet
    frame, events = pull_playback(out, 160, conversation, set())
    assert frame is None and events == []
    pacer.start()
    assert rx.recv(200) == rx.recv(200) == b"\x10" * 160
    for _ in range(500):  # the sender counts a packet as sent right after sendto
        if pacer.queued(sid) == 0:
            break
        time.sleep(0.002)
    frame, events = pull_playback(out, 160, conversation, set())
    assert events == [{"type": "output_audio_buffer.stopped", "response_id": "resp_1"}]
    pacer.close()


# -- the SIP front: a clear while answer audio plays -------------------------------------------------


class _Tone:
    """Answers every response with 10 s of a quiet 440 Hz tone, produced at once (in 100 ms parts)."""

    async def respond(self, request: Any) -> AsyncIterator[Any]:
        rate = 24000
        samples = [int(6000 * math.sin(2 * math.pi * 440 * i / rate)) for i in range(rate // 10)]
        part = array.array("h", samples).tobytes()
        for _ in range(100):
            yield AudioPart(part)
            await asyncio.sleep(0)


async def _wait_for(check: Any, within: float = 5.0) -> None:
    for _ in range(int(within / 0.01)):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met in time")


async def test_a_clear_drops_unsent_packets_and_truncation_equals_what_was_sent() -> None:
    app = PhoneApp(server_url="")
    await app.start()
    server = RealtimeServer(sip_port=0, webhook_url=app.url, webhook_secret=app.secret, responder=_Tone())
    await server.start()
    # a whole second of run-ahead (200 ms by default) so that many packets are queued when the clear comes
    server.sip.pacer.run_ahead_ns = 10**9
    sink = RtpSink()
    await sink.start()
    caller = Caller(server.sip.port)
    await caller.start()
    try:
        assert app.client is not None
        app.client.base_url = server.url + "/v1"
        caller.invite(sink.port)
        incoming = await app.next_call()
        await app.client.accept(incoming.call_id, build_initial_config(turn_detection=None))
        ok = await caller.expect(200)
        caller.send_raw(caller.request("ACK", cseq=1).to_bytes())
        assert parse_offer(ok.body).port > 0
        call = next(c for c in server.sip.calls.values() if c.id == incoming.call_id)
        assert isinstance(call, SipCall) and call.runner is not None
        events: list[dict[str, Any]] = []
        call.runner.add_sink(lambda text: events.append(json.loads(text)))

        call.runner.receive_event({"type": "response.create"})
        await _wait_for(lambda: len(sink.packets) >= 10)
        call.runner.receive_event({"type": "output_audio_buffer.clear"})
        sent_at_clear = call.rtp_sent
        queued_at_clear = call.unsent_frames()
        await _wait_for(lambda: len(sink.packets) >= sent_at_clear)

        # nothing queued is left; whatever was pulled and not sent was counted, not sent
        assert queued_at_clear == 0 and call.rtp_sent == sent_at_clear
        assert call.rtp_dropped > 10  # a second of lookahead: dozens were queued, none of them left
        assert len(sink.packets) == sent_at_clear == call.sender.packets_sent
        assert call.stats()["rtp_dropped"] == call.rtp_dropped
        truncated = [e for e in events if e["type"] == "conversation.item.truncated"]
        assert len(truncated) == 1
        assert truncated[0]["audio_end_ms"] == 20 * sent_at_clear  # what the caller was sent, exactly
        assert any(e["type"] == "output_audio_buffer.cleared" for e in events)
        seqs = [p[2] for p in sink.packets]
        markers = [p[4] for p in sink.packets]
        assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(seqs))
        assert markers[0] and not any(markers[1:])  # one talk spurt

        # the next answer continues the sequence numbers with no gap and starts a new talk spurt
        before = len(sink.packets)
        last_seq, last_ts = sink.packets[-1][2], sink.packets[-1][3]
        call.runner.receive_event({"type": "response.create"})
        await _wait_for(lambda: len(sink.packets) >= before + 3)
        nxt = sink.packets[before]
        assert nxt[2] == (last_seq + 1) & 0xFFFF
        assert nxt[4]  # marker
        assert (nxt[3] - last_ts) & 0xFFFFFFFF > 160  # the cleared time slots passed as silence
    finally:
        caller.close()
        sink.close()
        await server.close()
        await app.close()


def test_an_answer_starts_at_once_not_at_the_next_fill_and_never_before_the_last_packet() -> None:
    ms = 1_000_000
    # prompt_start=False: kick only records when the audio arrived; the loop's turn (start_now) is run
    # here by hand, at a chosen now
    pacer = RtpPacer(lookahead=0.04, run_ahead=0.2, prompt_start=False)
    call = _ScriptedCall("answering", set())
    pacer.add(call, 1000 * ms)
    pacer.fill_once(1000 * ms)  # silent: frame times 1000, 1020, 1040 skipped (the RTP clock ran on)
    assert call.asked == [1000 * ms, 1020 * ms, 1040 * ms]
    # an answer's audio arrives at 1003.4 ms: frames 3..7 are there (100 ms), then the producer lags
    call.audio_at = set(range(3, 8))
    pacer.kick(call, 1003_400_000)
    pacer.start_now({call.id}, 1003_400_000)
    # the skipped silence from 1005 ms on is taken back: first deadline = the next millisecond + 1 ms margin
    assert call.rewound_ns == (1060 - 1005) * ms
    assert call.asked[3:] == [(1005 + 20 * i) * ms for i in range(5)]  # only the audio already there
    assert list(pacer.answer_start_ms) == [1.6]  # 1005 - 1003.4 ms; the former way: 1060 - 1003.4
    # the regular fill runs on from there, far ahead while talking (no second phase shift)
    call.audio_at = set(range(3, 30))
    pacer.fill_once(1020 * ms)
    assert call.asked[8:] == [(1105 + 20 * i) * ms for i in range(6)]
    # a kick while the call is still talking changes nothing: its frames already follow on
    pacer.kick(call, 1021 * ms)
    assert len(pacer.answer_start_ms) == 1 and call.rewound_ns == 55 * ms
    pacer.native.close()


def test_an_answer_right_after_the_last_packet_does_not_overlap_it() -> None:
    ms = 1_000_000
    pacer = RtpPacer(lookahead=0.04, run_ahead=0.2)
    call = _ScriptedCall("tail", {0})  # one packet at 1000 ms, then silence
    pacer.add(call, 1000 * ms)
    pacer.fill_once(1000 * ms)  # 1000 (sent), 1020 and 1040 skipped
    call.audio_at = {0, 3}
    pacer.start_now({call.id}, 990 * ms)  # "now" before the last packet's slot ends
    assert call.asked[3] == 1020 * ms  # the slot after the last packet, not earlier: 20 ms spacing kept
    assert call.rewound_ns == 40 * ms
    pacer.native.close()
