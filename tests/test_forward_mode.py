"""Forward mode and the two spellings of reverse mode.

jvp (JAX's ``jvp(f, primals, tangents) -> (out, tangent_out)``) and make_jvp
(autograd's ``make_jvp(f, argnum)(*args)(v) -> (value, jvp)``) on scalar code (every op
spec) and on array code (a table of functions written once against a NumPy spelling),
checked against central differences of plain NumPy, against JAX and against autograd.
Then vjp (JAX's) and make_vjp (autograd's) with repeated cotangents and containers;
``<u, J v>`` by jvp and by vjp on random compositions of several shapes; and the
Jacobian by jacfwd, jacrev and jacobian (including which mode jacobian picks).
"""
import math
import warnings
from dataclasses import dataclass
from collections.abc import Callable

import numpy as np
import pytest

import fasttape as ft
import fasttape.numpy as fnp
from fasttape import jacfwd, jacobian, jacrev, jvp, make_jvp, make_vjp, vjp
from fasttape.extend import defjvp, defvjp, primitive

from opspecs import SPECS
from support import (args_directional_derivative, autograd_spelling, fasttape_spelling,
                     jax_spelling, numerical_jacobian, numpy_spelling, sample)


def assert_close(got, expected, rtol=1e-10, atol=1e-12, what=""):
    """Same shape, values to rtol (atol relative to the largest expected entry)."""
    assert np.shape(got) == np.shape(expected), (
        f"{what}: shape {np.shape(got)} != {np.shape(expected)}")
    expected = np.asarray(expected, dtype=float)
    scale = float(np.max(np.abs(expected), initial=1.0))
    np.testing.assert_allclose(np.asarray(got, dtype=float), expected, rtol=rtol,
                               atol=atol * scale, err_msg=what)


def random_like(rng, x):
    """A random tangent or cotangent of x's shape (a float for a number)."""
    if isinstance(x, np.ndarray) or np.ndim(x):
        return rng.standard_normal(np.shape(x))
    return float(rng.standard_normal())


def inner(a, b):
    return float(np.sum(np.asarray(a, dtype=float) * np.asarray(b, dtype=float)))


# -- scalar code: every op spec ---------------------------------------------------------

def spec_call(spec, args):
    """(the spec's function of its differentiable arguments, those arguments, a
    reference of the same arguments on plain NumPy floats)."""
    argnums = spec.argnums

    def full(diff_args):
        call = list(args)
        for i, a in zip(argnums, diff_args):
            call[i] = a
        return call

    return (lambda *d: spec.fun(*full(d)), [args[i] for i in argnums],
            lambda *d: spec.ref(*[np.float64(a) for a in full(d)]))


@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_jvp_of_every_scalar_op_matches_central_differences(spec, rng):
    for column in spec.sample(rng, 3).T:
        args = [float(a) for a in column]
        f, primals, ref = spec_call(spec, args)
        tangents = [float(t) for t in rng.standard_normal(len(primals))]
        out, t_out = jvp(f, tuple(primals), tuple(tangents))
        assert type(out) is float and type(t_out) is float
        assert out == pytest.approx(float(ref(*primals)), rel=1e-13, abs=1e-300)
        numeric = args_directional_derivative(ref, primals, tangents)
        assert t_out == pytest.approx(numeric, rel=max(spec.grad_rtol, 1e-7),
                                      abs=spec.grad_atol), (spec.name, args, tangents)


@pytest.mark.parametrize("spec", [s for s in SPECS if s.ag is not None], ids=str)
def test_jvp_of_every_scalar_op_matches_autograd(spec, rng):
    autograd, anp = autograd_spelling()
    ag_fun = spec.autograd_fun(anp.module, anp.special)
    for column in spec.sample(rng, 3).T:
        args = [float(a) for a in column]
        f, primals, _ = spec_call(spec, args)
        tangents = [float(t) for t in rng.standard_normal(len(primals))]
        _, t_out = jvp(f, tuple(primals), tuple(tangents))
        expected = 0.0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")     # sign: "output seems independent"
            for i, t in zip(spec.argnums, tangents):
                expected += t * float(autograd.grad(ag_fun, i)(*args))
        assert t_out == pytest.approx(expected, rel=1e-12, abs=1e-12), (spec.name, args)


def rosenbrock(p):
    """The extended Rosenbrock function, a Python loop over a list."""
    total = 0.0
    for a, b in zip(p[:-1], p[1:]):
        total = total + 100.0 * (b - a * a) ** 2 + (1.0 - a) ** 2
    return total


