"""IPOPT's C interface (``IpStdCInterface.h``) through ctypes, for
``fasttape.optimize.minimize_ipopt``.

No compiled wrapper: any IPOPT shared library serves, found at call time. IPOPT calls
back a few times per iteration, and a ctypes call costs microseconds against the
milliseconds of IPOPT's own factorizations; each callback writes its values into
IPOPT's arrays in place (the gradient, constraint values, Jacobian and Hessian
triplets).

Which library: the ``library`` argument (a path or a name for the loader), else the
environment variable ``FASTTAPE_IPOPT_LIBRARY``, else the newest IPOPT among those
bundled by installed wheels (cyipopt-wheels, CasADi, cyipopt) by the version in the
file's name, else the system's (``ctypes.util.find_library("ipopt")``; Debian's
coinor-libipopt1v5). Libraries built with 64-bit indices or single precision
(``IPOPT_INT64``, ``IPOPT_SINGLE``) are not supported; their C interface differs.

The problem object handed to ``solve`` provides ``n``, ``m``, the triplet structures
``jacobian_rows``/``jacobian_cols`` and ``hessian_rows``/``hessian_cols`` (int32,
zero-based, the Hessian's lower triangle), and the evaluations ``objective(x)``,
``gradient(x, out)``, ``constraints(x, out)``, ``jacobian(x, out)``,
``hessian(x, obj_factor, multipliers, out)`` and ``new_point()`` (called when IPOPT
moves to another x, before the first evaluation there). ``x`` and ``multipliers`` are
views of IPOPT's arrays, valid during the call only.
"""
import contextlib
import ctypes
import ctypes.util
import importlib.metadata
import os
import re
import sys
import threading
import time

import numpy as np

ENVIRONMENT_VARIABLE = "FASTTAPE_IPOPT_LIBRARY"
# wheels that carry an IPOPT shared library
BUNDLING_DISTRIBUTIONS = ("cyipopt-wheels", "casadi", "cyipopt")

# IPOPT's ApplicationReturnStatus
STATUS_MESSAGES = {
    0: "Solve_Succeeded", 1: "Solved_To_Acceptable_Level",
    2: "Infeasible_Problem_Detected", 3: "Search_Direction_Becomes_Too_Small",
    4: "Diverging_Iterates", 5: "User_Requested_Stop", 6: "Feasible_Point_Found",
    -1: "Maximum_Iterations_Exceeded", -2: "Restoration_Failed",
    -3: "Error_In_Step_Computation", -4: "Maximum_CpuTime_Exceeded",
    -5: "Maximum_WallTime_Exceeded", -10: "Not_Enough_Degrees_Of_Freedom",
    -11: "Invalid_Problem_Definition", -12: "Invalid_Option",
    -13: "Invalid_Number_Detected", -100: "Unrecoverable_Exception",
    -101: "NonIpopt_Exception_Thrown", -102: "Insufficient_Memory",
    -199: "Internal_Error",
}

# IPOPT reads a bound at or beyond these as absent (the defaults of its options
# nlp_lower_bound_inf and nlp_upper_bound_inf); an infinite bound is passed as them
DEFAULT_BOUND_INF = (-1e19, 1e19)

# the numbers after ".so." (Linux), or before ".dylib" / ".dll"
_VERSION_IN_NAME = re.compile(r"\.so((?:\.\d+)+)$|((?:[.-]\d+)+)\.(?:dylib|dll)$")


def _version_from_name(path):
    """The version in a library's file name, as a tuple of ints (() if none)."""
    match = _VERSION_IN_NAME.search(os.path.basename(str(path)))
    if not match:
        return ()
    return tuple(int(part) for part in re.findall(r"\d+", match.group(1) or match.group(2)))


_bundled = None


def bundled_libraries():
    """((version from the file name, path, distribution), ...) of the IPOPT libraries
    inside installed wheels (looked up once per process)."""
    global _bundled
    if _bundled is None:
        _bundled = _wheels_libraries()
    return _bundled


