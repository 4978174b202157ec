"""Helpers shared by the test modules: subprocess isolation, numerical derivatives."""
import math
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np



# -- running code that may crash the interpreter ---------------------------------------

# A minimal use of the thread's stack of active tapes (``with Tape()`` blocks, nested,
# and Variables created inside a grad() call); see the tape_blocks fixture.
TAPE_BLOCK_PROBE = """
from fasttape import Tape, Variable, grad
with Tape() as t:
    v = Variable(1.5)
    w = v * v
assert v.tape is t and w.tape is t, "Variable not recorded on the active tape"
with Tape() as outer:
    with Tape() as inner:
        a = Variable(1.0)
    b = Variable(2.0)
assert a.tape is inner and b.tape is outer, "nested tape blocks"
print(grad(lambda x: x * Variable(2.0))(3.0))
"""


def run_isolated(code, timeout=120):
    """Run ``code`` in a fresh interpreter that imports the same fasttape as these
    tests (the installed package, or an in-place build), from a neutral directory (so
    that an uncompiled source tree in the working directory is not picked up)."""
    import tempfile

    import fasttape
    env = dict(os.environ)
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(fasttape.__file__)))
    env["PYTHONPATH"] = package_parent + os.pathsep + env.get("PYTHONPATH", "")
    with tempfile.TemporaryDirectory() as neutral:
        return subprocess.run([sys.executable, "-c", textwrap.dedent(code)],
                              capture_output=True, text=True, timeout=timeout,
                              cwd=neutral, env=env)


def describe_failure(proc, code):
    """A readable report of a subprocess run: how it ended, its code and output."""
    rc = proc.returncode
    if rc < 0:
        try:
            how = f"killed by {signal.Signals(-rc).name}"
        except ValueError:
            how = f"killed by signal {-rc}"
    else:
        how = f"exit status {rc}"
    return (f"subprocess {how}\n--- code ---\n{textwrap.dedent(code).strip()}\n"
            f"--- stdout ---\n{proc.stdout.strip()}\n"
            f"--- stderr (last 2000 chars) ---\n{proc.stderr.strip()[-2000:]}")


def assert_runs_cleanly(code, expected_stdout=None):
    """Run code in a subprocess; fail with its report unless it exits 0 (and prints
    ``expected_stdout``, if given)."""
    proc = run_isolated(code)
    ok = proc.returncode == 0 and (expected_stdout is None
                                   or proc.stdout.strip() == expected_stdout.strip())
    assert ok, describe_failure(proc, code)
    return proc.stdout


# -- numerical derivatives -------------------------------------------------------------

def directional_derivative(f, x, v, rel_step=1e-3):
    """d/dt f(x + t v) at t = 0 by central differences with one Richardson step
    (error O(h^4)); ``f`` maps a float64 array to a float."""
    x = np.asarray(x, dtype=float)
    v = np.asarray(v, dtype=float)
    finite = np.abs(x[np.isfinite(x)])          # (inf entries stay inf when moved)
    h = rel_step * max(1.0, float(np.max(finite, initial=0.0)))

    def central(step):
        return (f(x + step * v) - f(x - step * v)) / (2.0 * step)

    return (4.0 * central(h / 2.0) - central(h)) / 3.0


def assert_gradient_matches_differences(f, x, gradient, rng, n_directions=3,
                                        rtol=1e-6, atol=1e-9, rel_step=1e-3):
    """Check <gradient, v> against central differences of f along random unit v."""
    x = np.asarray(x, dtype=float)
    gradient = np.asarray(gradient, dtype=float)
    assert gradient.shape == x.shape
    directions = [np.eye(x.size)[i] for i in range(x.size)]      # the partials ...
    for _ in range(n_directions):                               # ... and mixtures
        v = rng.standard_normal(x.size)
        directions.append(v / np.linalg.norm(v))
    for v in directions:
        numeric = directional_derivative(f, x, v, rel_step)
        ad = float(gradient @ v)
        scale = max(abs(numeric), float(np.abs(gradient) @ np.abs(v)))
        assert abs(ad - numeric) <= atol + rtol * scale, (
            f"at x={x.tolist()} along v={v.tolist()}: <grad, v> = {ad!r}, "
            f"central differences {numeric!r}, gradient {gradient.tolist()}")