def rosenbrock_gradient(p):
    n = len(p)
    g = [0.0] * n
    for i in range(n - 1):
        a, b = p[i], p[i + 1]
        g[i] += -400.0 * a * (b - a * a) - 2.0 * (1.0 - a)
        g[i + 1] += 200.0 * (b - a * a)
    return g


def test_jvp_of_a_python_loop_over_a_list(rng):
    p = [float(v) for v in rng.uniform(-1.5, 1.5, 7)]
    v = [float(t) for t in rng.standard_normal(7)]
    out, t_out = jvp(rosenbrock, (p,), (v,))
    assert out == pytest.approx(rosenbrock(p), rel=1e-15)
    assert t_out == pytest.approx(inner(rosenbrock_gradient(p), v), rel=1e-12)
    value, t_out2 = make_jvp(rosenbrock)(p)(v)
    assert value == out and t_out2 == pytest.approx(t_out, rel=1e-14)


def test_jvp_takes_tuples_and_returns_the_output_and_its_tangent():
    x, y = 0.7, -1.3
    out, t_out = jvp(lambda a, b: a * ft.sin(b), (x, y), (1.0, 0.0))
    assert out == pytest.approx(x * math.sin(y), rel=1e-15)
    assert t_out == pytest.approx(math.sin(y), rel=1e-15)
    _, t_out = jvp(lambda a, b: a * ft.sin(b), [x, y], [0.0, 1.0])   # lists as well
    assert t_out == pytest.approx(x * math.cos(y), rel=1e-15)


def test_jvp_is_linear_in_the_tangent(rng):
    def f(x, y):
        return fnp.tanh(x @ y) * fnp.sum(x)

    x, y = rng.standard_normal((3, 4)), rng.standard_normal((4, 2))
    t1 = (rng.standard_normal(x.shape), rng.standard_normal(y.shape))
    t2 = (rng.standard_normal(x.shape), rng.standard_normal(y.shape))
    a, b = 1.7, -0.4
    mixed = tuple(a * p + b * q for p, q in zip(t1, t2))
    _, j1 = jvp(f, (x, y), t1)
    _, j2 = jvp(f, (x, y), t2)
    _, jm = jvp(f, (x, y), mixed)
    assert_close(jm, a * j1 + b * j2)


def test_make_jvp_differentiates_argument_argnum_only(rng):
    def f(x, y, scale):
        return scale * fnp.sin(x) * fnp.exp(y)

    x, y = rng.standard_normal(4), rng.standard_normal(4)
    v = rng.standard_normal(4)
    value0, d0 = make_jvp(f, 0)(x, y, 2.0)(v)
    value1, d1 = make_jvp(f, 1)(x, y, 2.0)(v)
    assert_close(value0, 2.0 * np.sin(x) * np.exp(y), rtol=1e-15)
    assert_close(value1, value0, rtol=0)
    assert_close(d0, 2.0 * np.cos(x) * np.exp(y) * v)
    assert_close(d1, 2.0 * np.sin(x) * np.exp(y) * v)
    # JAX's spelling with the other tangent zero gives the same
    assert_close(jvp(lambda a: f(a, y, 2.0), (x,), (v,))[1], d0, rtol=1e-15)


def test_make_jvp_records_once_and_sweeps_per_tangent(rng):
    calls = []

    def f(x):
        calls.append(1)
        return fnp.cumsum(x * x)

    x = rng.standard_normal(5)
    jvp_fun = make_jvp(f)(x)
    for j in range(5):
        e = np.zeros(5)
        e[j] = 1.0
        value, column = jvp_fun(e)
        assert_close(value, np.cumsum(x * x), rtol=1e-15)
        expected = np.where(np.arange(5) >= j, 2.0 * x[j], 0.0)
        assert_close(column, expected, rtol=1e-15)
    assert len(calls) == 1


