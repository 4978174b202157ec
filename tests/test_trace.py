"""Record once, replay: ``fasttape.trace`` and ``Traced``.

A traced function is checked against what it replaces: the plain function (values) and
a fresh recording by ``fasttape.grad`` and friends (derivatives), at many random points
drawn by the seeded ``rng`` fixture. Then the guards that make replay safe (comparisons
re-checked, ``fasttape.where`` as a select node, ``retrace=True``), threads, pickling,
the errors for arguments of another structure and for code that cannot be replayed,
and the introspection helpers (n_nodes, nbytes, dump, to_dot).
"""
import inspect
import io
import json
import operator
import os
import pickle
import re
import threading

import numpy as np
import pytest
import scipy.special as scipy_special

import fasttape as ft
import fasttape.numpy as fnp
from fasttape.extend import defjvp, defvjp, primitive
from fasttape._tape import ARRAY_OP_TABLE
from fasttape._tape_state import ANODE_COLUMNS, OPERAND_COLUMNS, STATE_FIELDS, digest
from support import describe_failure, run_isolated

N_POINTS = 1000             # random points per function for first derivatives
N_SECOND_ORDER = 200        # ... for Hessians (one C sweep per input per point)
RTOL = 1e-12                # replay and a fresh recording do the same float operations


# -- comparing results of any structure ------------------------------------------------

def assert_same(got, expected, rtol=RTOL, what="result"):
    """Equal containers (same type and length; dicts same keys) whose numbers and
    arrays agree to rtol (atol scaled by the largest magnitude, shapes exact)."""
    if isinstance(expected, (list, tuple)):
        assert type(got) is type(expected), (
            f"{what}: {type(got).__name__} {got!r}, expected "
            f"{type(expected).__name__} {expected!r}")
        assert len(got) == len(expected), f"{what}: {got!r} != {expected!r}"
        for i, (a, b) in enumerate(zip(got, expected)):
            assert_same(a, b, rtol, f"{what}[{i}]")
        return
    if isinstance(expected, dict):
        assert type(got) is dict and list(got) == list(expected), f"{what}: {got!r}"
        for k in expected:
            assert_same(got[k], expected[k], rtol, f"{what}[{k!r}]")
        return
    assert not isinstance(got, (list, tuple, dict)), f"{what}: {got!r}, expected a " \
                                                     f"number or array"
    assert np.shape(got) == np.shape(expected), (
        f"{what}: shape {np.shape(got)}, expected {np.shape(expected)}")
    b = np.asarray(expected, dtype=float)
    scale = float(np.max(np.abs(b), initial=1.0))
    np.testing.assert_allclose(np.asarray(got, dtype=float), b, rtol=rtol,
                               atol=rtol * scale, err_msg=what)


def flat_numbers(x):
    """All the numbers of a (nested) result, as one float64 vector."""
    if isinstance(x, (list, tuple)):
        parts = [flat_numbers(v) for v in x]
        return np.concatenate(parts) if parts else np.zeros(0)
    if isinstance(x, dict):
        return flat_numbers(list(x.values()))
    return np.ravel(np.asarray(x, dtype=float))


def like(template, rng):
    """Random numbers with the structure of template (floats, arrays, lists, tuples)."""
    if isinstance(template, np.ndarray):
        return rng.standard_normal(template.shape)
    if isinstance(template, (list, tuple)):
        return type(template)(like(v, rng) for v in template)
    return float(rng.standard_normal())


def source_line(fun, text):
    """The line number in this file of the line of fun's source containing text."""
    lines, start = inspect.getsourcelines(fun)
    matches = [start + i for i, line in enumerate(lines) if text in line]
    assert len(matches) == 1, (text, matches)
    return matches[0]


# -- scalar code: Python loops over floats ---------------------------------------------

def rosenbrock(x):
    total = 0.0
    for i in range(len(x) - 1):
        total = total + 100.0 * (x[i + 1] - x[i] ** 2) ** 2 + (1.0 - x[i]) ** 2
    return total


XS = [-1.5, -0.7, 0.1, 0.4, 1.1, 1.9, 2.5, -2.2]
YS = [0.0, 0.0, 1.0, 0.0, 1.0, 1.0, 1.0, 0.0]


def logistic_log_likelihood(theta, xs, ys):
    """sum_i y_i log p_i + (1 - y_i) log(1 - p_i), p_i = sigmoid(a + b x_i), with a
    Gaussian prior on theta = [a, b]."""
    a, b = theta
    total = -0.5 * (a * a + b * b)
    for x, y in zip(xs, ys):
        p = ft.sigmoid(a + b * x)
        total = total + y * ft.log(p) + (1.0 - y) * ft.log(1.0 - p)
    return total


def several(a, b, c):
    return a * ft.sin(b) + ft.exp(0.3 * c * a) / (1.0 + b * b) - ft.tanh(c) * b


# -- array code ------------------------------------------------------------------------

def rosenbrock_vec(x):
    return fnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def mlp_loss(W1, b1, W2, X):
    """A tanh layer (matmul, broadcast bias), a linear layer and a squared loss."""
    hidden = fnp.tanh(X @ W1 + b1)
    out = hidden @ W2
    return fnp.sum(out * out) / X.shape[0]


def indexing(x):
    return (fnp.sum(x[::2] * x[1::2]) + x[3] * x[0]
            - fnp.sum(x[np.array([5, 0, 0, 2])] ** 2)
            + fnp.sum(x[-1:0:-2] * fnp.sin(x[1:4])))


def joins(x, y):
    c = fnp.concatenate([x[:2], fnp.sin(y), x[1:3] * 2.0])
    s = fnp.stack([x, y * y], axis=1)
    return fnp.sum(c * c) + fnp.sum(s[:, 0] * s[:, 1]) + fnp.sum(fnp.stack([x, y]) ** 3)


def reshapes(x):
    m = fnp.reshape(x, (2, 3))
    t = fnp.transpose(m)
    return fnp.sum((t @ m) * 0.5) + fnp.sum(m.T[1] * x[:2]) + fnp.sum(
        fnp.reshape(t, (6,)) * np.arange(6.0))


def cumsums(x):
    return fnp.sum(fnp.cumsum(x) ** 2) + fnp.sum(
        fnp.cumsum(fnp.reshape(x, (2, 3)), axis=1) * fnp.cos(fnp.reshape(x, (2, 3))))


MASK = np.array([True, False, True, True, False, False])


def masked_where(x):
    return fnp.sum(fnp.where(MASK, x ** 2, fnp.exp(x))) + fnp.sum(
        fnp.where(MASK[::-1], 1.0, x) * x)


def recorded_where(x, y):
    """np.where / fasttape.where whose conditions are comparisons of the arguments
    (re-evaluated on replay), also combined with & | ~ and broadcast."""
    a = fnp.where(x > 0.0, x ** 2, -x)
    b = np.where((x < y) & ~(y > 1.0), fnp.sin(y), 2.0 * x)
    c = ft.where(fnp.less(x[:, None], y[None, :]) | (x[:, None] > 1.5), 1.0, x[:, None] * y)
    return fnp.sum(a * b) + fnp.sum(c) + fnp.sum(np.where(x >= y, 3.0, -1.0) * y)


def reductions_by_selection(x):
    """max, min, prod (their weights are recomputed by the replay) and clip."""
    m = fnp.reshape(x, (2, 3))
    return (fnp.max(x) * fnp.min(x) + fnp.sum(fnp.max(m, axis=0) ** 2)
            + fnp.sum(np.min(m, axis=1, keepdims=True) * m) + fnp.prod(x[:4])
            + fnp.sum(fnp.prod(m, axis=1)) + fnp.sum(fnp.clip(x, -0.5, 0.8) ** 2)
            + fnp.sum(np.clip(m, [-1.0, 0.0, -0.2], 1.0) * m))


@primitive
def _cube(x):
    return x ** 3


defvjp(_cube, lambda ans, x: lambda g: g * 3.0 * x ** 2)
defjvp(_cube, lambda g, ans, x: g * 3.0 * x ** 2)


def _checkpointed(y):
    return fnp.sum(fnp.sin(y) * y)


_CHECKPOINTED = ft.checkpoint(_checkpointed)


def python_rule_nodes(a, x):
    """Nodes whose value and rules are Python (re-run by the replay): linalg, einsum,
    a custom primitive, checkpoint."""
    spd = a @ a.T + 3.0 * fnp.eye(3)
    sign, logdet = fnp.linalg.slogdet(a)
    return (fnp.sum(fnp.linalg.inv(spd) * a) + fnp.linalg.det(a) * sign
            + logdet * x[0] + fnp.sum(fnp.linalg.solve(spd, x)) ** 2
            + fnp.sum(np.linalg.cholesky(spd) * a) + fnp.einsum("ij,j,i->", a, x, x)
            + fnp.sum(_cube(x)) + _cube(x[1]) * 0.5 + _CHECKPOINTED(x) * 2.0)


def log_gamma(x):
    """gammaln: a Python-rule node differentiable once (digamma is not)."""
    import fasttape.scipy.special as fsp
    return fnp.sum(fsp.gammaln(x * x + 1.0) * x)


def mixed(s, x, t):
    """Scalar Variables and arrays together."""
    return fnp.sum(s * fnp.sin(x) + t) * s + t * t + fnp.sum(x * t) / s


class Case:
    """A function, how to draw its arguments, and the arguments differentiated."""

    def __init__(self, name, fun, draw, argnum=0, scalar=True, second_order=True):
        self.name, self.fun, self.draw, self.argnum = name, fun, draw, argnum
        self.scalar = scalar            # scalar code (no array operations)
        self.second_order = second_order    # differentiable twice

    def __repr__(self):
        return self.name


def _floats(rng, n, lo=-2.0, hi=2.0):
    return [float(v) for v in rng.uniform(lo, hi, n)]