def _wheels_libraries():
    # a wheel holds no links: libipopt.so, .so.3 and .so.3.14.19 are three copies of
    # one library, taken once (by directory and size) under its most versioned name
    found = {}
    for name in BUNDLING_DISTRIBUTIONS:
        try:
            files = importlib.metadata.distribution(name).files or ()
        except importlib.metadata.PackageNotFoundError:
            continue
        for entry in files:
            base = os.path.basename(str(entry))
            if (re.match(r"(lib)?ipopt[-.]", base)
                    and re.search(r"\.(so|dylib|dll)\b", base)):
                path = os.path.realpath(entry.locate())
                if not os.path.isfile(path):
                    continue
                key = (os.path.dirname(path), os.path.getsize(path))
                version = _version_from_name(path)
                if key not in found or version > found[key][0]:
                    found[key] = (version, path, name)
    return tuple(found.values())


def newest_bundled(distribution=None):
    """The path of the newest IPOPT library bundled by an installed wheel (of
    `distribution` alone when given), or None."""
    found = [entry for entry in bundled_libraries()
             if distribution is None or entry[2] == distribution]
    return max(found, key=lambda entry: entry[0])[1] if found else None


def find_library():
    """The path or loader name of the IPOPT library ``solve`` uses by default; None
    when there is none."""
    chosen = os.environ.get(ENVIRONMENT_VARIABLE)
    if chosen:
        return chosen
    return newest_bundled() or ctypes.util.find_library("ipopt")


# glibc's message for a missing dependency (in English: under another locale the
# dependencies are not looked for beside the library, and loading fails clearly)
_MISSING = re.compile(r"^([^:\s]+): cannot open shared object file")


def _load_beside_dependencies(path, depth=0):
    """ctypes.CDLL(path), first loading the libraries it needs that lie beside it
    (a wheel's ".libs" directory, where the library itself carries no run path:
    the loader then finds them among the loaded ones by name)."""
    for _ in range(32):
        try:
            return ctypes.CDLL(path)
        except OSError as error:
            missing = _MISSING.match(str(error))
            beside = (os.path.join(os.path.dirname(path), missing.group(1))
                      if missing else None)
            if depth > 8 or beside is None or not os.path.isfile(beside):
                raise
            _load_beside_dependencies(beside, depth + 1)
    raise OSError(f"{path}: too many libraries to load beside it")


class Library:
    """One loaded IPOPT library: its C functions with their signatures, and the
    callback types (IPOPT 3.14 made the interface's Bool a C bool; before, an int)."""

    def __init__(self, path):
        self.path = path
        try:
            self.dll = _load_beside_dependencies(path)
        except OSError as error:
            raise ImportError(f"cannot load the IPOPT library {path!r}: {error}") from error
        if not hasattr(self.dll, "CreateIpoptProblem"):
            raise ImportError(f"{path!r} has no IPOPT C interface (CreateIpoptProblem)")
        # IPOPT 3.14 made the interface's Bool a C bool (an int before) and added
        # GetIpoptCurrentIterate with it; GetIpoptVersion came in a later 3.14.x
        self.modern = hasattr(self.dll, "GetIpoptCurrentIterate")
        named = _version_from_name(path)        # (a bare soname such as .so.1 is not)
        self.version = named if len(named) >= 3 else None
        if hasattr(self.dll, "GetIpoptVersion"):
            parts = [ctypes.c_int() for _ in range(3)]
            self.dll.GetIpoptVersion.restype = None
            self.dll.GetIpoptVersion(*[ctypes.byref(p) for p in parts])
            self.version = tuple(p.value for p in parts)
        if self.version is not None and (self.version >= (3, 14)) != self.modern:
            self.version = None            # (a name that does not tell the version)
        # IPOPT before 3.14 does not guard MUMPS against two solves at once
        self.solve_lock = None if self.modern else threading.Lock()
        boolean = ctypes.c_bool if self.modern else ctypes.c_int
        index, number, pointer = ctypes.c_int, ctypes.c_double, ctypes.c_void_p
        self.boolean = boolean
        self.eval_f = ctypes.CFUNCTYPE(boolean, index, pointer, boolean, pointer, pointer)
        self.eval_g = ctypes.CFUNCTYPE(boolean, index, pointer, boolean, index, pointer,
                                       pointer)
        self.eval_grad_f = self.eval_f
        self.eval_jac_g = ctypes.CFUNCTYPE(boolean, index, pointer, boolean, index, index,
                                           pointer, pointer, pointer, pointer)
        self.eval_h = ctypes.CFUNCTYPE(boolean, index, pointer, boolean, number, index,
                                       pointer, boolean, index, pointer, pointer, pointer,
                                       pointer)
        self.intermediate = ctypes.CFUNCTYPE(boolean, index, index, *[number] * 8, index,
                                             pointer)
        d = self.dll
        d.CreateIpoptProblem.restype = pointer
        d.CreateIpoptProblem.argtypes = [index, pointer, pointer, index, pointer, pointer,
                                         index, index, index, self.eval_f, self.eval_g,
                                         self.eval_grad_f, self.eval_jac_g, self.eval_h]
        d.FreeIpoptProblem.restype = None
        d.FreeIpoptProblem.argtypes = [pointer]
        d.AddIpoptStrOption.restype = boolean
        d.AddIpoptStrOption.argtypes = [pointer, ctypes.c_char_p, ctypes.c_char_p]
        d.AddIpoptNumOption.restype = boolean
        d.AddIpoptNumOption.argtypes = [pointer, ctypes.c_char_p, number]
        d.AddIpoptIntOption.restype = boolean
        d.AddIpoptIntOption.argtypes = [pointer, ctypes.c_char_p, index]
        d.SetIntermediateCallback.restype = boolean
        d.SetIntermediateCallback.argtypes = [pointer, self.intermediate]
        if self.modern:                    # the iterate, during the iteration callback
            d.GetIpoptCurrentIterate.restype = boolean
            d.GetIpoptCurrentIterate.argtypes = [pointer, boolean, index, pointer, pointer,
                                                 pointer, index, pointer, pointer]
        d.IpoptSolve.restype = ctypes.c_int
        d.IpoptSolve.argtypes = [pointer] * 8

    @property
    def version_string(self):
        if self.version:
            return ".".join(map(str, self.version))
        return "3.14 or newer" if self.modern else "before 3.14"


