"""A telephony provider's side of a media stream (Twilio, Telnyx, Plivo, Exotel, Vonage), for tests.

``PhoneSimulator`` calls an app's media-stream endpoint exactly as the provider would and reports what the
caller heard; ``providers`` holds each provider's wire, written from its documentation.
"""

from __future__ import annotations

from .providers import PROVIDERS, CallInfo, ProviderSide, provider_side
from .simulator import Answer, ClearReport, PhoneSimulator, TimelineEntry

__all__ = [
    "PROVIDERS",
    "Answer",
    "CallInfo",
    "ClearReport",
    "PhoneSimulator",
    "ProviderSide",
    "TimelineEntry",
    "provider_side",
]
