"""fasttape.scipy.special against scipy.special: values (arrays, plain floats, scalar
Variables), derivatives against central differences in every differentiable argument
to second order in both modes, at points that include the edges of each domain
(gamma next to its poles, erfinv next to +-1, betainc next to 0 and 1), broadcasting,
and the errors for arguments that are not differentiated."""
import math
import pickle

import numpy as np
import pytest
import scipy.special as sc

import fasttape as ft
import fasttape.numpy as fnp
from fasttape import check_grads
from fasttape.errors import MissingRuleError
from fasttape.scipy import special

# name -> points, the edges of its domain included
UNARY_POINTS = {
    "gamma": [-2.98, -2.5, -1.02, -0.98, -0.5, 0.02, 0.3, 1.5, 4.7, 12.3],
    "gammaln": [-2.98, -1.5, -1.02, -0.98, 0.02, 0.3, 1.0, 2.0, 7.5, 40.0],
    "rgamma": [-2.98, -2.5, -1.02, -0.5, 0.02, 0.3, 1.5, 4.7, 12.3],
    "gammasgn": [-2.5, -1.5, -0.5, 0.5, 3.0],
    "digamma": [-2.98, -1.5, -0.98, 0.02, 0.3, 1.0, 2.5, 9.9, 10.1, 40.0],
    "psi": [-1.5, 0.3, 2.5],
    "erf": [-3.0, -0.5, 0.0, 0.7, 2.5],
    "erfc": [-3.0, -0.5, 0.0, 0.7, 2.5, 5.0],
    "erfinv": [-0.999, -0.99, -0.5, 0.0, 0.3, 0.99, 0.999],
    "erfcinv": [0.001, 0.01, 0.5, 1.0, 1.5, 1.99, 1.999],
    "expit": [-30.0, -4.0, 0.0, 3.0, 30.0],
    "logit": [0.001, 0.1, 0.5, 0.9, 0.999],
    "i0": [-8.0, -1.0, 0.0, 0.005, 0.5, 3.0, 15.0],
    "i1": [-8.0, -1.0, -0.005, 0.0, 0.005, 0.5, 3.0, 15.0],
    "j0": [-20.0, -1.0, 0.0, 0.005, 0.5, 3.0, 15.0],
    "j1": [-20.0, -1.0, -0.005, 0.0, 0.005, 0.5, 3.0, 15.0],
    "y0": [0.05, 0.5, 3.0, 15.0, 40.0],
    "y1": [0.05, 0.5, 3.0, 15.0, 40.0],
}


def scipy_function(name):
    return getattr(sc, name)


@pytest.mark.parametrize("name", sorted(UNARY_POINTS))
def test_unary_values_match_scipy(name):
    x = np.array(UNARY_POINTS[name])
    expected = scipy_function(name)(x)
    ours = getattr(special, name)
    np.testing.assert_array_equal(ours(x), expected)            # plain arrays
    for xi, ei in zip(x, expected):
        assert ours(float(xi)) == pytest.approx(ei, rel=1e-14, abs=1e-300)
    recorded = []                                               # recorded arrays
    ft.grad(lambda v: recorded.append(ours(v).value) or fnp.sum(ours(v)))(x)
    np.testing.assert_allclose(recorded[0], expected, rtol=1e-14)
    for xi, ei in zip(x, expected):
        seen = []
        ft.grad(lambda v: seen.append(ours(v).value) or ours(v))(float(xi))
        assert seen[0] == pytest.approx(ei, rel=1e-14, abs=1e-300)


@pytest.mark.parametrize("name", sorted(UNARY_POINTS))
def test_unary_derivatives_match_differences(name):
    f = getattr(special, name)
    points = np.array(UNARY_POINTS[name])
    check_grads(f, modes=("fwd", "rev"), order=2, rtol=1e-4)(points)
    for x in points[::3]:
        check_grads(f, modes=("fwd", "rev"), order=2, rtol=1e-4)(float(x))


