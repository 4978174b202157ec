"""fasttape.numpy.linalg: norm, inv, solve, det, slogdet, cholesky, from a table of
specs checked four ways (value against NumPy, gradient against central differences
along random directions, against autograd, and fasttape.numpy against np.linalg on
ArrayVariables), then closed forms, conventions and errors."""
import warnings

import numpy as np
import pytest

import fasttape.numpy as fnp
from fasttape import grad, value_and_grad

from support import (ArraySpec, array_spec, assert_argument_gradients_match_differences,
                    autograd_spelling, check_gradient_against_autograd,
                    check_gradient_against_differences, check_second_order,
                    check_spellings_agree, check_value, directional_derivative)


def nonzero(lo, hi):
    """|x| in [lo, hi), either sign."""
    def draw(rng, shape):
        return rng.choice([-1.0, 1.0], shape) * rng.uniform(lo, hi, shape)
    return draw


def well_conditioned(rng, shape):
    """Random square matrices (batches of them) with eigenvalues away from 0."""
    n = shape[-1]
    return rng.standard_normal(shape) + 3.0 * np.eye(n) * rng.choice([-1.0, 1.0])


def positive_definite(rng, shape):
    """Random symmetric positive definite matrices (batches of them)."""
    m = rng.standard_normal(shape)
    return m @ np.swapaxes(m, -1, -2) + shape[-1] * np.eye(shape[-1])


def matrices(*shapes, domain=well_conditioned):
    return lambda rng: tuple(domain(rng, s) if len(s) >= 2 and s[-1] == s[-2]
                             else rng.standard_normal(s) for s in shapes)


def norm_specs():
    specs = []
    for ord in [None, 2, 1, np.inf, -np.inf, 3, 1.5, 0.5]:
        specs.append(array_spec(f"norm(ord={ord})", lambda np, x, ord=ord:
                                np.linalg.norm(x, ord), (5,), domain=nonzero(0.2, 2),
                                autograd=ord in (None, 2, 3, 1.5)))
    specs += [
        array_spec("norm (Frobenius)", lambda np, x: np.linalg.norm(x), (3, 4)),
        array_spec("norm(ord='fro')", lambda np, x: np.linalg.norm(x, "fro"), (3, 4)),
        array_spec("norm(axis=(0, 1))", lambda np, x: np.linalg.norm(x, axis=(0, 1)),
                   (3, 4)),
        array_spec("norm(axis=(1, 2)) (a batch of matrices)", lambda np, x:
                   np.linalg.norm(x, axis=(1, 2)), (2, 3, 4)),
        array_spec("norm(axis=1, keepdims=True)", lambda np, x:
                   np.linalg.norm(x, axis=1, keepdims=True), (3, 4), autograd=False),
        array_spec("norm (3-d, flattened)", lambda np, x: np.linalg.norm(x), (2, 3, 2)),
        array_spec("norm of a scaled vector", lambda np, x, s: np.linalg.norm(s * x),
                   (4,), (), domain=[(-2, 2), (0.5, 2)]),
    ]
    for axis in [0, 1, -1]:
        for ord in [None, 1, 2, np.inf, 3]:
            specs.append(array_spec(f"norm(ord={ord}, axis={axis})",
                                    lambda np, x, ord=ord, axis=axis:
                                    np.linalg.norm(x, ord, axis), (3, 4),
                                    domain=nonzero(0.2, 2),
                                    autograd=ord in (None, 2, 3)))
    return specs


