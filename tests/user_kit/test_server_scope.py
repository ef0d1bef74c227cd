"""The server's scope is the user's choice: ``rtlayer_server_scope = module`` in their ini shares one server
across a module's tests; the default gives each test its own. Run as a user's project would run it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import rtlayer

pytest_plugins = ["pytester"]

PROJECT_TESTS = """
import pytest

ports = []

@pytest.mark.parametrize("n", range(3))
def test_uses_the_server(realtime_server, n):
    ports.append(realtime_server.url)

def test_the_servers_seen():
    print("DISTINCT", len(set(ports)))
"""


@pytest.fixture(autouse=True)
def this_rtlayer(monkeypatch: pytest.MonkeyPatch) -> None:
    """The project's pytest runs in a subprocess: it imports the rtlayer under test."""
    root = str(Path(rtlayer.__file__).resolve().parent.parent)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))


@pytest.mark.parametrize(("ini", "distinct"), [("", 3), ("rtlayer_server_scope = module", 1)])
def test_the_ini_option_sets_the_servers_scope(pytester: pytest.Pytester, ini: str, distinct: int) -> None:
    pytester.makeini(f"[pytest]\n{ini}\n")
    pytester.makepyfile(test_project=PROJECT_TESTS)
    result = pytester.runpytest_subprocess(
        "-p", "rtlayer.testing.plugin", "-s", "-q", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines([f"*DISTINCT {distinct}*"])


def test_a_bad_scope_is_a_clear_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nrtlayer_server_scope = forever\n")
    pytester.makepyfile(test_project="def test_x(realtime_server):\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "rtlayer.testing.plugin", "-q", "-p", "no:cacheprovider")
    result.stderr.fnmatch_lines(["*rtlayer_server_scope must be one of*"])