def test_jvp_with_containers_in_and_out(rng):
    def f(params):
        w, (b, c) = params["w"], params["bc"]
        return {"y": fnp.tanh(w * b), "z": [fnp.sum(w) * c, c * c]}

    params = {"w": rng.standard_normal(3), "bc": (0.5, -1.5)}
    tangent = {"w": rng.standard_normal(3), "bc": (0.25, 2.0)}
    out, t_out = jvp(f, (params,), (tangent,))
    assert set(out) == {"y", "z"} and set(t_out) == {"y", "z"}
    assert type(t_out["z"]) is list and len(t_out["z"]) == 2
    w, tw = params["w"], tangent["w"]
    b, c = params["bc"]
    tb, tc = tangent["bc"]
    assert_close(t_out["y"], (1 - np.tanh(w * b) ** 2) * (tw * b + w * tb))
    assert t_out["z"][0] == pytest.approx(np.sum(tw) * c + np.sum(w) * tc, rel=1e-12)
    assert t_out["z"][1] == pytest.approx(2 * c * tc, rel=1e-15)


def test_jvp_of_outputs_that_do_not_depend_on_the_input():
    out, t_out = jvp(lambda x: 3.0, (1.0,), (1.0,))
    assert (out, t_out) == (3.0, 0.0)
    out, t_out = jvp(lambda x, y: (x * 2.0, np.ones(2)), (1.0, 2.0), (1.0, 1.0))
    assert out[0] == 2.0 and t_out[0] == 2.0
    assert_close(t_out[1], np.zeros(2), rtol=0, atol=0)


@pytest.mark.parametrize("primals, tangents", [((1.0, 2.0), (1.0,)),
                                               ((1.0,), (1.0, 2.0))])
def test_jvp_needs_one_tangent_per_primal(primals, tangents):
    with pytest.raises(ValueError, match="tangent"):
        jvp(lambda *a: a[0] * 2.0, primals, tangents)


def test_a_tangent_of_the_wrong_structure_is_refused():
    with pytest.raises(ValueError, match="structure"):
        make_jvp(lambda p: p[0] * p[1])([1.0, 2.0])([1.0, 2.0, 3.0])


# -- array code: a table of functions written against a NumPy spelling ------------------

def well_conditioned(n):
    """A random n x n matrix near 2 I (invertible, det > 0)."""
    return lambda rng, shape: 2.0 * np.eye(n) + 0.3 * rng.standard_normal((n, n))


EYE3 = np.eye(3)
INDEX = np.array([0, 2, 2, 1])


@dataclass
class ArrayCase:
    name: str
    fun: Callable                    # fun(np, *args), np a Spelling
    shapes: tuple
    domains: object = (-2.0, 2.0)    # one (lo, hi)/callable, or a list with one per arg
    autograd_fwd: bool = True        # autograd has forward rules for everything used

    def __str__(self):
        return self.name

    def draw(self, rng):
        domains = self.domains if isinstance(self.domains, list) else \
            [self.domains] * len(self.shapes)
        return tuple(sample(rng, s, d) for s, d in zip(self.shapes, domains))


def nonzero(lo, hi):
    return lambda rng, shape: rng.choice([-1.0, 1.0], shape) * rng.uniform(lo, hi, shape)