MATRIX_SPECS = [
    ArraySpec("inv [(3, 3)]", lambda np, a: np.linalg.inv(a), matrices((3, 3))),
    ArraySpec("inv [(1, 1)]", lambda np, a: np.linalg.inv(a), matrices((1, 1))),
    ArraySpec("inv [(2, 3, 3)]", lambda np, a: np.linalg.inv(a), matrices((2, 3, 3))),
    ArraySpec("inv in a product", lambda np, a, b: np.linalg.inv(a) @ b,
              matrices((3, 3), (3, 2))),
    ArraySpec("solve (vector right-hand side)", lambda np, a, b: np.linalg.solve(a, b),
              matrices((3, 3), (3,))),
    ArraySpec("solve (matrix right-hand side)", lambda np, a, b: np.linalg.solve(a, b),
              matrices((3, 3), (3, 2))),
    ArraySpec("solve (batches)", lambda np, a, b: np.linalg.solve(a, b),
              matrices((2, 3, 3), (2, 3, 2))),
    ArraySpec("solve (batch of matrices, one vector)", lambda np, a, b:
              np.linalg.solve(a, b), matrices((2, 3, 3), (3,)), autograd=False),
    ArraySpec("solve with a constant matrix", lambda np, b: np.linalg.solve(
        np.array([[3.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.5, 0.0, 2.0]]), b),
        matrices((3, 2))),
    ArraySpec("solve with a constant right-hand side", lambda np, a:
              np.linalg.solve(a, np.arange(3.0)), matrices((3, 3))),
    ArraySpec("det [(3, 3)]", lambda np, a: np.linalg.det(a), matrices((3, 3))),
    ArraySpec("det [(1, 1)]", lambda np, a: np.linalg.det(a), matrices((1, 1))),
    ArraySpec("det [(2, 2)]", lambda np, a: np.linalg.det(a), matrices((2, 2))),
    ArraySpec("det [(2, 3, 3)]", lambda np, a: np.linalg.det(a), matrices((2, 3, 3))),
    ArraySpec("det of a product", lambda np, a, b: np.linalg.det(a @ b.T),
              lambda rng: (rng.standard_normal((3, 4)), rng.standard_normal((3, 4)))),
    ArraySpec("slogdet [(3, 3)]", lambda np, a: np.linalg.slogdet(a)[1],
              matrices((3, 3))),
    ArraySpec("slogdet [(2, 3, 3)]", lambda np, a: np.linalg.slogdet(a)[1],
              matrices((2, 3, 3))),
    ArraySpec("slogdet sign times logdet", lambda np, a:
              np.linalg.slogdet(a)[0] * np.linalg.slogdet(a)[1], matrices((3, 3))),
    # cholesky reads the lower triangle of a symmetric matrix: differentiated through
    # the symmetric part, so that any perturbation of `a` is a symmetric one of S
    ArraySpec("cholesky of the symmetric part [(3, 3)]",
              lambda np, a: np.linalg.cholesky((a + a.T) / 2.0),
              matrices((3, 3), domain=positive_definite)),
    ArraySpec("cholesky of the symmetric part [(2, 4, 4)]",
              lambda np, a: np.linalg.cholesky((a + np.swapaxes(a, -1, -2)) / 2.0),
              matrices((2, 4, 4), domain=positive_definite)),
    ArraySpec("cholesky of a Gram matrix", lambda np, m:
              np.linalg.cholesky(m @ m.T + 3.0 * np.eye(3)),
              lambda rng: (rng.standard_normal((3, 5)),)),
]

SPECS = norm_specs() + MATRIX_SPECS
assert len({s.name for s in SPECS}) == len(SPECS)
if int(np.__version__.split(".")[0]) < 2:
    # NumPy 1's own solve refuses a 1-d right-hand side for a batch of matrices, so
    # there is no reference to compare with: the tests of solve's rule below cover it
    SPECS = [s for s in SPECS if s.name != "solve (batch of matrices, one vector)"]


@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_value_matches_numpy(spec, rng):
    check_value(spec, rng)


@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_gradient_matches_central_differences(spec, rng):
    check_gradient_against_differences(spec, rng)


@pytest.mark.parametrize("spec", [s for s in SPECS if s.autograd], ids=str)
def test_gradient_matches_autograd(spec, rng):
    check_gradient_against_autograd(spec, rng)


@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_numpy_spelling_gives_identical_gradients(spec, rng):
    check_spellings_agree(spec, rng)


@pytest.mark.parametrize("spec", [s for s in SPECS if s.second_order], ids=str)
def test_second_order_matches_central_differences_of_the_gradient(spec, rng):
    check_second_order(spec, rng)


# -- closed forms ----------------------------------------------------------------------

def test_vector_norm_gradients_closed_forms(rng):
    x = rng.choice([-1.0, 1.0], 6) * rng.uniform(0.2, 2, 6)
    n2 = np.sqrt(np.sum(x * x))
    np.testing.assert_allclose(grad(fnp.linalg.norm)(x), x / n2, rtol=1e-14)
    np.testing.assert_allclose(grad(lambda x: fnp.linalg.norm(x, 1))(x), np.sign(x))
    top = np.argmax(np.abs(x))
    expected = np.zeros(6)
    expected[top] = np.sign(x[top])
    np.testing.assert_array_equal(grad(lambda x: fnp.linalg.norm(x, np.inf))(x),
                                  expected)
    p = 3.0
    np_ = np.sum(np.abs(x) ** p) ** (1 / p)
    np.testing.assert_allclose(grad(lambda x: fnp.linalg.norm(x, p))(x),
                               np.sign(x) * np.abs(x) ** (p - 1) / np_ ** (p - 1),
                               rtol=1e-13)


