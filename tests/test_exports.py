"""The public surface: what ``rtlayer`` exports, and that importing it stays cheap."""

from __future__ import annotations

import subprocess
import sys

import pytest

import rtlayer
import rtlayer_native


def test_every_public_name_resolves_to_the_object_of_its_home_module() -> None:
    import importlib

    assert sorted(rtlayer.__all__) == sorted(rtlayer._HOMES)
    for name in rtlayer.__all__:
        value = getattr(rtlayer, name)
        home = importlib.import_module(rtlayer._HOMES[name])
        assert value is getattr(home, name), name


def test_the_design_sketch_names_are_exported() -> None:
    sketch = {
        "WebSocketTransport",
        "WebRTCTransport",
        "SIPTransport",
        "FetchUpgradeTransport",
        "CallsClient",
        "verify_webhook",
        "RealtimeTransportLayer",
        "RealtimeServer",
        "PlaybackTracker",
        "AudioFormat",
        "TwilioMediaStreamTransport",
    }
    assert sketch <= set(rtlayer.__all__)


def test_the_media_stream_transports_are_exported_from_rtlayer_and_rtlayer_transports() -> None:
    import rtlayer.transports
    from rtlayer.transports import media_stream

    for provider in ("Twilio", "Telnyx", "Plivo", "Exotel", "Vonage", ""):
        name = f"{provider}MediaStreamTransport"
        assert getattr(rtlayer, name) is getattr(media_stream, name)
        assert getattr(rtlayer.transports, name) is getattr(media_stream, name)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="NoSuchTransport"):
        getattr(rtlayer, "NoSuchTransport")  # noqa: B009


def test_import_rtlayer_loads_no_transport_server_or_media_stack() -> None:
    code = (
        "import sys, rtlayer; "
        "heavy = [m for m in ('websockets', 'aiohttp', 'aiortc', 'av', 'httpx', 'rtlayer.server') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True
    )
    assert done.stdout.strip() == ""


def test_native_core_public_names() -> None:
    expected = {
        "ulaw_encode",
        "ulaw_decode",
        "alaw_encode",
        "alaw_decode",
        "pcm16_to_float32",
        "float32_to_pcm16",
        "apply_gain",
        "rms",
        "peak",
        "rms_dbfs",
        "peak_dbfs",
        "stereo_to_mono",
        "mono_to_stereo",
        "Resampler",
        "AudioRing",
        "Framer",
        "Transcoder",
    }
    assert expected <= set(rtlayer_native.__all__)
    for name in expected:
        assert getattr(rtlayer_native, name).__doc__, f"{name} has no docstring"