@pytest.mark.parametrize("name, x, expected", [
    ("gammaln", 2.0, 1.0 - np.euler_gamma),
    ("digamma", 1.0, math.pi ** 2 / 6),
    ("gamma", 1.0, -np.euler_gamma),
    ("rgamma", 1.0, np.euler_gamma),
    ("erfinv", 0.0, math.sqrt(math.pi) / 2),
    ("erfcinv", 1.0, -math.sqrt(math.pi) / 2),
    ("erfinv", 1.0, math.inf),
    ("logit", 0.5, 4.0),
    ("i0", 0.0, 0.0), ("i1", 0.0, 0.5), ("j0", 0.0, 0.0), ("j1", 0.0, 0.5),
    ("gammasgn", 0.5, 0.0),
])
def test_unary_derivatives_at_known_points(name, x, expected):
    assert ft.grad(getattr(special, name))(x) == pytest.approx(expected, rel=1e-13)


def test_second_derivatives_of_the_gamma_family_at_known_points():
    # psi'(1) = pi^2/6, psi''(1) = -2 zeta(3)
    zeta3 = 1.2020569031595942
    assert ft.grad(ft.grad(special.gammaln))(1.0) == pytest.approx(math.pi ** 2 / 6,
                                                                   rel=1e-13)
    assert ft.grad(ft.grad(special.digamma))(1.0) == pytest.approx(-2 * zeta3, rel=1e-13)
    # third order goes through polygamma's recorded rules: psi'''(1) = pi^4/15
    assert ft.grad(ft.grad(ft.grad(special.gammaln)))(1.0) == pytest.approx(
        -2 * zeta3, rel=1e-12)
    assert ft.grad(ft.grad(ft.grad(special.digamma)))(1.0) == pytest.approx(
        math.pi ** 4 / 15, rel=1e-12)


def test_trigamma_and_tetragamma_helpers_match_scipy_across_the_line():
    # the C helpers behind the second derivatives (recurrence, asymptotic series,
    # reflection below 0)
    x = np.concatenate([np.linspace(-7.9, -0.1, 37), np.linspace(0.01, 30.0, 71),
                        [1e3, 1e6]])
    x = x[np.abs(x - np.round(x)) > 1e-3]
    second = np.array([ft.grad(ft.grad(special.gammaln))(float(v)) for v in x])
    np.testing.assert_allclose(second, sc.polygamma(1, x), rtol=1e-12)
    third = np.array([ft.grad(ft.grad(special.digamma))(float(v)) for v in x])
    np.testing.assert_allclose(third, sc.polygamma(2, x), rtol=1e-10)
    # and the same through an array node's forward-over-reverse sweep
    np.testing.assert_allclose(
        ft.hessian(lambda v: fnp.sum(special.gammaln(v)))(x).diagonal(),
        sc.polygamma(1, x), rtol=1e-12)


# -- functions with a constant parameter ----------------------------------------------

ORDER_CASES = [
    ("polygamma", np.array([0, 1, 2, 3]), np.array([0.3, 1.7, 4.0, 11.0])),
    ("polygamma", np.array([[1], [2]]), np.array([-1.5, 0.4, 2.2])),
    ("polygamma", np.array([0, 0, 0]), np.array([2.5])),
    ("iv", np.array([0.0, 0.5, 1.0, 2.5]), np.array([-2.0, 0.7, 3.0, 12.0])),
    ("ive", np.array([0.0, 0.5, 1.0, 2.5]), np.array([-2.0, 0.7, 3.0, 12.0])),
    ("jn", np.array([0, 1, 2, 5]), np.array([-3.0, 0.7, 4.0, 12.0])),
    ("yn", np.array([0, 1, 2, 5]), np.array([0.3, 0.7, 4.0, 12.0])),
    ("gammainc", np.array([0.5, 1.0, 2.5, 10.0]), np.array([0.01, 0.7, 3.0, 12.0])),
    ("gammaincc", np.array([0.5, 1.0, 2.5, 10.0]), np.array([0.01, 0.7, 3.0, 12.0])),
    ("gammainc", np.array([[1.0], [3.5]]), np.array([0.2, 2.0, 6.0])),
]


@pytest.mark.parametrize("name, p, x", ORDER_CASES,
                         ids=[f"{c[0]}-{np.shape(c[1])}" for c in ORDER_CASES])