def test_inf_norm_splits_ties_evenly():
    x = np.array([0.5, -2.0, 1.0, 2.0])
    np.testing.assert_array_equal(grad(lambda x: fnp.linalg.norm(x, np.inf))(x),
                                  [0.0, -0.5, 0.0, 0.5])


def test_norm_gradient_at_zero_is_nan_as_in_autograd():
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g = grad(fnp.linalg.norm)(np.zeros(3))
        autograd, anp = autograd_spelling()
        expected = autograd.grad(anp.linalg.norm)(np.zeros(3))
    assert np.all(np.isnan(g)) and np.all(np.isnan(expected))


def test_inv_solve_det_closed_forms(rng):
    a = well_conditioned(rng, (4, 4))
    b = rng.standard_normal(4)
    u = rng.standard_normal((4, 4))
    ainv = np.linalg.inv(a)
    np.testing.assert_allclose(grad(lambda a: fnp.sum(fnp.linalg.inv(a) * u))(a),
                               -ainv.T @ u @ ainv.T, rtol=1e-10)
    x = np.linalg.solve(a, b)
    w = rng.standard_normal(4)
    ga, gb = grad(lambda a, b: fnp.sum(fnp.linalg.solve(a, b) * w), argnum=(0, 1))(a, b)
    np.testing.assert_allclose(gb, np.linalg.solve(a.T, w), rtol=1e-10)
    np.testing.assert_allclose(ga, -np.outer(np.linalg.solve(a.T, w), x), rtol=1e-10)
    np.testing.assert_allclose(grad(fnp.linalg.det)(a), np.linalg.det(a) * ainv.T,
                               rtol=1e-10)
    np.testing.assert_allclose(grad(lambda a: fnp.linalg.slogdet(a)[1])(a), ainv.T,
                               rtol=1e-10)


def test_slogdet_sign_is_numpy_s_and_carries_no_gradient(rng):
    a = well_conditioned(rng, (3, 3))
    a[0] *= -1.0                                        # flip the sign of det
    sign_seen = []

    def f(a):
        sign, logdet = fnp.linalg.slogdet(a)
        sign_seen.append(float(np.asarray(getattr(sign, "value", sign))))
        return logdet

    value, g = value_and_grad(f)(a)
    expected_sign, expected_logdet = np.linalg.slogdet(a)
    assert sign_seen == [expected_sign] and value == pytest.approx(expected_logdet,
                                                                    rel=1e-13)
    np.testing.assert_allclose(g, np.linalg.inv(a).T, rtol=1e-10)


def test_cholesky_gradient_along_symmetric_perturbations(rng):
    """cholesky's gradient G at S: <G, V> = d/dt sum(U * cholesky(S + t V)) for every
    symmetric V (only symmetric perturbations keep S a valid input)."""
    s = positive_definite(rng, (4, 4))
    u = np.tril(rng.standard_normal((4, 4)))
    g = grad(lambda s: fnp.sum(fnp.linalg.cholesky(s) * u))(s)
    assert g.shape == (4, 4)
    for _ in range(4):
        m = rng.standard_normal((4, 4))
        v = (m + m.T) / 2.0
        numeric = directional_derivative(
            lambda t: np.sum(np.linalg.cholesky(t) * u), s, v)
        assert float(np.sum(g * v)) == pytest.approx(numeric, rel=1e-6, abs=1e-9)


def test_cholesky_gradient_matches_autograd_on_a_symmetric_matrix(rng):
    autograd, anp = autograd_spelling()
    s = positive_definite(rng, (2, 3, 3))
    u = np.tril(rng.standard_normal((2, 3, 3)))
    ours = grad(lambda s: fnp.sum(fnp.linalg.cholesky(s) * u))(s)
    theirs = autograd.grad(lambda s: anp.sum(anp.linalg.cholesky(s) * u))(s)
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-13)


