"""fasttape.scipy.stats against scipy.stats: values, derivatives against central
differences in every continuous argument (x, loc, scale, shape parameters, mean,
cov) to second order in both modes, SciPy's argument conventions (broadcasting,
multivariate_normal's shapes and allow_singular), and the errors for the arguments
that are not differentiated."""
import pickle

import numpy as np
import pytest
import scipy.stats as st

import fasttape as ft
import fasttape.numpy as fnp
from fasttape import check_grads
from fasttape.errors import MissingRuleError
from fasttape.scipy import stats

RNG = np.random.default_rng(3)
X4 = np.array([-1.3, 0.2, 0.9, 2.4])
POS4 = np.array([0.4, 1.1, 2.6, 5.0])
UNIT4 = np.array([0.02, 0.3, 0.7, 0.98])


# (distribution, function, arguments, indices of the differentiable arguments)
CASES = [
    ("norm", f, (X4, np.array([0.1, -0.5, 0.3, 1.0]), POS4), (0, 1, 2))
    for f in ("pdf", "cdf", "logpdf", "logcdf", "sf", "logsf")
] + [
    ("norm", f, (X4.reshape(4, 1) * np.ones(3), np.array([[0.1, -0.5, 0.3]]),
                 POS4.reshape(4, 1)), (0, 1, 2))
    for f in ("pdf", "logcdf", "logsf")
] + [
    ("norm", "logcdf", (np.array([-40.0, -12.0, 8.0]),), (0,)),     # the far tails
    ("norm", "logsf", (np.array([-8.0, 12.0, 40.0]),), (0,)),
    ("t", "pdf", (X4, POS4 + 2.1, np.array([0.1, -0.5, 0.3, 1.0]), POS4), (0, 1, 2, 3)),
    ("t", "logpdf", (X4, POS4 + 2.1, np.array([0.1, -0.5, 0.3, 1.0]), POS4),
     (0, 1, 2, 3)),
    ("t", "cdf", (X4, POS4 + 2.1, np.array([0.1, -0.5, 0.3, 1.0]), POS4), (0, 2, 3)),
    ("t", "logcdf", (X4, POS4 + 2.1, np.array([0.1, -0.5, 0.3, 1.0]), POS4), (0, 2, 3)),
    ("gamma", "pdf", (POS4, POS4 + 0.5), (0, 1)),
    ("gamma", "logpdf", (POS4, POS4 + 0.5, 0.1, 1.7), (0, 1, 2, 3)),
    ("gamma", "cdf", (POS4, POS4 + 0.5, 0.1, 1.7), (0, 2, 3)),
    ("chi2", "pdf", (POS4, np.array([1.0, 2.0, 3.5, 7.0])), (0, 1)),
    ("chi2", "logpdf", (POS4, np.array([1.0, 2.0, 3.5, 7.0]), -0.2, 1.3), (0, 1, 2, 3)),
    ("chi2", "cdf", (POS4, np.array([1.0, 2.0, 3.5, 7.0]), -0.2, 1.3), (0, 2, 3)),
    ("beta", "pdf", (UNIT4, POS4 + 0.2, POS4[::-1] + 0.2), (0, 1, 2)),
    ("beta", "logpdf", (UNIT4 * 2 - 0.5, POS4 + 0.2, POS4[::-1] + 0.2, -0.5, 2.0),
     (0, 1, 2, 3, 4)),
    ("beta", "cdf", (UNIT4, POS4 + 0.2, POS4[::-1] + 0.2), (0,)),
    ("beta", "cdf", (UNIT4 * 2 - 0.5, 2.0, 3.0, -0.5, 2.0), (0, 3, 4)),
    ("poisson", "pmf", (np.array([0.0, 1.0, 3.0, 8.0]), POS4), (1,)),
    ("poisson", "logpmf", (np.array([0.0, 1.0, 3.0, 8.0]), POS4), (1,)),
    ("poisson", "cdf", (np.array([0.0, 1.0, 3.5, 8.0]), POS4), (1,)),
    ("poisson", "logpmf", (np.array([[0.0], [2.0], [5.0]]), POS4), (1,)),
]


def _call(dist, function, args):
    return getattr(getattr(stats, dist), function)(*args)


def _with(args, indices, values):
    args = list(args)
    for i, v in zip(indices, values):
        args[i] = v
    return tuple(args)