ARRAY_CASES = [
    ArrayCase("elementwise", lambda np, x: np.sin(x) * np.exp(-x * x) + x ** 3 / (
        1.0 + x * x), ((3, 4),)),
    ArrayCase("scalar with array", lambda np, s, x: np.cos(s * x) + s * s, ((), (5,))),
    ArrayCase("broadcasting", lambda np, x, y: np.tanh(x * y) + x / (2.0 + y * y),
              ((3, 1), (4,))),
    ArrayCase("sum over an axis", lambda np, x: np.sum(np.sin(x) * x, axis=0),
              ((3, 4),)),
    ArrayCase("mean keepdims", lambda np, x: x - np.mean(x * x, axis=1, keepdims=True),
              ((3, 4),)),
    ArrayCase("full sum", lambda np, x: np.sum(x * np.log1p(x * x)), ((2, 3, 2),)),
    ArrayCase("prod", lambda np, x: np.prod(x, axis=1), ((3, 4),), (0.5, 2.0)),
    ArrayCase("max", lambda np, x: np.max(np.sin(x), axis=0), ((4, 3),)),
    ArrayCase("matmul", lambda np, a, b: np.tanh(a @ b), ((3, 4), (4, 2))),
    ArrayCase("matrix @ vector", lambda np, a, v: a @ np.sin(v), ((3, 4), (4,))),
    ArrayCase("batched matmul", lambda np, a, b: np.matmul(a, b), ((2, 3, 4), (4, 2))),
    ArrayCase("slicing", lambda np, x: x[1:, ::2] * x[0, 1] + x[-1, :2], ((3, 4),)),
    ArrayCase("fancy indexing", lambda np, x: np.exp(x[INDEX]) * x[INDEX[::-1]],
              ((4, 2),)),
    ArrayCase("transpose", lambda np, x: np.transpose(x) @ np.sin(x), ((3, 2),)),
    ArrayCase("concatenate", lambda np, x, y: np.concatenate(
        [np.sin(x), x * y, y[::-1]]), ((3,), (3,))),
    ArrayCase("concatenate axis 1", lambda np, x, y: np.concatenate(
        [x, y * y], axis=1), ((2, 3), (2, 2))),
    ArrayCase("stack", lambda np, x, y: np.stack([x * y, np.cos(x)], axis=1),
              ((4,), (4,))),
    ArrayCase("where", lambda np, x, y: np.where(x > 0.0, x * y, np.sin(y)),
              ((3, 4), (3, 4)), [nonzero(0.2, 2.0), (-2.0, 2.0)]),
    ArrayCase("cumsum", lambda np, x: np.cumsum(x * x, axis=1), ((3, 4),)),
    ArrayCase("cumsum flat", lambda np, x: np.cumsum(np.sin(x)), ((2, 3),)),
    ArrayCase("einsum matmul", lambda np, a, b: np.einsum("ij,jk->ik", a, b),
              ((3, 4), (4, 2))),
    ArrayCase("einsum quadratic form", lambda np, v, a: np.einsum("i,ij,j->", v, a, v),
              ((3,), (3, 3))),
    ArrayCase("einsum rowwise", lambda np, a, b: np.einsum("ij,ij->i", a, np.tanh(b)),
              ((3, 4), (3, 4))),
    # (autograd has no forward rules for numpy.linalg)
    ArrayCase("inv", lambda np, a: np.linalg.inv(a), ((3, 3),), well_conditioned(3),
              autograd_fwd=False),
    ArrayCase("solve vector", lambda np, a, b: np.linalg.solve(a, b), ((3, 3), (3,)),
              [well_conditioned(3), (-2.0, 2.0)], autograd_fwd=False),
    ArrayCase("solve matrix", lambda np, a, b: np.linalg.solve(a, b), ((3, 3), (3, 2)),
              [well_conditioned(3), (-2.0, 2.0)], autograd_fwd=False),
    ArrayCase("det", lambda np, a: np.linalg.det(a), ((3, 3),), well_conditioned(3),
              autograd_fwd=False),
    ArrayCase("slogdet", lambda np, a: np.linalg.slogdet(a)[1], ((3, 3),),
              well_conditioned(3), autograd_fwd=False),
    ArrayCase("cholesky", lambda np, a: np.linalg.cholesky(
        a @ np.transpose(a) + 3.0 * EYE3), ((3, 3),), autograd_fwd=False),
]


def fasttape_fun(case):
    spelling = fasttape_spelling()
    return lambda *a: case.fun(spelling, *a)


def numpy_fun(case):
    spelling = numpy_spelling()
    return lambda *a: case.fun(spelling, *a)


@pytest.mark.parametrize("case", ARRAY_CASES, ids=str)
def test_array_jvp_matches_central_differences(case, rng):
    args = case.draw(rng)
    tangents = tuple(random_like(rng, a) for a in args)
    out, t_out = jvp(fasttape_fun(case), args, tangents)
    reference = numpy_fun(case)(*args)
    assert_close(out, reference, rtol=1e-13, what="value")
    numeric = args_directional_derivative(numpy_fun(case), args, tangents)
    assert_close(t_out, numeric, rtol=1e-7, atol=1e-8, what="tangent")
    if np.ndim(reference):
        assert type(t_out) is np.ndarray and t_out.dtype == np.float64
    else:
        assert type(t_out) is float


def jax_params(cases):
    """JAX compiles every operation it meets, which takes seconds per case: in the
    default run only the cases autograd cannot check are compared with JAX (all of
    them with -m slow)."""
    return [pytest.param(c, id=str(c), marks=[pytest.mark.slow] if c.autograd_fwd
                         else []) for c in cases]


@pytest.mark.parametrize("case", jax_params(ARRAY_CASES))
def test_array_jvp_matches_jax(case, rng):
    jax, jnp = jax_spelling()
    args = case.draw(rng)
    tangents = tuple(random_like(rng, a) for a in args)
    _, t_out = jvp(fasttape_fun(case), args, tangents)
    _, expected = jax.jvp(lambda *a: case.fun(jnp, *a),
                          tuple(np.asarray(a) for a in args),
                          tuple(np.asarray(t) for t in tangents))
    assert_close(t_out, np.asarray(expected), rtol=1e-10, what=case.name)