def solve_matrix_by_matrix(a, b):
    """NumPy 2's rule for solve written out with 2-d solves only: a 1-d b is one vector
    for every matrix of the batch a, any other b a stack of matrices broadcast against
    it (the same on NumPy 1 and 2)."""
    if b.ndim == 1:
        return np.stack([np.linalg.solve(m, b) for m in a.reshape(-1, *a.shape[-2:])]
                        ).reshape(a.shape[:-1])
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    a = np.broadcast_to(a, batch + a.shape[-2:])
    b = np.broadcast_to(b, batch + b.shape[-2:])
    return np.stack([np.linalg.solve(m, r) for m, r in zip(
        a.reshape(-1, *a.shape[-2:]), b.reshape(-1, *b.shape[-2:]))]
        ).reshape(batch + b.shape[-2:])


@pytest.mark.parametrize("a_shape, b_shape", [
    ((2, 3, 3), (3,)), ((3, 3, 3), (3, 3)), ((2, 3, 3), (3, 2)), ((2, 4, 3, 3), (4, 3, 2))])
def test_solve_follows_numpy_2s_rule_for_the_right_hand_side(a_shape, b_shape, rng):
    """A 1-d b is one vector for every matrix of the batch (NumPy 1 refused it); a b with
    one axis fewer than a is a matrix broadcast over the batch (NumPy 1 read it as a
    stack of vectors). The value and both gradients have NumPy 2's meaning and shapes
    on any NumPy."""
    a = well_conditioned(rng, a_shape)
    b = rng.standard_normal(b_shape)
    expected = solve_matrix_by_matrix(a, b)
    np.testing.assert_allclose(fnp.linalg.solve(a, b), expected, rtol=1e-12)
    w = rng.standard_normal(expected.shape)
    value, (ga, gb) = value_and_grad(lambda a, b: fnp.sum(fnp.linalg.solve(a, b) * w),
                                     argnum=(0, 1))(a, b)
    np.testing.assert_allclose(value, np.sum(expected * w), rtol=1e-12)
    assert ga.shape == a.shape and gb.shape == b.shape
    assert_argument_gradients_match_differences(
        lambda a, b: np.sum(solve_matrix_by_matrix(a, b) * w), (a, b), (ga, gb), rng)


# -- errors ----------------------------------------------------------------------------

LINALG_ERRORS = [
    ("inv of a non-square matrix", lambda np, a: np.linalg.inv(a[:, :2]), (3, 3)),
    ("inv of a singular matrix", lambda np, a: np.linalg.inv(a * 0.0), (3, 3)),
    ("solve with mismatched shapes", lambda np, a: np.linalg.solve(a, np.ones(4)),
     (3, 3)),
    ("solve of a non-square matrix", lambda np, a: np.linalg.solve(a[:2], np.ones(2)),
     (3, 3)),
    ("det of a non-square matrix", lambda np, a: np.linalg.det(a[:, :2]), (3, 3)),
    ("cholesky of an indefinite matrix", lambda np, a: np.linalg.cholesky(-a @ a.T),
     (3, 3)),
    ("cholesky of a vector", lambda np, a: np.linalg.cholesky(a[0]), (3, 3)),
]


@pytest.mark.parametrize("name, f, shape", LINALG_ERRORS,
                         ids=[e[0] for e in LINALG_ERRORS])
@pytest.mark.parametrize("spelling", [fnp, np], ids=["fasttape.numpy", "numpy"])
def test_linalg_errors_are_numpy_s_own(name, f, shape, spelling, rng):
    a = rng.standard_normal(shape) + 3 * np.eye(shape[-1])
    try:
        f(np, a)
    except Exception as e:          # noqa: BLE001 - compared with fasttape's below
        expected = e
    else:
        raise AssertionError("NumPy raised nothing")
    with pytest.raises(type(expected)) as info:
        grad(lambda a: fnp.sum(f(spelling, a)))(a)
    assert str(info.value) == str(expected)


@pytest.mark.parametrize("f", [lambda x: fnp.linalg.norm(x, 2),
                               lambda x: fnp.linalg.norm(x, "nuc"),
                               lambda x: fnp.linalg.norm(x, 1),
                               lambda x: np.linalg.norm(x, -2),
                               lambda x: fnp.linalg.norm(x, 2, axis=(0, 1))],
                         ids=["spectral", "nuclear", "matrix 1",
                              "smallest singular value", "spectral over axes"])
def test_matrix_norms_without_a_rule_are_refused(f, rng):
    with pytest.raises((NotImplementedError, TypeError)):
        grad(f)(rng.standard_normal((3, 3)))
