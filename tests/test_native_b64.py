"""``rtlayer_native._b64.b64decode_plain``: the fast path for audio in JSON (appends at the server, deltas at
the client, a provider's media frames at the bridge) must decode exactly what strict ``binascii`` decodes, and
hand every other input back (``None``) to binascii's own rules."""

from __future__ import annotations

import base64
import binascii
import random

import pytest

from rtlayer_native._b64 import b64decode_plain, b64encode_str


@pytest.mark.parametrize("size", [*range(0, 40), 960, 4800, 48_000])  # 48,000: decoded without the GIL
def test_plain_base64_decodes_as_binascii_does(size: int) -> None:
    rnd = random.Random(size)
    for _ in range(20):
        raw = rnd.randbytes(size)
        text = base64.b64encode(raw).decode()
        assert b64decode_plain(text) == raw  # padded (size % 3) or not


def test_any_other_character_hands_the_text_back() -> None:
    rnd = random.Random(7)
    text = base64.b64encode(rnd.randbytes(960)).decode()
    handed_back = 0
    for _ in range(2000):
        i = rnd.randrange(len(text))
        mutated = text[:i] + chr(rnd.randrange(0, 0x2FF)) + text[i + 1 :]
        got = b64decode_plain(mutated)
        if got is None:
            handed_back += 1
        else:  # still plain base64 (a character swapped for another of the alphabet)
            assert got == binascii.a2b_base64(mutated, strict_mode=True)
    assert handed_back > 1500  # most replacements fall outside the 64 characters


@pytest.mark.parametrize(
    "text",
    [
        "A===",
        "====",
        "AA=A",
        "AAA=AAAA",
        "AA==AA==",
        "AA===",
        "AAAA=",
        "AAAA\n",
        " AAA",
        "AAA",
        "\u00c0AAA",
        "\u20acAAA",
        "AA-_",
        b"AAAA",
        bytearray(b"AAAA"),
        7,
    ],
)
def test_padding_whitespace_other_alphabets_and_types_are_not_the_plain_case(text: object) -> None:
    assert b64decode_plain(text) is None


def test_empty_text_is_empty_audio() -> None:
    assert b64decode_plain("") == b""


def test_padding_closes_the_last_group_and_its_unused_bits_are_ignored_as_binascii_does() -> None:
    for text, raw in (("AAA=", b"\0\0"), ("AA==", b"\0"), ("AB==", b"\0"), ("ABD=", b"\x00\x10")):
        assert b64decode_plain(text) == raw == binascii.a2b_base64(text, strict_mode=True)


def test_mutations_near_the_padding_decode_as_binascii_does_or_are_handed_back() -> None:
    """What the fast path decodes, strict binascii decodes to the same bytes; it never accepts what binascii
    refuses. Mutations aimed at the last groups, where padding is allowed."""
    rnd = random.Random(11)
    alphabet = "AZaz09+/=-_ \n"
    handed_back = decoded = 0
    for _ in range(5000):
        text = base64.b64encode(rnd.randbytes(rnd.randrange(1, 12))).decode()
        chars = list(text)
        for _ in range(rnd.randrange(1, 3)):
            at = rnd.randrange(max(0, len(chars) - 6), len(chars) + 1)
            op = rnd.randrange(3)
            if op == 0 and at < len(chars):
                chars[at] = rnd.choice(alphabet)
            elif op == 1:
                chars.insert(at, rnd.choice(alphabet))
            elif chars and at < len(chars):
                del chars[at]
        mutated = "".join(chars)
        got = b64decode_plain(mutated)
        if got is None:
            handed_back += 1
        else:
            decoded += 1
            assert got == binascii.a2b_base64(mutated, strict_mode=True), mutated
    assert handed_back > 1000 and decoded > 500


@pytest.mark.parametrize("size", [*range(0, 40), 4800, 48_001])  # 48,001: encoded without the GIL
def test_encoding_is_base64_b64encode_as_str(size: int) -> None:
    raw = random.Random(size).randbytes(size)
    assert b64encode_str(raw) == base64.b64encode(raw).decode()


def test_encoding_takes_bytes_only() -> None:
    with pytest.raises(TypeError):
        b64encode_str(bytearray(b"abc"))  # type: ignore[arg-type]


def test_a_bad_character_deep_in_a_long_text_hands_it_back() -> None:
    """Past the size decoded without the GIL, the alphabet check still covers every character."""
    text = base64.b64encode(bytes(48_000)).decode()
    for at in (0, 31_999, len(text) - 1):
        assert b64decode_plain(text[:at] + "-" + text[at + 1 :]) is None


def test_threads_decode_and_encode_long_texts_at_once() -> None:
    """The GIL is released for long texts: concurrent calls each get their own, right answer."""
    from concurrent.futures import ThreadPoolExecutor

    raws = [random.Random(i).randbytes(60_000) for i in range(8)]

    def round_trip(raw: bytes) -> bool:
        return all(b64decode_plain(b64encode_str(raw)) == raw for _ in range(20))

    with ThreadPoolExecutor(4) as pool:
        assert all(pool.map(round_trip, raws))


@pytest.mark.parametrize(
    "text",
    [base64.b64encode(bytes(i % 256 for i in range(n))).decode() for n in (0, 1, 2, 3, 960)]
    + ["abc", "ab=c", "YWJj\n", "é" * 4],
)
def test_b64decode_audio_follows_b64decode_validate(text: str) -> None:
    """``codec.b64decode_audio``, what the server's appends and the client's deltas use: the native plain case,
    else strict binascii; the same bytes or the same refusal as ``base64.b64decode(text, validate=True)``."""
    from rtlayer.protocol.codec import b64decode_audio

    try:
        expected: bytes | None = base64.b64decode(text, validate=True)
    except ValueError:
        expected = None
    if expected is None:
        with pytest.raises(ValueError):
            b64decode_audio(text)
    else:
        assert b64decode_audio(text) == expected
