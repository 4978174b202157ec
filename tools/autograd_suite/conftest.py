"""Runs autograd's own tests against fasttape: ``import autograd.X`` resolves to
fasttape's module of the same role, and ``autograd.test_util`` is replaced by the
checker below, which grades fasttape's derivatives against central differences
computed here, without fasttape.

Loaded by pytest as the root conftest of the work folder that ``run.py`` prepares;
not part of fasttape's own test suite.
"""
import importlib
import importlib.abc
import importlib.util
import itertools
import os
import sys

import numpy as np

import fasttape

# autograd's modules and the fasttape modules that play their part. The internals
# (core, tracer, wrap_util) map to the public modules that hold their public names.
ALIASES = {
    "autograd": "fasttape",
    "autograd.differential_operators": "fasttape",
    "autograd.numpy": "fasttape.numpy",
    "autograd.numpy.numpy_wrapper": "fasttape.numpy",
    "autograd.numpy.linalg": "fasttape.numpy.linalg",
    "autograd.numpy.fft": "fasttape.numpy.fft",
    "autograd.numpy.random": "numpy.random",
    "autograd.scipy": "fasttape.scipy",
    "autograd.scipy.special": "fasttape.scipy.special",
    "autograd.scipy.stats": "fasttape.scipy.stats",
    **{f"autograd.scipy.stats.{name}": f"fasttape.scipy.stats.{name}"
       for name in ("norm", "t", "multivariate_normal", "dirichlet", "gamma", "beta",
                    "chi2", "poisson")},
    "autograd.scipy.signal": "fasttape.scipy.signal",
    "autograd.scipy.linalg": "fasttape.scipy.linalg",
    "autograd.scipy.integrate": "fasttape.scipy.integrate",
    "autograd.scipy.misc": "fasttape.scipy.misc",
    "autograd.extend": "fasttape.extend",
    "autograd.builtins": "fasttape.builtins",
    "autograd.misc": "fasttape.misc",
    "autograd.misc.optimizers": "fasttape.misc.optimizers",
    "autograd.misc.flatten": "fasttape.misc.flatten",
    "autograd.misc.fixed_points": "fasttape.misc.fixed_points",
    "autograd.core": "fasttape.core",
    "autograd.tracer": "fasttape.extend",
    "autograd.wrap_util": "fasttape.core",
}


class _AliasLoader(importlib.abc.Loader):
    def __init__(self, target):
        self.target = target

    def create_module(self, spec):
        return importlib.import_module(self.target)

    def exec_module(self, module):
        pass


class _AliasFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "autograd.test_util":
            return importlib.util.spec_from_loader(name, _TestUtilLoader())
        if name in ALIASES:
            return importlib.util.spec_from_loader(name, _AliasLoader(ALIASES[name]))
        return None


class _TestUtilLoader(importlib.abc.Loader):
    def create_module(self, spec):
        return None

    def exec_module(self, module):
        module.__dict__.update(TEST_UTIL)


# -- an independent checker ------------------------------------------------------------

TOL = 1e-6
RTOL = 1e-6
EPS = 1e-6


def _plain(x):
    """The value of x with any fasttape Variable replaced by its number/array."""
    if isinstance(x, (tuple, list)):
        return type(x)(_plain(v) for v in x)
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if hasattr(x, "tape") and hasattr(x, "value"):
        return np.asarray(x.value) if np.ndim(x.value) else x.value
    return x


def _leaves(x):
    if isinstance(x, (tuple, list)):
        return [leaf for v in x for leaf in _leaves(v)]
    if isinstance(x, dict):
        return [leaf for k in sorted(x) for leaf in _leaves(x[k])]
    return [x]


def _structure_of(x):
    if isinstance(x, (tuple, list)):
        return (type(x), tuple(_structure_of(v) for v in x))
    if isinstance(x, dict):
        return (dict, tuple((k, _structure_of(x[k])) for k in sorted(x)))
    a = np.asarray(_plain(x))
    return ("leaf", a.shape, np.iscomplexobj(a))


def _to_vector(x):
    parts = [np.ravel(np.asarray(_plain(leaf))) for leaf in _leaves(x)]
    if not parts:
        return np.zeros(0)
    return np.concatenate([p.astype(complex if np.iscomplexobj(p) else float)
                           for p in parts])


def _like(x, vector):
    """A value with x's structure holding the numbers of vector."""
    position = 0

    def build(v):
        nonlocal position
        if isinstance(v, (tuple, list)):
            return type(v)(build(item) for item in v)
        if isinstance(v, dict):
            return {k: build(v[k]) for k in v}
        a = np.asarray(_plain(v))
        n = a.size
        chunk = vector[position:position + n]
        position += n
        if not np.iscomplexobj(a):
            chunk = chunk.real
        if a.ndim == 0 and not isinstance(v, np.ndarray):
            return complex(chunk[0]) if np.iscomplexobj(a) else float(chunk[0])
        return chunk.reshape(a.shape).astype(a.dtype if a.dtype.kind in "fc" else float)
    # dicts rebuilt in sorted order to match _leaves
    def build_sorted(v):
        nonlocal position
        if isinstance(v, (tuple, list)):
            return type(v)(build_sorted(item) for item in v)
        if isinstance(v, dict):
            return {k: build_sorted(v[k]) for k in sorted(v)}
        return build(v)
    return build_sorted(x)


def _random_like(x):
    structure = _to_vector(x)
    direction = np.random.randn(structure.size)
    if np.iscomplexobj(structure):
        direction = direction + 1j * np.random.randn(structure.size)
    return _like(x, direction)


