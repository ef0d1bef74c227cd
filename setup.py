"""Builds rtlayer_native: every ``rtlayer_native/*.pyx`` becomes one extension module.

Flags are portable on purpose (no ``-march=native``): a wheel built here must run on any
x86-64 or arm64 machine.
"""

from __future__ import annotations

import sys
from glob import glob
from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup

_COMPILE_ARGS = ["/O2"] if sys.platform == "win32" else ["-O3", "-fno-strict-aliasing"]

extensions = [
    Extension(
        f"rtlayer_native.{Path(source).stem}",
        [source],
        extra_compile_args=_COMPILE_ARGS,
    )
    for source in sorted(glob("rtlayer_native/*.pyx"))
]

setup(
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
