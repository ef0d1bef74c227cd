"""``rtlayer talk INPUT.wav -o REPLY.wav``: speak a WAV file to a Realtime server, write its spoken answer.

The WAV (PCM16, mono or stereo, any supported rate) is streamed at real-time pace (``--pace``) in 20 ms
chunks, followed by silence so that the server's turn detection closes the turn; the live log says what
happens (speech detected, response started, transcript, audio received, done). With no ``--url`` the embedded
server runs in-process. The answer is the audio of the responses that completed, at ``--rate`` Hz.

The input file and the output path are checked before connecting (the output by opening it). ``--timeout``
bounds the wait for the answer once the input has been sent. Ctrl-C ends the run with one line and writes
the audio received so far.

Exit status: 0 when a complete answer was written; 1 when none came (the audio received, if any, is
still written); 2 for a bad flag, a bad input file, an output that cannot be written or a connection
failure; 130 after Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from dataclasses import dataclass, field
from typing import Any, TextIO

from .._extras import MissingExtraError
from ..audio import AudioFormat
from ..exceptions import InvalidAudioError, RtlayerError
from ..transport import AudioEvent, TurnDoneEvent, TurnStartedEvent
from ..wav import check_writable, read_wav, write_wav
from ._args import non_negative, non_negative_int, positive_seconds

CHUNK_MS = 20
INTERRUPTED = 130  # the shell's status for a run ended by SIGINT (128 + 2)


def answer_rate(text: str) -> int:
    """A sample rate the answer WAV can have (one the audio converter supports)."""
    try:
        rate = int(text)
        AudioFormat("pcm16", rate)
    except InvalidAudioError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    return rate


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", help="the WAV file to speak (PCM16, mono or stereo)")
    parser.add_argument("-o", "--output", required=True, help="where to write the answer (WAV)")
    parser.add_argument(
        "--url",
        default=None,
        help="the server: http(s)://host[:port][/v1], ws(s)://.../v1/realtime or host:port "
        "(default: the embedded server; with a key and no URL, the hosted service)",
    )
    parser.add_argument("--api-key", default=None, help="key for --url (default: $OPENAI_API_KEY)")
    parser.add_argument("--model", default="gpt-realtime")
    parser.add_argument("--transport", default="websocket", choices=("websocket", "webrtc", "fetch-upgrade"))
    parser.add_argument(
        "--rate", type=answer_rate, default=24000, help="sample rate of the answer WAV (default 24000)"
    )
    parser.add_argument(
        "--pace", type=non_negative, default=1.0, help="x real time to stream the input (0: no pacing)"
    )
    parser.add_argument(
        "--timeout",
        type=positive_seconds,
        default=60.0,
        help="seconds to wait for the answer once the input has been sent (default 60)",
    )
    parser.add_argument("--instructions", default=None)
    parser.add_argument(
        "--silence-ms",
        type=non_negative_int,
        default=500,
        help="silence that ends a turn (server VAD; default 500)",
    )
    parser.add_argument("--quiet", action="store_true", help="no live log")


# The first bytes of files people mistake for WAV, so the error can say what the file is instead.
def read_input(path: str) -> tuple[bytes, int]:
    """(mono PCM16, rate) of the input WAV, refused when it holds less than one chunk of audio."""
    data, rate = read_wav(path)
    shortest = rate * 2 * CHUNK_MS // 1000
    if len(data) < shortest:
        samples = len(data) // 2
        raise ValueError(
            f"{path}: {samples} sample{'s' * (samples != 1)} of audio; rtlayer talk needs at least "
            f"{CHUNK_MS} ms ({shortest // 2} samples at {rate} Hz)"
        )
    return data, rate


@dataclass
class _Turns:
    """What the live log and the answer file need to know about the session."""

    out: TextIO
    quiet: bool
    start: float
    now: Any
    audio: dict[str, list[bytes]] = field(default_factory=dict)
    completed: list[str] = field(default_factory=list)
    statuses: dict[str, str] = field(default_factory=dict)
    active: set[str] = field(default_factory=set)
    finished: int = 0
    last_done: float = 0.0
    last_audio: float = 0.0

    def log(self, text: str) -> None:
        if not self.quiet:
            print(f"[{self.now() - self.start:6.2f} s] {text}", file=self.out, flush=True)

    def on_raw(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "input_audio_buffer.speech_started":
            self.log(f"speech detected at {event.get('audio_start_ms', 0) / 1000:.2f} s of input")
        elif kind == "input_audio_buffer.speech_stopped":
            self.log(f"speech ended at {event.get('audio_end_ms', 0) / 1000:.2f} s of input")
        elif kind == "conversation.item.input_audio_transcription.completed":
            self.log(f"you said: {event.get('transcript', '')}")
        elif kind == "response.output_audio_transcript.done":
            self.log(f"transcript: {event.get('transcript', '')}")
        elif kind == "response.output_text.done":
            self.log(f"text: {event.get('text', '')}")
        elif kind == "error":
            error = event.get("error") or {}
            self.log(f"server error: {error.get('message', '')} ({error.get('code')})")

    def on_started(self, event: TurnStartedEvent) -> None:
        self.active.add(event.response_id)
        self.log(f"response started ({event.response_id})")

    def on_audio(self, event: AudioEvent) -> None:
        self.last_audio = self.now()
        if event.response_id not in self.audio:
            self.log("answer audio arriving")
        self.audio.setdefault(event.response_id, []).append(event.data)

    def on_done(self, event: TurnDoneEvent) -> None:
        self.active.discard(event.response_id)
        self.finished += 1
        self.last_done = self.now()
        self.statuses[event.response_id] = event.status
        if event.status == "completed":
            self.completed.append(event.response_id)

    def log_turns_done(self, rate: int) -> None:
        """Once the answer's audio stopped arriving (over WebRTC it plays out in real time after
        ``response.done``): what each response brought, then how it ended."""
        for response_id, status in self.statuses.items():
            seconds = sum(len(b) for b in self.audio.get(response_id, [])) / 2 / rate
            self.log(f"audio received: {seconds:.2f} s")
            self.log(f"done: {status} ({response_id})")

    def answer(self) -> bytes:
        """The audio of the completed responses, or, when none completed, all the audio received."""
        ids = self.completed or list(self.audio)
        return b"".join(b"".join(self.audio.get(i, [])) for i in ids)


def _make_transport(args: argparse.Namespace, in_rate: int) -> Any:
    from .. import transports

    name = {
        "websocket": "WebSocketTransport",
        "webrtc": "WebRTCTransport",
        "fetch-upgrade": "FetchUpgradeTransport",
    }
    cls = getattr(transports, name[args.transport])
    return cls(input_format=AudioFormat("pcm16", in_rate), output_format=AudioFormat("pcm16", args.rate))


async def _converse(
    transport: Any, args: argparse.Namespace, url: str | None, pcm: bytes, in_rate: int, turns: _Turns
) -> None:
    """Connect, stream the input, then wait (``--timeout``, raising ``TimeoutError``) until every
    response is done and its audio has stopped arriving."""
    loop = asyncio.get_running_loop()
    config: dict[str, Any] = {
        "turn_detection": {"type": "server_vad", "silence_duration_ms": args.silence_ms}
    }
    if args.instructions:
        config["instructions"] = args.instructions
    await transport.connect(url=url, api_key=args.api_key, model=args.model, initial_session_config=config)
    where = (transport.url or "").split("?")[0]
    turns.log(f"connected to {'the embedded server at ' if transport.embedded_server else ''}{where}")
    turns.log(f"streaming {args.input} ({len(pcm) / 2 / in_rate:.2f} s at {in_rate} Hz)")
    chunk = in_rate * 2 * CHUNK_MS // 1000
    sent_s = 0.0
    started = loop.time()

    async def send(data: bytes) -> None:
        nonlocal sent_s
        await transport.send_audio(data)
        sent_s += len(data) / 2 / in_rate
        if args.pace > 0:
            await asyncio.sleep(max(0.0, started + sent_s / args.pace - loop.time()))

    for offset in range(0, len(pcm), chunk):
        await send(pcm[offset : offset + chunk])
    turns.log("input sent; waiting for the answer")
    silence = b"\x00\x00" * (chunk // 2)
    # Keep the line open with silence (as a microphone would) until every response is done and its
    # audio has stopped arriving (over WebRTC it plays out in real time after response.done).
    async with asyncio.timeout(args.timeout):
        while (
            turns.finished == 0 or turns.active or loop.time() - max(turns.last_done, turns.last_audio) < 0.5
        ):
            await send(silence)
            if args.pace <= 0:
                await asyncio.sleep(CHUNK_MS / 1000)
    turns.log_turns_done(args.rate)


def _cancel_on_sigint(task: asyncio.Task[None]) -> asyncio.Event:
    """Ctrl-C cancels ``task`` (instead of a traceback out of ``asyncio.run``); the event says it came.
    Where the loop cannot take signals (Windows), Ctrl-C stays a ``KeyboardInterrupt`` for ``run``."""
    interrupted = asyncio.Event()

    def on_sigint() -> None:
        interrupted.set()
        task.cancel()

    with contextlib.suppress(NotImplementedError, RuntimeError):
        asyncio.get_running_loop().add_signal_handler(signal.SIGINT, on_sigint)
    return interrupted


async def talk(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    pcm, in_rate = read_input(args.input)
    check_writable(args.output)
    loop = asyncio.get_running_loop()
    turns = _Turns(out, args.quiet, loop.time(), loop.time)
    try:
        transport = _make_transport(args, in_rate)
    except MissingExtraError as exc:
        print(f"rtlayer talk: {exc}", file=sys.stderr)
        return 2
    transport.on("*", turns.on_raw)
    transport.on("turn_started", turns.on_started)
    transport.on("audio", turns.on_audio)
    transport.on("turn_done", turns.on_done)
    url = args.url
    conversation: asyncio.Task[None] | None = None
    try:
        conversation = asyncio.create_task(_converse(transport, args, url, pcm, in_rate, turns))
        interrupted = _cancel_on_sigint(conversation)
        try:
            await conversation
        except asyncio.CancelledError:
            if not interrupted.is_set():
                raise
            return _finish_interrupted(args, turns)
        except TimeoutError:
            turns.log_turns_done(args.rate)
            return _finish_incomplete(args, turns, f"no complete answer within {args.timeout:g} s")
        finally:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signal.SIGINT)
    except (RtlayerError, OSError) as exc:
        print(f"rtlayer talk: {exc}", file=sys.stderr)
        return 2
    finally:
        if conversation is not None and not conversation.done():
            conversation.cancel()
        await transport.close()
    if not turns.completed:
        ended = ", ".join(sorted(set(turns.statuses.values()))) or "none"
        return _finish_incomplete(args, turns, f"no complete answer (responses ended: {ended})")
    answer = turns.answer()
    if not _write(args, answer):
        return 2
    turns.log(f"wrote {args.output} ({len(answer) / 2 / args.rate:.2f} s)")
    return 0


def _write(args: argparse.Namespace, pcm: bytes) -> bool:
    try:
        write_wav(args.output, pcm, args.rate)
    except OSError as exc:
        print(f"rtlayer talk: cannot write {args.output} ({exc.strerror or exc})", file=sys.stderr)
        return False
    return True


def _kept(args: argparse.Namespace, pcm: bytes) -> str:
    """What became of the audio received: written to the output, or that there was none."""
    if not pcm:
        return "no answer audio was received"
    if not _write(args, pcm):
        return "the audio received could not be written"
    return f"wrote the {len(pcm) / 2 / args.rate:.2f} s received to {args.output}"


def _finish_incomplete(args: argparse.Namespace, turns: _Turns, why: str) -> int:
    print(f"rtlayer talk: {why}; {_kept(args, turns.answer())}", file=sys.stderr)
    return 1


def _finish_interrupted(args: argparse.Namespace, turns: _Turns) -> int:
    received = b"".join(b"".join(chunks) for chunks in turns.audio.values())
    print(f"rtlayer talk: interrupted; {_kept(args, received)}", file=sys.stderr)
    return INTERRUPTED


def run(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(talk(args))
    except ValueError as exc:
        print(f"rtlayer talk: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # only where the loop cannot catch SIGINT itself (Windows)
        print("rtlayer talk: interrupted", file=sys.stderr)
        return INTERRUPTED
