"""The ``rtlayer`` command's flags: every bad one is a single line on standard error and exit status 2,
the help reads as plain text, and ``--version`` says the package's version."""

from __future__ import annotations

import pytest

import rtlayer
from rtlayer.cli import _SUBCOMMANDS, main

COMMANDS = "{" + ",".join(_SUBCOMMANDS) + "}"

BAD_FLAGS = [
    # (the command line, what the one line must say)
    (["serve", "--port", "99999"], "argument --port: expected a port from 0 to 65535, got 99999"),
    (["serve", "--port", "-1"], "argument --port: expected a port from 0 to 65535, got -1"),
    (["serve", "--port", "http"], "argument --port: expected a whole number, got 'http'"),
    (["serve", "--sip-port", "70000"], "argument --sip-port: expected a port from 0 to 65535, got 70000"),
    (["serve", "--log-level", "loud"], "argument --log-level: invalid choice: 'loud'"),
    (["serve", "--audio-pacing", "-1"], "argument --audio-pacing: expected a number >= 0, got -1"),
    (["serve", "--audio-pacing", "nan"], "argument --audio-pacing: expected a number >= 0, got nan"),
    (["serve", "--max-sessions", "0"], "argument --max-sessions: expected a whole number >= 1, got 0"),
    (["serve", "--idle-timeout", "-1"], "argument --idle-timeout: expected seconds >= 0, got -1"),
    (["serve", "--session-expiry", "0"], "argument --session-expiry: expected seconds > 0, got 0"),
    (["talk", "in.wav", "-o", "out.wav", "--rate", "12345"], "argument --rate: unsupported sample rate 12345"),
    (["talk", "in.wav", "-o", "out.wav", "--rate", "fast"], "argument --rate: expected a whole number, got 'fast'"),
    (["talk", "in.wav", "-o", "out.wav", "--pace", "-2"], "argument --pace: expected a number >= 0, got -2"),
    (["talk", "in.wav", "-o", "out.wav", "--timeout", "0"], "argument --timeout: expected seconds > 0, got 0"),
    (["talk", "in.wav", "-o", "out.wav", "--silence-ms", "-5"], "argument --silence-ms: expected a whole number >= 0"),
    (["talk", "in.wav", "-o", "out.wav", "--transport", "pigeon"], "argument --transport: invalid choice: 'pigeon'"),
    (["talk", "in.wav"], "the following arguments are required: -o/--output"),
    (["events", "--timeout", "-1"], "argument --timeout: expected seconds > 0, got -1"),
    (["events", "--quiet-ms", "soon"], "argument --quiet-ms: expected a whole number, got 'soon'"),
    # Left-over arguments are reported by the top-level parser, which saw them last.
    (["serve", "--no-such-flag"], "rtlayer: unrecognized arguments: --no-such-flag"),
    (["bridge", "--provider", "twilio", "--port", "65536"], "argument --port: expected a port from 0 to 65535, got 65536"),
    (["bridge", "--provider", "twilio", "--log-level", "loud"], "argument --log-level: invalid choice: 'loud'"),
    (["dance"], f"argument {COMMANDS}: invalid choice: 'dance'"),
    ([], f"the following arguments are required: {COMMANDS}"),
]  # fmt: skip


@pytest.mark.parametrize(("argv", "message"), BAD_FLAGS, ids=[" ".join(a) or "nothing" for a, _ in BAD_FLAGS])
def test_a_bad_flag_is_one_line_and_exit_status_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1, err  # one line: no usage block, no traceback
    if message.startswith("rtlayer"):
        command, message = message.split(": ", 1)
    else:
        command = "rtlayer " + argv[0] if argv and argv[0] in _SUBCOMMANDS else "rtlayer"
    assert err.startswith(f"{command}: {message}"), err
    assert err.endswith(f"(see {command} --help)\n")


def test_the_top_level_help_is_plain_text(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    assert "``" not in text  # no reStructuredText markup from a docstring
    assert text.startswith(f"usage: rtlayer [-h] [--version] {COMMANDS} ...")
    for name in _SUBCOMMANDS:
        assert f"    {name} " in text


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"rtlayer {rtlayer.__version__}\n"
