"""``RtlayerRealtimeModel``: the ``openai-agents`` realtime SDK over any rtlayer transport.

The Python Agents SDK speaks the Realtime protocol over a WebSocket only
(``OpenAIRealtimeWebSocketModel``). Its extension point is the abstract ``agents.realtime.RealtimeModel``;
this class implements it on top of an rtlayer transport, so that a ``RealtimeAgent`` with its tools,
handoffs and guardrails runs over WebRTC, SIP, an HTTP-proxy upgrade or a plain WebSocket alike:

```python
from agents.realtime import RealtimeAgent, RealtimeRunner
from rtlayer.integrations.openai_agents import RtlayerRealtimeModel
from rtlayer.transports import WebRTCTransport

runner = RealtimeRunner(agent, model=RtlayerRealtimeModel(transport=WebRTCTransport()))
async with await runner.run(model_config={"url": "http://127.0.0.1:8765", "api_key": "..."}) as session:
    await session.send_message("Hello")
    async for event in session: ...
```

What the SDK sends maps onto the transport's methods (``send_message``, ``send_audio``,
``send_function_call_output``, ``interrupt``, ``update_session_config``, ``send_event``); what the transport
emits (its raw ``*`` events and its typed events) becomes the SDK's ``RealtimeModel*Event``s, delivered to the
listeners in order by one task. The session config is built by the SDK's own builder, so that the agent's
instructions, tools, handoffs, voice, modalities, turn detection and formats reach the server exactly as the
SDK would send them. Interruption is the transport's: playback-based truncation (the app's
``playback_tracker`` when given, else the transport's playout clock), right after ``output_audio.done`` too.

On a phone call. Over SIP, accept with the agent's own config and attach with the call's id:

```python
await calls.accept(call.call_id, await build_initial_config(agent))   # formats dropped: the call's codec
model = RtlayerRealtimeModel(transport=SIPTransport())
session = await RealtimeRunner(agent, model=model).run(model_config={"url": ws_url, "call_id": call.call_id})
```

The model keeps that ``call_id`` for every later ``session.update`` (a handoff, ``update_agent``), so the
SDK's builder leaves formats out and the call goes on. Over a provider's media stream the transport is a
``MediaStreamTransport``; a key pressed there reaches the session as the same raw
``input_audio_buffer.dtmf_event_received`` event a SIP call gives. ``session_overrides`` puts settings
over every later update (a voice per agent, set in a handoff's ``on_handoff``).

Differences from ``OpenAIRealtimeWebSocketModel``, on purpose: ``interrupt()`` also cancels the running
response (the user asked the answer to stop), a lost socket is reconnected by the transport before the
session is told it ended, and server events are not validated into pydantic models (the embedded server's
tests validate them; the hot path stays light).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from agents.exceptions import UserError
from agents.realtime.agent import RealtimeAgent
from agents.realtime.config import RealtimeRunConfig, RealtimeSessionModelSettings
from agents.realtime.model import RealtimeModel, RealtimeModelConfig, RealtimeModelListener
from agents.realtime.model_events import RealtimeModelEvent, RealtimeModelExceptionEvent
from agents.realtime.model_inputs import (
    RealtimeModelSendAudio,
    RealtimeModelSendEvent,
    RealtimeModelSendInterrupt,
    RealtimeModelSendRawMessage,
    RealtimeModelSendSessionUpdate,
    RealtimeModelSendToolOutput,
    RealtimeModelSendUserInput,
)
from agents.realtime.openai_realtime import OpenAIRealtimeSIPModel, OpenAIRealtimeWebSocketModel

from ..audio import PCM16_24K
from ..client.session import ClientSession
from ..transport import FunctionCallEvent, RealtimeTransportLayer
from ._agents_events import AgentsTrackerBridge, tool_call_item
from ._agents_mapper import EventMapper

__all__ = ["RtlayerRealtimeModel", "build_initial_config", "build_session_config"]

logger = logging.getLogger("rtlayer.integrations.openai_agents")


def build_session_config(
    settings: RealtimeSessionModelSettings, *, model: str, call_id: str | None = None
) -> dict[str, Any]:
    """The GA session config the Agents SDK would send for ``settings``, as a dict for rtlayer.

    Built by the SDK's own builder (``OpenAIRealtimeWebSocketModel._get_session_config``, which the SDK's
    SIP helper reuses the same way), so defaults, tool schemas, handoffs and format spellings stay the
    SDK's; the tracing choice, which the SDK sends in a second ``session.update``, is added here.
    """
    builder = OpenAIRealtimeWebSocketModel()
    builder.model = model
    builder._call_id = call_id
    config: dict[str, Any] = builder._get_session_config(settings).model_dump(mode="json", exclude_unset=True)
    if "tracing" in settings:
        tracing = settings["tracing"]
        # None (tracing disabled) goes out as null, which also keeps rtlayer from asking for "auto" later.
        config["tracing"] = (
            {k: v for k, v in tracing.items() if v is not None} if isinstance(tracing, Mapping) else tracing
        )
    return config


async def build_initial_config(
    agent: RealtimeAgent[Any],
    *,
    context: Any = None,
    model_config: RealtimeModelConfig | None = None,
    run_config: RealtimeRunConfig | None = None,
    overrides: RealtimeSessionModelSettings | None = None,
) -> dict[str, Any]:
    """The ``CallsClient.accept`` body for a SIP call that ``agent`` will take: what a session of this agent
    would send on connect (instructions, tools, handoffs, voice, turn detection, ...), like the JS SDK's
    ``OpenAIRealtimeSIP.buildInitialConfig(agent, options)``.

    Built by the SDK's own ``OpenAIRealtimeSIPModel.build_initial_session_payload`` (so tool schemas,
    handoffs and enabled-tool filters are the SDK's), then given to ``rtlayer.transports.sip``'s
    ``build_initial_config``, which drops the SDK's ``audio/pcm`` formats with one warning: the call's
    audio is the caller's codec.
    """
    from ..transports.sip import build_initial_config as sip_initial_config  # httpx: only for SIP apps

    payload = await OpenAIRealtimeSIPModel.build_initial_session_payload(
        agent, context=context, model_config=model_config, run_config=run_config, overrides=overrides
    )
    return sip_initial_config(config=payload)


class RtlayerRealtimeModel(RealtimeModel):
    """An ``agents.realtime.RealtimeModel`` carried by an rtlayer transport (see the module docstring).

    ``transport`` defaults to a new ``WebSocketTransport``; pass ``WebRTCTransport()``, ``SIPTransport()``
    (with ``call_id`` in the model config) or ``FetchUpgradeTransport()`` for the others. ``model_config``
    keys: ``url`` (for WebRTC, the server's HTTP base or ``/v1/realtime/calls``), ``api_key`` (a string or a
    function returning one; never logged), ``headers`` (replace the default auth), ``initial_model_settings``,
    ``playback_tracker`` (the SDK's tracker; the transport truncates at what it reports) and ``call_id``.
    With neither URL nor key, the WebSocket transport starts the embedded server in-process.
    """

    #: events waiting for the listeners; past this the oldest are dropped and counted (a stuck listener
    #: must not grow memory without limit)
    MAX_PENDING_EVENTS = 100_000

    def __init__(self, *, transport: RealtimeTransportLayer | None = None) -> None:
        if transport is None:
            from ..transports import WebSocketTransport

            transport = WebSocketTransport()
        self.transport: RealtimeTransportLayer = transport
        self.dropped_events = 0
        self._listeners: list[RealtimeModelListener] = []
        self._pending: deque[RealtimeModelEvent] = deque()
        self._wake = asyncio.Event()
        self._pump: asyncio.Task[None] | None = None
        self._mapper = EventMapper(transport, self._put)
        self._bridge: AgentsTrackerBridge | None = None
        self._call_id: str | None = None
        #: settings put over every session update the SDK sends from now on (a handoff, ``update_agent``):
        #: for example ``{"voice": "coral"}`` set in a handoff's ``on_handoff``, since the Python SDK's
        #: agents carry no voice of their own (the JS SDK's do)
        self.session_overrides: RealtimeSessionModelSettings = {}

    # -- RealtimeModel ---------------------------------------------------------------------------------------

    def add_listener(self, listener: RealtimeModelListener) -> None:
        if listener not in self._listeners:
            self._listeners.append(listener)

    def remove_listener(self, listener: RealtimeModelListener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    async def connect(self, options: RealtimeModelConfig) -> None:
        """Connects the transport with the agent's session config; returns once the session exists."""
        if self._pump is not None:
            raise AssertionError("Already connected")
        settings: RealtimeSessionModelSettings = options.get("initial_model_settings", {})
        call_id = options.get("call_id")
        self._call_id = call_id
        model_name = settings.get("model_name")
        if call_id and model_name:
            raise UserError(
                "Cannot specify both `call_id` and `model_name` when attaching to an existing realtime call."
            )
        transport_model = getattr(self.transport, "model", None)
        model = model_name or (transport_model if isinstance(transport_model, str) else "gpt-realtime")
        config = build_session_config(settings, model=model, call_id=call_id)
        if "headers" in options:
            # The SDK's meaning: custom headers replace the default auth (every rtlayer transport agrees).
            transport: Any = self.transport
            transport.headers = dict(options["headers"])
        self._install_tracker(options.get("playback_tracker"))
        self._mapper.reset()
        self._pending.clear()
        self._pump = asyncio.create_task(self._deliver(), name="rtlayer-agents-events")
        self._mapper.subscribe()
        try:
            await self.transport.connect(
                url=options.get("url"),
                api_key=options.get("api_key"),
                model=model_name,
                call_id=call_id,
                initial_session_config=config,
            )
        except BaseException:
            self._mapper.closing = True
            self._mapper.unsubscribe()
            await self._stop_pump()
            raise

    async def send_event(self, event: RealtimeModelSendEvent) -> None:
        """Maps one SDK send event onto the transport (which sequences ``response.create`` itself)."""
        transport = self.transport
        if isinstance(event, RealtimeModelSendRawMessage):
            raw: dict[str, Any] = {"type": event.message["type"]}
            raw.update(event.message.get("other_data", {}))
            transport.send_event(raw)
        elif isinstance(event, RealtimeModelSendUserInput):
            transport.send_message(event.user_input)
        elif isinstance(event, RealtimeModelSendAudio):
            await transport.send_audio(event.audio, commit=event.commit)
        elif isinstance(event, RealtimeModelSendToolOutput):
            await self._send_tool_output(event)
        elif isinstance(event, RealtimeModelSendInterrupt):
            self._interrupt(event)
        elif isinstance(event, RealtimeModelSendSessionUpdate):
            settings: RealtimeSessionModelSettings = {**event.session_settings, **self.session_overrides}
            transport_model = getattr(transport, "model", None)
            model = settings.get("model_name") or (
                transport_model if isinstance(transport_model, str) else "gpt-realtime"
            )
            # With the call's id, as at connect: the SDK's builder then leaves formats out on a SIP call.
            transport.update_session_config(
                build_session_config(settings, model=model, call_id=self._call_id)
            )
        else:  # pragma: no cover - the union is exhaustive
            raise ValueError(f"Unknown event type: {type(event)}")

    async def send_event_if(self, event: RealtimeModelSendEvent, send_if: Callable[[], bool]) -> bool:
        """Sends ``event`` only if ``send_if()`` still holds: rtlayer queues a send synchronously, so the
        check and the commit cannot be separated by another task."""
        if not send_if():
            return False
        await self.send_event(event)
        return True

    async def close(self) -> None:
        """Closes the transport and stops delivering events. Safe to call twice."""
        self._mapper.closing = True
        self._mapper.unsubscribe()
        try:
            await self.transport.close()
        finally:
            await self._stop_pump()
            if self._bridge is not None:
                self._uninstall_tracker()

    # -- sends -----------------------------------------------------------------------------------------------

    async def _send_tool_output(self, event: RealtimeModelSendToolOutput) -> None:
        call = event.tool_call
        self.transport.send_function_call_output(
            FunctionCallEvent(
                name=call.name,
                call_id=call.call_id,
                arguments=call.arguments,
                item_id=call.id or "",
                response_id="",
                previous_item_id=call.previous_item_id,
            ),
            event.output,
            event.start_response,
        )
        # Like the SDK: the call's history item is completed with its output right away.
        await self._emit_now(
            tool_call_item(
                item_id=call.id or "",
                call_id=call.call_id,
                name=call.name,
                arguments=call.arguments,
                previous_item_id=call.previous_item_id,
                output=event.output,
            )
        )

    def _interrupt(self, event: RealtimeModelSendInterrupt) -> None:
        if event.playback_only and (event.cancel_response_only or event.force_response_cancel):
            raise ValueError("playback_only cannot be combined with explicit cancellation modes")
        if event.cancel_response_only:
            if event.response_id is None:
                raise ValueError("cancel_response_only requires response_id")
            self._cancel(event.response_id)
            return
        scoped = event.response_id
        if scoped is not None and scoped != self._mapper.playing_response_id:
            # Playback belongs to another response (or none): leave it alone, only cancel this one.
            if not event.playback_only:
                self._cancel(scoped)
            return
        cancel = not event.playback_only and (scoped is None or scoped == self._mapper.active_response_id)
        self.transport.interrupt(cancel_ongoing_response=cancel)

    def _cancel(self, response_id: str) -> None:
        if response_id == self._mapper.active_response_id:
            self.transport.send_event({"type": "response.cancel", "response_id": response_id})

    # -- delivery --------------------------------------------------------------------------------------------

    def _put(self, event: RealtimeModelEvent) -> None:
        if len(self._pending) >= self.MAX_PENDING_EVENTS:
            self._pending.popleft()
            self.dropped_events += 1
            if self.dropped_events == 1:
                logger.warning("listeners fall behind: dropping the oldest model events (counted)")
        self._pending.append(event)
        self._wake.set()

    async def _deliver(self) -> None:
        """The one task that hands events to the listeners, in the order the transport emitted them."""
        me = asyncio.current_task()
        pending = self._pending
        while self._pump is me:
            await self._wake.wait()
            self._wake.clear()
            while pending and self._pump is me:  # close() from a listener ends it here
                event = pending.popleft()
                # ``_emit_now`` inlined: this loop runs twice per audio delta (raw event, then audio)
                for listener in tuple(self._listeners):
                    try:
                        await listener.on_event(event)
                    except Exception as exc:
                        await self._listener_failed(exc, event)

    async def _emit_now(self, event: RealtimeModelEvent) -> None:
        for listener in tuple(self._listeners):
            try:
                await listener.on_event(event)
            except Exception as exc:
                await self._listener_failed(exc, event)

    async def _listener_failed(self, exc: Exception, event: RealtimeModelEvent) -> None:
        # Like the SDK's receive loop: a listener failure is reported to the listeners, not fatal here.
        logger.error("realtime model listener raised %s", type(exc).__name__)
        if not isinstance(event, RealtimeModelExceptionEvent):
            await self._emit_now(
                RealtimeModelExceptionEvent(exception=exc, context="Error handling a transport event")
            )

    async def _stop_pump(self) -> None:
        pump, self._pump = self._pump, None
        if pump is None or pump is asyncio.current_task():
            return
        pump.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pump
        self._pending.clear()

    def _install_tracker(self, tracker: Any) -> None:
        if tracker is None:
            return
        transport: Any = self.transport
        session = getattr(transport, "session", None)
        if isinstance(session, ClientSession):  # socket transports: one session object for their life
            bridge = AgentsTrackerBridge(tracker, session.output_format or session.session_output_format)
            session.tracker = bridge
        elif hasattr(transport, "tracker"):  # WebRTC: its session is created at connect, with this tracker
            bridge = AgentsTrackerBridge(tracker, getattr(transport, "output_format", PCM16_24K))
            transport.tracker = bridge
        else:
            raise UserError(f"{type(transport).__name__} takes no playback tracker")
        self._bridge = bridge

    def _uninstall_tracker(self) -> None:
        transport: Any = self.transport
        session = getattr(transport, "session", None)
        if isinstance(session, ClientSession) and session.tracker is self._bridge:
            session.tracker = None
        if getattr(transport, "tracker", None) is self._bridge:
            transport.tracker = None
        self._bridge = None