@pytest.mark.parametrize("dist, function, args, diff", CASES,
                         ids=[f"{c[0]}.{c[1]}-{i}" for i, c in enumerate(CASES)])
def test_distribution_values_and_derivatives(dist, function, args, diff):
    expected = getattr(getattr(st, dist), function)(*args)
    np.testing.assert_allclose(_call(dist, function, args), expected, rtol=1e-14)
    seen = []

    def f(*variables):
        return _call(dist, function, _with(args, diff, variables))

    def total(*variables):
        out = f(*variables)
        seen.append(out.value)
        return fnp.sum(out)

    ft.grad(total, argnum=tuple(range(len(diff))))(*[args[i] for i in diff])
    np.testing.assert_allclose(seen[0], expected, rtol=1e-12)
    check_grads(f, modes=("fwd", "rev"), order=2, rtol=1e-4)(*[args[i] for i in diff])


def test_scalar_variables():
    f = lambda x, loc, scale: stats.norm.logcdf(x, loc, scale)  # noqa: E731
    check_grads(f, modes=("fwd", "rev"), order=2)(0.3, -0.2, 1.4)
    assert ft.grad(stats.norm.logpdf)(0.7) == pytest.approx(-0.7)
    g = ft.grad(lambda df: stats.t.logpdf(0.3, df, 0.0, 1.0))(3.5)
    h = 1e-6
    assert g == pytest.approx((st.t.logpdf(0.3, 3.5 + h) - st.t.logpdf(0.3, 3.5 - h)) / (2 * h),
                              rel=1e-6)
    check_grads(lambda mu: stats.poisson.logpmf(3, mu), modes=("fwd", "rev"), order=2)(2.5)


def test_outside_the_support():
    assert stats.gamma.logpdf(np.array([-1.0, 1.0]), 2.0)[0] == -np.inf
    seen = []
    ft.grad(lambda a: seen.append(stats.gamma.logpdf(np.array([-1.0, 1.0]), a).value)
            or stats.gamma.logpdf(np.array([-1.0, 1.0]), a)[1])(2.0)
    np.testing.assert_array_equal(seen[0], st.gamma.logpdf([-1.0, 1.0], 2.0))
    seen = []
    ft.grad(lambda mu: seen.append(stats.poisson.pmf(np.array([-1.0, 2.0, 2.5]), mu).value)
            or fnp.sum(stats.poisson.pmf(np.array([-1.0, 2.0, 2.5]), mu)))(1.5)
    np.testing.assert_allclose(seen[0], st.poisson.pmf([-1.0, 2.0, 2.5], 1.5), rtol=1e-14)


@pytest.mark.parametrize("call, argument", [
    (lambda v: stats.t.cdf(0.3, v), "df"),
    (lambda v: stats.gamma.cdf(1.0, v), "a"),
    (lambda v: stats.chi2.cdf(1.0, v), "df"),
    (lambda v: stats.beta.cdf(0.3, v, 2.0), "a"),
    (lambda v: stats.beta.cdf(0.3, 2.0, v), "b"),
    (lambda v: stats.poisson.pmf(v, 2.0), "k"),
])
def test_parameters_without_derivatives_are_refused_by_name(call, argument):
    with pytest.raises(MissingRuleError, match=f"not differentiable in {argument}"):
        ft.grad(call)(2.5)


# -- dirichlet --------------------------------------------------------------------------

def test_dirichlet():
    alpha = np.array([1.5, 0.7, 3.0, 2.2])
    x = np.array([0.1, 0.2, 0.3, 0.4])
    xs = np.array([[0.1, 0.25], [0.2, 0.05], [0.3, 0.5], [0.4, 0.2]])
    for points in (x, xs, x[:3]):
        for function in ("pdf", "logpdf"):
            expected = getattr(st.dirichlet, function)(points, alpha)
            seen = []
            ft.grad(lambda a: seen.append(getattr(stats.dirichlet, function)(points, a).value)
                    or fnp.sum(getattr(stats.dirichlet, function)(points, a)))(alpha)
            np.testing.assert_allclose(seen[0], expected, rtol=1e-13)
            check_grads(lambda a: getattr(stats.dirichlet, function)(points, a),
                        modes=("fwd", "rev"), order=2, rtol=1e-4)(alpha)

    def on_simplex(free, a):       # x with its last component implied: on the simplex
        return stats.dirichlet.logpdf(free, a)
    check_grads(on_simplex, modes=("fwd", "rev"), order=2, rtol=1e-4)(x[:3], alpha)
    with pytest.raises(ValueError, match="sum to 1"):
        ft.grad(lambda a: stats.dirichlet.logpdf(np.array([0.5, 0.6, 0.1, 0.1]), a))(alpha)


