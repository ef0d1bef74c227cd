"""ClientSession against the real server logic, wired in memory (no sockets, no loop, time is an argument).

``Pair`` moves client events into a ``ServerSession`` and server events back into the ``ClientSession``, and
plays the responder's part by hand (the parts each response produces are chosen by the test), like h11's
``ConnectionPair``. It checks what only the two together can show: the sequencing never provokes
``conversation_already_has_active_response``, and the truncation the client computes is one the server
accepts and applies.
"""

from __future__ import annotations

from typing import Any

from rtlayer.audio import PlaybackTracker
from rtlayer.client.session import ClientSession
from rtlayer.server.core.session import ServerSession
from rtlayer.server.responders import AudioPart, TextPart

T0 = 1_800_000_000.0  # server time is Unix seconds


class Pair:
    def __init__(self, client: ClientSession | None = None) -> None:
        self.client = client or ClientSession()
        self.server = ServerSession(now=T0)
        self.now = 0.0
        self.server_events: list[dict[str, Any]] = []
        self.pump()

    def pump(self) -> None:
        """Deliver everything in flight, both ways, until both sides are quiet."""
        for _ in range(100):
            to_server = self.client.events_to_send()
            for event in to_server:
                self.server.receive_event(event, T0 + self.now)
            to_client = self.server.events_to_send()
            for event in to_client:
                self.server_events.append(event)
                self.client.receive_event(event, self.now)
            if not to_server and not to_client:
                return
        raise AssertionError("the pair never went quiet")

    def jobs(self) -> list[str]:
        return [job.response_id for job in self.server.response_jobs()]

    def speak(self, response_id: str, *parts: Any, finish: bool = True) -> None:
        for part in parts:
            self.server.response_part(response_id, part, T0 + self.now)
        if finish:
            self.server.response_finished(response_id, T0 + self.now)
        self.pump()

    def errors(self) -> list[str]:
        return [e["error"].get("code") for e in self.server_events if e["type"] == "error"]

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.server_events if e["type"] == kind]


def test_requests_while_a_response_runs_never_collide() -> None:
    pair = Pair()
    pair.client.send_message("first")
    pair.pump()
    [first] = pair.jobs()
    # While the first response runs, the app sends two messages and asks for a response of its own.
    pair.client.send_message("second")
    pair.client.send_message("third")
    pair.client.send_event({"type": "response.create", "response": {"metadata": {"by": "app"}}})
    pair.pump()
    assert pair.jobs() == []  # nothing was sent to the server yet
    pair.speak(first, TextPart("one"))
    [auto] = pair.jobs()  # "second" and "third" share one response...
    pair.speak(auto, TextPart("two"))
    [manual] = pair.jobs()  # ...then the app's own
    pair.speak(manual, TextPart("three"))
    assert pair.jobs() == []
    assert pair.errors() == []
    done = pair.of_type("response.done")
    assert [d["response"]["status"] for d in done] == ["completed"] * 3
    assert done[2]["response"]["metadata"] == {"by": "app"}


def test_truncation_the_server_accepts_and_applies() -> None:
    tracker = PlaybackTracker()
    pair = Pair(ClientSession(tracker=tracker))
    pair.client.send_message("talk to me")
    pair.pump()
    [rid] = pair.jobs()
    pair.speak(rid, AudioPart(b"\x10\x00" * 24000), finish=False)  # one second of audio, still running
    item_id = pair.client.current_audio_item_id
    assert item_id is not None
    tracker.on_play_ms(item_id, 0, 437.6)
    pair.client.interrupt(now=1.0)
    pair.pump()
    [truncated] = pair.of_type("conversation.item.truncated")
    assert (truncated["item_id"], truncated["audio_end_ms"]) == (item_id, 437)
    done = pair.of_type("response.done")[-1]
    assert done["response"]["status"] == "cancelled"
    assert pair.errors() == []


def test_barge_in_after_output_audio_done_is_still_truncated_by_the_server() -> None:
    pair = Pair()
    pair.client.send_message("talk to me")
    pair.pump()
    [rid] = pair.jobs()
    pair.now = 10.0
    pair.speak(rid, AudioPart(b"\x10\x00" * 48000))  # 2 s, all delivered at t=10: done on the server side
    assert pair.of_type("response.output_audio.done")
    pair.now = 10.75  # the speaker is 750 ms in (playout clock)
    pair.client.interrupt(now=pair.now)
    pair.pump()
    [truncated] = pair.of_type("conversation.item.truncated")
    assert truncated["audio_end_ms"] == 750
    assert pair.errors() == []  # no response.cancel for a finished response, no bad truncate


def test_refused_request_is_reported_and_the_next_one_goes_through() -> None:
    pair = Pair()
    pair.client.send_event(
        {"type": "response.create", "event_id": "evt_bad", "response": {"conversation": "maybe"}}
    )
    pair.pump()
    [error] = [e for e in pair.server_events if e["type"] == "error"]
    assert error["error"]["event_id"] == "evt_bad"
    pair.client.send_message("hello")
    pair.pump()
    assert len(pair.jobs()) == 1
