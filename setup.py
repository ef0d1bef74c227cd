"""Builds rtlayer_native: every ``rtlayer_native/*.pyx`` becomes one extension module.

Flags are portable on purpose (no ``-march=native``): a wheel built here must run on any
x86-64 or arm64 machine (the resampler kernels pick an AVX2 clone at load time where GCC builds
one; ``CFLAGS=-DRT_NO_DISPATCH`` or ``-DRT_SCALAR`` force the baseline or plain-C paths).

The C the Cython modules call lives in ``rtlayer_native/include/*.h`` (checked on its own by
``tests/test_native_headers.py``).

Release builds carry no debug information: Python's own ``CFLAGS`` ask for ``-g``, which made the
wheel's modules five times their size (3.0 MB against 0.63 MB). ``-g0`` (after Python's flags, so it
wins) drops it and, on Linux, the linker strips the symbol table too (``-s``; the modules export only
``PyInit_*``, which stays in the dynamic symbol table). ``RTLAYER_DEBUG_BUILD=1`` keeps both, for
debugging the kernels.
"""

from __future__ import annotations

import os
import sys
from glob import glob
from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup

_INCLUDE = "rtlayer_native/include"
_DEBUG = os.environ.get("RTLAYER_DEBUG_BUILD", "") not in ("", "0")


def _compile_args() -> list[str]:
    if sys.platform == "win32":
        return ["/O2"]  # MSVC writes debug information only when asked (/Zi), and is not asked
    return ["-O3", "-fno-strict-aliasing", *([] if _DEBUG else ["-g0"])]


def _link_args() -> list[str]:
    # macOS's linker has no -s (its modules are stripped with `strip -x` if at all); -g0 already
    # keeps debug sections out of every object.
    return ["-s"] if sys.platform.startswith("linux") and not _DEBUG else []


extensions = [
    Extension(
        f"rtlayer_native.{Path(source).stem}",
        [source],
        include_dirs=[_INCLUDE],
        depends=sorted(glob(f"{_INCLUDE}/*.h")),  # rebuilt when a header changes; shipped in the sdist
        extra_compile_args=_compile_args(),
        extra_link_args=_link_args(),
    )
    for source in sorted(glob("rtlayer_native/*.pyx"))
]

setup(
    # The modules compile in parallel, one per core (half the build time on two cores).
    options={"build_ext": {"parallel": os.cpu_count() or 1}},
    ext_modules=cythonize(
        extensions,
        language_level=3,
        compiler_directives={
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": False,
            "embedsignature": True,
        },
    ),
)
