"""Shared fixtures: a running embedded server, the check of every event it emits, and test audio.

- ``server``: a ``RealtimeServer`` on 127.0.0.1 and a free port (echo responder, 4x real-time audio
  pacing); ``server.url`` (``http://127.0.0.1:PORT``) and ``server.ws_url``.
- ``server_events`` (autouse): every server event that any ``RealtimeServer`` of this process emits
  during a test is collected and, at teardown, validated against
  ``openai.types.realtime.RealtimeServerEvent`` (the union the official clients parse with). A test
  that made a server emit an invalid event fails, whoever wrote it.
- ``load_wav(name)`` / ``stream_pcm(send, pcm, ...)``: ``tests/data/*.wav`` as PCM16 bytes, and a
  paced chunked sender (the clients' append loop), from ``helpers`` (where tests import what they share).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest
from helpers import EmittedEvents, load_wav, stream_pcm

from rtlayer.server.state import ServerState

if TYPE_CHECKING:
    from rtlayer.server.realtime_server import RealtimeServer

# rtlayer's own pytest plugin (tests/user_kit uses it as a user would); its pytest11 entry point loads it
# too once rtlayer is installed, under the same name, so it is never loaded twice. ``exclusive``: the
# marker that runs a wall-clock or CPU measurement alone when the suite runs on xdist workers.
pytest_plugins = ["rtlayer.testing.plugin", "exclusive"]


@pytest.fixture(autouse=True)
def server_events(monkeypatch: pytest.MonkeyPatch) -> Iterator[EmittedEvents]:
    """Collects every server event emitted in this test and fails it if any is invalid.

    Every ``ServerState`` built during the test (by a ``RealtimeServer``, a transport's implicit
    server, the CLI in-process) gets ``collected`` through its public ``add_event_observer``; the
    product keeps no process-wide hook for the test suite.
    """
    collected = EmittedEvents()
    build = ServerState.__init__

    def observed(self: ServerState, *args: Any, **kwargs: Any) -> None:
        build(self, *args, **kwargs)
        self.add_event_observer(collected)

    monkeypatch.setattr(ServerState, "__init__", observed)
    yield collected
    problems = collected.invalid()
    if problems:
        shown = "\n  ".join(problems[:20])
        pytest.fail(
            f"{len(problems)} server event(s) fail RealtimeServerEvent validation:\n  {shown}", pytrace=False
        )


# -- the server -------------------------------------------------------------------------------------


@pytest.fixture
async def server() -> AsyncIterator[RealtimeServer]:
    """A running embedded server on 127.0.0.1 (echo responder, any key accepted)."""
    from rtlayer.server.realtime_server import RealtimeServer

    async with RealtimeServer() as running:
        yield running


@pytest.fixture(name="load_wav")
def load_wav_fixture() -> Callable[[str], tuple[bytes, int]]:
    return load_wav


@pytest.fixture(name="stream_pcm")
def stream_pcm_fixture() -> Callable[..., Awaitable[int]]:
    return stream_pcm