# -- multivariate_normal ----------------------------------------------------------------

def _spd(d, rng=RNG):
    a = rng.standard_normal((d, d))
    return a @ a.T + d * np.eye(d)


def _symmetric(f, argnum):
    # differentiate in cov through its symmetric part (the density reads one triangle)
    def g(*args):
        args = list(args)
        args[argnum] = 0.5 * (args[argnum] + fnp.transpose(args[argnum]))
        return f(*args)
    return g


@pytest.mark.parametrize("x_shape", [(4,), (5, 4), (2, 3, 4)])
@pytest.mark.parametrize("function", ["pdf", "logpdf"])
def test_mvn_values_and_derivatives(x_shape, function):
    d = 4
    x = RNG.standard_normal(x_shape)
    mean = RNG.standard_normal(d)
    cov = _spd(d)
    f = getattr(stats.multivariate_normal, function)
    expected = getattr(st.multivariate_normal, function)(x, mean, cov)
    seen = []
    ft.grad(lambda v: seen.append(f(v, mean, cov).value) or fnp.sum(f(v, mean, cov)))(x)
    np.testing.assert_allclose(seen[0], expected, rtol=1e-12)
    assert np.shape(seen[0]) == np.shape(expected)
    check_grads(_symmetric(f, 2), modes=("fwd", "rev"), order=2, rtol=1e-4)(x, mean, cov)


def test_mvn_scalar_and_diagonal_covariances():
    x = RNG.standard_normal((3, 2))
    mean = np.array([0.3, -0.1])
    for cov in (2.5, np.array([0.5, 3.0])):
        expected = st.multivariate_normal.logpdf(x, mean, cov)
        seen = []
        ft.grad(lambda v: seen.append(stats.multivariate_normal.logpdf(v, mean, cov).value)
                or fnp.sum(stats.multivariate_normal.logpdf(v, mean, cov)))(x)
        np.testing.assert_allclose(seen[0], expected, rtol=1e-13)
        check_grads(lambda v, c: stats.multivariate_normal.logpdf(v, mean, c),
                    modes=("fwd", "rev"), order=2, rtol=1e-4)(x, cov)
    # one dimension: x of shape (n,) holds n points
    x1 = np.array([0.3, -1.0, 2.0])
    np.testing.assert_allclose(stats.multivariate_normal.logpdf(x1, 0.5, 2.0),
                               st.multivariate_normal.logpdf(x1, 0.5, 2.0))
    check_grads(lambda v, m, c: stats.multivariate_normal.logpdf(v, m, c),
                modes=("fwd", "rev"), order=2)(x1, 0.5, 2.0)


def test_mvn_singular_covariance():
    cov = np.diag([1.5, 0.7, 0.0, 0.0])
    rot = np.linalg.qr(RNG.standard_normal((4, 4)))[0]
    cov = rot @ cov @ rot.T
    mean = RNG.standard_normal(4)
    x = mean + (rot[:, :2] @ RNG.standard_normal((2, 3))).T     # inside the support
    for function in ("pdf", "logpdf"):
        expected = getattr(st.multivariate_normal, function)(x, mean, cov,
                                                               allow_singular=True)
        f = getattr(stats.multivariate_normal, function)
        seen = []
        ft.grad(lambda m: seen.append(f(x, m, cov, allow_singular=True).value)
                or fnp.sum(f(x, m, cov, allow_singular=True)))(mean)
        np.testing.assert_allclose(seen[0], expected, rtol=1e-9)

        def along_support(z, m):
            return f(m + fnp.dot(z, rot[:, :2].T), m, cov, allow_singular=True)
        check_grads(along_support, modes=("fwd", "rev"), order=2, rtol=1e-4)(
            RNG.standard_normal((3, 2)), mean)
    with pytest.raises(np.linalg.LinAlgError, match="allow_singular"):
        ft.grad(lambda m: stats.multivariate_normal.logpdf(x[0], m, cov))(mean)


