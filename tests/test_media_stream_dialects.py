"""The sans-I/O halves of the media-stream bridge, driven directly: each provider's dialect against the
simulator's provider side (two independent readings of the same documentation), pacing, playback truth and
input conditioning with time as an input."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rtlayer.audio import PCMU, AudioFormat
from rtlayer.testing.phone.providers import AppAudio, AppClear, AppMark, AppProblem, CallInfo, provider_side
from rtlayer.transports.media_stream import (
    CallStart,
    DtmfEvent,
    InboundAudio,
    OutboundAudio,
    ProviderProblem,
    dialect_for,
)
from rtlayer.transports.media_stream.events import CallStop, MediaIn, PlaybackAck

CALL = CallInfo(custom={"lang": "fr"})

FORMATS = [
    ("twilio", "pcmu", 8000),
    ("telnyx", "pcmu", 8000),
    ("telnyx", "pcma", 8000),
    ("telnyx", "pcm16", 16000),
    ("plivo", "pcm16", 8000),
    ("plivo", "pcm16", 16000),
    ("plivo", "pcmu", 8000),
    ("exotel", "pcm16", 8000),
    ("vonage", "pcm16", 16000),
]


@pytest.mark.parametrize(("provider", "codec", "rate"), FORMATS)
def test_a_dialect_reads_its_providers_opening_media_dtmf_and_stop(
    provider: str, codec: str, rate: int
) -> None:
    side = provider_side(provider, codec, rate)
    dialect = dialect_for(provider)
    events = [e for frame in side.opening(CALL) for e in dialect.receive(frame)]
    start = next(e for e in events if isinstance(e, CallStart))
    assert start.call_id == CALL.call_id
    assert start.custom_parameters["lang"] == "fr"
    assert dialect.format.audio == AudioFormat(codec, rate)  # type: ignore[arg-type]
    assert dialect.format.big_endian == (provider == "telnyx" and codec == "pcm16")

    ramp = bytes(range(256)) * (rate * 2 // 50 // 256 + 1)
    pcm = ramp[: rate * 2 // 50]  # 20 ms of PCM16
    (media,) = dialect.receive(side.media(CALL, pcm, 40))
    assert isinstance(media, MediaIn)
    assert media.audio == side.encode(pcm)
    assert media.timestamp_ms == (None if provider == "vonage" else 40)
    (dtmf,) = dialect.receive(side.dtmf(CALL, "#"))
    assert isinstance(dtmf, DtmfEvent) and dtmf.digit == "#"
    stop = side.stop(CALL)
    if stop is not None:
        assert isinstance(dialect.receive(stop)[0], CallStop)


@pytest.mark.parametrize(("provider", "codec", "rate"), FORMATS)
def test_the_provider_side_takes_what_a_dialect_builds(provider: str, codec: str, rate: int) -> None:
    side = provider_side(provider, codec, rate)
    dialect = dialect_for(provider)
    for frame in side.opening(CALL):
        dialect.receive(frame)
    payload = b"\x01\x02" * (dialect.out_frame_bytes // 2)
    heard = side.parse(dialect.audio(payload))
    assert isinstance(heard, AppAudio), heard
    assert side.encode(heard.pcm16) == payload
    assert side.parse(dialect.mark("3.17")) == AppMark("3.17")
    assert side.parse(dialect.bridge_mark("3.17")) == AppMark("3.17")  # the hot path's concatenation
    assert side.parse(dialect.clear()) == AppClear()


def test_the_outbound_frame_sizes_are_the_providers() -> None:
    sizes = {name: dialect_for(name).out_frame_bytes for name in ("twilio", "plivo", "exotel", "vonage")}
    assert sizes == {"twilio": 160, "plivo": 320, "exotel": 320, "vonage": 640}
    assert all(dialect_for("exotel").out_frame_bytes % 320 == 0 for _ in range(1))


@pytest.mark.parametrize(
    ("frame", "kind"),
    [
        ('{"event": "media", "media": {"payload": "AAAA"}}', "media_before_start"),
        ('{"event": "nope"}', "unknown_event"),
        ("[1, 2]", "not_an_object"),
        ("{oops", "not_json"),
        (b"\x00\x01", "binary_frame"),
        ('{"event": "mark", "mark": {}}', "bad_mark"),
        ('{"event": "dtmf", "dtmf": {"digit": "99"}}', "bad_dtmf"),
    ],
)
def test_bad_frames_become_problems_never_exceptions(frame: str | bytes, kind: str) -> None:
    (problem,) = dialect_for("twilio").receive(frame)
    assert isinstance(problem, ProviderProblem) and problem.kind == kind


def test_bad_base64_and_odd_l16_are_problems() -> None:
    dialect = dialect_for("exotel")
    for frame in provider_side("exotel").opening(CALL):
        dialect.receive(frame)
    assert dialect.receive('{"event": "media", "media": {"payload": "%%%"}}')[0].kind == "bad_base64"  # type: ignore[union-attr]
    assert dialect.receive('{"event": "media", "media": {"payload": "AA=="}}')[0].kind == "odd_pcm"  # type: ignore[union-attr]
    assert dialect.receive(provider_side("exotel").opening(CALL)[1])[0].kind == "second_start"  # type: ignore[union-attr]


def test_media_frames_that_lie_about_their_shape_are_problems_or_keep_what_is_usable() -> None:
    """The media path reads its fields inline (fifty frames a second): a peer that lies about a field's type
    gets a problem counted, never an exception, and a timestamp that is no integer is dropped, not trusted."""
    dialect = dialect_for("twilio")
    for frame in provider_side("twilio").opening(CALL):
        dialect.receive(frame)
    for media in ([1, 2], "AAAA", None, {"payload": 5}, {"payload": ["AAAA"]}):
        (problem,) = dialect.receive(json.dumps({"event": "media", "media": media}))
        assert isinstance(problem, ProviderProblem) and problem.kind == "missing_payload", media
    huge = "9" * 5000  # past int()'s digit limit
    stamps: list[int | None] = []
    for stamp in ("40", 40, 40.7, "forty", [40], True, huge):
        (event,) = dialect.receive(
            json.dumps({"event": "media", "media": {"payload": "AAAA", "timestamp": stamp}})
        )
        assert isinstance(event, MediaIn) and event.audio == b"\x00\x00\x00"
        stamps.append(event.timestamp_ms)
    assert stamps == [40, 40, 40, None, None, 1, None]
    # A number past a double, in a text long and bracket-heavy enough for the stdlib parser: refused there
    # too (an infinite timestamp was an OverflowError out of the dialect, which ended the call).
    pad = ",".join(["[]"] * 3500)
    (problem,) = dialect.receive(
        f'{{"event": "media", "media": {{"payload": "AAAA", "timestamp": 1e400}}, "pad": [{pad}]}}'
    )
    assert isinstance(problem, ProviderProblem) and problem.kind == "not_json"
    for message in (bytearray(b"\x00\x01"), memoryview(b"\x00\x01")):  # binary in any buffer type
        (problem,) = dialect.receive(message)  # type: ignore[arg-type]
        assert isinstance(problem, ProviderProblem) and problem.kind == "binary_frame"
    (problem,) = dialect.receive(12345)  # type: ignore[arg-type]  # an adapter handing over something else
    assert isinstance(problem, ProviderProblem) and problem.kind == "not_a_message"


def _with(shape: dict[str, Any], value: str) -> str:
    """JSON text of ``shape`` with the JSON text ``value`` where ``shape`` holds ``"VALUE"``."""
    return json.dumps(shape).replace('"VALUE"', value)


_ACKS = {
    "twilio": {"event": "mark", "mark": {"name": "VALUE"}},
    "plivo": {"event": "playedStream", "name": "VALUE"},
    "vonage": {"event": "websocket:notify", "payload": {"name": "VALUE"}},
}
_STARTS = {
    "twilio": {"event": "start", "start": {"customParameters": "VALUE"}},
    "plivo": {"event": "start", "start": {"customParameters": "VALUE"}},
    "vonage": {"event": "websocket:connected", "content-type": "audio/l16;rate=16000", "x": "VALUE"},
}


@pytest.mark.parametrize("provider", ["twilio", "plivo", "vonage"])
def test_deep_values_are_problems_where_the_dialect_would_print_keep_or_pass_them_on(provider: str) -> None:
    """Media frames and playback acks are parsed without the depth check (fifty of each a second): their
    paths read known keys and never turn a value of unchecked type into text. Every other message is checked
    first, so a deep ``start`` never reaches the app; nothing raises (a deep list as text is a RecursionError)."""
    dialect = dialect_for(provider)
    for frame in provider_side(provider).opening(CALL):
        dialect.receive(frame)
    deep = "[" * 3000 + "]" * 3000
    (problem,) = dialect.receive(_with(_ACKS[provider], deep))
    assert isinstance(problem, ProviderProblem) and problem.kind == "bad_mark"
    (ack,) = dialect.receive(_with(_ACKS[provider], "7"))  # a number is a name too (printed)
    assert ack == PlaybackAck("7")
    for shape in ({"event": "VALUE"}, _STARTS[provider], {"event": "dtmf", "dtmf": {"digit": "VALUE"}}):
        (problem,) = dialect.receive(_with(shape, deep))
        assert isinstance(problem, ProviderProblem) and problem.kind == "too_deep", shape
    if provider != "vonage":
        (problem,) = dialect.receive(_with({"event": "media", "media": {"payload": "VALUE"}}, deep))
        assert isinstance(problem, ProviderProblem) and problem.kind == "missing_payload"
        media = {"event": "media", "media": {"payload": "AAAAAA==", "timestamp": "VALUE"}}
        (event,) = dialect.receive(_with(media, deep))  # a timestamp that is no integer is dropped
        assert event == MediaIn(bytes(4), None)


@pytest.mark.parametrize("provider", ["twilio", "telnyx", "plivo", "exotel", "vonage"])
def test_the_simulators_side_reads_a_hostile_apps_frames_as_problems(provider: str) -> None:
    """``rtlayer phone`` reads what an app sends as a provider would: bad frames are problems it reports,
    never exceptions that end the simulated call (a deep frame was a RecursionError, a ``mark`` that is a
    string an AttributeError: the ``media.simulator`` fuzz target found that one)."""
    side = provider_side(provider)
    deep = '{"event": "media", "x": ' + "[" * 5000 + "]" * 5000 + "}"
    wrong_types = [
        '{"event": "mark", "mark": "x"}',
        '{"event": "media", "media": "x"}',
        '{"event": "playAudio", "media": 1}',
    ]
    for frame in (deep, "{oops", "[1, 2]", '{"event": 1e400}', *wrong_types):
        assert isinstance(side.parse(frame), AppProblem), frame[:30]


def test_numbers_past_what_int_takes_are_problems_not_exceptions() -> None:
    """Found by the ``media.dialect`` fuzz target: a Vonage rate of 5,000 digits (past ``int()``'s limit), and a
    mark name whose generation holds a digit ``int()`` refuses (``²``) or too many, each raised ValueError out
    of the bridge's halves and ended the call."""
    vonage = dialect_for("vonage")
    rate = '{"event": "websocket:connected", "content-type": "audio/l16;rate=' + "9" * 5000 + '"}'
    (problem,) = vonage.receive(rate)
    assert isinstance(problem, ProviderProblem) and problem.kind == "bad_format"
    out = OutboundAudio(20)
    out.clear()
    for name in ("².1", "1.²", "9" * 5000 + ".1", "0.1"):
        assert out.ack(name) is None
    assert (out.unknown_acks, out.stale_acks) == (3, 1)  # "0.1": ours, from the generation before the clear


def test_outbound_audio_leaves_lead_ahead_then_one_frame_per_acknowledgement() -> None:
    out = OutboundAudio(20, lead_ms=80, max_ahead_ms=300)
    for _ in range(20):
        out.push(b"\xff" * 160, "item_a", 0)
    sent = out.pop_ready(now=0.0)
    assert [f.mark for f in sent] == ["0.1", "0.2", "0.3", "0.4"]  # 80 ms ahead
    assert out.unacked_ms == 80
    assert out.pop_ready(now=0.001) == []
    assert out.ack("0.1") is not None
    assert [f.mark for f in out.pop_ready(now=0.02)] == ["0.5"]


def test_outbound_audio_keeps_real_time_when_acknowledgements_are_late_but_never_past_the_cap() -> None:
    out = OutboundAudio(20, lead_ms=80, max_ahead_ms=120)
    for _ in range(20):
        out.push(b"\xff" * 160, "item_a", 0)
    assert len(out.pop_ready(now=0.0)) == 4
    assert out.next_due(0.0) == pytest.approx(0.02)  # frame 5 is due at (4 + 1) * 20 - 80 ms
    assert len(out.pop_ready(now=0.02)) == 1  # the clock, no acknowledgement yet
    assert len(out.pop_ready(now=0.04)) == 1  # 120 ms held: the cap
    assert out.pop_ready(now=1.0) == [] and out.next_due(1.0) is None  # only an acknowledgement releases more


def _play_through_pauses(
    out: OutboundAudio, pauses: list[float], pause_s: float, seconds: float, transit_s: float = 0.001
) -> list[tuple[float, float]]:
    """A provider that plays at real time and echoes each mark when its frame has played, against a bridge whose
    loop stops for ``pause_s`` at each of ``pauses`` (nothing sent, echoes read at the end of the pause), with
    a whole answer queued from the start. Simulated in 1 ms steps; returns the underruns (when, ms) the caller
    would hear."""
    for _ in range(int(seconds * 50) + 50):
        out.push(b"\xff" * 160, "item_a", 0)
    echoes: list[tuple[float, str]] = []  # (reaches the bridge, mark)
    play_end: float | None = None
    underruns: list[tuple[float, float]] = []
    for step in range(int(seconds * 1000)):
        now = step / 1000
        if any(p <= now < p + pause_s for p in pauses):
            continue
        while echoes and echoes[0][0] <= now:
            out.ack(echoes.pop(0)[1], now)
        for frame in out.pop_ready(now):
            arrives = now + transit_s
            if play_end is not None and arrives > play_end + 1e-9:
                underruns.append((now, round((arrives - play_end) * 1000, 1)))
            play_end = max(play_end or 0.0, arrives) + 0.020
            echoes.append((play_end + transit_s, frame.mark))
    return underruns


def test_the_lead_grows_after_a_pause_so_the_same_pauses_never_starve_the_caller_again() -> None:
    # The bridge's loop stops for 90 ms once a second (descheduled, or busy with other calls): more than the
    # 60-80 ms the provider holds at an 80 ms lead. The first pause is heard; the acknowledgement gap it
    # leaves raises the lead, and the next eight pass unheard though the answer was queued all along.
    out = OutboundAudio(20, lead_ms=80, max_ahead_ms=300)
    pauses = [1.0 + k for k in range(9)]
    underruns = _play_through_pauses(out, pauses, pause_s=0.090, seconds=10.0)
    assert [round(when) for when, _ in underruns] == [1], underruns
    assert 150 <= out.lead_ms <= 300 and out.unacked_ms <= 300


def test_on_a_steady_path_the_lead_stays_at_its_base() -> None:
    out = OutboundAudio(20, lead_ms=80, max_ahead_ms=300)
    assert _play_through_pauses(out, [], pause_s=0.0, seconds=3.0) == []
    assert out.lead_ms == pytest.approx(80, abs=2) and out.unacked_ms <= 80


def test_a_clear_starts_a_new_generation_and_reports_what_was_unheard_per_item() -> None:
    out = OutboundAudio(20, lead_ms=60)
    for item in ("a", "a", "a", "b", "b"):
        out.push(b"\xff" * 160, item, 0)
    sent = out.pop_ready(now=0.0)
    assert out.ack(sent[0].mark) is not None
    unheard = out.clear()
    assert unheard == {("a", 0): 40.0, ("b", 0): 40.0}
    assert out.queued_frames == 0 and out.idle
    assert out.ack(sent[1].mark) is None and out.stale_acks == 1  # returned for cleared audio: ignored
    assert out.ack("bogus") is None and out.unknown_acks == 1
    out.push(b"\xff" * 160, "c", 0)
    assert out.pop_ready(now=1.0)[0].mark.startswith("1.")


def test_inbound_audio_fills_a_timestamp_gap_with_bounded_silence() -> None:
    inbound = InboundAudio(PCMU, max_gap_fill_ms=100)
    frame = b"\x00" * 160
    assert inbound.media(frame, 0, now=0.0) == [frame]
    assert inbound.media(frame, 20, now=0.02) == [frame]
    filled, audio = inbound.media(frame, 80, now=0.08)  # 40..80 ms lost
    assert filled == b"\xff" * 320 and audio == frame
    filled, _ = inbound.media(frame, 1000, now=1.0)  # 900 ms lost: 100 filled, the rest counted
    assert len(filled) == 800
    assert inbound.gap_filled_ms == 140 and inbound.gap_unfilled_ms == 800


def test_a_stalled_stream_gets_trailing_silence_once_and_it_can_be_switched_off() -> None:
    inbound = InboundAudio(AudioFormat("pcm16", 8000), trailing_silence_ms=600, stall_ms=200)
    inbound.media(b"\x10\x00" * 160, 0, now=0.0)
    assert inbound.check_stall(0.1) is None
    silence = inbound.check_stall(0.25)
    assert silence == b"\x00" * 9600
    assert inbound.check_stall(0.5) is None
    # The stream resumes 500 ms later (its timestamps): the 600 ms already sent cover that gap, no more fill.
    assert inbound.media(b"\x10\x00" * 160, 520, now=0.52) == [b"\x10\x00" * 160]
    off = InboundAudio(PCMU, trailing_silence_ms=0)
    off.media(b"\x00" * 160, None, now=0.0)
    assert off.check_stall(10.0) is None
