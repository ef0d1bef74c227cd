"""rtlayer: realtime transport layers for voice agents, with a native audio core and an embedded server."""

from __future__ import annotations

__version__ = "0.1.0"