def same_float(a, b, rtol=1e-14, atol=0.0):
    """Equal up to rtol, with nan == nan and infinities compared exactly."""
    a = float(a)
    b = float(b)
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= atol + rtol * abs(b)


# -- array functions checked several ways (test_arrays, test_numpy_api, test_linalg) ---

class Spelling:
    """The NumPy that an array test function is written against.

    Test functions take a spelling as their first argument, named ``np``, and call
    ``np.sin``, ``np.linalg.solve``, ``np.special.expit``, ...; the same function then
    runs on plain NumPy (the reference), on fasttape.numpy, on plain NumPy handed
    ArrayVariables (dispatch through ``__array_ufunc__``/``__array_function__``) and on
    autograd.numpy."""

    def __init__(self, name, numpy_module, special_module):
        self.name = name
        self.module = numpy_module
        self.special = special_module

    def __getattr__(self, attr):
        if attr in ("module", "special", "name"):      # (not set yet: no recursion)
            raise AttributeError(attr)
        return getattr(self.module, attr)

    def __repr__(self):
        return f"Spelling({self.name})"


def numpy_spelling():
    import scipy.special
    return Spelling("numpy", np, scipy.special)


def fasttape_spelling():
    import fasttape.numpy
    import fasttape.scipy.special
    return Spelling("fasttape.numpy", fasttape.numpy, fasttape.scipy.special)


def numpy_on_variables_spelling():
    """Plain NumPy on Variables (scipy.special's ufuncs are not dispatched, so
    ``np.special`` is fasttape's)."""
    import fasttape.scipy.special
    return Spelling("numpy on ArrayVariables", np, fasttape.scipy.special)


def autograd_spelling():
    """(autograd, Spelling of autograd.numpy); skips the test without autograd."""
    import pytest
    pytest.importorskip("autograd")
    import autograd
    import autograd.numpy
    import autograd.scipy.special
    return autograd, Spelling("autograd.numpy", autograd.numpy, autograd.scipy.special)


def sample(rng, shape, domain=(-2.0, 2.0)):
    """An argument of `shape` drawn from `domain`: (lo, hi) uniform, or a callable
    domain(rng, shape). Shape () gives a Python float (a scalar Variable in grad)."""
    x = domain(rng, shape) if callable(domain) else rng.uniform(*domain, size=shape)
    return float(x) if shape == () else np.asarray(x, dtype=float)


def cotangent(rng, reference_output):
    """A random output weight u of the reference output's shape (float for a
    scalar output): the functions are checked through sum(u * f(...))."""
    shape = np.shape(reference_output)
    u = rng.standard_normal(shape)
    return float(u) if shape == () else u


def fasttape_vjp(fun, spelling, args, u, argnums=None):
    """fasttape's (value of fun(spelling, *args), gradients of sum(u * fun) with
    respect to args[argnums]), from one ``value_and_grad`` call; gradients are a
    tuple, one per argnum."""
    import fasttape
    import fasttape.numpy as fnp
    argnums = tuple(range(len(args))) if argnums is None else tuple(argnums)
    seen = []

    def weighted(*a):
        out = fun(spelling, *a)
        seen.append(np.array(out.value) if isinstance(
            out, (fasttape.Variable, fasttape.ArrayVariable)) else out)
        return fnp.sum(out * u)

    _, grads = fasttape.value_and_grad(weighted, argnum=argnums)(*args)
    return seen[0], grads


def autograd_vjp(fun, args, u, argnums=None):
    """autograd's gradients of sum(u * fun(autograd.numpy, *args)), one per argnum."""
    import warnings
    autograd, anp = autograd_spelling()
    argnums = tuple(range(len(args))) if argnums is None else tuple(argnums)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return autograd.grad(lambda *a: anp.sum(fun(anp, *a) * u),
                             argnum=argnums)(*args)


