"""Build settings for fasttape's Cython extensions, kept in one place.

Environment switches:
  FASTTAPE_DEBUG=1     memoryview initialisation checks on, -O0 -g (for hunting bugs)
  FASTTAPE_COVERAGE=1  line tracing for coverage.py
"""
import os
import runpy

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("FASTTAPE_DEBUG") == "1"
COVERAGE = os.environ.get("FASTTAPE_COVERAGE") == "1"

DIRECTIVES = {
    "language_level": 3,
    # Bounds checks and negative indices stay on: they guard Python-sequence and
    # memoryview indexing (where an unchecked index is undefined behaviour); the hot
    # loops index raw C pointers, which these directives never touch.
    "boundscheck": True,
    "wraparound": True,
    "initializedcheck": DEBUG,
    "cdivision": True,          # IEEE semantics: x / 0.0 is inf, not ZeroDivisionError
    "infer_types": True,
    "embedsignature": True,
    "linetrace": COVERAGE,
}

# The op table (fasttape/_optable.py) is the one source of each scalar op's formulas:
# regenerate the files that repeat it (_opcodes.pxd, _opmath.pxd, _elementary.pyx/.pyi)
# before cythonizing. Only files whose text changed are rewritten.
runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)), "fasttape",
                            "_generate.py"))["generate"]()

# the tape's modules bottom to top (docs/architecture.md), then the layers on it
MODULES = ["_tape_storage", "_array_reverse", "_array_forward", "_reverse", "_forward",
           "_second_order", "_batched", "_tape", "_tape_pools", "_tape_state",
           "_variable", "_elementary", "_arrays"]

macros = [("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")]
if COVERAGE:
    macros.append(("CYTHON_TRACE_NOGIL", "1"))
# -fno-trapping-math and -fno-math-errno change no result (IEEE semantics, nan and inf
# stay as they are); they let gcc vectorise the reverse loops' selects and inline sqrt.
compile_args = ["-O0", "-g"] if DEBUG else ["-O3", "-fno-trapping-math", "-fno-math-errno"]

extensions = [
    Extension(
        f"fasttape.{name}",
        [f"fasttape/{name}.pyx"],
        include_dirs=[numpy.get_include()],
        define_macros=macros,
        extra_compile_args=compile_args,
        libraries=["m"],
    )
    for name in MODULES
]

setup(ext_modules=cythonize(extensions, compiler_directives=DIRECTIVES))