@pytest.mark.parametrize("case", [c for c in ARRAY_CASES if c.autograd_fwd], ids=str)
def test_array_make_jvp_matches_autograd_per_argument(case, rng):
    autograd, anp = autograd_spelling()
    args = case.draw(rng)
    for argnum in range(len(args)):
        v = random_like(rng, args[argnum])
        value, d = make_jvp(fasttape_fun(case), argnum)(*args)(v)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ag_value, ag_d = autograd.make_jvp(lambda *a: case.fun(anp, *a),
                                               argnum)(*args)(v)
        assert_close(value, ag_value, rtol=1e-13, what=f"{case.name} value")
        assert_close(d, ag_d, rtol=1e-10, what=f"{case.name} argument {argnum}")


# -- reverse mode in both spellings -----------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("case", ARRAY_CASES, ids=str)
def test_array_vjp_matches_jax(case, rng):
    jax, jnp = jax_spelling()
    args = case.draw(rng)
    out, vjp_fun = vjp(fasttape_fun(case), *args)
    u = random_like(rng, out)
    got = vjp_fun(u)
    assert type(got) is tuple and len(got) == len(args)
    _, jax_vjp = jax.vjp(lambda *a: case.fun(jnp, *a), *[np.asarray(a) for a in args])
    expected = jax_vjp(np.asarray(u))
    for i, (g, e, a) in enumerate(zip(got, expected, args)):
        assert_close(g, np.asarray(e).reshape(np.shape(a)), rtol=1e-10,
                     what=f"{case.name} cotangent of argument {i}")
        assert type(g) is (np.ndarray if isinstance(a, np.ndarray) else float)


@pytest.mark.parametrize("case", ARRAY_CASES, ids=str)
def test_array_make_vjp_matches_autograd(case, rng):
    autograd, anp = autograd_spelling()
    args = case.draw(rng)
    for argnum in range(len(args)):
        vjp_fun, value = make_vjp(fasttape_fun(case), argnum)(*args)
        u = random_like(rng, value)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ag_vjp, ag_value = autograd.make_vjp(lambda *a: case.fun(anp, *a),
                                                 argnum)(*args)
        assert_close(value, ag_value, rtol=1e-13, what="value")
        assert_close(vjp_fun(u), ag_vjp(u), rtol=1e-10,
                     what=f"{case.name} argument {argnum}")


@pytest.mark.parametrize("case", ARRAY_CASES, ids=str)
def test_jvp_and_vjp_agree_on_u_J_v(case, rng):
    args = case.draw(rng)
    f = fasttape_fun(case)
    tangents = tuple(random_like(rng, a) for a in args)
    out, t_out = jvp(f, args, tangents)
    u = random_like(rng, out)
    cotangents = vjp(f, *args)[1](u)
    forward = inner(u, t_out)
    reverse = sum(inner(c, t) for c, t in zip(cotangents, tangents))
    assert forward == pytest.approx(reverse, rel=1e-11, abs=1e-11)


def test_vjp_returns_the_output_and_a_function_returning_a_tuple():
    out, vjp_fun = vjp(lambda x, y: x * ft.exp(y), 2.0, 0.5)
    assert type(out) is float and out == pytest.approx(2.0 * math.exp(0.5), rel=1e-15)
    gx, gy = vjp_fun(1.0)
    assert gx == pytest.approx(math.exp(0.5), rel=1e-15)
    assert gy == pytest.approx(2.0 * math.exp(0.5), rel=1e-15)
    out, vjp_fun = vjp(ft.sin, 0.3)          # one primal: still a tuple
    result = vjp_fun(2.0)
    assert type(result) is tuple and len(result) == 1
    assert result[0] == pytest.approx(2.0 * math.cos(0.3), rel=1e-15)


def test_make_vjp_returns_the_function_first_then_the_value():
    vjp_fun, value = make_vjp(lambda x, y: x * ft.exp(y), 1)(2.0, 0.5)
    assert value == pytest.approx(2.0 * math.exp(0.5), rel=1e-15)
    assert vjp_fun(3.0) == pytest.approx(3.0 * 2.0 * math.exp(0.5), rel=1e-15)
    vjp_fun, value = make_vjp(lambda x, y: x * y, (0, 1))(2.0, 5.0)
    assert vjp_fun(1.0) == (5.0, 2.0)


