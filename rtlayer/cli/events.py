"""``rtlayer events``."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default=None)


def run(args: argparse.Namespace) -> int:
    raise NotImplementedError("rtlayer events lands with the WebSocket transport")