def test_parameter_functions_match_scipy_and_differences(name, p, x):
    f = getattr(special, name)
    expected = getattr(sc, name)(p, x)
    np.testing.assert_allclose(f(p, x), expected, rtol=1e-14)
    seen = []
    ft.grad(lambda v: seen.append(f(p, v).value) or fnp.sum(f(p, v)))(x)
    np.testing.assert_allclose(seen[0], expected, rtol=1e-14)
    check_grads(lambda v: f(p, v), modes=("fwd", "rev"), order=2, rtol=1e-4)(x)
    # scalar Variables, one point at a time
    for pi, xi in zip(np.broadcast_arrays(p, x)[0].ravel()[:3],
                      np.broadcast_arrays(p, x)[1].ravel()[:3]):
        check_grads(lambda v: f(pi, v), modes=("fwd", "rev"), order=2,
                    rtol=1e-4)(float(xi))
        assert ft.grad(lambda v: f(pi, v))(float(xi)) == pytest.approx(
            (getattr(sc, name)(pi, xi + 1e-6) - getattr(sc, name)(pi, xi - 1e-6)) / 2e-6,
            rel=1e-5, abs=1e-9)


@pytest.mark.parametrize("a, b, x", [
    (2.0, 3.0, np.array([1e-3, 0.2, 0.5, 0.8, 0.999])),
    (0.5, 0.7, np.array([1e-3, 0.3, 0.999])),
    (np.array([[1.0], [4.5]]), 1.0, np.array([0.01, 0.5, 0.99])),
])
def test_betainc_near_0_and_1(a, b, x):
    expected = sc.betainc(a, b, x)
    np.testing.assert_allclose(special.betainc(a, b, x), expected, rtol=1e-14)
    check_grads(lambda v: special.betainc(a, b, v), modes=("fwd", "rev"), order=2,
                rtol=1e-4)(x)
    # the density x^(a-1) (1-x)^(b-1) / B(a, b) at the points
    g = ft.elementwise_grad(lambda v: special.betainc(a, b, v))(x) \
        if np.ndim(a) == 0 else None
    if g is not None:
        np.testing.assert_allclose(g, x ** (a - 1) * (1 - x) ** (b - 1) / sc.beta(a, b),
                                   rtol=1e-12)


def test_gammainc_derivative_at_zero_with_a_of_one():
    # d/dx P(1, x) = e^-x: 1 at x = 0 (x^0 = 1 there, not 0 * log 0)
    assert ft.grad(lambda x: special.gammainc(1.0, x))(0.0) == pytest.approx(1.0)
    assert ft.grad(lambda x: special.gammaincc(1.0, x))(0.0) == pytest.approx(-1.0)


@pytest.mark.parametrize("call, argument", [
    (lambda v: special.gammainc(v, 1.0), "a"),
    (lambda v: special.gammaincc(v, 1.0), "a"),
    (lambda v: special.betainc(v, 2.0, 0.5), "a"),
    (lambda v: special.betainc(2.0, v, 0.5), "b"),
    (lambda v: special.polygamma(v, 1.0), "n"),
    (lambda v: special.jn(v, 1.0), "n"),
    (lambda v: special.yn(v, 1.0), "n"),
    (lambda v: special.iv(v, 1.0), "v"),
    (lambda v: special.ive(v, 1.0), "v"),
])
def test_a_variable_order_or_shape_parameter_is_refused_by_name(call, argument):
    with pytest.raises(MissingRuleError, match=f"not in its argument {argument}"):
        ft.grad(call)(1.5)
    with pytest.raises(MissingRuleError, match=argument):
        ft.grad(lambda v: fnp.sum(call(v)))(np.array([1.5, 2.0]))


def test_yn_refuses_fractional_orders():
    with pytest.raises(ValueError, match="integer orders"):
        ft.grad(lambda x: special.yn(1.5, x))(2.0)


# -- compositions -----------------------------------------------------------------------

