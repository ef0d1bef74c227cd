"""Sends ``response.create`` only when the server can take it, so the client never provokes
``conversation_already_has_active_response``; coalesces automatic requests like the JS SDK's
``ResponseCreateSequencer``.

Requests queue in order. *Manual* ones (the app's own ``response.create``, or one with a ``response`` body)
each produce one response. *Automatic* ones (after a message or a function-call output) that are waiting
together are answered by a single response: two tool outputs of one turn get one follow-up, not two.

State table (``control``; ``ongoing`` is true between ``response.created`` and ``response.done``):

=================  ===================================  ==========================================
control            input                                effect
=================  ===================================  ==========================================
free               request, not ongoing                 send head (+ following autos) -> requested
free               request, ongoing                     queue
requested          response.created                     accepted: ongoing, -> free
requested          error naming it / "response.create"  active-response error: requeue, ongoing;
                                                        other error: drop it, restore coalesced autos
any                cancel, ongoing, not yet cancelling  send response.cancel -> cancelling
cancelling         response.done                        -> free, not ongoing, send next
any                response_cancel_not_active error     -> free, not ongoing, send next
any                reset (connection lost)              forget everything
=================  ===================================  ==========================================

Sans-I/O: every method returns the events to send now.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["ResponseCreateSequencer"]

Control = Literal["free", "requested", "cancelling"]


@dataclass(slots=True)
class _Request:
    event: dict[str, Any]
    manual: bool


class ResponseCreateSequencer:
    """One per connection; see the module docstring for its rules."""

    def __init__(self, id_prefix: str = "rtlayer_response_create_") -> None:
        self._queue: deque[_Request] = deque()
        self._pending: _Request | None = None
        self._covered: list[_Request] = []
        self._id_prefix = id_prefix
        self._counter = 0
        self.ongoing = False
        self.control: Control = "free"
        #: automatic requests answered by a response already requested (coalesced), ever
        self.coalesced = 0

    @property
    def pending_event_id(self) -> str | None:
        """The ``event_id`` of the ``response.create`` in flight (sent, not yet answered)."""
        return None if self._pending is None else str(self._pending.event["event_id"])

    @property
    def queued(self) -> int:
        return len(self._queue)

    def request(self, event: dict[str, Any], manual: bool) -> list[dict[str, Any]]:
        """The app (``manual``) or the transport (automatic) asks for a response."""
        self._queue.append(_Request(dict(event), manual))
        return self._pump()

    def begin_cancel(self) -> bool:
        """Whether a ``response.cancel`` should be sent now (a response runs and none was asked yet)."""
        if not self.ongoing or self.control == "cancelling":
            return False
        self.control = "cancelling"
        return True

    def response_created(self) -> list[dict[str, Any]]:
        self.ongoing = True
        self._pending = None
        self._covered = []
        if self.control == "requested":
            self.control = "free"
        return []

    def response_done(self) -> list[dict[str, Any]]:
        self.ongoing = False
        self._pending = None
        self._covered = []
        self.control = "free"
        return self._pump()

    def error(self, error: Any) -> list[dict[str, Any]]:
        """A server ``error`` object: frees the slot when it refers to our request."""
        if not isinstance(error, dict):
            return []
        raw_code = error.get("code")
        code = raw_code if isinstance(raw_code, str) else ""
        if code == "response_cancel_not_active":
            self.ongoing = False
            if self.control == "cancelling":
                self.control = "free"
            return self._pump()
        if self._pending is None:
            if code == "conversation_already_has_active_response":
                self.ongoing = True
            return []
        linked = error.get("event_id")
        raw_message = error.get("message")
        message = raw_message if isinstance(raw_message, str) else ""
        ours = (
            linked == self._pending.event["event_id"]
            if isinstance(linked, str)
            else (
                "response_create" in code
                or "response.create" in message
                or code == "conversation_already_has_active_response"
            )
        )
        if not ours:
            return []
        failed, covered = self._pending, self._covered
        self._pending, self._covered = None, []
        self.control = "free"
        if code == "conversation_already_has_active_response":
            # A response we did not ask for (server VAD) is running: retry after its response.done.
            self.ongoing = True
            self._queue.extendleft(reversed([failed, *covered]))
            self.coalesced -= len(covered)
        else:
            self._queue.extendleft(reversed(covered))
            self.coalesced -= len(covered)
        return self._pump()

    def reset(self) -> None:
        """The connection is gone: nothing we queued can still be answered."""
        self._queue.clear()
        self._pending = None
        self._covered = []
        self.ongoing = False
        self.control = "free"

    def _pump(self) -> list[dict[str, Any]]:
        if self.ongoing or self.control != "free" or not self._queue:
            return []
        head = self._queue.popleft()
        covered: list[_Request] = []
        if not head.manual:
            while self._queue and not self._queue[0].manual:
                covered.append(self._queue.popleft())
        self.coalesced += len(covered)
        if not isinstance(head.event.get("event_id"), str):
            self._counter += 1
            head.event["event_id"] = f"{self._id_prefix}{self._counter}"
        self._pending, self._covered = head, covered
        self.control = "requested"
        return [head.event]
