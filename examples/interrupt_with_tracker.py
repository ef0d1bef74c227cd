"""Interrupting an answer, with a playback tracker: the model remembers only what the user heard.

A pretend speaker plays the answer's audio in real time and reports each 20 ms frame it finished to a
``PlaybackTracker``. After half a second the user "barges in": ``interrupt()`` stops playback, cancels the
response and truncates the assistant's item at what the speaker actually played.

    python examples/interrupt_with_tracker.py [--url ws://HOST:PORT/v1/realtime]
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from rtlayer.audio import PCM16_48K, PlaybackTracker
from rtlayer.transport import AudioEvent, AudioInterruptedEvent
from rtlayer.transports import WebSocketTransport

FRAME_MS = 20


class Speaker:
    """Plays frames in real time and tells the tracker what finished playing."""

    def __init__(self, tracker: PlaybackTracker) -> None:
        self.tracker = tracker
        self.queue: asyncio.Queue[AudioEvent] = asyncio.Queue()
        self.started = asyncio.Event()
        self.task = asyncio.create_task(self._play())

    async def _play(self) -> None:
        while True:
            frame = await self.queue.get()
            await asyncio.sleep(FRAME_MS / 1000)  # a real app writes to its sound card here
            self.tracker.on_play_bytes(frame.item_id, frame.content_index, frame.data)
            self.started.set()

    def stop(self) -> None:
        """Drop what is queued (the user interrupted)."""
        while not self.queue.empty():
            self.queue.get_nowait()


async def main(url: str | None) -> None:
    tracker = PlaybackTracker()
    transport = WebSocketTransport(
        output_format=PCM16_48K, output_frame_ms=FRAME_MS, playback_tracker=tracker
    )
    speaker = Speaker(tracker)
    truncated: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
    transport.on("audio", speaker.queue.put_nowait)

    def on_interrupted(event: AudioInterruptedEvent) -> None:
        speaker.stop()
        print(f"interrupted item {event.item_id}: heard {event.audio_end_ms} ms")

    transport.on("audio_interrupted", on_interrupted)

    def on_truncated(event: dict[str, Any]) -> None:
        if not truncated.done():
            truncated.set_result(event)

    transport.on("conversation.item.truncated", on_truncated)
    await transport.connect(url=url)
    transport.send_message("Tell me a long story about a lighthouse keeper and the sea, with many details.")
    await speaker.started.wait()
    await asyncio.sleep(0.5)
    assert tracker.current_item_id is not None
    played = tracker.played_ms(tracker.current_item_id)
    transport.interrupt()
    event = await asyncio.wait_for(truncated, 5)
    print(f"played {played:.0f} ms; the server truncated the item at {event['audio_end_ms']} ms")
    assert event["audio_end_ms"] == int(played)
    speaker.task.cancel()
    await transport.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=None)
    asyncio.run(main(parser.parse_args().url))