def test_one_recording_serves_many_cotangents(rng):
    """The rows of the Jacobian from one vjp function, in any order and repeated, and
    the vjp is linear in the cotangent (no adjoint left over between calls)."""
    a = rng.standard_normal((4, 3))

    def f(x):
        return fnp.tanh(a @ x) * fnp.sum(x * x)

    x = rng.standard_normal(3)
    out, vjp_fun = vjp(f, x)
    jac = numerical_jacobian(lambda z: np.tanh(a @ z) * np.sum(z * z), x)
    for i in [0, 3, 1, 1, 2, 0]:
        e = np.zeros(4)
        e[i] = 1.0
        (row,) = vjp_fun(e)
        assert_close(row, jac[i], rtol=1e-7, atol=1e-9, what=f"row {i}")
    u1, u2 = rng.standard_normal(4), rng.standard_normal(4)
    (g1,), (g2,), (g12,) = vjp_fun(u1), vjp_fun(u2), vjp_fun(2.0 * u1 - u2)
    assert_close(g12, 2.0 * g1 - g2, rtol=1e-12)
    (again,) = vjp_fun(u1)
    assert_close(again, g1, rtol=0, atol=0)


def test_vjp_with_containers_in_and_out(rng):
    def f(params, xs):
        w, b = params["w"], params["b"]
        return (fnp.sum(w * xs[0]) + b, [w * b, xs[1] * xs[1]])

    params = {"w": rng.standard_normal(3), "b": 0.7}
    xs = [rng.standard_normal(3), 1.5]
    out, vjp_fun = vjp(f, params, xs)
    assert type(out) is tuple and type(out[1]) is list
    ct = (2.0, [rng.standard_normal(3), -1.0])
    g_params, g_xs = vjp_fun(ct)
    assert set(g_params) == {"w", "b"} and type(g_xs) is list
    w, b = params["w"], params["b"]
    assert_close(g_params["w"], 2.0 * xs[0] + ct[1][0] * b)
    assert g_params["b"] == pytest.approx(2.0 + inner(ct[1][0], w), rel=1e-13)
    assert_close(g_xs[0], 2.0 * w)
    assert g_xs[1] == pytest.approx(-1.0 * 2.0 * xs[1], rel=1e-15)


def test_a_cotangent_of_the_wrong_shape_is_refused(rng):
    _, vjp_fun = vjp(lambda x: fnp.sin(x), rng.standard_normal(3))
    with pytest.raises(ValueError, match="shape"):
        vjp_fun(np.ones(4))
    _, vjp_fun = vjp(lambda x: (x, x), 1.0)
    with pytest.raises(ValueError, match="structure"):
        vjp_fun(1.0)


# -- <u, J v> by jvp and by vjp on random compositions ----------------------------------

# steps applied one after another; each keeps the shape of its input
SHAPED_CONSTANTS = {}


def constant_like(x, salt):
    key = (np.shape(x), salt)
    if key not in SHAPED_CONSTANTS:
        SHAPED_CONSTANTS[key] = np.random.default_rng(hash(key) % 2 ** 32).uniform(
            0.5, 1.5, np.shape(x))
    return SHAPED_CONSTANTS[key]


ELEMENTWISE_STEPS = [
    ("sin", lambda np, x: np.sin(x)),
    ("tanh(2x)", lambda np, x: np.tanh(2.0 * x)),
    ("x*x", lambda np, x: x * x),
    ("exp(-x^2)", lambda np, x: np.exp(-x * x)),
    ("x/(1+x^2)", lambda np, x: x / (1.0 + x * x)),
    ("arctan", lambda np, x: np.arctan(x)),
    ("c*x+x^3", lambda np, x: constant_like(x, 1) * x + x ** 3),
    ("sqrt(1+x^2)", lambda np, x: np.sqrt(1.0 + x * x)),
]
ARRAY_STEPS = [
    ("reverse", lambda np, x: np.flip(x, axis=0)),
    ("cumsum", lambda np, x: np.cumsum(x, axis=0)),
    ("x - mean", lambda np, x: x - np.mean(x, axis=0, keepdims=True)),
    ("x * sum", lambda np, x: x * np.sum(np.sin(x))),
    ("mix last axis", lambda np, x: x @ constant_like(np.zeros((x.shape[-1],) * 2), 2)),
    ("x * x[::-1]", lambda np, x: x * x[::-1]),
]