def test_beta_and_betaln_in_both_arguments():
    a = np.array([0.3, 1.1, 2.5, 7.0])
    b = np.array([[0.8], [3.0]])
    np.testing.assert_allclose(special.beta(a, b), sc.beta(a, b), rtol=1e-14)
    seen = []
    ft.grad(lambda u, v: seen.append((special.beta(u, v).value, special.betaln(u, v).value))
            or fnp.sum(special.betaln(u, v)), argnum=(0, 1))(a, b)
    np.testing.assert_allclose(seen[0][0], sc.beta(a, b), rtol=1e-13)
    np.testing.assert_allclose(seen[0][1], sc.betaln(a, b), rtol=1e-13)
    for f in (special.beta, special.betaln):
        check_grads(f, modes=("fwd", "rev"), order=2, rtol=1e-4)(a, b)
        check_grads(f, modes=("fwd", "rev"), order=2, rtol=1e-4)(1.7, 0.6)
    # a negative argument: Gamma's sign carried through
    check_grads(special.beta, modes=("fwd", "rev"), order=2, rtol=1e-4)(-0.5, 2.2)
    assert ft.grad(lambda u: special.beta(u, 2.2))(-0.5) == pytest.approx(
        (sc.beta(-0.5 + 1e-6, 2.2) - sc.beta(-0.5 - 1e-6, 2.2)) / 2e-6, rel=1e-6)


@pytest.mark.parametrize("d", [1, 2, 3])
def test_multigammaln(d):
    a = np.array([[4.2, 5.5, 9.0], [3.1, 4.0, 20.0]])
    np.testing.assert_allclose(special.multigammaln(a, d), sc.multigammaln(a, d),
                               rtol=1e-14)
    seen = []
    ft.grad(lambda v: seen.append(special.multigammaln(v, d).value)
            or fnp.sum(special.multigammaln(v, d)))(a)
    np.testing.assert_allclose(seen[0], sc.multigammaln(a, d), rtol=1e-14)
    check_grads(lambda v: special.multigammaln(v, d), modes=("fwd", "rev"), order=2,
                rtol=1e-4)(a)
    check_grads(lambda v: special.multigammaln(v, d), modes=("fwd", "rev"), order=2,
                rtol=1e-4)(4.5)
    with pytest.raises(ValueError, match="a must be"):
        ft.grad(lambda v: special.multigammaln(v, 3))(0.9)


@pytest.mark.parametrize("kwargs", [
    {}, {"axis": 0}, {"axis": 1, "keepdims": True}, {"axis": (0, 1)},
    {"b": np.array([[0.5, 2.0, 1.0]])}, {"axis": 1, "b": np.array([1.0, 3.0, 0.2])},
])
def test_logsumexp(kwargs):
    a = np.array([[0.3, -2.0, 5.0], [800.0, 799.0, -1e3]])     # no overflow
    np.testing.assert_allclose(special.logsumexp(a, **kwargs), sc.logsumexp(a, **kwargs),
                               rtol=1e-14)
    seen = []
    ft.grad(lambda v: seen.append(special.logsumexp(v, **kwargs).value)
            or fnp.sum(special.logsumexp(v, **kwargs)))(a)
    np.testing.assert_allclose(seen[0], sc.logsumexp(a, **kwargs), rtol=1e-14)
    check_grads(lambda v: special.logsumexp(v, **kwargs), modes=("fwd", "rev"),
                order=2)(a * 1e-2)


def test_logsumexp_return_sign():
    a = np.array([0.5, 1.0, 2.0])
    b = np.array([1.0, -3.0, 0.1])
    out, sign = special.logsumexp(a, b=b, return_sign=True)
    seen = []
    def f(v):
        value, its_sign = special.logsumexp(v, b=b, return_sign=True)
        seen.append((value.value, its_sign))
        return value
    ft.grad(f)(a)
    assert seen[0][0] == pytest.approx(out, rel=1e-14) and seen[0][1] == sign == -1
    check_grads(lambda v: special.logsumexp(v, b=b, return_sign=True)[0],
                modes=("fwd", "rev"), order=2)(a)


# -- the rest ---------------------------------------------------------------------------

def test_every_name_of_autograd_scipy_special_is_here():
    names = ("beta betaln betainc gamma gammaln gammasgn rgamma digamma psi polygamma "
             "multigammaln gammainc gammaincc erf erfc erfinv erfcinv expit logit "
             "logsumexp i0 i1 iv ive j0 j1 jn y0 y1 yn").split()
    assert sorted(special.__all__) == sorted(names)
    assert [n for n in names if not callable(getattr(special, n))] == []


@pytest.mark.parametrize("name, ufunc_name", [
    ("gammaln", "gammaln"), ("digamma", "psi"), ("erfinv", "erfinv"), ("j0", "j0"),
    ("expit", "expit")])
