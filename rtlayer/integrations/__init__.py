"""Adapters that let other SDKs run over rtlayer transports.

- ``rtlayer.integrations.openai_agents``: ``RtlayerRealtimeModel``, an ``agents.realtime.RealtimeModel`` for
  the ``openai-agents`` SDK over any rtlayer transport (WebSocket, WebRTC, SIP, fetch-upgrade, media streams),
  and ``build_initial_config(agent)``, the accept body of a SIP call that agent takes.

Each adapter imports its SDK, so it is imported on first use: ``import rtlayer.integrations`` stays cheap.
"""

from __future__ import annotations

_LAZY = {
    "RtlayerRealtimeModel": "rtlayer.integrations.openai_agents",
    "build_initial_config": "rtlayer.integrations.openai_agents",
}

__all__ = ["RtlayerRealtimeModel", "build_initial_config"]


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'rtlayer.integrations' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
