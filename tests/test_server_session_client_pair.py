"""The client's sans-I/O ClientSession wired to the ServerSession in memory: no sockets, one fake clock.

The two halves of the protocol check each other here: what the client sends the server accepts, and an
interruption computed by the client (what was heard) is a truncation the server finds valid.
"""

from __future__ import annotations

from typing import Any

from helpers import Driver, of_type

from rtlayer.client.session import ClientSession


class Pair:
    def __init__(self) -> None:
        self.client = ClientSession()
        self.server = Driver()
        self.to_client: list[dict[str, Any]] = []

    def flush(self) -> list[dict[str, Any]]:
        """Deliver client -> server, then server -> client; returns what the server sent."""
        for event in self.client.events_to_send():
            self.server.session.receive_event(event, self.server.now)
        sent = self.server.drain()
        for event in sent:
            self.client.receive_event(event, self.server.now)
        self.to_client += sent
        return sent


async def test_text_message_and_answer() -> None:
    pair = Pair()
    pair.flush()
    pair.client.send_message("Hello from the client")
    pair.flush()
    answer = await pair.server.run()
    for event in answer:
        pair.client.receive_event(event, pair.server.now)
    transcript = of_type(answer, "response.output_audio_transcript.done")[0]["transcript"]
    assert transcript == "Hello from the client"
    assert pair.client.active_response_id is None


async def test_client_interrupt_truncates_where_the_server_agrees() -> None:
    pair = Pair()
    pair.flush()
    pair.client.send_message("one two three four five six seven eight nine ten eleven twelve")
    pair.flush()
    partial = await pair.server.run(max_parts=12)  # about a second of answer arrives at once ...
    for event in partial:
        pair.client.receive_event(event, pair.server.now)
    item_id = of_type(partial, "response.output_item.added")[0]["item"]["id"]
    pair.server.now += 0.4  # ... and plays in real time for 400 ms, then the user barges in
    assert pair.client.interrupt(pair.server.now)
    answered = pair.flush()
    kinds = [e["type"] for e in answered]
    assert "error" not in kinds, answered
    assert kinds[-2:] == ["response.done", "conversation.item.truncated"]
    truncated = answered[-1]
    assert truncated["item_id"] == item_id and truncated["audio_end_ms"] == 400
    assert answered[-2]["response"]["status"] == "cancelled"
