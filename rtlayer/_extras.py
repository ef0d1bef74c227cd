"""The optional extras: which modules each brings, and the one sentence said when one is missing.

``pip install rtlayer`` gives the WebSocket and fetch-upgrade transports, the SIP app side, the native
core and the embedded server (WebSocket, SIP/RTP, REST). ``rtlayer[webrtc]`` adds aiortc (with av and
aioice, which rtlayer imports too) for ``WebRTCTransport`` and the server's ``POST /v1/realtime/calls``;
``rtlayer[agents]`` adds openai-agents. Code that needs an extra imports its modules as usual and turns
the ``ModuleNotFoundError`` of a missing one into ``MissingExtraError``, whose message names the extra.
"""

from __future__ import annotations

import importlib

__all__ = ["EXTRAS", "MissingExtraError", "missing_extra", "unavailable"]

EXTRAS: dict[str, frozenset[str]] = {
    "webrtc": frozenset({"aiortc", "av", "aioice"}),
}


class MissingExtraError(ImportError):
    """A feature needs an extra that is not installed; the message says which and how to install it."""


def missing_extra(exc: ImportError, extra: str, feature: str) -> ImportError:
    """``MissingExtraError`` naming ``extra`` when ``exc`` is one of its modules missing, else ``exc``
    itself (an ImportError from anything else is a bug to see, not an extra to install)."""
    top = (exc.name or "").partition(".")[0]
    if not isinstance(exc, ModuleNotFoundError) or top not in EXTRAS[extra]:
        return exc
    return MissingExtraError(
        f"{feature} needs the {extra} extra ({top} is not installed): pip install 'rtlayer[{extra}]'",
        name=exc.name,
    )


def unavailable(extra: str, feature: str) -> str | None:
    """None when every module of ``extra`` imports, else the sentence saying what to install."""
    for module in sorted(EXTRAS[extra]):
        try:
            importlib.import_module(module)
        except ImportError as exc:
            return str(missing_extra(exc, extra, feature))
    return None
