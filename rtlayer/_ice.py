"""Which local addresses aiortc offers as ICE host candidates: the loopback option.

aioice (under aiortc) skips 127.0.0.1 and ::1 when it gathers host candidates. On a machine whose
only interface is loopback (a test namespace, a container without network) it gathers nothing, the
SDP carries no candidate and the connection hangs without ever reaching "failed". Real deployments
want aioice's behaviour; local ones (the embedded server, tests, a browser on the same machine) need
127.0.0.1.

aioice has no option for this, so rtlayer wraps its one gathering function,
``aioice.ice.get_host_addresses``, once, with a version that consults a context variable. The
policy is therefore scoped: it applies only to candidates gathered inside ``with host_policy(...)``
(aiortc gathers in tasks started from the awaiting coroutine, and tasks inherit the context), and
any code that never enters the context gets aioice's own result, unchanged.

Policies:

- ``"default"``: aioice's addresses (no loopback).
- ``"allow_loopback"``: aioice's addresses plus 127.0.0.1.
- ``"loopback_only"``: 127.0.0.1 only (a peer on this machine; nothing else is ever a candidate).
"""

from __future__ import annotations

import contextlib
import contextvars
import ipaddress
import threading
from collections.abc import Callable, Iterator
from typing import Literal, cast

import aioice.ice

__all__ = ["IcePolicy", "host_policy", "is_loopback_host", "policy_for"]

IcePolicy = Literal["default", "allow_loopback", "loopback_only"]

LOOPBACK_V4 = "127.0.0.1"

_policy: contextvars.ContextVar[IcePolicy] = contextvars.ContextVar("rtlayer_ice_policy", default="default")
_install_lock = threading.Lock()
_original: Callable[[bool, bool], list[str]] | None = None


def _policy_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    """aioice's ``get_host_addresses`` under the policy of the current context."""
    assert _original is not None
    policy = _policy.get()
    if policy == "loopback_only":
        return [LOOPBACK_V4] if use_ipv4 else []
    addresses = _original(use_ipv4, use_ipv6)
    if policy == "allow_loopback" and use_ipv4 and LOOPBACK_V4 not in addresses:
        addresses = [*addresses, LOOPBACK_V4]
    return addresses


def _install() -> None:
    """Wrap aioice's gathering function once per process (idempotent, thread-safe)."""
    global _original
    with _install_lock:
        if _original is not None:
            return
        _original = cast(Callable[[bool, bool], list[str]], aioice.ice.get_host_addresses)
        aioice.ice.get_host_addresses = _policy_host_addresses


@contextlib.contextmanager
def host_policy(policy: IcePolicy) -> Iterator[None]:
    """Gather ICE host candidates under ``policy`` for the duration of the block.

    Wrap the ``await pc.setLocalDescription(...)`` call (that is where aiortc gathers).
    """
    if policy not in ("default", "allow_loopback", "loopback_only"):
        raise ValueError(f"unknown ICE policy {policy!r}")
    _install()
    token = _policy.set(policy)
    try:
        yield
    finally:
        _policy.reset(token)


def is_loopback_host(host: str | None) -> bool:
    """True for ``localhost``, 127.0.0.0/8 and ::1 (an address on this machine only)."""
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def policy_for(peer_host: str | None, allow_loopback: bool | None) -> IcePolicy:
    """The policy for a peer at ``peer_host``.

    ``allow_loopback=None`` (automatic): loopback only when the peer is on this machine, aioice's
    default otherwise. ``True``: loopback only for a loopback peer, aioice's addresses plus loopback
    otherwise. ``False``: aioice's default, whatever the peer.
    """
    if allow_loopback is False:
        return "default"
    if is_loopback_host(peer_host):
        return "loopback_only"
    return "allow_loopback" if allow_loopback else "default"