def random_composition(seed, shape):
    """A function of one argument of `shape`: 5 random steps, then (half the time) a
    reduction to a scalar."""
    r = np.random.default_rng(seed)
    pool = ELEMENTWISE_STEPS + (ARRAY_STEPS if shape else [])
    steps = [pool[i] for i in r.integers(0, len(pool), 5)]
    reduce = bool(r.integers(0, 2))

    def f(np, x):
        for _, step in steps:
            x = step(np, x)
        return np.sum(x * x) if reduce else x

    f.description = " -> ".join(name for name, _ in steps) + (" -> sum sq" if reduce
                                                               else "")
    return f


COMPOSITIONS = [(seed, shape) for shape in [(), (5,), (3, 4), (2, 3, 2)]
                for seed in range(6)]


@pytest.mark.parametrize("seed, shape", COMPOSITIONS)
def test_u_J_v_by_jvp_by_vjp_and_by_differences_on_random_functions(seed, shape, rng):
    f = random_composition(seed, shape)
    ftnp, refnp = fasttape_spelling(), numpy_spelling()
    x = sample(rng, shape, (-1.0, 1.0))
    v = random_like(rng, x)
    out, t_out = jvp(lambda z: f(ftnp, z), (x,), (v,))
    u = random_like(rng, out)
    (cotangent,) = vjp(lambda z: f(ftnp, z), x)[1](u)
    forward = inner(u, t_out)
    reverse = inner(cotangent, v)
    numeric = inner(u, args_directional_derivative(lambda z: f(refnp, z), [x], [v]))
    scale = max(1.0, abs(numeric))
    assert abs(forward - reverse) <= 1e-11 * scale, f.description
    assert abs(forward - numeric) <= 1e-6 * scale, f.description


# -- Jacobians --------------------------------------------------------------------------

A23 = np.random.default_rng(3).standard_normal((4, 6))

JACOBIAN_CASES = [
    # (name, fasttape function, NumPy function, input)
    ("scalar -> scalar", lambda x: ft.sin(x) * x, lambda x: np.sin(x) * x, 0.7),
    ("scalar -> vector", lambda t: fnp.sin(t * np.arange(1.0, 4.0)),
     lambda t: np.sin(t * np.arange(1.0, 4.0)), -0.4),
    ("vector -> scalar", lambda x: fnp.sum(fnp.sin(x) * x),
     lambda x: np.sum(np.sin(x) * x), np.array([0.1, -0.5, 1.2])),
    ("matrix -> vector", lambda x: A23 @ fnp.reshape(fnp.tanh(x), (-1,)),
     lambda x: A23 @ np.tanh(x).reshape(-1), np.linspace(-1, 1, 6).reshape(2, 3)),
    ("vector -> matrix", lambda x: fnp.reshape(fnp.exp(x[::-1]) * x, (2, 2)),
     lambda x: (np.exp(x[::-1]) * x).reshape(2, 2), np.array([0.3, -0.2, 0.5, 1.0])),
    ("wide", lambda x: fnp.cumsum(x)[:2] * x[0],
     lambda x: np.cumsum(x)[:2] * x[0], np.linspace(-1, 1, 7)),
    ("tall", lambda x: fnp.concatenate([x, x * x, fnp.sin(x)]),
     lambda x: np.concatenate([x, x * x, np.sin(x)]), np.array([0.4, -0.9])),
]


@pytest.mark.parametrize("name, f, ref, x", JACOBIAN_CASES, ids=[c[0] for c in
                                                                   JACOBIAN_CASES])