_loaded = {}


def load(library=None):
    """The Library at ``library`` (default: ``find_library()``), loaded once."""
    path = library if library is not None else find_library()
    if path is None:
        raise ImportError(
            "minimize_ipopt needs an IPOPT shared library: pip install "
            "'fasttape[ipopt]' (a wheel with IPOPT built in), install the system's "
            "(Debian: coinor-libipopt1v5), or name one with library= or the "
            f"environment variable {ENVIRONMENT_VARIABLE}")
    path = os.fspath(path)
    if path not in _loaded:
        _loaded[path] = Library(path)
    return _loaded[path]


def _doubles(address, size):
    """A NumPy view of IPOPT's array of ``size`` doubles at ``address``."""
    if size == 0:
        return np.zeros(0)
    return np.ctypeslib.as_array((ctypes.c_double * size).from_address(address))


def _indices(address, size):
    if size == 0:
        return np.zeros(0, np.int32)
    return np.ctypeslib.as_array((ctypes.c_int * size).from_address(address))


class _Callbacks:
    """The five evaluations and the iteration callback as ctypes functions. An
    exception inside one (IPOPT's C++ cannot carry it) is kept, the evaluation
    reports failure, the next iteration callback stops the solve, and ``solve``
    raises it. Counts only the calls that evaluate (not IPOPT's first calls for the
    structures)."""

    def __init__(self, library, problem, on_iteration=None):
        self.error = None
        self.handle = None                 # (the problem's, set before the solve)
        self.seconds = 0.0
        self.iterations = 0
        self.counts = dict(objective=0, gradient=0, constraints=0, jacobian=0, hessian=0)
        n, m = problem.n, problem.m
        self.nonzeros = (problem.jacobian_rows.size, problem.hessian_rows.size)

        def guarded(name, body):
            def call(*args):
                if self.error is not None:
                    return False
                started = time.perf_counter()
                try:
                    if body(*args):
                        self.counts[name] += 1
                    return True
                except BaseException as error:           # noqa: B036 (re-raised by solve)
                    self.error = error
                    return False
                finally:
                    self.seconds += time.perf_counter() - started
            return call

        def new_point(flag):
            if flag:
                problem.new_point()

        def eval_f(n_, x, new_x, value, user_data):
            new_point(new_x)
            ctypes.c_double.from_address(value).value = problem.objective(_doubles(x, n))
            return True

        def eval_grad_f(n_, x, new_x, out, user_data):
            new_point(new_x)
            problem.gradient(_doubles(x, n), _doubles(out, n))
            return True

        def eval_g(n_, x, new_x, m_, out, user_data):
            new_point(new_x)
            if m:
                problem.constraints(_doubles(x, n), _doubles(out, m))
            return True

        def eval_jac_g(n_, x, new_x, m_, nele, rows, cols, values, user_data):
            if not values:                                  # the structure, once
                _indices(rows, nele)[:] = problem.jacobian_rows
                _indices(cols, nele)[:] = problem.jacobian_cols
                return False
            new_point(new_x)
            if nele:
                problem.jacobian(_doubles(x, n), _doubles(values, nele))
            return True

        def eval_h(n_, x, new_x, obj_factor, m_, multipliers, new_multipliers, nele, rows,
                   cols, values, user_data):
            if not values:
                _indices(rows, nele)[:] = problem.hessian_rows
                _indices(cols, nele)[:] = problem.hessian_cols
                return False
            new_point(new_x)
            if nele:
                problem.hessian(_doubles(x, n), float(obj_factor), _doubles(multipliers, m),
                                _doubles(values, nele))
            return True

        def intermediate(mode, iteration, objective, *state):
            self.iterations = int(iteration)
            if self.error is not None:
                return False
            if on_iteration is None or iteration == 0:
                return True
            x = np.zeros(n)
            try:
                if not library.dll.GetIpoptCurrentIterate(self.handle, False, n,
                                                          x.ctypes.data, None, None, m,
                                                          None, None):
                    raise RuntimeError("IPOPT did not give its current iterate")
                return on_iteration(int(iteration), float(objective), x) is not False
            except BaseException as error:           # noqa: B036 (re-raised by solve)
                self.error = error
                return False

        # the ctypes function objects must outlive the solve: kept on self (and
        # dropped by release(), which breaks their reference cycle through self)
        self.eval_f = library.eval_f(guarded("objective", eval_f))
        self.eval_grad_f = library.eval_grad_f(guarded("gradient", eval_grad_f))
        self.eval_g = library.eval_g(guarded("constraints", eval_g))
        self.eval_jac_g = library.eval_jac_g(guarded("jacobian", eval_jac_g))
        self.eval_h = library.eval_h(guarded("hessian", eval_h))
        self.intermediate = library.intermediate(intermediate)

    def release(self):
        self.eval_f = self.eval_grad_f = self.eval_g = None
        self.eval_jac_g = self.eval_h = self.intermediate = None


