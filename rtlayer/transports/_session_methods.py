"""What every transport does the same way around its ``ClientSession``, written once.

``SessionMethods`` holds the contract methods that only check the transport can send and hand the call to
the sans-I/O ``ClientSession``; a transport says how to get that session (``_require_session``, which raises
``ConnectionClosedError`` when it cannot send) and how to send one event as is (``_send_dict``, the
session's ``send`` callback).

Used through ``ClientShell`` by every transport (the socket transports and WebRTC: no socket, same session).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..client.session import ClientSession, event_type
from ..transport import FunctionCallEvent

__all__ = ["SessionMethods"]


class SessionMethods:
    """The contract methods that delegate to the transport's ``ClientSession``."""

    def _require_session(self) -> ClientSession:
        """The session, or ``ConnectionClosedError`` when the transport cannot send."""
        raise NotImplementedError

    def _send_dict(self, event: dict[str, Any]) -> None:
        """Sends one client event as is (the session's ``send`` callback)."""
        raise NotImplementedError

    def _remember_config(self, session: dict[str, Any]) -> None:
        """The ``session`` of a ``session.update`` the app sent; a transport that reconnects keeps it (by
        default nothing is kept: a transport that does not reconnect has nothing to restore)."""

    def send_event(self, event: Mapping[str, Any]) -> None:
        """Any raw client event (``response.create`` is sequenced; see ``ClientSession``)."""
        session = self._require_session()
        if event_type(event) == "session.update" and isinstance(event.get("session"), Mapping):
            self._remember_config(dict(event["session"]))
        session.send_event(event)

    def request_response(self, response: Mapping[str, Any] | None = None) -> None:
        self._require_session().request_response(response)

    def send_message(
        self,
        message: str | Mapping[str, Any],
        other_event_data: Mapping[str, Any] | None = None,
        *,
        trigger_response: bool = True,
    ) -> None:
        self._require_session().send_message(message, other_event_data, trigger_response=trigger_response)

    def add_image(self, image: str, *, trigger_response: bool = True) -> None:
        self._require_session().add_image(image, trigger_response=trigger_response)

    def update_session_config(self, config: Mapping[str, Any]) -> None:
        update = self._require_session().session_update(config)
        self._remember_config(update["session"])
        self._send_dict(update)

    def send_function_call_output(
        self, call: FunctionCallEvent, output: str, start_response: bool = True
    ) -> None:
        self._require_session().send_function_call_output(call, output, start_response)

    def reset_history(self, old_history: list[dict[str, Any]], new_history: list[dict[str, Any]]) -> None:
        self._require_session().reset_history(old_history, new_history)