def test_plain_scipy_on_a_variable_names_the_fasttape_function(name, ufunc_name):
    # scipy.special.digamma is the ufunc psi: the message names psi (an alias here)
    f = getattr(sc, name)
    with pytest.raises(TypeError, match=f"use fasttape.scipy.special.{ufunc_name}"):
        ft.grad(f)(0.4)
    with pytest.raises(TypeError, match=f"use fasttape.scipy.special.{ufunc_name}"):
        ft.grad(lambda x: fnp.sum(f(x)))(np.array([0.3, 0.4]))


def test_plain_scipy_python_functions_on_a_variable_raise_too():
    # polygamma is a Python function in SciPy (not a ufunc): not interceptable, but it
    # fails rather than returning a float without a derivative
    with pytest.raises(TypeError):
        ft.grad(lambda x: sc.polygamma(1, x))(0.4)
    with pytest.raises(TypeError):
        ft.grad(lambda x: sc.logsumexp(x))(np.array([0.4, 1.0]))


def test_plain_scipy_ufunc_without_a_fasttape_version_says_so():
    with pytest.raises(TypeError, match="no differentiable version"):
        ft.grad(sc.ndtri)(0.3)


def test_gradients_match_autograd():
    ag = pytest.importorskip("autograd")
    asp = pytest.importorskip("autograd.scipy.special")
    x = np.array([0.4, 1.3, 2.2, 5.5])
    for name in ("gammaln", "digamma", "gamma", "rgamma", "erfc", "i0", "i1", "j0", "j1",
                 "y0", "y1"):
        ours = ft.grad(lambda v: fnp.sum(getattr(special, name)(v)))(x)
        theirs = ag.grad(lambda v: ag.numpy.sum(getattr(asp, name)(v)))(x)
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, err_msg=name)
    ours = ft.grad(lambda v: fnp.sum(special.gammainc(2.0, v)))(x)
    theirs = ag.grad(lambda v: ag.numpy.sum(asp.gammainc(2.0, v)))(x)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)


def test_traced_special_functions_replay_at_new_points_and_pickle():
    def f(x):
        return fnp.sum(special.gammaln(x) * special.polygamma(1, x)
                       + special.gammainc(2.0, x) + special.betainc(2.0, 3.0, x / 10)
                       + special.iv(1.0, x) + special.ive(0.5, x) + special.jn(2, x)
                       + special.yn(1, x) + special.erfinv(x / 5))
    x0 = np.array([0.5, 1.5, 3.0])
    traced = ft.trace(f, x0)
    x1 = np.array([0.7, 2.5, 4.0])
    for g in (traced, pickle.loads(pickle.dumps(traced))):
        np.testing.assert_allclose(g(x1), f(x1), rtol=1e-14)
        np.testing.assert_allclose(g.grad(x1), ft.grad(f)(x1), rtol=1e-13)


@pytest.mark.parametrize("name, sign", [("erf", 1.0), ("erfc", -1.0)])
def test_erf_and_erfc_of_complex_values_are_holomorphic(name, sign):
    f = getattr(special, name)
    for z in (0.4 + 0.3j, -1.2 + 0.05j, 2.0 - 1.5j):
        derivative = sign * 2 / math.sqrt(math.pi) * np.exp(-z * z)
        assert ft.holomorphic_grad(f)(z) == pytest.approx(derivative, rel=1e-13)
        assert ft.holomorphic_grad(ft.holomorphic_grad(f))(z) == pytest.approx(
            -2 * z * derivative, rel=1e-12)
    # values of arrays from SciPy's complex functions; a real-valued function of
    # complex arguments against central differences in the real and imaginary parts
    zs = np.array([0.4 + 0.3j, -1.2 + 0.05j, 2.0 - 1.5j])
    seen = []
    ft.grad(lambda x, y: seen.append(f(x + 1j * y).value) or
            fnp.sum(fnp.abs(f(x + 1j * y)) ** 2), argnum=(0, 1))(zs.real, zs.imag)
    np.testing.assert_allclose(seen[0], getattr(sc, name)(zs), rtol=1e-14)
    check_grads(lambda x, y: fnp.real(f(x + 1j * y)) * fnp.imag(f(x + 1j * y)),
                modes=("fwd", "rev"), order=2, rtol=1e-4)(zs.real, zs.imag)
