"""The ``rtlayer`` command: ``serve``, ``talk``, ``events``, ``bridge``, ``phone`` and ``load``.

Each subcommand lives in its own module and registers its arguments with ``add_arguments(parser)``
and runs with ``run(args) -> int``; this module only dispatches. A bad flag is one line on standard
error and exit status 2 (``rtlayer.cli._args.Parser``).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

from .. import __version__
from ._args import Parser

DESCRIPTION = (
    "Realtime transport layers for voice agents: run the embedded Realtime-compatible server, speak a "
    "WAV file to a server, exchange raw events, bridge telephony media streams, or load-test an endpoint."
)

_SUBCOMMANDS = {
    "serve": ("rtlayer.cli.serve", "run the embedded Realtime-compatible server"),
    "talk": ("rtlayer.cli.talk", "speak a WAV file to a Realtime server and write its spoken answer"),
    "events": ("rtlayer.cli.events", "send raw JSON events from stdin, print every server event"),
    "bridge": ("rtlayer.cli.bridge", "bridge a telephony provider's media streams to a Realtime model"),
    "phone": ("rtlayer.cli.phone", "call a media-stream app as a telephony provider would (simulator)"),
    "load": ("rtlayer.cli.load", "simulated callers against a Realtime endpoint, measured per turn"),
}


def build_parser() -> Parser:
    parser = Parser(prog="rtlayer", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{" + ",".join(_SUBCOMMANDS) + "}")
    for name, (module_name, help_text) in _SUBCOMMANDS.items():
        module = importlib.import_module(module_name)
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(sub_parser)
        sub_parser.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args._run(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