def test_mvn_entropy():
    cov = _spd(3)
    assert stats.multivariate_normal.entropy(None, cov) == pytest.approx(
        st.multivariate_normal.entropy(None, cov), rel=1e-14)
    seen = []
    ft.grad(lambda c: seen.append(stats.multivariate_normal.entropy(None, c).value)
            or stats.multivariate_normal.entropy(None, c))(cov)
    assert seen[0] == pytest.approx(st.multivariate_normal.entropy(None, cov), rel=1e-13)
    # d/dcov of log det cov / 2 is inv(cov) / 2
    np.testing.assert_allclose(
        ft.grad(_symmetric(lambda c: stats.multivariate_normal.entropy(None, c), 0))(cov),
        0.5 * np.linalg.inv(cov), rtol=1e-12)
    check_grads(_symmetric(lambda c: stats.multivariate_normal.entropy(None, c), 0),
                modes=("fwd", "rev"), order=2)(cov)
    # a singular covariance: SciPy's pseudo-determinant over the nonzero eigenvalues
    rot = np.linalg.qr(RNG.standard_normal((3, 3)))[0]
    singular = rot @ np.diag([2.0, 0.5, 0.0]) @ rot.T
    assert stats.multivariate_normal.entropy(None, singular) == pytest.approx(
        st.multivariate_normal.entropy(None, singular), rel=1e-12)
    seen = []
    ft.grad(lambda c: seen.append(stats.multivariate_normal.entropy(None, c).value)
            or stats.multivariate_normal.entropy(None, c))(singular)
    assert seen[0] == pytest.approx(st.multivariate_normal.entropy(None, singular),
                                    rel=1e-12)


def test_mvn_gradient_matches_autograd():
    ag = pytest.importorskip("autograd")
    amvn = pytest.importorskip("autograd.scipy.stats.multivariate_normal")
    x = RNG.standard_normal((6, 3))
    mean = RNG.standard_normal(3)
    cov = _spd(3)
    ours = ft.grad(lambda m, c: fnp.sum(stats.multivariate_normal.logpdf(x, m, c)),
                   argnum=(0, 1))(mean, cov)
    theirs = ag.grad(lambda m, c: ag.numpy.sum(amvn.logpdf(x, m, c)), argnum=(0, 1))(
        mean, cov)
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-11)
    # autograd's cov gradient is the symmetric one; ours reads the lower triangle
    np.testing.assert_allclose(0.5 * (ours[1] + ours[1].T), 0.5 * (theirs[1] + theirs[1].T),
                               rtol=1e-10)


def test_module_layout_matches_autograd():
    import importlib
    for name in ("norm", "t", "multivariate_normal", "dirichlet", "gamma", "beta", "chi2",
                 "poisson"):
        module = importlib.import_module(f"fasttape.scipy.stats.{name}")
        assert getattr(stats, name) is module


def test_traced_densities_replay_at_new_points_and_pickle():
    cov0 = _spd(3)

    def f(x):
        cov = cov0 + 0.1 * x[0] * np.eye(3)
        return (fnp.sum(stats.norm.logcdf(x, 0.2, 1.5)) + fnp.sum(stats.t.cdf(x, 3.0))
                + fnp.sum(stats.multivariate_normal.logpdf(fnp.reshape(x, (1, 3)),
                                                           np.zeros(3), cov))
                + fnp.sum(stats.gamma.logpdf(x, 2.5)) + fnp.sum(stats.poisson.cdf(3, x)))
    x0 = np.array([0.5, 1.5, 3.0])
    traced = ft.trace(f, x0)
    x1 = np.array([0.7, 2.5, 4.0])
    for g in (traced, pickle.loads(pickle.dumps(traced))):
        assert g(x1) == pytest.approx(f(x1), rel=1e-14)
        np.testing.assert_allclose(g.grad(x1), ft.grad(f)(x1), rtol=1e-13)


@pytest.mark.parametrize("call", [
    lambda x: st.norm.logpdf(x), lambda x: st.t.logpdf(x, 3.0),
    lambda x: st.multivariate_normal.logpdf(x, np.zeros(3), np.eye(3)),
])
def test_plain_scipy_stats_on_a_variable_raise_rather_than_return_a_float(call):
    with pytest.raises(TypeError):
        ft.grad(lambda x: fnp.sum(call(x)))(np.array([0.1, 0.2, 0.3]))