CASES = [
    Case("rosenbrock loop", rosenbrock, lambda rng: (_floats(rng, 8),)),
    Case("logistic likelihood loop", logistic_log_likelihood,
         lambda rng: (_floats(rng, 2), _floats(rng, 8, -3, 3), _floats(rng, 8, 0, 1))),
    Case("several scalars, argnum=(0, 2)", several,
         lambda rng: tuple(_floats(rng, 3)), argnum=(0, 2)),
    Case("rosenbrock vectorised", rosenbrock_vec,
         lambda rng: (rng.uniform(-2, 2, 8),), scalar=False),
    Case("tanh MLP", mlp_loss, lambda rng: (
        rng.standard_normal((3, 4)), rng.standard_normal(4), rng.standard_normal((4, 2)),
        rng.standard_normal((5, 3))), argnum=(0, 1, 2), scalar=False),
    Case("indexing and slicing", indexing, lambda rng: (rng.standard_normal(6),),
         scalar=False),
    Case("concatenate and stack", joins,
         lambda rng: (rng.standard_normal(4), rng.standard_normal(4)), argnum=(0, 1),
         scalar=False),
    Case("reshape and transpose", reshapes, lambda rng: (rng.standard_normal(6),),
         scalar=False),
    Case("cumsum", cumsums, lambda rng: (rng.standard_normal(6),), scalar=False),
    Case("where with a constant mask", masked_where,
         lambda rng: (rng.standard_normal(6),), scalar=False),
    Case("where with recorded comparisons", recorded_where,
         lambda rng: (rng.standard_normal(5), rng.standard_normal(5)), argnum=(0, 1),
         scalar=False),
    Case("max, min, prod, clip", reductions_by_selection,
         lambda rng: (rng.standard_normal(6),), scalar=False),
    Case("linalg, einsum, primitives, checkpoint", python_rule_nodes,
         lambda rng: (rng.standard_normal((3, 3)), rng.standard_normal(3)),
         argnum=(0, 1), scalar=False),
    Case("gammaln", log_gamma, lambda rng: (rng.standard_normal(4),), scalar=False,
         second_order=False),
    Case("scalar Variables and arrays", mixed, lambda rng: (
        float(rng.uniform(0.5, 2.0)), rng.standard_normal(5),
        float(rng.standard_normal())),
        argnum=(0, 1, 2), scalar=False),
]
SCALAR_CASES = [c for c in CASES if c.scalar]
MLP = next(c for c in CASES if c.fun is mlp_loss)


def traced(case, rng):
    return ft.trace(case.fun, *case.draw(rng), argnum=case.argnum)


# -- 1. replay equals the plain function and a fresh recording -------------------------

@pytest.mark.parametrize("case", CASES, ids=repr)
def test_replayed_values_and_gradients_match_a_fresh_recording(case, rng):
    g = traced(case, rng)
    fresh_grad = ft.grad(case.fun, argnum=case.argnum)
    for k in range(N_POINTS):
        args = case.draw(rng)
        expected_value = case.fun(*args)
        expected_grad = fresh_grad(*args)
        assert_same(g(*args), expected_value, what=f"value at point {k}")
        assert_same(g.grad(*args), expected_grad, what=f"grad at point {k}")
        value, gradient = g.value_and_grad(*args)
        assert_same(value, expected_value, what=f"value_and_grad value at point {k}")
        assert_same(gradient, expected_grad, what=f"value_and_grad grad at point {k}")


@pytest.mark.parametrize("case", CASES, ids=repr)
def test_replayed_vjp_matches_a_fresh_vjp(case, rng):
    g = traced(case, rng)
    for k in range(N_POINTS):
        args = case.draw(rng)
        u = float(rng.standard_normal())
        vjp, _ = ft.make_vjp(case.fun, argnum=case.argnum)(*args)
        assert_same(g.vjp(args, u), vjp(u), what=f"vjp at point {k}")


@pytest.mark.parametrize("case", CASES, ids=repr)
def test_replayed_jvp_matches_fasttape_jvp(case, rng):
    g = traced(case, rng)
    for k in range(N_POINTS):
        args = case.draw(rng)
        tangents = like(args, rng)
        assert_same(g.jvp(args, tangents), ft.jvp(case.fun, args, tangents),
                    what=f"(value, jvp) at point {k}")


