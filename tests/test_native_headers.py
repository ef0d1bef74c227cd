"""The C of rtlayer_native is real C: each header in ``rtlayer_native/include`` compiles on its own as
C99 with every warning an error, in each configuration the build can select (the default dispatch,
``RT_NO_DISPATCH`` and ``RT_SCALAR``), and no Cython module hides C in a string literal.

One compiler run per header and configuration, on the header alone: well under a second each.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

NATIVE = Path(__file__).resolve().parents[1] / "rtlayer_native"
INCLUDE = NATIVE / "include"
# rt_common.h holds macros only (an empty translation unit on its own); every other header includes it.
HEADERS = sorted(p.name for p in INCLUDE.glob("*.h") if p.name != "rt_common.h")
CONFIGURATIONS = {"dispatch": [], "no-dispatch": ["-DRT_NO_DISPATCH"], "scalar": ["-DRT_SCALAR"]}
CC = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")


def test_every_header_is_found() -> None:
    assert HEADERS == ["rt_g711_expand.h", "rt_pacer_os.h", "rt_resample_kernels.h"]


@pytest.mark.skipif(
    CC is None, reason="no C compiler on this machine (the extension could not be built either)"
)
@pytest.mark.parametrize("configuration", sorted(CONFIGURATIONS))
@pytest.mark.parametrize("header", HEADERS)
def test_header_compiles_as_c99_without_warnings(header: str, configuration: str, tmp_path: Path) -> None:
    assert CC is not None
    done = subprocess.run(
        [
            CC,
            "-x",
            "c",
            "-std=c99",
            "-pedantic",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-O2",  # some warnings (uninitialised uses) need the optimiser's data flow
            *CONFIGURATIONS[configuration],
            "-c",
            str(INCLUDE / header),
            "-o",
            str(tmp_path / "header.o"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("source", sorted(p.name for p in NATIVE.glob("*.p[yx][xd]")))
def test_cython_sources_declare_c_and_do_not_embed_it(source: str) -> None:
    text = (NATIVE / source).read_text()
    assert "cdef extern from *" not in text, f"{source} embeds C in a string: move it to include/"
    assert not re.search(r"#include\s*<", text), f"{source} carries C preprocessor lines"
