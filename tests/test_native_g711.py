"""G.711 in rtlayer_native: bit-exact with audioop (3.11) over every code and every linear value.

The same tests run against a slow, obvious numpy reference of the ITU algorithm, so a failure says
whether the algorithm or the Cython kernel is wrong.

``audioop`` left the standard library in Python 3.13. Where it exists it is the reference; elsewhere
its tables, recorded from CPython 3.11 into ``tests/data/audioop_g711_tables.bin.gz`` (mu-law and
A-law decode of the 256 codes, then encode of the 65,536 linear values), stand in for it, and a test
on the interpreters that still have audioop checks that the recording is exactly what audioop says.
Either way every test runs: none is skipped for want of audioop.
"""

from __future__ import annotations

import gzip
import warnings
from array import array
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import NamedTuple

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rtlayer_native as rn

TABLES = Path(__file__).parent / "data" / "audioop_g711_tables.bin.gz"


def _stdlib_audioop() -> ModuleType | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            import audioop
        except ImportError:  # Python >= 3.13
            return None
    return audioop


class RecordedAudioop:
    """audioop's four G.711 functions (width 2) as its recorded tables: identical results."""

    def __init__(self, path: Path) -> None:
        blob = gzip.decompress(path.read_bytes())
        assert len(blob) == 2 * 512 + 2 * 65536
        self.ulaw_dec = np.frombuffer(blob[:512], "<i2")
        self.alaw_dec = np.frombuffer(blob[512:1024], "<i2")
        self.ulaw_enc = np.frombuffer(blob[1024:66560], np.uint8)
        self.alaw_enc = np.frombuffer(blob[66560:], np.uint8)

    @staticmethod
    def _encode(table: np.ndarray, pcm16: bytes) -> bytes:
        if len(pcm16) % 2:
            raise ValueError("not a whole number of frames")  # audioop.error is a ValueError too
        return table[np.frombuffer(pcm16, "<i2").astype(np.int64) + 32768].tobytes()  # type: ignore[no-any-return]

    def ulaw2lin(self, data: bytes, width: int) -> bytes:
        assert width == 2
        return self.ulaw_dec[np.frombuffer(data, np.uint8)].astype("<i2").tobytes()

    def alaw2lin(self, data: bytes, width: int) -> bytes:
        assert width == 2
        return self.alaw_dec[np.frombuffer(data, np.uint8)].astype("<i2").tobytes()

    def lin2ulaw(self, data: bytes, width: int) -> bytes:
        assert width == 2
        return self._encode(self.ulaw_enc, data)

    def lin2alaw(self, data: bytes, width: int) -> bytes:
        assert width == 2
        return self._encode(self.alaw_enc, data)


RECORDED = RecordedAudioop(TABLES)
STDLIB_AUDIOOP = _stdlib_audioop()
audioop = STDLIB_AUDIOOP or RECORDED

ALL_CODES = bytes(range(256))
ALL_LINEAR = np.arange(-32768, 32768, dtype="<i2").tobytes()


# --- the numpy reference -------------------------------------------------------------------------
_ULAW_SEG_END = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF])
_ALAW_SEG_END = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF])


def ref_ulaw_encode(pcm16: bytes) -> bytes:
    v = np.frombuffer(pcm16, "<i2").astype(np.int64) >> 2  # 14-bit
    mask = np.where(v < 0, 0x7F, 0xFF)
    mag = np.minimum(np.abs(v), 8159) + 33  # clip, then bias
    seg = np.searchsorted(_ULAW_SEG_END, mag, side="left")
    code = np.where(seg >= 8, 0x7F, (seg << 4) | ((mag >> (seg + 1)) & 0xF))
    return (code ^ mask).astype(np.uint8).tobytes()


def ref_alaw_encode(pcm16: bytes) -> bytes:
    v = np.frombuffer(pcm16, "<i2").astype(np.int64) >> 3  # 13-bit
    mask = np.where(v >= 0, 0xD5, 0x55)
    mag = np.where(v >= 0, v, -v - 1)
    seg = np.searchsorted(_ALAW_SEG_END, mag, side="left")
    quant = np.where(seg < 2, mag >> 1, mag >> np.maximum(seg, 1)) & 0xF
    code = np.where(seg >= 8, 0x7F, (seg << 4) | quant)
    return (code ^ mask).astype(np.uint8).tobytes()


def ref_ulaw_decode(ulaw: bytes) -> bytes:
    u = ~np.frombuffer(ulaw, np.uint8).astype(np.int64) & 0xFF
    exponent, mantissa = (u >> 4) & 7, u & 0xF
    mag = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return np.where(u & 0x80, -mag, mag).astype("<i2").tobytes()


