"""``rtlayer serve``: the embedded Realtime-compatible server in the foreground."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="TCP port (default 8765; 0 picks a free one)")
    parser.add_argument("--api-key", default=None, help="key clients must present (required off loopback)")
    parser.add_argument(
        "--responder", default="echo", help="echo (default) or scripted:RULES.json"
    )
    parser.add_argument("--sip-port", type=int, default=None, help="also answer SIP calls on this UDP port")
    parser.add_argument("--webhook-url", default=None, help="where incoming SIP calls are announced")
    parser.add_argument("--webhook-secret", default=None, help="whsec_... secret that signs the webhooks")
    parser.add_argument("--certfile", default=None, help="TLS certificate (serves https and wss)")
    parser.add_argument("--keyfile", default=None, help="TLS private key")
    parser.add_argument("--log-level", default="info", help="debug, info, warning")


def run(args: argparse.Namespace) -> int:
    raise NotImplementedError("rtlayer serve lands with the embedded server")
