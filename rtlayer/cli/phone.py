"""``rtlayer phone --provider twilio WS_URL INPUT.wav -o HEARD.wav``: call a media-stream app as a provider.

The provider simulator (``rtlayer.testing.phone``) connects to the app's endpoint exactly as the provider
would, speaks INPUT.wav at real time inside a continuous stream, presses keys (``--dtmf 12#@1.5``: the digits
at 1.5 s), hangs up after ``--hangup-after`` seconds (default: once the answers stopped, 1.5 s after the last
one), writes what the caller heard to HEARD.wav and prints the timeline (answers, clears, what was discarded).
Exit status: 0 when an answer was heard, 1 when none was, 2 for bad arguments or a failed connection.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from typing import TextIO

from ..testing.phone import PROVIDERS, PhoneSimulator
from ..wav import check_writable, read_wav

#: how long the line stays quiet after the last answer before an automatic hang-up
_IDLE_HANGUP_S = 1.5


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--provider", required=True, choices=sorted(PROVIDERS))
    parser.add_argument("url", help="the app's media-stream endpoint, ws://...")
    parser.add_argument("input", help="what the caller says (WAV, PCM16)")
    parser.add_argument("-o", "--output", required=True, help="what the caller heard (WAV)")
    parser.add_argument("--dtmf", action="append", default=[], help="DIGITS@SECONDS (repeatable)")
    parser.add_argument("--hangup-after", type=float, default=None, help="hang up after this many seconds")
    parser.add_argument("--custom", action="append", default=[], help="KEY=VALUE custom parameter")
    parser.add_argument("--codec", default=None, choices=("pcmu", "pcma", "pcm16"), help="provider encoding")
    parser.add_argument("--rate", type=int, default=None, help="provider sample rate (L16)")
    parser.add_argument("--timeout", type=float, default=60.0, help="give up after this many seconds")


def _dtmf(specs: list[str]) -> list[tuple[float, str]]:
    out = []
    for spec in specs:
        digits, at, seconds = spec.partition("@")
        if not at or not digits:
            raise ValueError(f"--dtmf {spec!r}: expected DIGITS@SECONDS, e.g. 12#@1.5")
        out.append((float(seconds), digits))
    return sorted(out)


def _custom(specs: list[str]) -> dict[str, str]:
    pairs = {}
    for spec in specs:
        key, eq, value = spec.partition("=")
        if not eq or not key:
            raise ValueError(f"--custom {spec!r}: expected KEY=VALUE")
        pairs[key] = value
    return pairs


async def call(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    pcm, rate = read_wav(args.input)
    check_writable(args.output)
    presses = _dtmf(args.dtmf)
    phone = PhoneSimulator(
        args.provider, args.url, custom=_custom(args.custom), codec=args.codec, rate=args.rate
    )
    try:
        await phone.start()
    except (OSError, TimeoutError, ValueError) as exc:
        print(f"rtlayer phone: cannot connect to {args.url}: {exc}", file=sys.stderr)
        return 2
    try:
        async with asyncio.timeout(args.timeout):
            said_until = phone.say(pcm, rate) / 1000
            for at, digits in presses:
                await phone.wait_for(_reached(phone, at), within=args.timeout)
                for digit in digits:
                    phone.press(digit)
            if args.hangup_after is not None:
                await phone.wait_for(lambda: phone.now_ms >= args.hangup_after * 1000, within=args.timeout)
            else:
                await phone.wait_for(
                    lambda: _quiet_since(phone, said_until) >= _IDLE_HANGUP_S, within=args.timeout
                )
    except TimeoutError:
        print(f"rtlayer phone: still talking after {args.timeout} s; hanging up", file=sys.stderr)
    finally:
        await phone.hangup()
    phone.write_heard(args.output)
    print(phone.format_timeline(), file=out)
    played = sum(a.played_ms for a in phone.answers)
    print(
        f"heard {len(phone.answers)} answer(s), {played} ms; {len(phone.clears)} clear(s); "
        f"written to {args.output}",
        file=out,
    )
    if phone.problems:
        print(
            f"the app sent {len(phone.problems)} frame(s) the provider would refuse: {phone.problems[0]}",
            file=out,
        )
    return 0 if phone.answers else 1


def _reached(phone: PhoneSimulator, seconds: float) -> Callable[[], bool]:
    return lambda: phone.now_ms >= seconds * 1000


def _quiet_since(phone: PhoneSimulator, said_until_s: float) -> float:
    """Seconds the line has been quiet (no answer playing), counted from the end of what the caller said."""
    if phone.speaking() or (phone.answers and phone.answers[-1].ended_ms is None):
        return 0.0
    last = max([said_until_s * 1000] + [a.ended_ms or 0 for a in phone.answers])
    return (phone.now_ms - last) / 1000


def run(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(call(args))
    except ValueError as exc:
        print(f"rtlayer phone: {exc}", file=sys.stderr)
        return 2
