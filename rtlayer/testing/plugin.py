"""The pytest plugin of ``rtlayer.testing`` (entry point ``pytest11``): an embedded Realtime server per test,
module or session.

Fixtures:

- ``realtime_server``: a started :class:`~rtlayer.testing.BackgroundServer` (``.url``, ``.ws_url``,
  ``.server`` for its state). Its scope is the ini option ``rtlayer_server_scope`` (``function`` by
  default; ``module``, ``package`` or ``session`` to share one server).
- ``realtime_responder``: what answers (default ``None``: the echo responder). Override it in a conftest
  with the same scope, ``@pytest.fixture(scope=rtlayer.testing.server_scope)``, to script the model.
- ``realtime_server_options``: more ``RealtimeServer`` arguments, e.g. ``{"limits": ServerLimits(...)}``
  or ``{"api_key": "sk-test"}`` (default none); overridden the same way.
- ``realtime_server_factory``: ``factory(responder=..., **options)`` starts another server for this test
  only (closed after it), for a test that needs its own rules or limits.

The server runs on its own event loop in a thread, so it serves sync and async tests alike, whatever the
test's loop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # the server is imported when a test first asks for it, not at pytest's start
    from rtlayer.server.responders import Responder
    from rtlayer.testing.server_thread import BackgroundServer

__all__ = ["server_scope"]

_SCOPES = ("function", "class", "module", "package", "session")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "rtlayer_server_scope",
        "scope of the realtime_server fixture: function (default), class, module, package or session",
        default="function",
    )


def pytest_configure(config: pytest.Config) -> None:
    server_scope("realtime_server", config)  # a bad value is a usage error now, not a crash at collection


def server_scope(fixture_name: str, config: pytest.Config) -> Any:
    """The scope of ``realtime_server`` (the ini option ``rtlayer_server_scope``); give it to fixtures that
    override ``realtime_responder`` or ``realtime_server_options``: ``@pytest.fixture(scope=server_scope)``."""
    scope = str(config.getini("rtlayer_server_scope") or "function")
    if scope not in _SCOPES:
        raise pytest.UsageError(f"rtlayer_server_scope must be one of {', '.join(_SCOPES)}, not {scope!r}")
    return scope


@pytest.fixture(scope=server_scope)
def realtime_responder() -> Responder | None:
    """What answers in ``realtime_server``: ``None`` is the echo responder. Override to script it."""
    return None


@pytest.fixture(scope=server_scope)
def realtime_server_options() -> dict[str, Any]:
    """More ``RealtimeServer`` arguments for ``realtime_server`` (``limits``, ``api_key``, ...)."""
    return {}


@pytest.fixture(scope=server_scope)
def realtime_server(
    realtime_responder: Responder | None, realtime_server_options: dict[str, Any]
) -> Iterator[BackgroundServer]:
    """An embedded Realtime server on 127.0.0.1, started for the fixture's scope."""
    from rtlayer.testing.server_thread import BackgroundServer

    with BackgroundServer(responder=realtime_responder, **realtime_server_options) as server:
        yield server


@pytest.fixture
def realtime_server_factory() -> Iterator[Callable[..., BackgroundServer]]:
    """Starts servers of a test's own (``factory(responder=..., **options)``); each closes after the test."""
    from rtlayer.testing.server_thread import BackgroundServer

    started: list[BackgroundServer] = []

    def factory(responder: Responder | None = None, **options: Any) -> BackgroundServer:
        server = BackgroundServer(responder=responder, **options).start()
        started.append(server)
        return server

    try:
        yield factory
    finally:
        for server in reversed(started):
            server.close()
