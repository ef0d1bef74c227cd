"""``truncation``: when the conversation outgrows the input limit, a response sees only its newest items,
and ``usage`` counts only those; ``retention_ratio`` drops more at once; ``disabled`` drops nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from helpers import Driver, of_type

from rtlayer.server.responders import ResponsePart, ResponseRequest, TextPart


class ShownItems:
    """Answers "ok" and keeps what each response was shown."""

    def __init__(self) -> None:
        self.requests: list[ResponseRequest] = []

    async def respond(self, request: ResponseRequest) -> AsyncIterator[ResponsePart]:
        self.requests.append(request)
        yield TextPart("ok")


async def converse(truncation: Any, turns: int = 10) -> tuple[list[str], dict[str, Any]]:
    """``turns`` user messages of 100 tokens each (400 characters), then one response: the texts it saw
    and its usage."""
    recorder = ShownItems()
    driver = Driver(
        recorder, config={"output_modalities": ["text"], "instructions": "", "truncation": truncation}
    )
    for n in range(turns):
        text = f"{n:03d} " + "x" * 396
        driver.send(
            {
                "type": "conversation.item.create",
                "item": {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": text}],
                },
            }
        )
    driver.send({"type": "response.create"})
    events = await driver.run()
    seen = [item["content"][0]["text"][:3] for item in recorder.requests[0].items]
    return seen, of_type(events, "response.done")[0]["response"]["usage"]


async def test_a_conversation_that_fits_is_not_truncated() -> None:
    seen, usage = await converse(
        {"type": "retention_ratio", "retention_ratio": 0.5, "token_limits": {"post_instructions": 1000}}
    )
    assert len(seen) == 10
    assert usage["input_tokens"] >= 1000


@pytest.mark.parametrize(
    ("truncation", "kept"),
    [
        ({"type": "retention_ratio", "retention_ratio": 1.0, "token_limits": {"post_instructions": 500}}, 5),
        ({"type": "retention_ratio", "retention_ratio": 0.5, "token_limits": {"post_instructions": 500}}, 2),
        ({"type": "retention_ratio", "retention_ratio": 0.0, "token_limits": {"post_instructions": 500}}, 0),
    ],
)
async def test_an_overlong_conversation_keeps_its_newest_items(truncation: Any, kept: int) -> None:
    seen, usage = await converse(truncation)
    assert seen == [f"{n:03d}" for n in range(10 - kept, 10)]
    assert usage["input_token_details"]["text_tokens"] == 100 * kept


async def test_disabled_truncation_keeps_everything() -> None:
    seen, _ = await converse("disabled", turns=3)
    assert len(seen) == 3
