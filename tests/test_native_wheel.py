"""The package as a user gets it: ``pip wheel`` (default build isolation, build requirements from
``pyproject.toml``) builds the extension; the wheel carries a compiled module, a ``.pyi`` stub and
``py.typed`` for every native module, and no generated C; installed alone, ``python -m rtlayer_native``
runs its self-check from the installed copy, not from the source tree.

It builds from a copy of the sources in a temporary folder, so the shared tree (and its in-place
build) is never touched. About 30 s of compiling: the one slow test of the native core, on purpose.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NATIVE_MODULES = sorted(p.stem for p in (ROOT / "rtlayer_native").glob("*.pyx"))


def _copy_sources(dst: Path) -> None:
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, dst / name)
    skip = shutil.ignore_patterns("*.so", "*.c", "__pycache__", "*.pyc", "build")
    for package in ("rtlayer", "rtlayer_native"):
        shutil.copytree(ROOT / package, dst / package, ignore=skip)


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


def _pip(*args: str) -> subprocess.CompletedProcess[str]:
    """pip as a user runs it (default build isolation), without the repository on the path."""
    return subprocess.run(
        [sys.executable, "-m", "pip", *args, "-q"],
        capture_output=True,
        text=True,
        timeout=280,
        env=_env(),
        check=False,
    )


@pytest.mark.timeout(300)
def test_the_wheel_builds_ships_stubs_and_self_checks_when_installed(tmp_path: Path) -> None:
    src, out, site = tmp_path / "src", tmp_path / "wheel", tmp_path / "site"
    src.mkdir()
    _copy_sources(src)
    built = _pip("wheel", str(src), "--no-deps", "-w", str(out))
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = out.glob("rtlayer-*.whl")

    names = set(zipfile.ZipFile(wheel).namelist())
    assert "rtlayer/py.typed" in names and "rtlayer_native/py.typed" in names
    for module in NATIVE_MODULES:
        assert f"rtlayer_native/{module}.pyi" in names, f"no stub for {module}"
        assert any(n.startswith(f"rtlayer_native/{module}.") and n.endswith((".so", ".pyd")) for n in names)
    assert not [n for n in names if n.endswith(".c")], "generated C must not ship"

    installed = _pip("install", "--no-deps", "--target", str(site), str(wheel))
    assert installed.returncode == 0, installed.stderr[-3000:]
    check = subprocess.run(
        [
            sys.executable,
            "-c",
            "import rtlayer_native, runpy; print(rtlayer_native.__file__); "
            "runpy.run_module('rtlayer_native', run_name='__main__')",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**_env(), "PYTHONPATH": str(site)},
        cwd=tmp_path,  # not the repository: only the installed copy can be found
        check=False,
    )
    assert check.returncode == 0, check.stderr
    first, *report = check.stdout.splitlines()
    assert Path(first).is_relative_to(site)
    assert "bit-exact with audioop" in check.stdout
    assert report[-1].startswith("ok in")
