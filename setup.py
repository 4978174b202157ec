"""Build settings for fasttape's Cython extensions, kept in one place.

The extensions are built from their .pyx sources: an sdist carries those (and the op
table's generator and templates), never generated C. Compiler flags are chosen per
compiler when the build starts (gcc and clang on Unix, MSVC on Windows); a wheel's
extension modules are linked stripped.

Environment switches:
  FASTTAPE_DEBUG=1     memoryview initialisation checks on, no optimisation, debug info
  FASTTAPE_COVERAGE=1  line tracing for coverage.py
"""
import os
import runpy
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

DEBUG = os.environ.get("FASTTAPE_DEBUG") == "1"
COVERAGE = os.environ.get("FASTTAPE_COVERAGE") == "1"
HERE = os.path.dirname(os.path.abspath(__file__))

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

# the tape's modules bottom to top (docs/architecture.md), then the layers on it
MODULES = ["_opmath_rare", "_tape_storage", "_array_reverse", "_array_forward", "_reverse",
           "_reverse_lanes", "_forward", "_second_order", "_batched", "_ode_adjoint",
           "_scalar_calls", "_tape", "_tape_pools", "_tape_state", "_variable", "_elementary",
           "_scalar_recording_sweep", "_arrays", "_sparsity", "_array_sets", "_coloring"]

# -fno-trapping-math and -fno-math-errno change no result (IEEE semantics, nan and inf
# stay as they are); they let gcc vectorise the reverse loops' selects and inline sqrt.
# MSVC's default /fp:precise neither traps nor sets errno in its inlined intrinsics.
FLAGS = {
    # compiler type: (compile args, debug compile args, libraries)
    "unix": (["-O3", "-fno-trapping-math", "-fno-math-errno"], ["-O0", "-g"], ["m"]),
    "msvc": (["/O2"], ["/Od", "/Zi"], []),
}
# a wheel's modules without symbol tables and debug info (11 MB of .so files otherwise)
STRIP = {"linux": ["-s"], "darwin": ["-Wl,-S", "-Wl,-x"]}


# commands that only read the extensions' sources: no generating, no cythonizing
METADATA_ONLY = {"sdist", "egg_info", "dist_info", "check"}


class BuildExt(build_ext):
    """Generates the op table's files and cythonizes when extensions are built (an sdist
    needs neither), then sets each extension's flags for the compiler at hand."""

    def finalize_options(self):
        if set(self.distribution.commands) <= METADATA_ONLY:
            super().finalize_options()   # (the sdist lists the .pyx sources)
            return
        # The op table (fasttape/_optable.py) is the one source of each scalar op's
        # formulas: regenerate the files that repeat it (_opcodes.pxd, _opmath.pxd,
        # _elementary.pyx/.pyi) before cythonizing. Only changed files are rewritten.
        runpy.run_path(os.path.join(HERE, "fasttape", "_generate.py"))["generate"]()
        import numpy
        from Cython.Build import cythonize

        for ext in self.distribution.ext_modules:
            ext.include_dirs.append(numpy.get_include())
        self.distribution.ext_modules[:] = cythonize(
            self.distribution.ext_modules, compiler_directives=DIRECTIVES)
        super().finalize_options()
        if self.parallel is None:
            self.parallel = os.cpu_count() or 1

    def build_extensions(self):
        kind = self.compiler.compiler_type
        args, debug_args, libraries = FLAGS.get(kind, FLAGS["unix"])
        wheel = "bdist_wheel" in self.distribution.commands
        link_args = []
        if wheel and not DEBUG and kind != "msvc":
            link_args = STRIP.get(sys.platform, [])
            # relink what an earlier in-place build left unstripped in build/
            self.force = True
        for ext in self.extensions:
            ext.extra_compile_args = debug_args if DEBUG else args
            ext.extra_link_args = link_args
            ext.libraries = libraries
        super().build_extensions()


macros = [("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")]
if COVERAGE:
    macros.append(("CYTHON_TRACE_NOGIL", "1"))

extensions = [Extension(f"fasttape.{name}", [f"fasttape/{name}.pyx"], define_macros=macros)
              for name in MODULES]

setup(ext_modules=extensions, cmdclass={"build_ext": BuildExt})