INT32 = (-2**31, 2**31 - 1)


def _set_option(library, handle, key, value):
    """One IPOPT option by its type: str (bytes decoded; a bool as yes/no), int (or,
    refused as an int, as a number: {"max_cpu_time": 100}) or float."""
    if isinstance(key, bytes):
        key = key.decode()
    if isinstance(value, bytes):
        value = value.decode()
    name = str(key).encode()
    dll = library.dll
    if isinstance(value, str):
        accepted = dll.AddIpoptStrOption(handle, name, value.encode())
    elif isinstance(value, (bool, np.bool_)):
        accepted = dll.AddIpoptStrOption(handle, name, b"yes" if value else b"no")
    elif isinstance(value, (int, np.integer)):
        accepted = INT32[0] <= value <= INT32[1] and dll.AddIpoptIntOption(
            handle, name, int(value))
        if not accepted:
            accepted = dll.AddIpoptNumOption(handle, name, float(value))
    elif isinstance(value, (float, np.floating)):
        accepted = dll.AddIpoptNumOption(handle, name, float(value))
    else:
        raise TypeError(f"IPOPT option {key!r}: a str, int or float, got "
                        f"{type(value).__name__}")
    if not accepted:
        raise ValueError(f"IPOPT refused the option {key}={value!r} (unknown name, or a "
                         f"value of the wrong type or out of range)")


def _bounds(values, size, name, infinite):
    """A bound vector for IPOPT: float64, its infinities replaced by the option value
    IPOPT reads as no bound (`infinite`: the lower's or the upper's)."""
    array = np.array(values, dtype=np.float64).reshape(-1)
    if array.size != size:
        raise ValueError(f"{name} bounds have {array.size} values, expected {size}")
    if np.isnan(array).any():
        raise ValueError(f"{name} bounds hold NaN")
    array[np.isinf(array) & ((array < 0) == (infinite < 0))] = infinite
    return array