@pytest.mark.parametrize("case", [c for c in CASES if c.second_order], ids=repr)
def test_replayed_hvp_and_hessian_match_fasttape(case, rng):
    """Forward over reverse in C, for scalar and array code (Python-rule nodes: by
    fasttape.hvp on the function)."""
    argnum = case.argnum if type(case.argnum) is int else case.argnum[-1]
    g = ft.trace(case.fun, *case.draw(rng), argnum=argnum)
    for k in range(N_SECOND_ORDER if case.scalar else N_SECOND_ORDER // 4):
        args = case.draw(rng)
        n = len(flat_numbers(args[argnum]))
        expected = np.reshape(ft.hessian(case.fun, argnum=argnum)(*args), (n, n))
        assert_same(np.asarray(g.hessian(*args)), expected,
                    what=f"hessian at point {k}")
        v = like(args[argnum], rng)
        assert_same(g.hvp(args, v), ft.hvp(case.fun, argnum)(*args, v),
                    what=f"hvp at point {k}")


def test_replayed_hessian_of_prod_is_exact_with_zeros():
    """d2/dx_i dx_j prod(x) = the product of the others but x_i and x_j (0 on the
    diagonal), also where some x are 0; along an axis, per row."""
    def closed_form(x):
        n = len(x)
        return np.array([[0.0 if i == j else np.prod(np.delete(x, [i, j]))
                          for j in range(n)] for i in range(n)])

    g = ft.trace(lambda x: fnp.prod(x), np.array([1.0, 2.0, 3.0, 4.0]))
    rows = ft.trace(lambda m: fnp.sum(fnp.prod(m, axis=1)), np.ones((2, 4)))
    for x in ([0.5, -2.0, 3.0, 1.5], [0.0, 2.0, -3.0, 0.5], [2.0, 0.0, 0.0, 3.0],
              [0.0, 0.0, 0.0, 2.0]):
        x = np.array(x)
        np.testing.assert_allclose(g.hessian(x), closed_form(x), rtol=1e-14, atol=0)
        m = np.stack([x, x[::-1] * 2.0])
        expected = np.zeros((8, 8))
        expected[:4, :4] = closed_form(m[0])
        expected[4:, 4:] = closed_form(m[1])
        np.testing.assert_allclose(rows.hessian(m), expected, rtol=1e-14, atol=0)


def polar(p):
    return [p[0] * ft.cos(p[1]), p[0] * ft.sin(p[1]), p[0] * p[1] * p[1]]


def products(a, b):
    return a * b, ft.exp(a) + b, ft.sin(a * a)


def array_reductions(x):
    return [fnp.sum(x * x), fnp.sum(fnp.sin(x)), x[1] * x[2]]


def array_valued(x):
    return fnp.sin(x) * x[0]


JACOBIAN_CASES = [
    Case("list to list (scalar code)", polar, lambda rng: (_floats(rng, 2, 0.5, 2.0),)),
    Case("two scalars to a tuple, argnum=0", products,
         lambda rng: tuple(_floats(rng, 2))),
    Case("two scalars to a tuple, argnum=1", products,
         lambda rng: tuple(_floats(rng, 2)), argnum=1),
    Case("array to a list of numbers", array_reductions,
         lambda rng: (rng.standard_normal(3),), scalar=False),
    Case("array to an array", array_valued, lambda rng: (rng.standard_normal(3),),
         scalar=False),
]


@pytest.mark.parametrize("case", JACOBIAN_CASES, ids=repr)
def test_replayed_jacobian_matches_fasttape_jacobian(case, rng):
    """Traced.jacobian: shape (n_outputs, n_inputs) over the flat outputs and the flat
    argument argnum (its docstring), equal to fasttape.jacobian reshaped."""
    g = traced(case, rng)
    for k in range(N_POINTS // 10):
        args = case.draw(rng)
        n_in = len(flat_numbers(args[case.argnum]))
        n_out = len(flat_numbers(case.fun(*args)))
        expected = np.reshape(ft.jacobian(case.fun, argnum=case.argnum)(*args),
                              (n_out, n_in))
        got = g.jacobian(*args)
        assert np.shape(got) == (n_out, n_in), (
            f"Traced.jacobian has shape {np.shape(got)}, expected (n_outputs, "
            f"n_inputs) = {(n_out, n_in)}")
        assert_same(got, expected, what=f"jacobian at point {k}")
        u = like(case.fun(*args), rng)
        expected_vjp = flat_numbers(u) @ expected
        assert_same(flat_numbers(g.vjp(args, u)), expected_vjp, what=f"vjp at point {k}")


def test_vjp_and_jacobian_with_respect_to_later_arguments():
    """argnum naming arguments after the first: the cotangents of those arguments."""
    def f(x, y):
        return x * x * y + 3.0 * y

    g = ft.trace(f, 1.0, 2.0, argnum=1)
    assert g.grad(2.0, 5.0) == 7.0
    assert g.vjp((2.0, 5.0), 2.0) == 14.0
    assert_same(g.jacobian(2.0, 5.0), np.array([[7.0]]))

    def h(x, y):
        return x[0] * y[0] + x[1] * y[1] * y[1]

    g = ft.trace(h, [1.0, 2.0], [3.0, 4.0], argnum=1)
    assert g.grad([1.0, 2.0], [3.0, 4.0]) == [1.0, 16.0]
    assert g.vjp(([1.0, 2.0], [3.0, 4.0]), 0.5) == [0.5, 8.0]
    assert_same(g.jacobian([1.0, 2.0], [3.0, 4.0]), np.array([[1.0, 16.0]]))

    g = ft.trace(several, 0.1, 0.2, 0.3, argnum=(0, 2))
    assert_same(g.vjp((0.5, 1.0, 0.1), 1.0),
                ft.grad(several, argnum=(0, 2))(0.5, 1.0, 0.1))


def test_gradient_of_a_function_returning_an_argument_unchanged():
    """The output is an input leaf: the other inputs' derivatives are exactly 0 (not
    whatever the adjoint buffer held)."""
    g = ft.trace(lambda x, y: x, 2.0, 1.0, argnum=(0, 1))
    for x, y in [(5.0, 1.0), (6.0, 0.0), (7.0, -1.0)]:
        assert g.grad(x, y) == (1.0, 0.0)
        assert g.value_and_grad(x, y) == (x, (1.0, 0.0))
    g = ft.trace(lambda x: x[0], [2.0, 1.0, 3.0])
    assert g.grad([5.0, 1.0, 2.0]) == [1.0, 0.0, 0.0]
    np.testing.assert_array_equal(g.grad_many(np.ones((4, 3))), [[1.0, 0.0, 0.0]] * 4)
    g = ft.trace(lambda x: x[1], (2.0, 1.0, 3.0))
    assert g.grad((5.0, 1.0, 2.0)) == (0.0, 1.0, 0.0)


def test_replay_with_other_non_differentiated_arguments(rng):
    """Arguments outside argnum are inputs of the replay too (the data of a
    likelihood, here): changing them changes value and gradient as recomputing does."""
    g = ft.trace(logistic_log_likelihood, [0.1, 0.2], XS, YS)
    for _ in range(50):
        theta, xs = _floats(rng, 2), _floats(rng, 8, -3, 3)
        assert_same(g.value_and_grad(theta, xs, YS),
                    ft.value_and_grad(logistic_log_likelihood)(theta, xs, YS))


def test_long_scalar_tape(rng):
    """Past 2048 nodes, replays and sweeps run without the GIL: the same results."""
    g = ft.trace(rosenbrock, _floats(rng, 1500, -1, 1))
    assert g.n_nodes > 2048
    for _ in range(3):
        x, v = _floats(rng, 1500, -1, 1), _floats(rng, 1500)
        assert_same(g(x), rosenbrock(x))
        assert_same(g.value_and_grad(x), ft.value_and_grad(rosenbrock)(x))
        assert_same(g.vjp((x,), 0.5), [0.5 * d for d in ft.grad(rosenbrock)(x)])
        assert_same(g.jvp((x,), (v,)), ft.jvp(rosenbrock, (x,), (v,)))
        assert_same(g.hvp((x,), v), ft.hvp(rosenbrock)(x, v))
        np.testing.assert_array_equal(g.grad_many(np.array([x, v]), n_threads=2),
                                      [g.grad(x), g.grad(v)])


def test_ints_and_numpy_scalars_are_numbers():
    g = ft.trace(rosenbrock, [0.1, 0.2, 0.3])
    expected = ft.value_and_grad(rosenbrock)([1.0, 2.0, 3.0])
    assert g.value_and_grad([1, 2, 3]) == expected
    assert g.value_and_grad([np.float64(1), np.float32(2), 3]) == expected
    assert g([1, 2.0, np.int64(3)]) == expected[0]
    g = ft.trace(several, 0.1, 0.2, 0.3, argnum=(0, 1))
    assert g.value_and_grad(1, np.float64(2), 3) == \
        ft.value_and_grad(several, argnum=(0, 1))(1.0, 2.0, 3.0)


# -- 2. branches: guards, retrace, fasttape.where -------------------------------------

def abs_if(x):
    if x < 0.0:                                     # the guard of abs_if
        return -x
    else:
        return x * 1.0


def max_if(x, y):
    if x >= y:                                      # the guard of max_if
        return x
    return y


def l1_loop(x):
    total = 0.0
    for v in x:
        total = total + abs_if(v) * v * v
    return total


def _every_operation(g, args, v):
    """Call each replaying method of g at args (v: a direction for hvp)."""
    return {
        "__call__": lambda: g(*args),
        "grad": lambda: g.grad(*args),
        "value_and_grad": lambda: g.value_and_grad(*args),
        "vjp": lambda: g.vjp(args, 1.0),
        "jvp": lambda: g.jvp(args, like(args, np.random.default_rng(0))),
        "jacobian": lambda: g.jacobian(*args),
        "hvp": lambda: g.hvp(args, v),
        "hessian": lambda: g.hessian(*args),
    }


def test_branch_guard_same_side_replays(rng):
    g = ft.trace(abs_if, 0.7)
    assert g.tape.n_guards == 1
    for x in rng.uniform(0.0, 5.0, 100):
        assert g(x) == x and g.grad(x) == 1.0 and g.hvp((x,), 1.0) == 0.0
    g = ft.trace(abs_if, -0.7)
    for x in rng.uniform(-5.0, -1e-300, 100):
        assert g(x) == -x and g.grad(x) == -1.0
    g = ft.trace(max_if, 2.0, 1.0, argnum=(0, 1))
    for x, y in rng.uniform(-5.0, 5.0, (100, 2)):
        x, y = max(x, y), min(x, y)
        assert g(x, y) == x
        assert g.grad(x, y) == (1.0, 0.0)


@pytest.mark.parametrize("fun, traced_at, other_side, comparison, crossing", [
    (abs_if, (0.7,), (-0.3,), r"<\s*0(\.0)?\b", -0.3),
    (abs_if, (-0.7,), (0.3,), r"<\s*0(\.0)?\b", 0.3),
    (max_if, (2.0, 1.0), (1.0, 2.0), r">=", 0.5),      # (grad_many: x, y as traced)
    (max_if, (1.0, 2.0), (2.0, 1.0), r">=", 3.0),
], ids=["abs x<0 false->true", "abs x<0 true->false", "max x>=y true->false",
        "max x>=y false->true"])
def test_branch_change_raises_naming_the_comparison_and_its_line(
        fun, traced_at, other_side, comparison, crossing):
    g = ft.trace(fun, *traced_at)
    guard = {abs_if: "x < 0.0:", max_if: "x >= y:"}[fun]
    location = f"{os.path.basename(__file__)}:{source_line(fun, guard)}"
    for name, call in _every_operation(g, other_side, 1.0).items():
        with pytest.raises(ft.BranchChangedError) as info:
            call()
        message = str(info.value)
        assert re.search(comparison, message), (name, message)
        assert location in message, (name, location, message)
    with pytest.raises(ft.BranchChangedError, match=re.escape(location)):
        g.grad_many(np.array([[traced_at[0]]] * 3 + [[crossing]]))
    # the traced side still replays after the refusals
    assert g(*traced_at) == fun(*traced_at)


def test_branch_change_inside_a_loop():
    g = ft.trace(l1_loop, [1.0, -2.0, 3.0])
    assert g.tape.n_guards == 3
    assert_same(g.grad([2.0, -1.0, 0.5]), ft.grad(l1_loop)([2.0, -1.0, 0.5]))
    with pytest.raises(ft.BranchChangedError) as info:
        g.grad([2.0, 1.0, 0.5])
    assert f"test_trace.py:{source_line(abs_if, 'x < 0.0:')}" in str(info.value)


def _check_retrace(g, fun, argnum, args, rng, v):
    assert_same(g(*args), fun(*args), what=f"value at {args}")
    assert_same(g.grad(*args), ft.grad(fun, argnum)(*args), what=f"grad at {args}")
    assert_same(g.value_and_grad(*args), ft.value_and_grad(fun, argnum)(*args),
                what=f"value_and_grad at {args}")
    tangents = like(args, rng)
    assert_same(g.jvp(args, tangents), ft.jvp(fun, args, tangents),
                what=f"jvp at {args}")
    if type(argnum) is int:
        assert_same(g.hvp(args, v), ft.hvp(fun, argnum)(*args, v), what=f"hvp at {args}")
    assert_same(g.vjp(args, 2.5), ft.make_vjp(fun, argnum)(*args)[0](2.5),
                what=f"vjp at {args}")


@pytest.mark.filterwarnings("ignore:Output of max_if seems independent")
@pytest.mark.parametrize("fun, argnum, sides", [
    (abs_if, 0, [(0.7,), (-0.3,)]),
    (max_if, (0, 1), [(2.0, 1.0), (1.0, 2.0)]),
    (max_if, 1, [(2.0, 1.0), (1.0, 2.0)]),
    (l1_loop, 0, [([1.0, -2.0, 3.0],), ([-1.0, -2.0, 3.0],), ([1.0, 2.0, -3.0],)]),
], ids=["abs", "max argnum=(0, 1)", "max argnum=1", "abs in a loop"])
def test_retrace_gives_right_results_on_every_side(fun, argnum, sides, rng):
    g = ft.trace(fun, *sides[0], argnum=argnum, retrace=True)
    v = like(sides[0][argnum if type(argnum) is int else 0], rng)
    for _ in range(3):                              # switch sides and back, repeatedly
        for args in sides:
            _check_retrace(g, fun, argnum, args, rng, v)
    # the first call on another side is what records it again: start with grad, too
    g = ft.trace(fun, *sides[0], argnum=argnum, retrace=True)
    for args in sides[::-1] + sides:
        assert_same(g.grad(*args), ft.grad(fun, argnum)(*args), what=f"grad at {args}")


def test_retrace_in_grad_many_records_the_other_side():
    """retrace=True: "on a branch change, record again ... instead of raising"."""
    g = ft.trace(l1_loop, [1.0, 2.0], retrace=True)
    points = np.array([[1.0, 2.0], [-1.0, 2.0], [1.0, -2.0]])
    expected = [ft.grad(l1_loop)(list(p)) for p in points]
    np.testing.assert_array_equal(g.grad_many(points, n_threads=1), expected)


OPERATORS = [operator.lt, operator.le, operator.gt, operator.ge, operator.eq,
             operator.ne]
TINY = 1e-170               # a difference whose square underflows to 0


def _where_cases():
    """(id, f(x, y), plain-Python reference, points) for where(x OP y|c, a, b)."""
    cases = []
    for op in OPERATORS:
        def vv(x, y, op=op):
            return ft.where(op(x, y), x * y + 2.0, ft.sin(y) - x - 2.0)

        def vc(x, y, op=op):
            return ft.where(op(x, 0.0), x * x * y + 3.0, y - 2.0 * x)

        def cv(x, y, op=op):                  # the constant on the left
            return ft.where(op(0.5, x), ft.exp(x) * y + 4.0, x - y)

        def constants(x, y, op=op):           # constant branches
            return ft.where(op(x, y), 1.0, -1.0) * (x * y + 1.0)

        def reference_vv(x, y, op=op):
            if op(x, y):
                return x * y + 2.0, (y, x)
            return np.sin(y) - x - 2.0, (-1.0, np.cos(y))

        def reference_vc(x, y, op=op):
            if op(x, 0.0):
                return x * x * y + 3.0, (2 * x * y, x * x)
            return y - 2 * x, (-2.0, 1.0)

        def reference_cv(x, y, op=op):
            return (np.exp(x) * y + 4.0, (np.exp(x) * y, np.exp(x))) if op(0.5, x) else (
                x - y, (1.0, -1.0))

        def reference_constants(x, y, op=op):
            s = 1.0 if op(x, y) else -1.0
            return s * (x * y + 1.0), (s * y, s * x)

        name = {"lt": "<", "le": "<=", "gt": ">", "ge": ">=", "eq": "==", "ne": "!="}[
            op.__name__]
        cases += [
            (f"x {name} y", vv, reference_vv,
             [(0.2, 0.7), (0.9, 0.3), (0.4, 0.4), (-1.0, -1.0), (TINY, 0.0), (0.0, TINY),
              (1.0, np.nextafter(1.0, 2.0))]),
            (f"x {name} 0.0", vc, reference_vc,
             [(0.3, 1.5), (-0.3, 1.5), (0.0, 2.0), (TINY, 2.0), (-TINY, 2.0)]),
            (f"0.5 {name} x", cv, reference_cv,
             [(0.3, 1.5), (0.8, 1.5), (0.5, 2.0), (np.nextafter(0.5, 1.0), 2.0)]),
            (f"x {name} y, constant branches", constants, reference_constants,
             [(0.2, 0.7), (0.9, 0.3), (0.4, 0.4)]),
        ]
    return cases


WHERE_CASES = _where_cases()


@pytest.mark.parametrize("name, fun, reference, points", WHERE_CASES,
                         ids=[c[0] for c in WHERE_CASES])
def test_where_replays_both_sides_without_guards(name, fun, reference, points):
    for traced_at in points[:2]:
        g = ft.trace(fun, *traced_at, argnum=(0, 1))
        assert g.tape.n_guards == 0, f"where({name}) left {g.tape.n_guards} guard(s)"
        for x, y in points + points[::-1]:
            value, gradient = reference(x, y)
            assert_same(g(x, y), value, rtol=1e-14, what=f"where({name}) at {(x, y)}")
            assert_same(g.grad(x, y), tuple(float(d) for d in gradient), rtol=1e-14,
                        what=f"gradient of where({name}) at {(x, y)}")
            assert_same(g.value_and_grad(x, y), ft.value_and_grad(fun, (0, 1))(x, y),
                        what=f"where({name}) against a fresh recording at {(x, y)}")
        gx = ft.trace(fun, *traced_at, argnum=0)
        xs = np.array([[x] for x, _ in points])         # y as traced
        expected = [[reference(float(x), traced_at[1])[1][0]] for x in xs[:, 0]]
        np.testing.assert_allclose(gx.grad_many(xs, n_threads=2), expected, rtol=1e-14)


@pytest.mark.parametrize("case", CASES, ids=repr)
def test_functions_without_data_dependent_branches_have_no_guards(case, rng):
    assert traced(case, rng).tape.n_guards == 0


def test_branch_on_a_reduction_of_an_array_is_guarded():
    def f(x):
        total = fnp.sum(x)
        if total > 0.0:
            return total * 2.0
        return fnp.sum(x * x)

    g = ft.trace(f, np.array([1.0, 2.0]))
    assert g.tape.n_guards == 1
    assert g(np.array([3.0, -1.0])) == 4.0
    with pytest.raises(ft.BranchChangedError):
        g(np.array([-3.0, 1.0]))
    g = ft.trace(f, np.array([1.0, 2.0]), retrace=True)
    assert g(np.array([-3.0, 1.0])) == 10.0
    np.testing.assert_array_equal(g.grad(np.array([-3.0, 1.0])), [-6.0, 2.0])
    np.testing.assert_array_equal(g.grad(np.array([3.0, 1.0])), [2.0, 2.0])


def test_where_on_recorded_comparisons_leaves_no_guard_and_follows_both_sides():
    def f(x):
        return fnp.sum(fnp.where(x > 0.0, fnp.sin(x), x ** 3))

    g = ft.trace(f, np.array([1.0, 2.0, 3.0]))       # traced with the mask all True
    assert g.tape.n_guards == 0 and g.tape.array_guards == []
    for x in (np.array([-1.0, 2.0, -3.0]), np.array([-0.5, -2.0, -1.0])):
        expected = np.sum(np.where(x > 0, np.sin(x), x ** 3))
        assert_same(g(x), expected)
        assert_same(g.grad(x), np.where(x > 0, np.cos(x), 3 * x ** 2))


def _mask_indexing(x):
    return fnp.sum(x[x > 0.5] ** 2)


def _mask_count(x):
    return fnp.sum(x) * float((x > 0.0).sum())


def _mask_branch(x):
    if (x < 0.0).any():
        return fnp.sum(x * x)
    return fnp.sum(x)


def _mask_as_numbers(x):
    return fnp.sum(x * (x > 0.0))            # (ArrayVariable * mask: its booleans)


def _mask_through_asarray(x):
    return fnp.sum(x * np.asarray(x <= 0.2, dtype=float))


def _size_one_truth(x):
    if fnp.maximum(x[1:2], 0.0):             # bool() of a one-value array
        return fnp.sum(x * 2.0)
    return fnp.sum(x)


MASK_GUARD_CASES = [
    ("indexing by a mask", _mask_indexing, "x > 0.5"),
    ("counting a mask", _mask_count, "x > 0.0).sum()"),
    ("branching on mask.any()", _mask_branch, "(x < 0.0).any()"),
    ("a mask as numbers", _mask_as_numbers, "x * (x > 0.0)"),
    ("np.asarray of a mask", _mask_through_asarray, "np.asarray(x <= 0.2"),
    ("truth of a one-value array", _size_one_truth, "if fnp.maximum(x[1:2]"),
]


@pytest.mark.parametrize("name, fun, text", MASK_GUARD_CASES,
                         ids=[c[0] for c in MASK_GUARD_CASES])
def test_a_comparison_of_arrays_read_as_booleans_is_guarded(name, fun, text, rng):
    """Reading a mask's values (not only choosing with it) makes it a guard: replays
    with the same booleans are right, others raise naming the line, or retrace."""
    traced_at = np.array([0.9, 0.1, -0.4, 2.0])
    g = ft.trace(fun, traced_at)
    assert len(g.tape.array_guards) >= 1
    same_side = traced_at + rng.uniform(-0.05, 0.05, 4)
    assert_same(g(same_side), fun(same_side))
    assert_same(g.grad(same_side), ft.grad(fun)(same_side))
    other_side = -traced_at
    with pytest.raises(ft.BranchChangedError) as info:
        g.grad(other_side)
    assert f"test_trace.py:{source_line(fun, text)}" in str(info.value), str(info.value)
    g = ft.trace(fun, traced_at, retrace=True)
    for x in (other_side, traced_at, other_side):
        assert_same(g.grad(x), ft.grad(fun)(x))


_A3 = np.array([1.0, 2.0, 3.0])


def test_a_scalar_variable_compared_with_a_constant_array_is_a_recorded_mask():
    """s < A (A a plain array) goes through NumPy's comparison ufuncs: recorded too."""
    functions = [lambda s: fnp.sum(fnp.where(_A3 < s, _A3 * s, s)),
                 lambda s: fnp.sum(fnp.where(fnp.less(s, _A3), _A3, s * s)),
                 lambda s: fnp.sum(np.where(np.greater_equal(s, _A3), s, 2.0 * s))]
    for f in functions:
        g = ft.trace(f, 2.5)
        assert g.tape.array_guards == []
        for s in (0.5, 1.5, 2.5, 3.5):
            assert_same(g.value_and_grad(s), ft.value_and_grad(f)(s), what=f"at {s}")


def test_value_tests_of_a_traced_scalar_are_guarded():
    def f(s):
        return s * 2.0 if not fnp.isnan(s) else s * 3.0

    g = ft.trace(f, 1.0)
    assert g.grad(4.0) == 2.0
    with pytest.raises(ft.BranchChangedError):
        g.grad(float("nan"))


def test_array_code_traced_with_a_flat_list_argument():
    def f(xs):
        x = fnp.array(xs)
        return fnp.sum(fnp.where(x > 0.0, x * x, 0.5 * x))

    g = ft.trace(f, [1.0, -2.0, 3.0])
    points = np.array([[1.0, 2.0, -3.0], [-1.0, 0.5, 2.0]])
    expected = [ft.grad(f)(list(p)) for p in points]
    assert_same([g.grad(list(p)) for p in points], expected)
    np.testing.assert_allclose(g.grad_many(points, n_threads=2), expected, rtol=1e-14)


@primitive
def _checked_log(x):
    if np.any(x <= 0.0):
        raise ValueError("_checked_log of a value <= 0")
    return np.log(x)


defvjp(_checked_log, lambda ans, x: lambda g: g / x)


def test_grad_many_of_array_code_raises_the_error_of_a_point():
    """An error at one point (here in a primitive's value function) is raised, not
    left as unset rows."""
    def f(x):
        return fnp.sum(_checked_log(x) * x)

    g = ft.trace(f, np.array([1.0, 2.0]))
    good = np.array([[1.0, 2.0], [3.0, 4.0]])
    np.testing.assert_allclose(g.grad_many(good, n_threads=2), np.log(good) + 1.0)
    with pytest.raises(ValueError, match="_checked_log"):
        g.grad_many(np.array([[1.0, 2.0], [3.0, -4.0], [5.0, 6.0]]), n_threads=2)


def _kinks_scalar(x):
    total = 0.0
    for i in range(len(x)):
        total = (total + ft.where(x[i] > 0.3, x[i] ** 3, ft.sin(x[i]))
                 + ft.maximum(x[i], 0.1) ** 2 + abs(x[i]) ** 3 + (x[i] ** 2) ** x[0])
    return total


def _kinks_arrays(x):
    return (fnp.sum(fnp.where(x > 0.2, x ** 3, fnp.sin(x))) + fnp.sum(fnp.maximum(x, 0.1) ** 2)
            + fnp.sum(fnp.abs(x) ** 3) + fnp.max(x) ** 2 + fnp.min(x * x) * fnp.sum(x)
            + fnp.prod(x[:3]) ** 2 + fnp.sum(fnp.clip(x, -0.5, 0.5) ** 3))


@pytest.mark.parametrize("f, draw", [
    (_kinks_scalar, lambda rng: [float(v) for v in rng.uniform(-1, 1, 4)]),
    (_kinks_arrays, lambda rng: rng.uniform(-1, 1, 5))], ids=["scalar", "arrays"])
def test_a_traced_gradient_function_follows_the_choices_of_its_rules(f, draw, rng):
    """trace(grad(f)): the derivative rules' choices (which side of a where, maximum,
    abs, max, clip; pow at 0) are recorded selects and masks (or guards): a replay
    never returns the gradient of another branch."""
    gradient = ft.grad(f)
    strict = ft.trace(gradient, draw(rng))
    retracing = ft.trace(gradient, draw(rng), retrace=True)
    raised = 0
    for k in range(300):
        x = draw(rng)
        expected = gradient(x)
        assert_same(retracing(x), expected, rtol=1e-10, what=f"retrace at point {k}")
        try:
            got = strict(x)
        except ft.BranchChangedError:
            raised += 1
            continue
        assert_same(got, expected, rtol=1e-10, what=f"replay at point {k}")
    assert raised == 0     # (selects and masks: the only guard, prod's zeros, holds)


def test_mask_tests_of_values_replay():
    """isnan / isinf / isfinite of traced arrays are recorded masks too."""
    def f(x):
        y = fnp.log(x)                       # nan below 0, -inf at 0
        return fnp.sum(fnp.where(fnp.isfinite(y), y, 0.0) + fnp.where(
            np.isnan(y), 1.0, 0.0) * x + fnp.where(fnp.isinf(y), 2.0, 0.0))

    g = ft.trace(f, np.array([1.0, 2.0, 3.0]))
    assert g.tape.array_guards == []
    with np.errstate(divide="ignore", invalid="ignore"):
        for x in (np.array([-1.0, 0.0, 3.0]), np.array([0.5, -2.0, 0.0])):
            assert_same(g(x), f(x))
            assert_same(g.grad(x), ft.grad(f)(x))


# -- 3. threads ------------------------------------------------------------------------

@pytest.mark.parametrize("case", SCALAR_CASES, ids=repr)
def test_grad_many_equals_a_serial_loop(case, rng):
    argnum = case.argnum if type(case.argnum) is int else case.argnum[0]
    base = case.draw(rng)
    g = ft.trace(case.fun, *base, argnum=argnum)
    points = np.array([flat_numbers(case.draw(rng)[argnum]) for _ in range(N_POINTS)])

    def args_at(row):
        args = list(base)
        args[argnum] = [float(v) for v in row] if isinstance(base[argnum], list) \
            else float(row[0])
        return args

    serial = np.array([flat_numbers(g.grad(*args_at(row))) for row in points])
    for n_threads in (1, 2):
        np.testing.assert_array_equal(g.grad_many(points, n_threads=n_threads), serial)


@pytest.mark.parametrize("case", [c for c in CASES if not c.scalar], ids=repr)
def test_grad_many_of_array_code_equals_a_serial_loop(case, rng):
    """Array code: each thread replays a copy of the tape (one thread for Python-rule
    nodes); rows are flat points, or points in the argument's shape."""
    argnum = case.argnum if type(case.argnum) is int else case.argnum[-1]
    base = case.draw(rng)
    g = ft.trace(case.fun, *base, argnum=argnum)
    draws = [case.draw(rng)[argnum] for _ in range(40)]
    points = np.array([flat_numbers(d) for d in draws])

    def args_at(d):
        args = list(base)
        args[argnum] = d
        return args

    serial = np.array([flat_numbers(g.grad(*args_at(d))) for d in draws])
    np.testing.assert_allclose(serial, [flat_numbers(ft.grad(case.fun, argnum)(
        *args_at(d))) for d in draws], rtol=1e-12, atol=1e-12)
    for n_threads in (1, 2):
        np.testing.assert_array_equal(g.grad_many(points, n_threads=n_threads), serial)
    if isinstance(base[argnum], np.ndarray):
        shaped = np.array(draws)
        np.testing.assert_array_equal(g.grad_many(shaped, n_threads=2), serial)


def test_grad_many_of_array_code_with_a_branch_raises_or_retraces():
    def f(x):
        if (x > 0.0).all():
            return fnp.sum(x ** 3)
        return fnp.sum(fnp.sin(x))

    points = np.array([[1.0, 2.0], [0.5, 0.1], [-1.0, 2.0], [3.0, 1.0], [-2.0, -1.0]])
    with pytest.raises(ft.BranchChangedError, match="at point 2"):
        ft.trace(f, np.array([1.0, 1.0])).grad_many(points, n_threads=2)
    g = ft.trace(f, np.array([1.0, 1.0]), retrace=True)
    expected = np.array([ft.grad(f)(p) for p in points])
    for n_threads in (1, 2):
        np.testing.assert_allclose(g.grad_many(points, n_threads=n_threads), expected,
                                   rtol=1e-14)


def test_grad_many_of_array_code_takes_read_only_points():
    g = ft.trace(lambda x: fnp.sum(x ** 3), np.ones(3))
    points = np.arange(6.0).reshape(2, 3)
    points.flags.writeable = False
    np.testing.assert_allclose(g.grad_many(points, n_threads=2), 3.0 * points ** 2)


def test_second_order_sweeps_skip_zero_tangents_at_infinite_partials():
    """sqrt at 0: d2/dx0^2 is -inf, but the cross term with x1 stays finite (a zero
    tangent times an infinite second derivative counts 0, as a zero adjoint does)."""
    def f(x):
        return fnp.sum(fnp.sqrt(x)) + x[0] * x[1]

    x = np.array([0.0, 1.0])
    for h in (ft.hessian(f)(x), ft.trace(f, np.array([1.0, 2.0])).hessian(x)):
        assert h[0, 0] == -np.inf and h[0, 1] == 1.0 and h[1, 0] == 1.0
        assert h[1, 1] == pytest.approx(-0.25)


def test_hessian_after_a_retrace_into_python_rules_and_of_a_constant():
    def f(x):
        if x[0] > 0.0:
            return fnp.linalg.det(fnp.reshape(x, (2, 2)))
        return fnp.sum(x ** 3)

    g = ft.trace(f, -np.ones(4), retrace=True)
    x = np.arange(1.0, 5.0)
    np.testing.assert_allclose(g.hessian(x), ft.hessian(f)(x).reshape(4, 4),
                               rtol=1e-12, atol=1e-12)
    constant = ft.trace(lambda v: 3.0, [1.0, 2.0])
    np.testing.assert_array_equal(constant.hessian([1.0, 2.0]), np.zeros((2, 2)))


def test_grad_many_uses_the_other_arguments_as_traced():
    def f(x, c):
        return x[0] * x[0] * c + x[1] * c * c

    g = ft.trace(f, [1.0, 2.0], 3.0)
    points = np.array([[1.0, 1.0], [2.0, 0.5]])
    expected = [ft.grad(f)(list(p), 3.0) for p in points]
    np.testing.assert_array_equal(g.grad_many(points), expected)
    g([0.0, 0.0], 10.0)                   # a replay at another c ...
    g.vjp(([0.0, 0.0], 30.0), 1.0)
    np.testing.assert_array_equal(g.grad_many(points), expected)    # ... changes nothing


def _run_concurrently(work, n_threads):
    """work(j) on n_threads threads started together; their results, in order."""
    barrier = threading.Barrier(n_threads)
    results, errors = [None] * n_threads, []

    def run(j):
        try:
            barrier.wait()
            results[j] = work(j)
        except BaseException as e:          # reported in the main thread
            errors.append(e)

    threads = [threading.Thread(target=run, args=(j,)) for j in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


@pytest.mark.parametrize("case", CASES, ids=repr)
def test_concurrent_calls_give_the_serial_results(case, rng):
    """Several Python threads replaying one traced function at once (scalar code in
    per-thread buffers, array code serialised by a lock): the same results."""
    g = traced(case, rng)
    n_threads = 4
    points = [case.draw(rng) for _ in range(200 if case.scalar else 100)]
    tangents = [like(p, rng) for p in points]

    def results_at(indices):
        return [(g(*points[i]), g.grad(*points[i]), g.value_and_grad(*points[i]),
                 g.jvp(points[i], tangents[i])) for i in indices]

    serial = results_at(range(len(points)))

    def work(j):
        return results_at(range(j, len(points), n_threads))

    results = _run_concurrently(work, n_threads)
    for j in range(n_threads):
        for k, got in enumerate(results[j]):
            assert_same(got, serial[j + k * n_threads], rtol=0.0,
                        what=f"thread {j}, point {k}")


def test_concurrent_calls_of_array_code_retrace_on_their_own():
    """With retrace=True, threads whose points take other branches record again in
    turn (under the lock); every thread's gradients stay right."""
    def f(x):
        if (x > 0.0).all():
            return fnp.sum(x ** 3)
        return fnp.sum(fnp.sin(x) * x)

    g = ft.trace(f, np.ones(4), retrace=True)
    rng = np.random.default_rng(5)
    points = [rng.standard_normal(4) * (1.0 if k % 3 else 0.0) + (k % 3 == 0)
              for k in range(60)]
    expected = [ft.grad(f)(p) for p in points]
    results = _run_concurrently(lambda j: [g.grad(points[i]) for i in range(j, 60, 3)],
                                3)
    for j in range(3):
        for k, got in enumerate(results[j]):
            np.testing.assert_allclose(got, expected[j + 3 * k], rtol=1e-14)


# -- 4. pickling -----------------------------------------------------------------------

def likelihood_with_branches(theta, data):
    mu, log_s = theta
    s = ft.exp(log_s)
    total = 0.0
    for d in data:
        z = (d - mu) / s
        total = total - 0.5 * z * z - log_s + ft.where(z > 1.0, 1.0 - z, 0.0 * z)
    if mu > 0.0:                                # the guard of likelihood_with_branches
        total = total - mu
    return total


DATA = [0.1, -0.3, 0.7, 1.2, 2.5]

LOADED = """
import json, pickle, sys
import numpy as np
with open({path!r}, "rb") as fh:
    g = pickle.load(fh)
assert not any("test_trace" in m or m == "support" for m in sys.modules), \
    sorted(sys.modules)
assert g.fun is None
points = {points!r}
out = {{"values": [g(p, {data!r}) for p in points],
        "grads": [g.grad(p, {data!r}) for p in points],
        "value_and_grads": [g.value_and_grad(p, {data!r}) for p in points],
        "vjps": [g.vjp((p, {data!r}), 2.0) for p in points],
        "jvps": [g.jvp((p, {data!r}), ([1.0, -0.5], [0.0] * {n})) for p in points],
        "hvps": [g.hvp((p, {data!r}), [0.3, 0.7]) for p in points],
        "grad_many": g.grad_many(np.array(points), n_threads=2).tolist()}}
try:
    g([-0.5, 0.1], {data!r})
    out["branch"] = "no error"
except Exception as e:
    out["branch"] = type(e).__name__ + ": " + str(e)
print(json.dumps(out))
"""


def test_pickle_round_trip_into_an_interpreter_without_the_function(rng, tmp_path):
    g = ft.trace(likelihood_with_branches, [0.5, 0.1], DATA)
    path = tmp_path / "traced.pickle"
    path.write_bytes(pickle.dumps(g))
    points = [[float(rng.uniform(0.01, 2.0)), float(rng.uniform(-1, 1))]
              for _ in range(20)]
    code = LOADED.format(path=str(path), points=points, data=DATA, n=len(DATA))
    proc = run_isolated(code)
    assert proc.returncode == 0, describe_failure(proc, code)
    out = json.loads(proc.stdout)
    f = likelihood_with_branches
    expected = {
        "values": [f(p, DATA) for p in points],
        "grads": [ft.grad(f)(p, DATA) for p in points],
        "value_and_grads": [list(ft.value_and_grad(f)(p, DATA)) for p in points],
        "vjps": [[2.0 * d for d in ft.grad(f)(p, DATA)] for p in points],
        "jvps": [list(ft.jvp(f, (p, DATA), ([1.0, -0.5], [0.0] * len(DATA))))
                 for p in points],
        "hvps": [ft.hvp(f)(p, DATA, [0.3, 0.7]) for p in points],
        "grad_many": [ft.grad(f)(p, DATA) for p in points],
    }
    for key, value in expected.items():
        assert_same(out[key], value, what=key)
    location = f"test_trace.py:{source_line(f, 'if mu > 0.0:')}"
    assert out["branch"].startswith("BranchChangedError"), out["branch"]
    assert location in out["branch"], out["branch"]


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_pickle_round_trip_in_process(rng, protocol):
    g = ft.trace(likelihood_with_branches, [0.5, 0.1], DATA)
    loaded = pickle.loads(pickle.dumps(g, protocol=protocol))
    assert loaded.n_nodes == g.n_nodes
    assert pickle.loads(pickle.dumps(loaded)).n_nodes == g.n_nodes
    for _ in range(50):
        p = [float(rng.uniform(0.01, 2.0)), float(rng.uniform(-1, 1))]
        assert_same(loaded.value_and_grad(p, DATA), g.value_and_grad(p, DATA), rtol=0.0)
        assert_same(loaded.hessian(p, DATA), g.hessian(p, DATA), rtol=0.0)


ARRAY_CASES = [c for c in CASES if not c.scalar]


@pytest.mark.parametrize("case", ARRAY_CASES, ids=repr)
def test_traced_array_code_pickles_and_replays_identically(case, rng):
    """Also linalg, einsum, custom primitives and checkpoint: their rules are rebuilt
    on load by recording the node again (the primitive, the checkpointed function and
    fasttape's own functions pickle by reference)."""
    g = traced(case, rng)
    loaded = pickle.loads(pickle.dumps(g))
    assert loaded.n_nodes == g.n_nodes
    for k in range(50):
        args = case.draw(rng)
        tangents = like(args, rng)
        assert_same(loaded.value_and_grad(*args), g.value_and_grad(*args), rtol=0.0,
                    what=f"value_and_grad at point {k}")
        assert_same(loaded.jvp(args, tangents), g.jvp(args, tangents), rtol=0.0,
                    what=f"jvp at point {k}")


def _fourth_power(x):
    return x ** 4


quartic = primitive(_fourth_power)          # bound under another name than its function's
defvjp(quartic, lambda ans, x: lambda g: 4.0 * g * x ** 3)
ufunc_expit = primitive(scipy_special.expit)    # a ufunc: no __qualname__
defvjp(ufunc_expit, lambda ans, x: lambda g: g * ans * (1.0 - ans))


@ft.checkpoint
def _decorated_block(x, c):
    return fnp.sum(fnp.cos(x) * c)


def test_pickled_traces_find_primitives_and_checkpoints_by_their_module_names(rng):
    def f(x):
        return (fnp.sum(quartic(x)) + fnp.sum(ufunc_expit(x)) + _decorated_block(x, 2.0)
                + _CHECKPOINTED(x))

    g = ft.trace(f, rng.standard_normal(3))
    loaded = pickle.loads(pickle.dumps(g))
    for _ in range(20):
        x = rng.standard_normal(3)
        assert_same(loaded.value_and_grad(x), ft.value_and_grad(f)(x))


def test_pickling_a_trace_with_a_local_primitive_raises():
    """A primitive pickles by reference: one defined in a function cannot."""
    @primitive
    def local_square(x):
        return x * x

    defvjp(local_square, lambda ans, x: lambda g: 2.0 * g * x)
    g = ft.trace(lambda x: fnp.sum(local_square(x)), np.ones(3))
    with pytest.raises((pickle.PicklingError, AttributeError, TypeError)):
        pickle.dumps(g)


def array_model(x, w):
    """Recorded where, max and clip, linalg and einsum, and a mask read as booleans
    (a guard)."""
    h = fnp.where(x > 0.0, x * w, 0.1 * x * w)
    out = fnp.max(h) + fnp.sum(fnp.clip(h, -1.0, 1.0) ** 2) + fnp.sum(x @ fnp.tanh(w))
    m = fnp.outer(w, w) + 2.0 * fnp.eye(len(w))
    out = out + fnp.linalg.slogdet(m)[1] + fnp.einsum("i,ij,j->", x, fnp.linalg.inv(m), x)
    if (w < -1.5).any():                    # the guard of array_model
        out = out * 2.0
    return out


LOADED_ARRAYS = """
import json, pickle, sys
import numpy as np
with open({path!r}, "rb") as fh:
    g = pickle.load(fh)
assert not any("test_trace" in m or m == "support" for m in sys.modules), \
    sorted(sys.modules)
points = [(np.array(x), np.array(w)) for x, w in {points!r}]
out = {{"values": [g(x, w) for x, w in points],
        "grads": [[a.tolist() for a in g.grad(x, w)] for x, w in points]}}
try:
    g(np.array({points!r}[0][0]), np.full({n}, -2.0))
    out["branch"] = "no error"
except Exception as e:
    out["branch"] = type(e).__name__ + ": " + str(e)
print(json.dumps(out))
"""


def test_pickled_array_trace_replays_in_an_interpreter_without_the_function(
        rng, tmp_path):
    n = 4
    g = ft.trace(array_model, rng.standard_normal(n), rng.uniform(-1, 1, n),
                 argnum=(0, 1))
    path = tmp_path / "traced_arrays.pickle"
    path.write_bytes(pickle.dumps(g))
    points = [(rng.standard_normal(n).tolist(), rng.uniform(-1, 1, n).tolist())
              for _ in range(20)]
    code = LOADED_ARRAYS.format(path=str(path), points=points, n=n)
    proc = run_isolated(code)
    assert proc.returncode == 0, describe_failure(proc, code)
    out = json.loads(proc.stdout)
    fresh = ft.grad(array_model, argnum=(0, 1))
    for k, (x, w) in enumerate(points):
        x, w = np.array(x), np.array(w)
        assert_same(out["values"][k], array_model(x, w), what=f"value at point {k}")
        assert_same(tuple(np.array(a) for a in out["grads"][k]), fresh(x, w),
                    what=f"grad at point {k}")
    location = f"test_trace.py:{source_line(array_model, 'if (w < -1.5).any():')}"
    assert out["branch"].startswith("BranchChangedError"), out["branch"]
    assert location in out["branch"], out["branch"]


def _corrupt(state, what):
    nodes = state["array_nodes"].copy()
    keep = list(state["keepalive"])
    col = {name: ANODE_COLUMNS.index(name) for name in ANODE_COLUMNS}
    first = {name: int(np.flatnonzero(cond)[0]) for name, cond in (
        ("weights", nodes[:, col["weights_ref"]] >= 0),
        ("geometry", nodes[:, col["geom"]] >= 0),
        ("gather", nodes[:, col["aop"]] == dict(ARRAY_OP_TABLE)["GATHER"]),
        ("scalar output", nodes[:, col["out_slot"]] >= 0))}
    if what == "short weights":
        keep[nodes[first["weights"], col["weights_ref"]]] = np.zeros(1)
    elif what == "geometry ndim":
        geometry = state["geometry"].copy()
        geometry[nodes[first["geometry"], col["geom"]]] = 10 ** 6
        state["geometry"] = geometry
    elif what == "gather position":
        gather = nodes[first["gather"], col["index_ref"]]
        keep[gather] = np.full_like(keep[gather], 10 ** 9)
    elif what == "output slot":
        nodes[first["scalar output"], col["out_slot"]] = 10 ** 8
    elif what == "array values":
        state["n_array_values"] = 0
    elif what == "guard node":
        state["array_guards"] = [(10 ** 7, o, w) for _, o, w in state["array_guards"]]
    elif what == "operand":
        operands = state["operands"].copy()
        operands[-1, OPERAND_COLUMNS.index("ref")] = 10 ** 6
        state["operands"] = operands
    state["array_nodes"] = nodes
    state["keepalive"] = keep
    return state


def _reseal(state, *extra):
    """A changed state with its digest made again: a crafted file, which only the
    field checks can refuse."""
    state["digest"] = digest(state, *extra)
    return state


@pytest.mark.parametrize("what", ["short weights", "geometry ndim", "gather position",
                                  "output slot", "array values", "guard node",
                                  "operand"])
def test_a_corrupt_array_tape_state_raises_value_error(what):
    def f(x):
        m = x > 2.0
        return fnp.sum(fnp.max(x, axis=1)) + fnp.sum(x[m]) + fnp.sum(
            x[:, np.array([2, 0])])

    g = ft.trace(f, np.arange(1.0, 7.0).reshape(2, 3))
    restore, (state, max_size) = g.tape.__reduce__()
    restore(dict(state), max_size)                   # (intact: loads)
    with pytest.raises(ValueError, match="corrupt"):
        restore(_reseal(_corrupt(dict(state), what), max_size), max_size)


@pytest.mark.parametrize("field, bad, example", [
    ("out_slots", [10 ** 7], np.ones(3)), ("out_anodes", [10 ** 7], np.ones(3)),
    ("leaf_anodes", [[10 ** 7]], np.ones(3)),
    ("leaf_slots", [[0, 1, 10 ** 7]], [1.0, 2.0, 3.0]),
    ("out_slots", [10 ** 7], [1.0, 2.0, 3.0])])
def test_a_corrupt_traced_function_state_raises_value_error(field, bad, example):
    g = ft.trace(lambda x: fnp.sum(fnp.array(x) ** 2) if isinstance(x, list) else
                 fnp.sum(x ** 2), example)
    state = g.__getstate__()
    state[field] = bad
    loaded = ft.Traced.__new__(ft.Traced)
    with pytest.raises(ValueError, match="corrupt"):
        loaded.__setstate__(_reseal(state))


def test_a_corrupt_scalar_operand_raises_value_error():
    g = ft.trace(lambda x: x[0] * x[1] + x[2], [1.0, 2.0, 3.0])
    restore, (state, max_size) = g.tape.__reduce__()
    state = dict(state)
    arg0s = state["arg0s"].copy()
    arg0s[-1] = -1                      # the last node's first operand
    state["arg0s"] = arg0s
    with pytest.raises(ValueError, match="corrupt"):
        restore(_reseal(state, max_size), max_size)


def test_the_tape_state_is_the_schema():
    """The writer writes the fields the schema names (the scalar ones for a scalar
    tape), and its tables have the schema's columns."""
    scalar = ft.trace(lambda x: x[0] * x[1] + x[2], [1.0, 2.0, 3.0])
    arrays = ft.trace(lambda x: fnp.sum(fnp.sin(x) * x[::-1]), np.arange(1.0, 4.0))
    _, (state, _) = scalar.tape.__reduce__()
    assert set(state) < set(STATE_FIELDS) and "array_nodes" not in state
    _, (state, _) = arrays.tape.__reduce__()
    assert set(state) == set(STATE_FIELDS)
    assert state["array_nodes"].shape[1] == len(ANODE_COLUMNS)
    assert state["operands"].shape[1] == len(OPERAND_COLUMNS)


def test_a_loaded_traced_function_cannot_retrace():
    g = ft.trace(abs_if, 0.7, retrace=True)
    assert g(-0.3) == 0.3
    loaded = pickle.loads(pickle.dumps(g))
    assert loaded(-0.5) == 0.5                       # the branch it was saved on
    with pytest.raises(ft.FasttapeError,
                       match=r"(?i)cannot retrace|loaded|without (its )?(python )?code"):
        loaded(0.5)


# -- 5. errors -------------------------------------------------------------------------

def _two_scalars(a, b):
    return a * b + ft.sin(a)


def _array_and_scalar(x, s):
    return fnp.sum(x * s)


STRUCTURE_ERRORS = [
    # (id, traced function, call, exception, pattern the message must match)
    ("list too short", lambda: ft.trace(rosenbrock, [0.1, 0.2, 0.3]),
     lambda g: g([1.0, 2.0]), ValueError, r"\b3\b"),
    ("list too short, grad", lambda: ft.trace(rosenbrock, [0.1, 0.2, 0.3]),
     lambda g: g.grad([1.0, 2.0]), ValueError, r"\b3\b"),
    ("list too long, value_and_grad", lambda: ft.trace(rosenbrock, [0.1, 0.2, 0.3]),
     lambda g: g.value_and_grad([1.0, 2.0, 3.0, 4.0]), ValueError, r"\b3\b"),
    ("list too short, hvp", lambda: ft.trace(rosenbrock, [0.1, 0.2, 0.3]),
     lambda g: g.hvp(([1.0, 2.0],), [1.0, 1.0]), ValueError, r"\b3\b"),
    ("tuple for a list", lambda: ft.trace(rosenbrock, [0.1, 0.2, 0.3]),
     lambda g: g.grad((1.0, 2.0, 3.0)), ValueError, r"structure"),
    ("nested list for a flat list", lambda: ft.trace(rosenbrock, [0.1, 0.2, 0.3]),
     lambda g: g.grad([[1.0], 2.0, 3.0]), (ValueError, TypeError), r"traced|expected"),
    ("number for a list", lambda: ft.trace(rosenbrock, [0.1, 0.2, 0.3]),
     lambda g: g(1.0), ValueError, r"structure"),
    ("two arguments for one", lambda: ft.trace(rosenbrock, [0.1, 0.2, 0.3]),
     lambda g: g.grad([1.0, 2.0, 3.0], 1.0), TypeError, r"1 argument.*got 2"),
    ("one argument for two", lambda: ft.trace(_two_scalars, 1.0, 2.0),
     lambda g: g(1.0), TypeError, r"2 arguments.*got 1"),
    ("three arguments for two, grad", lambda: ft.trace(_two_scalars, 1.0, 2.0),
     lambda g: g.grad(1.0, 2.0, 3.0), TypeError, r"2 arguments.*got 3"),
    ("array for a number (scalar code)", lambda: ft.trace(_two_scalars, 1.0, 2.0),
     lambda g: g(np.ones(2), 2.0), (ValueError, TypeError), r"traced"),
    ("array for a number (scalar code), grad", lambda: ft.trace(_two_scalars, 1.0, 2.0),
     lambda g: g.grad(np.ones(2), 2.0), (ValueError, TypeError), r"traced"),
    ("array of another shape", lambda: ft.trace(_array_and_scalar, np.ones((2, 3)), 2.0),
     lambda g: g(np.ones((3, 2)), 2.0), ValueError, r"\(2, 3\).*\(3, 2\)"),
    ("array of another size, grad",
     lambda: ft.trace(_array_and_scalar, np.ones((2, 3)), 2.0),
     lambda g: g.grad(np.ones(4), 2.0), ValueError, r"\(2, 3\).*\(4,\)"),
    ("number for an array", lambda: ft.trace(_array_and_scalar, np.ones((2, 3)), 2.0),
     lambda g: g(1.0, 2.0), ValueError, r"\(2, 3\)"),
    ("array for a number (array code)",
     lambda: ft.trace(_array_and_scalar, np.ones((2, 3)), 2.0),
     lambda g: g.grad(np.ones((2, 3)), np.ones(2)), (ValueError, TypeError), r"traced"),
    ("one argument for two (array code)",
     lambda: ft.trace(_array_and_scalar, np.ones((2, 3)), 2.0),
     lambda g: g.vjp((np.ones((2, 3)),), 1.0), TypeError, r"2 arguments.*got 1"),
    ("dict with another key",
     lambda: ft.trace(lambda p: p["a"] * p["b"], {"a": 1.0, "b": 2.0}),
     lambda g: g({"a": 1.0, "c": 2.0}), ValueError, r"structure"),
]


@pytest.mark.parametrize("make, call, exception, pattern",
                         [c[1:] for c in STRUCTURE_ERRORS],
                         ids=[c[0] for c in STRUCTURE_ERRORS])
def test_arguments_of_another_structure_are_refused_clearly(make, call, exception,
                                                            pattern):
    g = make()
    with pytest.raises(exception) as info:
        call(g)
    assert re.search(pattern, str(info.value)), str(info.value)


@pytest.mark.parametrize("case", [c for c in CASES if not c.scalar], ids=repr)
def test_trace_and_replays_leave_the_example_arrays_alone(case, rng):
    example = case.draw(rng)
    kept = [np.copy(a) for a in example]
    g = ft.trace(case.fun, *example, argnum=case.argnum)
    for _ in range(5):
        args = case.draw(rng)
        g(*args)
        g.value_and_grad(*args)
        g.jvp(args, like(args, rng))
    for a, b in zip(example, kept):
        np.testing.assert_array_equal(a, b)
    # and the example's values are still what the traced function computes there
    assert_same(g(*example), case.fun(*example))


def test_results_of_earlier_calls_are_not_overwritten(rng):
    """Array outputs, gradients and tangents returned by one replay are the caller's:
    a later replay does not change them."""
    g = ft.trace(array_valued, rng.standard_normal(3))
    x1, x2 = rng.standard_normal(3), rng.standard_normal(3)
    results = [g(x1), g.vjp((x1,), np.ones(3)), g.jvp((x1,), (np.ones(3),))]
    kept = [np.copy(flat_numbers(r)) for r in results]
    g(x2), g.vjp((x2,), np.ones(3)), g.jvp((x2,), (np.ones(3),))
    for r, k in zip(results, kept):
        np.testing.assert_array_equal(flat_numbers(r), k)
    case = MLP
    g = traced(case, rng)
    a1, a2 = case.draw(rng), case.draw(rng)
    first = g.grad(*a1)
    kept = [np.copy(d) for d in first]
    g.grad(*a2)
    for d, k in zip(first, kept):
        np.testing.assert_array_equal(d, k)


def test_replay_leaves_its_argument_arrays_alone(rng):
    case = MLP
    g = traced(case, rng)
    args = case.draw(rng)
    kept = [np.copy(a) for a in args]
    for a in args:
        a.setflags(write=False)
    g(*args)
    g.value_and_grad(*args)
    g.vjp(args, 1.0)
    for a, b in zip(args, kept):
        np.testing.assert_array_equal(a, b)


# -- 6. introspection ------------------------------------------------------------------

def test_n_nodes_counts_the_recorded_operations():
    def f(x, y):
        return x * y + ft.sin(x)                # 2 leaves, MUL, SIN, ADD

    g = ft.trace(f, 1.0, 2.0)
    assert g.n_nodes == 5 == g.tape.n_nodes
    g = ft.trace(rosenbrock, [0.1] * 4)
    assert g.n_nodes == g.tape.n_nodes == len(g.tape.arrays()["ops"])
    assert g.n_nodes > 4 * 3                   # leaves plus several operations per term


@pytest.mark.parametrize("case", CASES, ids=repr)
def test_introspection(case, rng):
    g = traced(case, rng)
    assert g.n_nodes == g.tape.n_nodes
    assert g.n_nodes == len(g.tape.arrays()["ops"])
    assert g.nbytes > 0
    buf = io.StringIO()
    g.dump(buf)
    lines = buf.getvalue().splitlines()
    assert len(lines) == g.n_nodes
    assert [int(line.split()[0]) for line in lines] == list(range(g.n_nodes))
    dot = g.to_dot()
    assert dot.startswith("digraph") and dot.rstrip().endswith("}")
    declared = set(re.findall(r"^\s*n(\d+) \[label=", dot, re.M))
    assert declared == {str(i) for i in range(g.n_nodes)}
    bold = set(re.findall(r"^\s*n(\d+) \[style=bold\]", dot, re.M))
    assert len(bold) == 1, "the output node is marked"
    for a, b in re.findall(r"^\s*n(\d+) -> n(\d+);", dot, re.M):
        assert int(a) < int(b) < g.n_nodes


def test_to_dot_edges_are_the_operands():
    g = ft.trace(lambda x, y: ft.where(x > y, x * y, ft.sin(y) - x) + 1.0, 0.3, 0.2)
    dot = g.to_dot()
    edges = {(int(a), int(b)) for a, b in re.findall(r"n(\d+) -> n(\d+);", dot)}
    #   v0 v1 leaves, v2 = v0*v1, v3 = sin v1, v4 = v3 - v0, v5 = v0 - v1,
    #   v6 = select(v5 ? v2 : v4), v7 = v6 + 1
    assert edges == {(0, 2), (1, 2), (1, 3), (3, 4), (0, 4), (0, 5), (1, 5), (5, 6),
                     (2, 6), (4, 6), (6, 7)}
    assert re.search(r"n7 \[style=bold\]", dot)
    assert len(re.findall(r"shape=ellipse", dot)) == 2          # the two inputs


def test_array_valued_output_is_marked_in_to_dot():
    g = ft.trace(array_valued, np.ones(3))
    dot = g.to_dot()
    declared = set(re.findall(r"^\s*n(\d+) \[label=", dot, re.M))
    assert declared == {str(i) for i in range(g.n_nodes)}
    assert re.search(r"style=bold", dot), dot


def test_nbytes_grows_with_the_tape():
    small = ft.trace(rosenbrock, [0.1] * 4)
    large = ft.trace(rosenbrock, [0.1] * 4000)
    assert 0 < small.nbytes < large.nbytes
    assert large.nbytes >= large.n_nodes * 17       # op code, two operands, value


@pytest.mark.parametrize("argnum", [(0, 0), (1, 0, 1), (0, 1, 0)])
@pytest.mark.parametrize("example", [(1.5, 3.0), (np.array([1.0, -2.0]), np.array([3.0, 0.5]))],
                         ids=["scalars", "arrays"])
def test_an_argument_named_twice_in_argnum_means_what_it_means_for_grad(argnum, example):
    # one meaning (autograd's): the last mention is differentiated, earlier ones get zeros
    def f(x, y):
        return fnp.sum(x * y + x ** 2)

    traced = ft.trace(f, *example, argnum=argnum).grad(*example)
    eager = ft.grad(f, argnum=argnum)(*example)
    assert len(traced) == len(eager) == len(argnum)
    for got, expected in zip(traced, eager):
        np.testing.assert_array_equal(got, expected)
    last = {i: k for k, i in enumerate(argnum)}
    for k, i in enumerate(argnum):
        assert (np.all(traced[k] == 0)) == (last[i] != k)


@pytest.mark.parametrize("points, error", [
    (np.ones((4, 3, 2)), ValueError),          # the right size in the wrong shape
    (np.ones((4, 5)), ValueError),
    (np.ones((4, 2, 3)) + 1j, TypeError),      # imaginary parts would be dropped
])
def test_grad_many_refuses_points_of_another_shape_or_complex_points(points, error):
    traced = ft.trace(lambda x: fnp.sum(x ** 2), np.ones((2, 3)))
    with pytest.raises(error):
        traced.grad_many(points)
    np.testing.assert_array_equal(traced.grad_many(np.full((4, 2, 3), 2.0)),
                                  np.full((4, 6), 4.0))


def test_grad_many_refuses_complex_points_of_a_scalar_trace():
    traced = ft.trace(lambda x: x[0] * x[1], [1.0, 2.0])
    with pytest.raises(TypeError, match="complex"):
        traced.grad_many(np.ones((3, 2)) + 1j)


def test_value_and_vjp_arrays_matches_value_and_vjp_and_falls_back(rng):
    # the lean door for ODE right-hand sides: arrays and numbers, one array output
    W, y = rng.standard_normal((4, 4)), rng.standard_normal(4)

    def f(y, s, W):
        z = fnp.tanh(W @ y) * s
        return z if s > 0 else -z
    traced = ft.trace(f, y, 0.5, W, argnum=(0, 2), retrace=True)
    u = rng.standard_normal(4)
    for s in (0.7, -0.3):         # the second takes the other branch: a retrace
        value, grads = traced.value_and_vjp_arrays((y, s, W), u)
        expected_value, expected = traced.value_and_vjp((y, s, W), u)
        np.testing.assert_allclose(value, f(y, s, W))
        np.testing.assert_allclose(value, expected_value)
        assert len(grads) == 2
        for got, want in zip(grads, expected):
            np.testing.assert_allclose(got, want)
        direct = ft.grad(lambda y, W: fnp.sum(u * f(y, s, W)), (0, 1))(y, W)
        for got, want in zip(grads, direct):
            np.testing.assert_allclose(got, want, rtol=1e-12)
    with pytest.raises(ValueError, match="shape"):
        traced.value_and_vjp_arrays((np.ones(3), 0.7, W), u)


def test_lean_refs_name_the_leaves_and_the_output(rng):
    # what a C loop over the lean door reads (fasttape._ode_adjoint): one leaf per
    # argument, the output's node; None where the lean door does not apply
    W, y = rng.standard_normal((3, 3)), rng.standard_normal(3)
    traced = ft.trace(lambda y, s, W: fnp.tanh(W @ y) * s, y, 0.5, W, argnum=(0, 2))
    tape, leaves, (out_node, out_anode) = traced.lean_refs()
    assert tape is traced.tape
    assert [is_array for is_array, _ in leaves] == [True, False, True]
    assert tape.value_at(leaves[1][1]) == 0.5
    assert out_anode not in (-1, leaves[0][1], leaves[2][1]) and out_node >= 0
    assert ft.trace(lambda x: x[0] * x[1], [1.0, 2.0]).lean_refs() is None
    assert ft.trace(lambda y: fnp.sum(y), y).lean_refs() is None      # not one array
    assert ft.trace(lambda ys: ys[0] * ys[1], (y, y)).lean_refs() is None  # a container


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div"])
def test_replay_of_an_operand_broadcast_from_one_value(op):
    """The replay's loops for an operand of one value, on either side (c - x, x / c,
    a 0-d array against a vector), give NumPy's values and the fresh gradient."""
    fnp = ft.numpy
    ufunc = {"add": fnp.add, "sub": fnp.subtract, "mul": fnp.multiply,
             "div": fnp.divide}[op]

    def f(x):
        c = fnp.sum(x[:1] * 0.5 + 1.5)           # one value, from the input
        return fnp.sum(ufunc(c, x) * ufunc(x, c) + ufunc(x, 2.0) - ufunc(3.0, x))
    x0 = np.linspace(0.5, 2.0, 7)
    g = ft.trace(f, x0)
    x1 = np.linspace(-1.5, 3.0, 7) + 0.1
    np.testing.assert_allclose(g(x1), f(x1), rtol=1e-14)
    np.testing.assert_allclose(g.grad(x1), ft.grad(f)(x1), rtol=1e-13)