def assert_argument_gradients_match_differences(f, args, grads, rng, argnums=None,
                                       n_directions=3, rtol=1e-6, atol=1e-9,
                                       rel_step=1e-3):
    """Check the gradients (one per argnum) of the scalar function f(*args) against
    central differences: <grads, v> along a random direction v in each argument alone
    and along n_directions random directions in all of them together."""
    argnums = tuple(range(len(args))) if argnums is None else tuple(argnums)
    args = list(args)
    shapes = [np.shape(args[i]) for i in argnums]
    floats = [not isinstance(args[i], np.ndarray) for i in argnums]
    for i, g in zip(argnums, grads):
        assert np.shape(g) == np.shape(args[i]), (
            f"gradient of argument {i} has shape {np.shape(g)}, the argument "
            f"{np.shape(args[i])}")
    sizes = [int(np.prod(s, dtype=np.int64)) for s in shapes]
    cuts = np.cumsum(sizes)[:-1]
    x = np.concatenate([np.ravel(args[i]).astype(float) for i in argnums]
                       + [np.zeros(0)])
    g = np.concatenate([np.ravel(gr).astype(float) for gr in grads] + [np.zeros(0)])

    def f_flat(flat):
        call = list(args)
        parts = np.split(flat, cuts)
        for i, part, shape, is_float in zip(argnums, parts, shapes, floats):
            call[i] = float(part[0]) if is_float else part.reshape(shape)
        with np.errstate(all="ignore"):
            return float(f(*call))

    directions = []
    for start, size in zip([0] + list(cuts), sizes):
        if size:
            v = np.zeros(x.size)
            v[start:start + size] = rng.standard_normal(size)
            directions.append(v)
    directions += [rng.standard_normal(x.size) for _ in range(n_directions)]
    for v in directions:
        if not v.any():
            continue
        v = v / np.linalg.norm(v)
        numeric = directional_derivative(f_flat, x, v, rel_step)
        ad = float(g @ v)
        scale = max(abs(numeric), float(np.abs(g) @ np.abs(v)))
        assert abs(ad - numeric) <= atol + rtol * scale, (
            f"<grad, v> = {ad!r}, central differences {numeric!r} along v = "
            f"{v.tolist()} at args {[np.asarray(a).tolist() for a in args]}")


def assert_same_gradients(got, expected, rtol=1e-10, atol=1e-12, what=""):
    """Two tuples of gradients agree (shapes exactly, values to rtol, nan == nan)."""
    assert len(got) == len(expected)
    for i, (a, b) in enumerate(zip(got, expected)):
        assert np.shape(a) == np.shape(b), (f"{what} gradient {i}: shape "
                                            f"{np.shape(a)} != {np.shape(b)}")
        b = np.asarray(b, dtype=float)
        scale = float(np.max(np.abs(b[np.isfinite(b)]), initial=1.0))
        np.testing.assert_allclose(np.asarray(a, dtype=float), b, rtol=rtol,
                                   atol=atol * scale, err_msg=f"{what} gradient {i}")


class ArraySpec:
    """One array function and its inputs, checked four ways by the check_* functions:
    value against NumPy, gradient against central differences of NumPy, gradient
    against autograd, and the fasttape.numpy spelling against plain NumPy on
    ArrayVariables.

    ``fun(np, *args)`` is written against a Spelling; ``make_args(rng)`` draws its
    arguments (floats become scalar Variables, arrays ArrayVariables); ``argnums`` are
    the differentiated ones (default all); ``autograd`` is False where autograd has no
    rule for the function or another convention at the sampled points."""

    def __init__(self, name, fun, make_args, argnums=None, autograd=True,
                 value_rtol=1e-13, grad_rtol=1e-6, grad_atol=1e-9, rel_step=1e-3,
                 spellings=True, second_order=True):
        self.name = name
        self.fun = fun
        self.make_args = make_args
        self.argnums = argnums
        self.autograd = autograd
        self.value_rtol = value_rtol
        self.grad_rtol = grad_rtol
        self.grad_atol = grad_atol
        self.rel_step = rel_step
        self.spellings = spellings      # False: fun uses names plain NumPy lacks
        self.second_order = second_order    # False: documented as first order only

    def __repr__(self):
        return self.name

    def draw(self, rng):
        """(args, reference output, cotangent u), all from rng."""
        args = tuple(self.make_args(rng))
        with np.errstate(all="ignore"):
            ref = self.fun(numpy_spelling(), *args)
        return args, ref, cotangent(rng, ref)