def test_jacfwd_jacrev_and_jacobian_agree_with_central_differences(name, f, ref, x):
    expected = numerical_jacobian(ref, x)
    shape = np.shape(ref(x)) + np.shape(x)
    assert expected.shape == shape
    results = {"jacfwd": jacfwd(f)(x), "jacrev": jacrev(f)(x),
               "jacobian": jacobian(f)(x)}
    for how, jac in results.items():
        assert np.shape(jac) == shape, f"{how}: shape {np.shape(jac)} != {shape}"
        assert_close(jac, expected, rtol=1e-7, atol=1e-9, what=how)
    assert_close(results["jacfwd"], results["jacrev"], rtol=1e-13, atol=1e-15)
    assert_close(results["jacobian"], results["jacrev"], rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("name, f, ref, x", JACOBIAN_CASES, ids=[c[0] for c in
                                                                   JACOBIAN_CASES])
def test_jacobian_matches_autograd(name, f, ref, x):
    autograd, anp = autograd_spelling()
    ag_ref = {
        "scalar -> scalar": lambda x: anp.sin(x) * x,
        "scalar -> vector": lambda t: anp.sin(t * np.arange(1.0, 4.0)),
        "vector -> scalar": lambda x: anp.sum(anp.sin(x) * x),
        "matrix -> vector": lambda x: anp.dot(A23, anp.reshape(anp.tanh(x), -1)),
        "vector -> matrix": lambda x: anp.reshape(anp.exp(x[::-1]) * x, (2, 2)),
        "wide": lambda x: anp.cumsum(x)[:2] * x[0],
        "tall": lambda x: anp.concatenate([x, x * x, anp.sin(x)]),
    }[name]
    expected = np.asarray(autograd.jacobian(ag_ref)(x))
    assert_close(jacobian(f)(x), expected, rtol=1e-12, atol=1e-14)
    assert_close(jacfwd(f)(x), expected, rtol=1e-12, atol=1e-14)


@pytest.mark.slow
@pytest.mark.parametrize("name, f, ref, x", JACOBIAN_CASES, ids=[c[0] for c in
                                                                   JACOBIAN_CASES])
def test_jacobian_matches_jax(name, f, ref, x):
    jax, jnp = jax_spelling()
    jax_ref = {
        "scalar -> scalar": lambda x: jnp.sin(x) * x,
        "scalar -> vector": lambda t: jnp.sin(t * jnp.arange(1.0, 4.0)),
        "vector -> scalar": lambda x: jnp.sum(jnp.sin(x) * x),
        "matrix -> vector": lambda x: A23 @ jnp.tanh(x).reshape(-1),
        "vector -> matrix": lambda x: (jnp.exp(x[::-1]) * x).reshape(2, 2),
        "wide": lambda x: jnp.cumsum(x)[:2] * x[0],
        "tall": lambda x: jnp.concatenate([x, x * x, jnp.sin(x)]),
    }[name]
    expected = np.asarray(jax.jacfwd(jax_ref)(jnp.asarray(x, dtype=jnp.float64)))
    assert_close(jacobian(f)(x), expected, rtol=1e-12, atol=1e-14)


def test_jacobian_with_respect_to_another_argument(rng):
    def f(a, x, scale):
        return scale * fnp.tanh(a @ x)

    a, x = rng.standard_normal((3, 2)), rng.standard_normal(2)
    t = np.tanh(a @ x)
    expected_x = 2.0 * (1 - t ** 2)[:, None] * a
    expected_a = 2.0 * (1 - t ** 2)[:, None, None] * np.eye(3)[:, :, None] * x
    for op in (jacobian, jacfwd, jacrev):
        assert_close(op(f, 1)(a, x, 2.0), expected_x)
        assert_close(op(f, 0)(a, x, 2.0), expected_a)


def only_reverse_rule():
    @primitive
    def squares(x):
        return x * x

    defvjp(squares, lambda ans, x: lambda g: 2.0 * x * g)
    return squares


def only_forward_rule():
    @primitive
    def squares(x):
        return x * x

    defjvp(squares, lambda g, ans, x: 2.0 * x * g)
    return squares


def test_jacobian_sweeps_in_reverse_when_there_are_fewer_outputs():
    """Seen through primitives with one rule only: with 1 output and 3 inputs,
    jacobian must take reverse sweeps (jacfwd cannot) ..."""
    squares = only_reverse_rule()
    x = np.array([0.5, -1.0, 2.0])
    f = lambda z: fnp.sum(squares(z))           # noqa: E731
    assert_close(jacobian(f)(x), 2.0 * x, rtol=1e-15)
    assert_close(jacrev(f)(x), 2.0 * x, rtol=1e-15)
    with pytest.raises(TypeError, match="squares"):
        jacfwd(f)(x)


def test_jacobian_sweeps_forward_when_there_are_fewer_inputs():
    """... and with 1 input and 3 outputs, forward sweeps (jacrev cannot)."""
    squares = only_forward_rule()
    f = lambda t: squares(t * np.array([1.0, 2.0, 3.0]))     # noqa: E731
    expected = 2.0 * 0.5 * np.array([1.0, 4.0, 9.0])
    assert_close(jacobian(f)(0.5), expected, rtol=1e-15)
    assert_close(jacfwd(f)(0.5), expected, rtol=1e-15)
    with pytest.raises(TypeError, match="squares"):
        jacrev(f)(0.5)