def _inner(a, b):
    return np.real(np.vdot(_to_vector(a), _to_vector(b)))


def _conjugate(x):
    """x with every complex leaf conjugated (real leaves and Variables unchanged)."""
    if isinstance(x, (tuple, list)):
        return type(x)(_conjugate(v) for v in x)
    if isinstance(x, dict):
        return {k: _conjugate(v) for k, v in x.items()}
    if isinstance(x, (complex, np.complexfloating)) or \
            isinstance(x, np.ndarray) and np.iscomplexobj(x):
        return np.conj(x)
    return x


def _numerical_jvp(f, x):
    x0 = _to_vector(x)

    def jvp(v):
        dv = _to_vector(v)
        up = _to_vector(f(_like(x, x0 + dv * EPS / 2)))
        down = _to_vector(f(_like(x, x0 - dv * EPS / 2)))
        return (up - down) / EPS
    return jvp


def scalar_close(a, b):
    return abs(a - b) < TOL or abs(a - b) / abs(a + b) < RTOL


def check_equivalent(x, y):
    assert _structure_of(x) == _structure_of(y), f"structure mismatch:\n{x}\n{y}"
    v = _random_like(x)
    assert scalar_close(_inner(x, v), _inner(y, v)), f"value mismatch:\n{x}\n{y}"


def _check_vjp(f, x):
    vjp, y = fasttape.make_vjp(f)(x)
    numerical = _numerical_jvp(f, x)
    x_dir, y_dir = _random_like(x), _random_like(y)
    # autograd's convention: a vjp maps covectors to covectors, the covector of a
    # complex value being its conjugate (the identity for real values)
    cotangent = vjp(_conjugate(y_dir))
    assert _structure_of(cotangent) == _structure_of(x), (
        f"VJP of {_name(f)}: cotangent structure {_structure_of(cotangent)} "
        f"is not the argument's {_structure_of(x)}")
    exact = _inner(x_dir, _conjugate(cotangent))
    numeric = np.real(np.vdot(_to_vector(y_dir), numerical(x_dir)))
    assert scalar_close(numeric, exact), (
        f"Derivative (VJP) check of {_name(f)} failed at {x}:\n"
        f"analytic: {exact}\nnumeric:  {numeric}")


def _check_jvp(f, x):
    tangent_out = fasttape.make_jvp(f)(x)
    direction = _random_like(x)
    exact = tangent_out(direction)[1]
    numeric = _numerical_jvp(f, x)(direction)
    e, n = _to_vector(exact), numeric
    assert e.shape == n.shape, f"JVP of {_name(f)}: shape {e.shape} vs {n.shape}"
    w = np.random.randn(n.size)
    assert scalar_close(np.real(np.vdot(w, e)), np.real(np.vdot(w, n))), (
        f"Derivative (JVP) check of {_name(f)} failed at {x}:\n"
        f"analytic: {exact}\nnumeric:  {numeric}")


def _name(f):
    return getattr(f, "__name__", repr(f))


def _check(f, x, modes, order):
    assert all(m in ("fwd", "rev") for m in modes)
    if "fwd" in modes:
        _check_jvp(f, x)
        if order > 1:
            def jvp_f(x, v):
                return fasttape.make_jvp(f)(x)(v)[1]
            jvp_f.__name__ = f"jvp_{_name(f)}"
            check_grads(jvp_f, (0, 1), modes, order - 1)(x, _random_like(x))
    if "rev" in modes:
        _check_vjp(f, x)
        if order > 1:
            def vjp_f(x, v):
                return fasttape.make_vjp(f)(x)[0](v)
            vjp_f.__name__ = f"vjp_{_name(f)}"
            check_grads(vjp_f, (0, 1), modes, order - 1)(x, _random_like(_plain(f(x))))


# FASTTAPE_SUITE_MAX_ORDER=1 caps the order checked (to see first-order results alone)
MAX_ORDER = int(os.environ.get("FASTTAPE_SUITE_MAX_ORDER", "99"))


def check_grads(f, argnum=None, modes=("fwd", "rev"), order=2):
    """autograd.test_util.check_grads' signature: the returned function takes f's
    arguments and checks the derivatives in argument(s) argnum (all by default)."""
    order = min(order, MAX_ORDER)

    def checker(*args, **kwargs):
        numbers = tuple(range(len(args))) if argnum is None else argnum

        def unary(x):
            full = list(args)
            if isinstance(numbers, int):
                full[numbers] = x
            else:
                for i, value in zip(numbers, x):
                    full[i] = value
            return f(*full, **kwargs)
        unary.__name__ = _name(f)
        x = args[numbers] if isinstance(numbers, int) else tuple(args[i] for i in numbers)
        _check(unary, x, modes, order)
    return checker


def combo_check(fun, *args, **kwargs):
    def run(*arg_choices, **kwarg_choices):
        keyed = [[(k, v) for v in vs] for k, vs in kwarg_choices.items()]
        for chosen_args in itertools.product(*arg_choices):
            for chosen_kwargs in itertools.product(*keyed):
                check_grads(fun, *args, **kwargs)(*chosen_args, **dict(chosen_kwargs))
    return run


TEST_UTIL = {"check_grads": check_grads, "combo_check": combo_check,
             "check_equivalent": check_equivalent, "scalar_close": scalar_close,
             "TOL": TOL, "RTOL": RTOL, "EPS": EPS}

sys.meta_path.insert(0, _AliasFinder())