def solve(problem, x0, lower, upper, constraint_lower, constraint_upper, options=(),
          library=None, on_iteration=None):
    """Solve ``problem`` (module docstring) from x0 within the bounds (infinite:
    none); returns a dict with x, obj_val, g, mult_g, mult_x_L, mult_x_U, status,
    status_msg (the name of IPOPT's status), iterations, counts (evaluations by kind),
    eval_seconds (time in the callbacks) and library (the path or loader name).
    on_iteration(iteration, objective, x) is called after each iteration (IPOPT 3.14
    or newer); returning False stops the solve (status User_Requested_Stop)."""
    lib = load(library)
    options = dict(options)
    n, m = problem.n, problem.m
    x = np.array(x0, dtype=np.float64).reshape(-1)
    if x.size != n:
        raise ValueError(f"x0 has {x.size} values for {n} variables")
    low = float(options.get("nlp_lower_bound_inf", DEFAULT_BOUND_INF[0]))
    high = float(options.get("nlp_upper_bound_inf", DEFAULT_BOUND_INF[1]))
    bounds = [_bounds(lower, n, "lower", low), _bounds(upper, n, "upper", high),
              _bounds(constraint_lower, m, "constraint lower", low),
              _bounds(constraint_upper, m, "constraint upper", high)]
    for rows, cols, limit, name in ((problem.jacobian_rows, problem.jacobian_cols,
                                     (m, n), "Jacobian"),
                                    (problem.hessian_rows, problem.hessian_cols, (n, n),
                                     "Hessian")):
        if rows.dtype != np.int32 or cols.dtype != np.int32 or rows.shape != cols.shape:
            raise TypeError(f"the {name} structure is two int32 arrays of one length")
        if rows.size and (rows.min() < 0 or cols.min() < 0 or rows.max() >= limit[0]
                          or cols.max() >= limit[1]):
            raise ValueError(f"the {name} structure has an index outside {limit}")
    if on_iteration is not None and not lib.modern:
        raise ValueError(f"a callback at each iteration needs IPOPT 3.14 or newer (its "
                         f"GetIpoptCurrentIterate); {lib.path} is older")
    callbacks = _Callbacks(lib, problem, on_iteration)
    handle = lib.dll.CreateIpoptProblem(
        n, bounds[0].ctypes.data, bounds[1].ctypes.data, m, bounds[2].ctypes.data,
        bounds[3].ctypes.data, callbacks.nonzeros[0], callbacks.nonzeros[1], 0,
        callbacks.eval_f, callbacks.eval_g, callbacks.eval_grad_f, callbacks.eval_jac_g,
        callbacks.eval_h)
    if not handle:
        raise RuntimeError("IPOPT could not create the problem (CreateIpoptProblem)")
    callbacks.handle = handle
    g, objective = np.zeros(m), np.zeros(1)
    mult_g, mult_x_lower, mult_x_upper = np.zeros(m), np.zeros(n), np.zeros(n)
    try:
        for key, value in options.items():
            _set_option(lib, handle, key, value)
        lib.dll.SetIntermediateCallback(handle, callbacks.intermediate)
        sys.stdout.flush()         # (IPOPT prints through C's stdio, after Python's)
        with lib.solve_lock or contextlib.nullcontext():
            status = lib.dll.IpoptSolve(handle, x.ctypes.data, g.ctypes.data,
                                        objective.ctypes.data, mult_g.ctypes.data,
                                        mult_x_lower.ctypes.data,
                                        mult_x_upper.ctypes.data, None)
    finally:
        lib.dll.FreeIpoptProblem(handle)
        _flush_c_stdio()
        callbacks.release()
    if callbacks.error is not None:
        raise callbacks.error
    return dict(x=x, obj_val=float(objective[0]), g=g, mult_g=mult_g,
                mult_x_L=mult_x_lower, mult_x_U=mult_x_upper, status=int(status),
                status_msg=STATUS_MESSAGES.get(int(status), f"status {status}"),
                iterations=callbacks.iterations, counts=dict(callbacks.counts),
                eval_seconds=callbacks.seconds, library=lib.path)


def _flush_c_stdio():
    """fflush(NULL): IPOPT's output out before Python prints again."""
    try:
        libc = ctypes.CDLL(None)
        libc.fflush(None)
    except (OSError, AttributeError, TypeError):    # (no C library by that name)
        pass
