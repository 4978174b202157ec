"""Random expression trees over 1-3 inputs, built by hypothesis from every elementary
function and operator form, differentiated by fasttape and checked against central
differences of the same expression evaluated with NumPy, and against autograd.

Each building block is composed so that it is finite and smooth for any real input
(log(2 + sin u), arcsin(0.9 tanh u), u / (2 + cos v), ...). The two kinks (abs,
maximum/minimum) are allowed, but examples whose finite-difference stencil straddles
one are rejected."""
import math
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import fasttape as ft

from opspecs import np_erf, np_sigmoid
from support import assert_gradient_matches_differences


class Branches(list):
    """Side taken at each kink during one evaluation, and the distance to it."""

    def record(self, side, margin):
        self.append((side, margin))


# -- the building blocks: (m, branches, u[, v]) -> value, m a namespace of functions ---

UNARY = {
    "sin": lambda m, b, u: m.sin(u),
    "cos": lambda m, b, u: m.cos(u),
    "tan(tanh)": lambda m, b, u: m.tan(m.tanh(u)),
    "arcsin": lambda m, b, u: m.arcsin(0.9 * m.tanh(u)),
    "arccos": lambda m, b, u: m.arccos(0.9 * m.tanh(u)),
    "arctan": lambda m, b, u: m.arctan(u),
    "sinh(tanh)": lambda m, b, u: m.sinh(m.tanh(u)),
    "cosh(tanh)": lambda m, b, u: m.cosh(m.tanh(u)),
    "tanh": lambda m, b, u: m.tanh(u),
    "arcsinh": lambda m, b, u: m.arcsinh(u),
    "arccosh": lambda m, b, u: m.arccosh(1.1 + m.square(u)),
    "arctanh": lambda m, b, u: m.arctanh(0.9 * m.tanh(u)),
    "exp(tanh)": lambda m, b, u: m.exp(m.tanh(u)),
    "exp2(tanh)": lambda m, b, u: m.exp2(m.tanh(u)),
    "expm1(tanh)": lambda m, b, u: m.expm1(m.tanh(u)),
    "log": lambda m, b, u: m.log(2.0 + m.sin(u)),
    "log2": lambda m, b, u: m.log2(2.0 + m.cos(u)),
    "log10": lambda m, b, u: m.log10(1.0 + m.square(u)),
    "log1p": lambda m, b, u: m.log1p(m.square(u)),
    "sqrt": lambda m, b, u: m.sqrt(1.0 + m.square(u)),
    "cbrt": lambda m, b, u: m.cbrt(2.0 + m.sin(u)),
    "square": lambda m, b, u: m.square(u),
    "u**2": lambda m, b, u: u ** 2,
    "u**3": lambda m, b, u: u ** 3,
    "reciprocal": lambda m, b, u: m.reciprocal(2.0 + m.cos(u)),
    "sign": lambda m, b, u: m.sign(2.0 + m.sin(u)) * u,
    "abs": lambda m, b, u: (b.record(float(m.value(u)) > 0, abs(m.value(u))),
                            m.abs(u))[1],
    "erf": lambda m, b, u: m.erf(u),
    "sigmoid": lambda m, b, u: m.sigmoid(u),
    "neg": lambda m, b, u: -u,
    "sigmoid**c": lambda m, b, u: m.sigmoid(u) ** 2.5,
    "c**tanh": lambda m, b, u: 1.7 ** m.tanh(u),
}

