"""What the published package declares: every runtime floor can be pinned by ``scripts/lowest-constraints``
(which CI installs and tests), one version in one place, the licence as declared."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

import rtlayer

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _script(name: str) -> ModuleType:
    loader = importlib.machinery.SourceFileLoader(name.replace("-", "_"), str(ROOT / "scripts" / name))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


lowest = _script("lowest-constraints")


@pytest.mark.parametrize(
    ("requirement", "pin"),
    [
        ("websockets>=14.1", "websockets==14.1"),
        ("aiortc >= 1.10", "aiortc==1.10"),
        ("mkdocstrings[python]>=0.26", "mkdocstrings==0.26"),
        ("av>=13,<20", "av==13"),
        ('uvloop>=0.19; sys_platform != "win32"', 'uvloop==0.19 ; sys_platform != "win32"'),
    ],
)
def test_a_floor_becomes_a_pin(requirement: str, pin: str) -> None:
    assert lowest.floor_pin(requirement) == pin


@pytest.mark.parametrize("requirement", ["websockets", "websockets<17", "websockets==16.1", "a>=1,>=2"])
def test_a_requirement_without_one_floor_is_refused(requirement: str) -> None:
    with pytest.raises(ValueError, match="exactly one lower bound"):
        lowest.floor_pin(requirement)


def test_every_runtime_requirement_has_a_floor_that_ci_pins() -> None:
    extras = sorted(PYPROJECT["project"]["optional-dependencies"])
    pins = lowest.constraints(extras)
    requirements = PYPROJECT["project"]["dependencies"] + [
        r for extra in extras for r in PYPROJECT["project"]["optional-dependencies"][extra]
    ]
    assert len(pins) == len(requirements)
    assert all("==" in pin for pin in pins)
    assert "websockets==14.1" in pins  # 14.0 and older lack ClientConnection.close_code
    assert {"aiortc==1.10", "av==13"} <= set(pins)  # aiortc 1.9 caps av < 13, which lacks nb_channels


def test_an_extras_floor_can_be_pinned_alone() -> None:
    # openai-agents' floor needs websockets >= 15, above rtlayer's own floor: CI pins it on its own.
    assert lowest.constraints(["agents"], extras_only=True) == ["openai-agents==0.24"]


def test_an_unknown_extra_is_named() -> None:
    with pytest.raises(ValueError, match="no such extra: nope"):
        lowest.constraints(["nope"])


def test_test_and_lint_tools_are_not_published_extras() -> None:
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert "test" not in extras and "dev" not in extras
    published = " ".join(r for reqs in extras.values() for r in reqs) + " ".join(
        PYPROJECT["project"]["dependencies"]
    )
    for tool in ("pytest", "ruff", "mypy", "hypothesis", "mkdocs", "twine"):
        assert tool not in published
    assert {"test", "lint", "docs", "release", "dev"} <= set(PYPROJECT["dependency-groups"])


def test_one_version_in_one_place() -> None:
    assert PYPROJECT["project"]["dynamic"] == ["version"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "rtlayer.__version__"}
    assert f"## [{rtlayer.__version__}]" in (ROOT / "CHANGELOG.md").read_text()


def test_the_license_is_mit_as_declared() -> None:
    assert PYPROJECT["project"]["license"] == "MIT"
    assert (ROOT / "LICENSE").read_text().startswith("MIT License\n")
    requires = PYPROJECT["build-system"]["requires"]
    assert "setuptools>=77" in requires  # the first setuptools that reads an SPDX license string


def test_the_classifiers_name_every_supported_python() -> None:
    classifiers = PYPROJECT["project"]["classifiers"]
    assert PYPROJECT["project"]["requires-python"] == ">=3.11"
    for minor in ("3.11", "3.12", "3.13"):
        assert f"Programming Language :: Python :: {minor}" in classifiers