def ref_alaw_decode(alaw: bytes) -> bytes:
    a = np.frombuffer(alaw, np.uint8).astype(np.int64) ^ 0x55
    exponent, mantissa = (a >> 4) & 7, a & 0xF
    mag = np.where(
        exponent == 0, (mantissa << 4) + 8, ((mantissa << 4) + 0x108) << np.maximum(exponent - 1, 0)
    )
    return np.where(a & 0x80, mag, -mag).astype("<i2").tobytes()


class G711(NamedTuple):
    ulaw_encode: Callable[[bytes], bytes]
    ulaw_decode: Callable[[bytes], bytes]
    alaw_encode: Callable[[bytes], bytes]
    alaw_decode: Callable[[bytes], bytes]


IMPLEMENTATIONS = {
    "native": G711(rn.ulaw_encode, rn.ulaw_decode, rn.alaw_encode, rn.alaw_decode),
    "reference": G711(ref_ulaw_encode, ref_ulaw_decode, ref_alaw_encode, ref_alaw_decode),
}


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
def g711(request: pytest.FixtureRequest) -> G711:
    return IMPLEMENTATIONS[request.param]


# --- exactness -----------------------------------------------------------------------------------
def test_decoders_match_audioop_on_all_256_codes(g711: G711) -> None:
    assert g711.ulaw_decode(ALL_CODES) == audioop.ulaw2lin(ALL_CODES, 2)
    assert g711.alaw_decode(ALL_CODES) == audioop.alaw2lin(ALL_CODES, 2)


def test_encoders_match_audioop_on_all_65536_values(g711: G711) -> None:
    assert g711.ulaw_encode(ALL_LINEAR) == audioop.lin2ulaw(ALL_LINEAR, 2)
    assert g711.alaw_encode(ALL_LINEAR) == audioop.lin2alaw(ALL_LINEAR, 2)


def test_decode_then_encode_is_identity_except_the_two_zero_codes() -> None:
    # mu-law has +0 (0xFF) and -0 (0x7F); both decode to 0, which encodes as 0xFF.
    ulaw = rn.ulaw_encode(rn.ulaw_decode(ALL_CODES))
    assert [c for c in range(256) if ulaw[c] != c] == [0x7F]
    assert rn.alaw_encode(rn.alaw_decode(ALL_CODES)) == ALL_CODES


def test_any_bytes_like_is_accepted() -> None:
    pcm = array("h", [0, 1000, -1000, 32767, -32768])
    expected = audioop.lin2ulaw(pcm.tobytes(), 2)
    for data in (pcm, pcm.tobytes(), bytearray(pcm.tobytes()), memoryview(pcm.tobytes())):
        assert rn.ulaw_encode(data) == expected
    assert rn.ulaw_decode(bytearray(expected)) == audioop.ulaw2lin(expected, 2)
    assert rn.alaw_decode(memoryview(expected)[1:]) == audioop.alaw2lin(expected[1:], 2)


def test_empty_input_gives_empty_output() -> None:
    assert rn.ulaw_encode(b"") == rn.alaw_encode(b"") == rn.ulaw_decode(b"") == rn.alaw_decode(b"") == b""


@pytest.mark.parametrize("encode", [rn.ulaw_encode, rn.alaw_encode])
def test_odd_pcm16_length_is_a_value_error_that_says_so(encode: Callable[[bytes], bytes]) -> None:
    with pytest.raises(ValueError, match="PCM16 data must have an even number of bytes, got 3"):
        encode(b"\x00\x01\x02")


def test_non_buffer_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        rn.ulaw_decode("not bytes")  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600))
def test_random_buffers_match_audioop(data: bytes) -> None:
    assert rn.ulaw_decode(data) == audioop.ulaw2lin(data, 2)
    assert rn.alaw_decode(data) == audioop.alaw2lin(data, 2)
    if len(data) % 2:
        with pytest.raises(ValueError, match="even number of bytes"):
            rn.alaw_encode(data)
    else:
        assert rn.ulaw_encode(data) == audioop.lin2ulaw(data, 2)
        assert rn.alaw_encode(data) == audioop.lin2alaw(data, 2)


def test_the_recorded_audioop_tables_are_what_audioop_says_where_it_exists() -> None:
    """On 3.11 and 3.12 (audioop in the stdlib) the recording is checked; on 3.13+ it is the reference,
    and the numpy reference of the ITU algorithm above agrees with it."""
    if STDLIB_AUDIOOP is None:
        assert audioop is RECORDED
        assert ref_ulaw_encode(ALL_LINEAR) == RECORDED.lin2ulaw(ALL_LINEAR, 2)
        assert ref_alaw_decode(ALL_CODES) == RECORDED.alaw2lin(ALL_CODES, 2)
        return
    for name, data in (
        ("ulaw2lin", ALL_CODES),
        ("alaw2lin", ALL_CODES),
        ("lin2ulaw", ALL_LINEAR),
        ("lin2alaw", ALL_LINEAR),
    ):
        assert getattr(RECORDED, name)(data, 2) == getattr(STDLIB_AUDIOOP, name)(data, 2), name
