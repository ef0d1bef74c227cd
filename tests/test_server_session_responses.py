"""Responses through the ServerSession: function calls, ``response.create`` options, cancel, token limits."""

from __future__ import annotations

import json
from typing import Any

from helpers import AUDIO_ANSWER_END, Driver, audio_bytes, of_type

from rtlayer.server.responders import ScriptedResponder, TextPart

WEATHER = {
    "rules": [
        {
            "when": {"text_contains": "weather"},
            "call": {"name": "get_weather", "arguments": {"city": "Paris"}},
        },
        {"after_function_output": "get_weather", "say": "It is sunny in Paris."},
    ],
    "default": {"say": "Ask me about the weather."},
}
TOOLS = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "Weather of a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
]


def user_text(text: str) -> dict[str, Any]:
    return {
        "type": "conversation.item.create",
        "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]},
    }


async def test_function_call_round_trip_with_the_scripted_responder() -> None:
    d = Driver(ScriptedResponder(WEATHER), config={"tools": TOOLS, "output_modalities": ["text"]})
    d.drain()
    d.send(user_text("What's the weather like?"))
    d.send({"type": "response.create"})
    events = await d.run()
    assert [e["type"] for e in events][:2] == ["response.output_item.added", "conversation.item.added"]
    call = events[0]["item"]
    assert call["type"] == "function_call" and call["arguments"] == "" and call["name"] == "get_weather"
    deltas = of_type(events, "response.function_call_arguments.delta")
    done = of_type(events, "response.function_call_arguments.done")[0]
    assert "".join(e["delta"] for e in deltas) == done["arguments"]
    assert json.loads(done["arguments"]) == {"city": "Paris"} and done["call_id"] == call["call_id"]
    assert [e["type"] for e in events][-3:] == [
        "conversation.item.done",
        "response.output_item.done",
        "response.done",
    ]
    assert events[-1]["response"]["output"][0]["status"] == "completed"

    # The client runs the tool, sends its output and asks for the final answer.
    d.send(
        {
            "type": "conversation.item.create",
            "item": {
                "type": "function_call_output",
                "call_id": call["call_id"],
                "output": json.dumps({"sky": "clear"}),
            },
        }
    )
    d.send({"type": "response.create"})
    final = await d.run()
    assert of_type(final, "response.output_text.done")[0]["text"] == "It is sunny in Paris."


async def test_speech_then_call_in_one_response_closes_the_message_first() -> None:
    rules = {"rules": [{"when": {"always": True}, "say": "Let me check.", "call": {"name": "lookup"}}]}
    d = Driver(ScriptedResponder(rules))
    d.drain()
    d.send(user_text("anything"))
    d.send({"type": "response.create"})
    events = await d.run()
    types = [e["type"] for e in events]
    # The message (audio + transcript) is complete before the function call item begins.
    assert types.index("response.output_audio.done") < types.index("response.function_call_arguments.done")
    output = events[-1]["response"]["output"]
    assert [o["type"] for o in output] == ["message", "function_call"]
    assert output[0]["content"][0]["transcript"] == "Let me check."
    assert [e["output_index"] for e in of_type(events, "response.output_item.done")] == [0, 1]


async def test_out_of_band_response_leaves_the_conversation_alone() -> None:
    d = Driver()
    d.drain()
    d.send(user_text("Remember this"))
    events = d.send(
        {
            "type": "response.create",
            "response": {
                "conversation": "none",
                "output_modalities": ["text"],
                "metadata": {"purpose": "summary"},
                "input": [
                    {
                        "type": "message",
                        "role": "user",
                        "content": [{"type": "input_text", "text": "Summarize"}],
                    }
                ],
            },
        }
    )
    assert events[0]["response"]["conversation_id"] is None
    assert events[0]["response"]["metadata"] == {"purpose": "summary"}
    events = await d.run()
    assert "conversation.item.added" not in [e["type"] for e in events]
    assert (
        of_type(events, "response.output_text.done")[0]["text"] == "Summarize"
    )  # its own input, not the chat's
    item_id = events[0]["item"]["id"]
    err = d.send({"type": "conversation.item.retrieve", "item_id": item_id})[0]
    assert err["type"] == "error"  # never added to the conversation


async def test_response_input_can_reference_conversation_items() -> None:
    d = Driver(config={"output_modalities": ["text"]})
    d.drain()
    first = d.send(user_text("first"))[0]["item"]["id"]
    d.send(user_text("second"))
    d.send({"type": "response.create", "response": {"input": [{"type": "item_reference", "id": first}]}})
    events = await d.run()
    assert of_type(events, "response.output_text.done")[0]["text"] == "first"