BINARY = {
    "add": lambda m, b, u, v: u + v,
    "sub": lambda m, b, u, v: u - v,
    "mul": lambda m, b, u, v: u * v,
    "div": lambda m, b, u, v: u / (2.0 + m.cos(v)),
    "pow": lambda m, b, u, v: (1.5 + m.sin(u)) ** m.tanh(v),
    "power": lambda m, b, u, v: m.power(1.5 + m.cos(u), m.sin(v)),
    "hypot": lambda m, b, u, v: m.hypot(u, 1.0 + m.square(v)),
    "arctan2": lambda m, b, u, v: m.arctan2(u, 2.0 + m.cos(v)),
    "logaddexp": lambda m, b, u, v: m.logaddexp(u, v),
    "maximum": lambda m, b, u, v: (b.record(m.value(u) > m.value(v),
                                            abs(m.value(u) - m.value(v))),
                                   m.maximum(u, v))[1],
    "minimum": lambda m, b, u, v: (b.record(m.value(u) < m.value(v),
                                            abs(m.value(u) - m.value(v))),
                                   m.minimum(u, v))[1],
}

NAMES = ("sin cos tan arcsin arccos arctan sinh cosh tanh arcsinh arccosh arctanh exp "
         "exp2 expm1 log log2 log10 log1p sqrt cbrt square reciprocal sign abs power "
         "arctan2 hypot maximum minimum logaddexp").split()


def fasttape_namespace():
    m = SimpleNamespace(**{n: getattr(ft, n) for n in NAMES})
    m.erf, m.sigmoid = ft.erf, ft.sigmoid
    m.value = lambda u: u.value if isinstance(u, ft.Variable) else u
    return m


def numpy_namespace():
    m = SimpleNamespace(**{n: getattr(np, n) for n in NAMES})
    m.erf = lambda u: float(np_erf(u))
    m.sigmoid = lambda u: float(np_sigmoid(u))
    m.value = float
    return m


def autograd_namespace():
    anp = pytest.importorskip("autograd.numpy")
    special = pytest.importorskip("autograd.scipy.special")
    names = [n for n in NAMES if n != "cbrt"]
    m = SimpleNamespace(**{n: getattr(anp, n) for n in names})
    # autograd has no VJP for cbrt; its argument here is positive (2 + sin u)
    m.cbrt = lambda u: u ** (1.0 / 3.0)
    m.erf, m.sigmoid = special.erf, special.expit
    m.value = lambda u: getattr(u, "_value", u)
    return m


def evaluate(tree, inputs, m, branches):
    kind = tree[0]
    if kind == "x":
        return inputs[tree[1]]
    if kind == "c":
        return tree[1]
    if kind == "u":
        return UNARY[tree[1]](m, branches, evaluate(tree[2], inputs, m, branches))
    return BINARY[tree[1]](m, branches, evaluate(tree[2], inputs, m, branches),
                           evaluate(tree[3], inputs, m, branches))


def show(tree):
    kind = tree[0]
    if kind == "x":
        return f"x{tree[1]}"
    if kind == "c":
        return repr(tree[1])
    if kind == "u":
        return f"{tree[1]}({show(tree[2])})"
    return f"{tree[1]}({show(tree[2])}, {show(tree[3])})"


# -- strategies ------------------------------------------------------------------------

finite = st.floats(-2.0, 2.0, allow_nan=False, allow_infinity=False)


@st.composite
def problems(draw):
    """(expression tree, input values) over 1 to 3 inputs."""
    n_inputs = draw(st.integers(1, 3))
    leaves = st.one_of(st.integers(0, n_inputs - 1).map(lambda i: ("x", i)),
                       st.integers(0, n_inputs - 1).map(lambda i: ("x", i)),
                       finite.map(lambda c: ("c", c)))

    def extend(children):
        return st.one_of(
            st.tuples(st.just("u"), st.sampled_from(sorted(UNARY)), children),
            st.tuples(st.just("b"), st.sampled_from(sorted(BINARY)), children,
                      children))

    tree = draw(st.recursive(leaves, extend, max_leaves=10))
    inputs = draw(st.lists(finite, min_size=n_inputs, max_size=n_inputs))
    return tree, inputs


def fasttape_value_and_grad(tree, inputs):
    m = fasttape_namespace()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")        # an expression free of inputs warns
        return ft.value_and_grad(
            lambda *xs: evaluate(tree, xs, m, Branches()),
            argnum=tuple(range(len(inputs))))(*inputs)


