"""``audio.input.noise_reduction``: a noise gate on the user's audio, before turn detection and the responder.

The service filters input audio for the kind of microphone (``near_field``: a headset or a phone held
to the ear; ``far_field``: a laptop or a room microphone, which hears more of the room). The embedded
server has no neural denoiser, but it can do what such filters do to a room's hum or a fan: attenuate
the 10 ms blocks whose level stays under a threshold, and let speech through untouched. A block that
follows speech stays open for a hangover (200 ms), so the soft ends of words are not cut.

``far_field`` sets the threshold higher (a far microphone picks speech up quieter, but the room
louder); ``strength`` (0..1, default 0.5) moves it from 10 dB under the default up to 10 dB over and
sets how deep closed blocks are attenuated (down to -40 dB at 1.0). Levels are measured and gains
applied by ``rtlayer_native``; Python only loops over blocks.
"""

from __future__ import annotations

from typing import Any

import rtlayer_native

__all__ = ["NoiseGate", "noise_gate"]

BLOCK_BYTES = 480  # 10 ms of PCM16 24 kHz
HANGOVER_BLOCKS = 20  # 200 ms
_THRESHOLD_DBFS = {"near_field": -50.0, "far_field": -42.0}


class NoiseGate:
    """Gates PCM16 24 kHz mono audio, block by block; ``blocks_attenuated`` counts what it quieted."""

    def __init__(self, config: dict[str, Any]) -> None:
        strength = float(config.get("strength", 0.5))
        self.threshold_dbfs = _THRESHOLD_DBFS[config["type"]] + (strength - 0.5) * 20.0
        self._threshold = 10 ** (self.threshold_dbfs / 20)
        self.closed_gain = 10 ** (-40.0 * strength / 20) if strength > 0 else 1.0
        self._open_blocks = 0
        self.blocks_attenuated = 0

    def process(self, pcm16_24k: bytes) -> bytes:
        """The audio with its quiet blocks attenuated (same length)."""
        if self.closed_gain == 1.0 or not pcm16_24k:
            return pcm16_24k
        out = []
        for start in range(0, len(pcm16_24k), BLOCK_BYTES):
            block = pcm16_24k[start : start + BLOCK_BYTES]
            if rtlayer_native.rms(block) >= self._threshold:
                self._open_blocks = HANGOVER_BLOCKS
                out.append(block)
            elif self._open_blocks > 0:
                self._open_blocks -= 1
                out.append(block)
            else:
                self.blocks_attenuated += 1
                out.append(rtlayer_native.apply_gain(block, self.closed_gain))
        return b"".join(out)


def noise_gate(session: dict[str, Any]) -> NoiseGate | None:
    """The gate a session config asks for, or None (``noise_reduction: null``, the default)."""
    config = session["audio"]["input"].get("noise_reduction")
    return NoiseGate(config) if isinstance(config, dict) and config.get("type") in _THRESHOLD_DBFS else None