async def test_response_options_override_the_session_for_one_response() -> None:
    d = Driver()
    d.drain()
    d.send(user_text("hello"))
    created = d.send(
        {
            "type": "response.create",
            "response": {
                "output_modalities": ["text"],
                "instructions": "Reply briefly.",
                "tools": TOOLS,
                "tool_choice": "none",
                "audio": {"output": {"voice": "ash", "format": {"type": "audio/pcmu"}}},
            },
        }
    )[0]["response"]
    assert created["output_modalities"] == ["text"]
    assert created["audio"]["output"] == {"format": {"type": "audio/pcmu"}, "voice": "ash"}
    (job,) = d.session.response_jobs()
    assert job.request.instructions == "Reply briefly." and job.request.tools == TOOLS
    assert job.request.tool_choice == "none" and job.request.voice == "ash"
    assert d.session.config["output_modalities"] == ["audio"]  # the session itself is unchanged


async def test_response_cancel_ends_it_with_every_done_event() -> None:
    d = Driver()
    d.drain()
    d.send(user_text("a long answer to be cut short"))
    d.send({"type": "response.create"})
    partial = await d.run(max_parts=2)
    assert partial[-1]["type"] in ("response.output_audio.delta", "response.output_audio_transcript.delta")
    events = d.send({"type": "response.cancel", "event_id": "stop"})
    assert [e["type"] for e in events] == AUDIO_ANSWER_END
    assert events[-1]["response"]["status_details"] == {"type": "cancelled", "reason": "client_cancelled"}
    assert d.send({"type": "response.cancel"})[0]["error"]["code"] == "response_cancel_not_active"
    # Parts that arrive after the end are ignored: the shell may lag a little.
    (created,) = of_type(d.seen, "response.created")
    d.session.response_part(created["response"]["id"], TextPart("late"), d.now)
    assert d.drain() == []


async def test_max_output_tokens_ends_the_response_incomplete() -> None:
    d = Driver(config={"output_modalities": ["text"], "max_output_tokens": 3})
    d.drain()
    d.send(user_text("one two three four five six seven eight nine ten eleven twelve"))
    d.send({"type": "response.create"})
    events = await d.run()
    done = events[-1]["response"]
    assert done["status"] == "incomplete" and done["status_details"]["reason"] == "max_output_tokens"
    assert done["usage"]["output_tokens"] >= 3
    assert len(of_type(events, "response.output_text.delta")) < 12


async def test_a_failing_responder_fails_the_response_not_the_session() -> None:
    d = Driver()
    d.drain()
    d.send({"type": "response.create"})
    (job,) = d.session.response_jobs()
    d.session.response_finished(job.response_id, d.now, error="responder failed: boom")
    done = d.drain()[-1]["response"]
    assert (
        done["status"] == "failed" and done["status_details"]["error"]["message"] == "responder failed: boom"
    )
    d.send(user_text("again"))
    d.send({"type": "response.create"})
    assert of_type(await d.run(), "response.done")[0]["response"]["status"] == "completed"


async def test_items_can_be_inserted_deleted_and_retrieved() -> None:
    d = Driver()
    d.drain()
    a = d.send(user_text("a"))[0]["item"]["id"]
    c = d.send(user_text("c"))[0]["item"]["id"]
    b_added = d.send({**user_text("b"), "previous_item_id": a})[0]
    assert b_added["previous_item_id"] == a
    assert [item["content"][0]["text"] for item in d.session.conversation.items()] == ["a", "b", "c"]
    assert d.send({"type": "conversation.item.delete", "item_id": c}) == [
        {**d.seen[-1], "type": "conversation.item.deleted", "item_id": c}
    ]
    retrieved = d.send({"type": "conversation.item.retrieve", "item_id": a})[0]
    assert retrieved["item"]["content"] == [{"type": "input_text", "text": "a"}]


async def test_speed_changes_the_echo_length() -> None:
    d = Driver(config={"audio": {"input": {"turn_detection": None}, "output": {"speed": 1.5}}})
    d.drain()
    d.append(b"\x10\x00" * 24000)  # 1 s of a low DC level
    d.send({"type": "input_audio_buffer.commit"})
    d.send({"type": "response.create"})
    out = audio_bytes(await d.run())
    assert abs(len(out) / 48 - 1000 / 1.5) < 10  # played 1.5x as fast: 667 ms


async def test_a_custom_voice_id_is_reported_by_id() -> None:
    d = Driver(config={"audio": {"output": {"voice": {"id": "voice_custom_1"}}}})
    assert d.drain()[0]["session"]["audio"]["output"]["voice"] == {"id": "voice_custom_1"}
    d.send(user_text("hi"))
    created = d.send({"type": "response.create"})[0]
    assert created["response"]["audio"]["output"]["voice"] == "voice_custom_1"
    assert of_type(await d.run(), "response.done")[0]["response"]["status"] == "completed"