def array_spec(name, fun, *shapes, domain=(-2.0, 2.0), **kw):
    """An ArraySpec whose arguments have the given shapes, drawn from `domain` (one
    for all arguments, or a list with one per argument)."""
    domains = domain if isinstance(domain, list) else [domain] * len(shapes)
    shape_text = ", ".join(str(s) for s in shapes)
    def make_args(rng):
        return tuple(sample(rng, s, d) for s, d in zip(shapes, domains))

    return ArraySpec(f"{name} [{shape_text}]", fun, make_args, **kw)


def check_value(spec, rng):
    args, ref, u = spec.draw(rng)
    value, _ = fasttape_vjp(spec.fun, fasttape_spelling(), args, u, spec.argnums)
    assert np.shape(value) == np.shape(ref), f"shape {np.shape(value)} != NumPy's " \
                                             f"{np.shape(ref)}"
    np.testing.assert_allclose(value, ref, rtol=spec.value_rtol, atol=0,
                               equal_nan=True)


def check_gradient_against_differences(spec, rng):
    args, ref, u = spec.draw(rng)
    _, grads = fasttape_vjp(spec.fun, fasttape_spelling(), args, u, spec.argnums)
    argnums = tuple(range(len(args))) if spec.argnums is None else spec.argnums
    for i, g in zip(argnums, grads):
        if isinstance(args[i], np.ndarray):
            assert type(g) is np.ndarray and g.dtype == np.float64, (type(g), g)
        else:
            assert type(g) is float, type(g)
    ref_ns = numpy_spelling()
    assert_argument_gradients_match_differences(
        lambda *a: np.sum(u * spec.fun(ref_ns, *a)), args, grads, rng, argnums,
        rtol=spec.grad_rtol, atol=spec.grad_atol, rel_step=spec.rel_step)


def check_gradient_against_autograd(spec, rng):
    args, ref, u = spec.draw(rng)
    _, grads = fasttape_vjp(spec.fun, fasttape_spelling(), args, u, spec.argnums)
    expected = autograd_vjp(spec.fun, args, u, spec.argnums)
    assert_same_gradients(grads, expected, what=spec.name)


def check_spellings_agree(spec, rng):
    """fasttape.numpy and plain NumPy on ArrayVariables: identical values and
    gradients (the same implementations serve both)."""
    args, ref, u = spec.draw(rng)
    value, grads = fasttape_vjp(spec.fun, fasttape_spelling(), args, u, spec.argnums)
    value_np, grads_np = fasttape_vjp(spec.fun, numpy_on_variables_spelling(), args, u,
                                      spec.argnums)
    np.testing.assert_array_equal(value_np, value)
    for a, b in zip(grads_np, grads):
        assert type(a) is type(b)
        np.testing.assert_array_equal(a, b)


def check_second_order(spec, rng):
    """grad of <grad(h), v> (reverse over reverse: a Hessian-vector product) against
    central differences of the first-order gradient, for h = sum(u * out + out**2 / 2)
    with out = fun(...): the square makes h curved even where fun is linear, so the
    reverse step of every op is itself differentiated."""
    import warnings

    import fasttape
    import fasttape.numpy as fnp
    args, ref, u = spec.draw(rng)
    argnums = tuple(range(len(args))) if spec.argnums is None else tuple(spec.argnums)
    spelling = fasttape_spelling()
    vs = [rng.standard_normal(np.shape(args[i])) if isinstance(args[i], np.ndarray)
          else float(rng.standard_normal()) for i in argnums]

    def first(*a):
        out = spec.fun(spelling, *a)
        return fnp.sum(out * u) + 0.5 * fnp.sum(out * out)

    def directional(*a):
        """<gradient of `first` at a, v>: recorded when a holds Variables."""
        total = 0.0
        for g, v in zip(fasttape.grad(first, argnum=argnums)(*a), vs):
            total = total + fnp.sum(g * v)
        return total

    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")     # (linear functions: a constant gradient)
        hv = fasttape.grad(directional, argnum=argnums)(*args)
        assert_argument_gradients_match_differences(
            lambda *a: float(directional(*a)), args, hv, rng, argnums, rtol=1e-5,
            atol=1e-7, rel_step=spec.rel_step)