def numpy_function(tree, signatures):
    m = numpy_namespace()

    def f(z):
        branches = Branches()
        with np.errstate(all="ignore"):
            value = float(evaluate(tree, [float(v) for v in z], m, branches))
        signatures.add(tuple(side for side, _ in branches))
        return value
    return f


def kinks_are_far(tree, inputs, m):
    branches = Branches()
    evaluate(tree, inputs, m, branches)
    return all(margin > 1e-6 for _, margin in branches)


SETTINGS = settings(max_examples=100, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.filter_too_much])


@SETTINGS
@given(problems())
def test_random_expression_gradient_matches_central_differences(problem):
    check_against_central_differences(problem)


@pytest.mark.slow
@settings(SETTINGS, max_examples=3000)
@given(problems())
def test_many_random_expressions_against_central_differences(problem):
    check_against_central_differences(problem)


def check_against_central_differences(problem):
    tree, inputs = problem
    np_m = numpy_namespace()
    assume(kinks_are_far(tree, inputs, np_m))
    value, gradient = fasttape_value_and_grad(tree, inputs)
    signatures = set()
    f = numpy_function(tree, signatures)
    expected_value = f(np.array(inputs))
    assert math.isfinite(expected_value), show(tree)
    assert value == pytest.approx(expected_value, rel=1e-11, abs=1e-12), show(tree)
    assert all(type(g) is float and math.isfinite(g) for g in gradient), show(tree)

    rng = np.random.default_rng(len(show(tree)))
    try:
        assert_gradient_matches_differences(f, inputs, gradient, rng, n_directions=2,
                                            rtol=1e-5, atol=1e-7)
    except AssertionError as e:
        # a stencil that straddles a kink of abs/maximum/minimum proves nothing
        assume(len(signatures) == 1)
        raise AssertionError(f"{show(tree)}: {e}") from None


@SETTINGS
@given(problems())
def test_random_expression_gradient_matches_autograd(problem):
    check_against_autograd(problem)


@pytest.mark.slow
@settings(SETTINGS, max_examples=3000)
@given(problems())
def test_many_random_expressions_against_autograd(problem):
    check_against_autograd(problem)


def check_against_autograd(problem):
    autograd = pytest.importorskip("autograd")
    tree, inputs = problem
    assume(kinks_are_far(tree, inputs, numpy_namespace()))
    value, gradient = fasttape_value_and_grad(tree, inputs)
    m = autograd_namespace()

    def f(*xs):
        return evaluate(tree, xs, m, Branches())

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        theirs = [float(autograd.grad(f, i)(*inputs)) for i in range(len(inputs))]
        their_value = float(f(*inputs))
    assert value == pytest.approx(their_value, rel=1e-11, abs=1e-12), show(tree)
    assert list(gradient) == pytest.approx(theirs, rel=1e-9, abs=1e-12), show(tree)


@settings(max_examples=50, deadline=None)
@given(problems())
def test_random_expression_recorded_once_and_swept_twice(problem):
    """backward() twice on one recording gives the same gradients as grad()."""
    tree, inputs = problem
    assume(kinks_are_far(tree, inputs, numpy_namespace()))
    m = fasttape_namespace()
    tape = ft.Tape()
    xs = [ft.Variable(v, tape=tape) for v in inputs]
    out = evaluate(tree, xs, m, Branches())
    assume(isinstance(out, ft.Variable))
    _, expected = fasttape_value_and_grad(tree, inputs)
    for _ in range(2):
        out.backward()
        # .grad is None for Variables recorded after the output (they cannot
        # influence it): only an input returned unchanged is such an output
        got = tuple(0.0 if x.grad is None and x.slot > out.slot else x.grad
                    for x in xs)
        assert got == expected, show(tree)
    assert tape.n_nodes == len(tape.arrays()["ops"])
