"""The server's key kept out of the process list: ``$RTLAYER_API_KEY`` and ``--api-key-file``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import websockets
from helpers_serve import ServeProcess, open_session

from rtlayer.cli.serve import API_KEY_ENV, add_arguments, api_key_from

pytestmark = pytest.mark.timeout(30)

KEY = "sk-hardening-from-env-4f9a2b"


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


def test_the_key_comes_from_the_flag_then_the_file_then_the_environment(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("sk-from-file\nsecond line ignored\n")
    env = {API_KEY_ENV: "sk-from-env"}
    assert api_key_from(parse("--api-key", "sk-flag", "--api-key-file", str(key_file)), env) == "sk-flag"
    assert api_key_from(parse("--api-key-file", str(key_file)), env) == "sk-from-file"
    assert api_key_from(parse(), env) == "sk-from-env"
    assert api_key_from(parse(), {}) is None
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ValueError, match="is empty"):
        api_key_from(parse("--api-key-file", str(tmp_path / "empty")), {})
    with pytest.raises(ValueError, match="cannot read the API key file"):
        api_key_from(parse("--api-key-file", str(tmp_path / "missing")), {})


@pytest.mark.parametrize("source", ["env", "file"])
async def test_a_key_given_outside_the_command_line_is_enforced_and_never_in_it(
    source: str, tmp_path: Path
) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(KEY + "\n")
    args = ("--api-key-file", str(key_file)) if source == "file" else ()
    env = {API_KEY_ENV: KEY} if source == "env" else {}
    async with ServeProcess(*args, env=env) as server:
        assert KEY.encode() not in server.cmdline()
        assert any("a key is required" in line for line in server.log)
        with pytest.raises(websockets.InvalidStatus) as refused:
            await websockets.connect(server.ws_url, additional_headers={"Authorization": "Bearer wrong"})
        assert refused.value.response.status_code == 401
        ws = await websockets.connect(server.ws_url, additional_headers={"Authorization": f"Bearer {KEY}"})
        assert json.loads(await ws.recv())["type"] == "session.created"
        await ws.close()
    assert not any(KEY in line for line in server.log)


async def test_without_any_key_loopback_accepts_any(tmp_path: Path) -> None:
    async with ServeProcess(env={API_KEY_ENV: ""}) as server:
        ws = await open_session(server.ws_url)
        await ws.close()