# -- derivatives of functions of several arguments (test_forward_mode, test_higher_order,
#    test_extend, test_checkpoint) ------------------------------------------------------

def jax_spelling():
    """(jax, Spelling of jax.numpy) in double precision; skips the test without JAX."""
    import pytest
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy
    import jax.scipy.special
    return jax, Spelling("jax.numpy", jax.numpy, jax.scipy.special)


def args_directional_derivative(f, args, tangents, rel_step=1e-3):
    """d/dt f(*(a + t v for a, v in zip(args, tangents))) at t = 0 by central
    differences with one Richardson step; ``f`` takes floats and arrays and returns a
    float or an array (of any shape). Returns a float or a float64 array."""
    args = [a if isinstance(a, np.ndarray) else float(a) for a in args]
    scale = max([1.0] + [float(np.max(np.abs(a), initial=0.0)) for a in args])
    h = rel_step * scale

    def at(t):
        with np.errstate(all="ignore"):
            return np.asarray(f(*[a + t * np.asarray(v, dtype=float) if isinstance(
                a, np.ndarray) else a + t * float(v) for a, v in zip(args, tangents)]),
                dtype=float)

    def central(step):
        return (at(step) - at(-step)) / (2.0 * step)

    d = (4.0 * central(h / 2.0) - central(h)) / 3.0
    return float(d) if d.shape == () else d


def numerical_jacobian(f, x, rel_step=1e-3):
    """Jacobian of f at x by central differences (Richardson), of shape
    ``np.shape(f(x)) + np.shape(x)``; x is a float or an array."""
    shape = np.shape(x)
    columns = []
    for j in range(int(np.prod(shape, dtype=np.int64))):
        e = np.zeros(shape)
        e.reshape(-1)[j] = 1.0
        tangent = e if shape else 1.0
        columns.append(np.asarray(args_directional_derivative(
            f, [np.asarray(x, dtype=float) if shape else float(x)], [tangent],
            rel_step), dtype=float).reshape(-1))
    out_shape = np.shape(f(x))
    return np.stack(columns, axis=-1).reshape(out_shape + shape)


def spec_tests(specs):
    """The checks every ArraySpec of a test module gets, as test functions for the
    module's namespace (``globals().update(spec_tests(SPECS))``): the value against
    NumPy, the gradient against central differences and against autograd, the plain
    NumPy spelling against fasttape.numpy's, and second order."""
    import pytest

    @pytest.mark.parametrize("spec", specs, ids=str)
    def test_value_matches_numpy(spec, rng):
        check_value(spec, rng)

    @pytest.mark.parametrize("spec", specs, ids=str)
    def test_gradient_matches_central_differences(spec, rng):
        check_gradient_against_differences(spec, rng)

    @pytest.mark.parametrize("spec", [s for s in specs if s.autograd], ids=str)
    def test_gradient_matches_autograd(spec, rng):
        check_gradient_against_autograd(spec, rng)

    @pytest.mark.parametrize("spec", [s for s in specs if s.spellings], ids=str)
    def test_numpy_spelling_gives_identical_gradients(spec, rng):
        check_spellings_agree(spec, rng)

    @pytest.mark.parametrize("spec", [s for s in specs if s.second_order], ids=str)
    def test_second_order_matches_central_differences_of_the_gradient(spec, rng):
        check_second_order(spec, rng)

    return {f.__name__: f for f in (
        test_value_matches_numpy, test_gradient_matches_central_differences,
        test_gradient_matches_autograd, test_numpy_spelling_gives_identical_gradients,
        test_second_order_matches_central_differences_of_the_gradient)}
