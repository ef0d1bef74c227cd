"""The package as a user gets it: ``pip wheel`` (default build isolation, build requirements from
``pyproject.toml``) builds the extension; the wheel carries a compiled module, a ``.pyi`` stub and
``py.typed`` for every native module, and no generated C; its modules carry no debug information (a
release build: ``-g0`` and, on Linux, stripped); installed alone, ``python -m rtlayer_native`` runs its
self-check from the installed copy, not from the source tree.

It builds from a copy of the sources in a temporary folder, so the shared tree (and its in-place
build) is never touched. About 30 s of compiling: the one slow test of the native core, on purpose.
"""

from __future__ import annotations

import os
import shutil
import struct
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


def elf_section_names(image: bytes) -> list[str]:
    """The section names of a 64-bit little-endian ELF image (what ``readelf -S`` lists)."""
    assert image[:6] == b"\x7fELF\x02\x01", "not a 64-bit little-endian ELF file"
    (shoff,) = struct.unpack_from("<Q", image, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", image, 0x3A)
    headers = [struct.unpack_from("<IIQQQQ", image, shoff + i * shentsize) for i in range(shnum)]
    strtab = headers[shstrndx][4]  # sh_offset of the section-name table
    return [image[strtab + h[0] : image.index(b"\0", strtab + h[0])].decode() for h in headers]


def test_the_section_reader_sees_debug_sections_in_an_unstripped_object(tmp_path: Path) -> None:
    """The check below would notice debug information: an object compiled with -g has it."""
    if sys.platform != "linux" or shutil.which("cc") is None:
        pytest.skip("ELF objects and a C compiler: Linux only")
    (tmp_path / "x.c").write_text("int f(int x) { return x + 1; }\n")
    for flag, expect_debug in (("-g", True), ("-g0", False)):
        subprocess.run(["cc", flag, "-c", "x.c", "-o", "x.o"], cwd=tmp_path, check=True, timeout=60)
        names = elf_section_names((tmp_path / "x.o").read_bytes())
        assert any(n.startswith(".debug") for n in names) == expect_debug, names


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
    if sys.platform == "linux":
        with zipfile.ZipFile(wheel) as archive:
            for name in sorted(n for n in names if n.endswith(".so")):
                sections = elf_section_names(archive.read(name))
                assert not [s for s in sections if s.startswith(".debug")], f"{name} carries debug info"
                assert ".symtab" not in sections, f"{name} is not stripped"

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
