"""``rtlayer load``: N simulated callers against a Realtime endpoint; a summary, JSON and HTML report.

With no ``--url`` the target is an embedded server started in another process on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import sys

from ..exceptions import RtlayerError
from ._args import positive, positive_int, positive_seconds

_TRANSPORTS = ("websocket", "webrtc", "fetch-upgrade", "sip")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", help="the endpoint (default: an embedded server in another process)")
    parser.add_argument("--api-key", help="the endpoint's key (default: OPENAI_API_KEY, or none locally)")
    parser.add_argument("--sessions", type=positive_int, default=10, help="simulated callers (default 10)")
    parser.add_argument("--ramp", type=positive, default=10.0, help="callers started per second (default 10)")
    parser.add_argument(
        "--duration", type=positive_seconds, default=30.0, help="seconds the run lasts (default 30)"
    )
    parser.add_argument("--transport", choices=_TRANSPORTS, default="websocket")
    parser.add_argument("--scenario", help="a JSON or TOML scenario file (default: one spoken sentence)")
    parser.add_argument("--report", metavar="DIR", help="write report.json and report.html into DIR")
    parser.add_argument(
        "--processes", type=positive_int, default=1, help="generator processes, one core each (default 1)"
    )
    parser.add_argument(
        "--responder", default="echo", help="the embedded server's responder: echo or scripted:RULES.json"
    )
    parser.add_argument(
        "--provider",
        choices=("twilio", "telnyx", "plivo", "exotel", "vonage"),
        help="call a phone bot's media-stream endpoint (--url) as this provider would; no --url: an"
        " embedded rtlayer bridge",
    )
    parser.add_argument("--seed", type=int, default=0, help="seeds the callers' pauses (default 0)")


def run(args: argparse.Namespace) -> int:
    import os

    from ..load import LoadConfig, default_scenario, load_scenario, run_load_sync
    from ..load.report import summary_table, write_report

    try:
        scenario = load_scenario(args.scenario) if args.scenario else default_scenario()
        config = LoadConfig(
            url=args.url,
            sessions=args.sessions,
            ramp=args.ramp,
            duration=args.duration,
            transport=args.transport,
            scenario=scenario,
            api_key=args.api_key or (os.environ.get("OPENAI_API_KEY") if args.url else None),
            processes=args.processes,
            seed=args.seed,
            responder=args.responder,
            provider=args.provider,
        )
        if args.report:
            os.makedirs(args.report, exist_ok=True)
        result = run_load_sync(config)
    except (RtlayerError, ValueError, OSError, RuntimeError) as exc:
        print(f"rtlayer load: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rtlayer load: interrupted", file=sys.stderr)
        return 130
    print(summary_table(result))
    if args.report:
        json_path, html_path = write_report(result, args.report)
        print(f"report: {json_path} {html_path}")
    failed = result.figures.counters.get("connected", 0) == 0 or result.generator.saturation()
    return 1 if failed else 0
