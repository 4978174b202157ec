"""fasttape.numpy.linalg: norms, inv, pinv, solve, det, slogdet, cholesky, svd, eigh,
eig, qr and the functions built from them, from a table of specs checked five ways
(value against NumPy; reverse-mode gradient against central differences along random
directions, against autograd, and fasttape.numpy against np.linalg on ArrayVariables;
forward and reverse mode to second order with fasttape.check_grads), then against JAX,
closed forms, conventions at degenerate points and errors."""
import warnings

import numpy as np
import pytest

import fasttape
import fasttape.numpy as fnp
from fasttape import grad, jvp, value_and_grad

from support import (ArraySpec, array_spec, assert_argument_gradients_match_differences,
                     autograd_spelling, directional_derivative, fasttape_spelling,
                     fasttape_vjp, jax_spelling, spec_tests)


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
    for ord in [None, 2, 1, np.inf, -np.inf, 3, 1.5, 0.5, -1, -2.5, 0]:
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
        array_spec("norm(axis=None, keepdims=True)", lambda np, x:
                   np.linalg.norm(x, keepdims=True), (3, 4), autograd=False),
        array_spec("norm(ord=-1.5, axis=1, keepdims=True)", lambda np, x:
                   np.linalg.norm(x, -1.5, 1, keepdims=True), (2, 3, 4),
                   domain=nonzero(0.2, 2), autograd=False),
        array_spec("vector_norm (all axes)", lambda np, x: np.linalg.vector_norm(x),
                   (2, 3, 2), autograd=False),
        array_spec("vector_norm(ord=3, axis=(0, 2), keepdims=True)", lambda np, x:
                   np.linalg.vector_norm(x, ord=3, axis=(0, 2), keepdims=True),
                   (2, 3, 2), domain=nonzero(0.2, 2), autograd=False),
        array_spec("vector_norm(ord=inf, axis=1)", lambda np, x:
                   np.linalg.vector_norm(x, ord=np.inf, axis=1), (3, 4),
                   autograd=False),
    ]
    # matrix norms: the singular-value ones (distinct singular values at random
    # points) and the max/min of column or row sums (no ties at random points)
    for ord in ["fro", "nuc", 2, -2, 1, -1, np.inf, -np.inf]:
        for shape, axis in [((3, 4), None), ((4, 3), (1, 0)), ((2, 3, 4), (2, 0)),
                            ((2, 3, 4), (-2, -1))]:
            if axis is None and len(shape) > 2:
                continue
            specs.append(array_spec(
                f"norm(ord={ord}, axis={axis})", lambda np, x, ord=ord, axis=axis:
                np.linalg.norm(x, ord, axis), shape,
                autograd=ord in ("fro", "nuc") and axis is None))
        specs.append(array_spec(
            f"matrix_norm(ord={ord}, keepdims=True)", lambda np, x, ord=ord:
            np.linalg.matrix_norm(x, ord=ord, keepdims=True), (2, 3, 3),
            autograd=False))
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

def real_spectrum(rng, shape):
    """Random square matrices V diag(w) V^-1 with real, distinct eigenvalues w (spaced
    at least 1 apart) and a well-conditioned V."""
    n = shape[-1]
    w = np.cumsum(rng.uniform(1.0, 2.0, shape[:-1]), axis=-1) - n
    v = np.eye(n) + 0.3 * rng.standard_normal(shape)
    return v @ (w[..., :, None] * np.linalg.inv(v))


def flat(np, *parts):
    """The parts of a factorization side by side in one vector (one output to weigh)."""
    return np.concatenate([np.reshape(p, (-1,)) for p in parts])


def signs_fixed(np, v):
    """The columns of v with their first entry made positive: LAPACK's eigenvectors
    and singular vectors are defined up to sign, and their sign may jump within a
    central-difference step; these are the same vectors with a continuous sign (sign
    is locally constant, so their derivatives are V's)."""
    return v * np.sign(v[..., :1, :])


def thin_svd(np, a):
    u, s, vh = np.linalg.svd(a, full_matrices=False)
    return flat(np, signs_fixed(np, u), s, signs_fixed(np, np.swapaxes(vh, -1, -2)))


def eigh_both(np, a, UPLO="L"):
    w, v = np.linalg.eigh(a, UPLO)
    return flat(np, w, signs_fixed(np, v))


def eig_both(np, a):
    w, v = np.linalg.eig(a)
    return flat(np, w, signs_fixed(np, v))


def qr_both(np, a, mode="reduced"):
    return flat(np, *np.linalg.qr(a, mode))


def gram(np, m):
    return np.swapaxes(m, -1, -2) @ m


FACTORIZATION_SPECS = [
    # svd: the thin factors, the full ones of a square matrix, the values alone
    array_spec("svd thin (tall)", thin_svd, (5, 3)),
    array_spec("svd thin (wide)", thin_svd, (3, 5)),
    array_spec("svd thin (square)", thin_svd, (4, 4)),
    array_spec("svd thin (batches)", thin_svd, (2, 4, 3)),
    array_spec("svd full (square)", lambda np, a: flat(
        np, signs_fixed(np, np.linalg.svd(a)[0]), np.linalg.svd(a)[1]), (3, 3),
        autograd=False),
    array_spec("svd full (tall), the defined parts", lambda np, a: flat(
        np, signs_fixed(np, np.linalg.svd(a)[0][:, :3]), np.linalg.svd(a)[1],
        signs_fixed(np, np.linalg.svd(a)[2].T)), (5, 3), autograd=False),
    array_spec("svd(compute_uv=False)", lambda np, a:
               np.linalg.svd(a, compute_uv=False), (2, 3, 5)),
    array_spec("svdvals", lambda np, a: np.linalg.svdvals(a), (4, 3), autograd=False),
    array_spec("svd(hermitian=True)", lambda np, a:
               np.linalg.svd(a, hermitian=True)[1], (4, 4), autograd=False),
    # eigh reads one triangle: any matrix is a valid input, and the derivative along
    # the other triangle is zero
    array_spec("eigh", eigh_both, (4, 4)),
    array_spec("eigh (batches)", eigh_both, (2, 3, 3)),
    array_spec("eigh(UPLO='U')", lambda np, a: eigh_both(np, a, "U"), (4, 4)),
    array_spec("eigvalsh", lambda np, a: np.linalg.eigvalsh(a), (2, 4, 4),
               autograd=False),
    array_spec("eigvalsh(UPLO='U')", lambda np, a: np.linalg.eigvalsh(a, "U"), (4, 4),
               autograd=False),
    ArraySpec("eig (real spectrum)", eig_both, matrices((4, 4), domain=real_spectrum)),
    ArraySpec("eig (real spectra, batches)", eig_both,
              matrices((2, 3, 3), domain=real_spectrum)),
    ArraySpec("eigvals (real spectrum)", lambda np, a: np.linalg.eigvals(a),
              matrices((2, 4, 4), domain=real_spectrum), autograd=False),
    array_spec("qr (tall)", qr_both, (5, 3), autograd=False),
    array_spec("qr (square, batches)", qr_both, (2, 3, 3), autograd=False),
    array_spec("qr (wide)", qr_both, (3, 5), autograd=False, value_rtol=1e-10),
    array_spec("qr(mode='r')", lambda np, a: np.linalg.qr(a, "r"), (4, 3),
               autograd=False),
    array_spec("qr(mode='complete') (wide)", lambda np, a: qr_both(np, a, "complete"),
               (2, 4), autograd=False, value_rtol=1e-10),
    array_spec("pinv (tall)", lambda np, a: np.linalg.pinv(a), (5, 3)),
    array_spec("pinv (wide, batches)", lambda np, a: np.linalg.pinv(a), (2, 3, 5)),
    array_spec("pinv of a rank-3 5x5 matrix", lambda np, m: np.linalg.pinv(gram(np, m)),
               (3, 5)),
    array_spec("pinv(hermitian=True)", lambda np, m: np.linalg.pinv(
        gram(np, m) + np.eye(4), hermitian=True), (3, 4), autograd=False),
    ArraySpec("matrix_power(a, 5)", lambda np, a: np.linalg.matrix_power(a, 5),
              lambda rng: (0.5 * rng.standard_normal((2, 3, 3)),), autograd=False),
    ArraySpec("matrix_power(a, -3)", lambda np, a: np.linalg.matrix_power(a, -3),
              matrices((3, 3)), autograd=False),
    ArraySpec("matrix_power(a, 0) @ a", lambda np, a: np.linalg.matrix_power(a, 0) @ a,
              matrices((3, 3)), autograd=False),
    array_spec("multi_dot (1-d ends)", lambda np, x, a, b, y:
               np.linalg.multi_dot([x, a, b, y]), (3,), (3, 4), (4, 2), (2,),
               autograd=False),
    array_spec("multi_dot (matrices)", lambda np, a, b, c:
               np.linalg.multi_dot([a, b, c]), (2, 3), (3, 4), (4, 2), autograd=False),
    ArraySpec("cond", lambda np, a: np.linalg.cond(a), matrices((2, 3, 3)),
              autograd=False),
    ArraySpec("cond(p=-2)", lambda np, a: np.linalg.cond(a, -2), matrices((3, 3)),
              autograd=False),
    ArraySpec("cond(p='fro')", lambda np, a: np.linalg.cond(a, "fro"), matrices((3, 3)),
              autograd=False),
    ArraySpec("tensorinv", lambda np, a: np.linalg.tensorinv(a, 1),
              lambda rng: (well_conditioned(rng, (6, 6)).reshape(6, 2, 3),),
              autograd=False),
    ArraySpec("tensorsolve", lambda np, a, b: np.linalg.tensorsolve(a, b),
              lambda rng: (well_conditioned(rng, (6, 6)).reshape(2, 3, 6),
                           rng.standard_normal((2, 3))), autograd=False),
    array_spec("array API: matrix_transpose, diagonal, trace, outer, vecdot, cross",
               lambda np, a, x, y: flat(
                   np, np.linalg.matrix_transpose(a), np.linalg.diagonal(a, offset=1),
                   np.linalg.trace(a[None]), np.linalg.outer(x, y),
                   np.linalg.vecdot(a, y), np.linalg.cross(x, y),
                   np.linalg.matmul(a, a), np.linalg.tensordot(a, a, axes=1)),
               (3, 3), (3,), (3,), autograd=False),
]

SPECS = norm_specs() + MATRIX_SPECS + FACTORIZATION_SPECS
assert len({s.name for s in SPECS}) == len(SPECS)
NUMPY_1 = int(np.__version__.split(".")[0]) < 2
# NumPy 2's array-API functions (vector_norm, matrix_norm, svdvals, vecdot, ...): no
# NumPy 1 reference to compare with
ARRAY_API = ("vector_norm", "matrix_norm", "svdvals", "array API", "cross of 2-vectors")
if NUMPY_1:
    # NumPy 1's own solve refuses a 1-d right-hand side for a batch of matrices, so
    # there is no reference to compare with: the tests of solve's rule below cover it
    SPECS = [s for s in SPECS if s.name != "solve (batch of matrices, one vector)"
             and not s.name.startswith(ARRAY_API)]


# the checks every spec gets (support.spec_tests)
globals().update(spec_tests(SPECS))


@pytest.mark.parametrize("spec", [s for s in SPECS if s.argnums is None], ids=str)
def test_forward_and_reverse_modes_to_second_order(spec, rng):
    """jvp and vjp, and the derivatives of both, against central differences."""
    args, _, _ = spec.draw(rng)
    spelling = fasttape_spelling()
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fasttape.check_grads(lambda *a: spec.fun(spelling, *a), modes=("fwd", "rev"),
                             order=2 if spec.second_order else 1,
                             rtol=1e-4, atol=1e-6)(*args)


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
    ((2, 3, 3), (3,)), ((3, 3, 3), (3, 3)), ((2, 3, 3), (3, 2)), ((2, 4, 3, 3), (4, 3, 2)),
    ((1, 3, 3), (4, 3, 3)), ((4, 3, 3), (1, 3, 2)), ((4, 1, 3, 3), (1, 2, 3, 2))],
    ids=["vector", "matrix", "matrix of a batch", "stack", "a broadcast along b",
         "b broadcast along a", "both broadcast"])
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
    fasttape.check_grads(fnp.linalg.solve, modes=("fwd", "rev"), order=2)(a, b)


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
    ("svd of a vector", lambda np, a: np.linalg.svd(a[0])[1], (3, 3)),
    ("svdvals of a vector", lambda np, a: np.linalg.svd(a[0], compute_uv=False),
     (3, 3)),
    ("eigh of a non-square matrix", lambda np, a: np.linalg.eigh(a[:2])[0], (3, 3)),
    ("eigh with a bad UPLO", lambda np, a: np.linalg.eigh(a, "X")[0], (3, 3)),
    ("eigvalsh of a non-square matrix", lambda np, a: np.linalg.eigvalsh(a[:2]),
     (3, 3)),
    ("eig of a non-square matrix", lambda np, a: np.linalg.eig(a[:2])[0], (3, 3)),
    ("eigvals of a vector", lambda np, a: np.linalg.eigvals(a[0]), (3, 3)),
    ("qr of a vector", lambda np, a: np.linalg.qr(a[0])[1], (3, 3)),
    ("qr with an unknown mode", lambda np, a: np.linalg.qr(a, "thin")[1], (3, 3)),
    ("pinv of a vector", lambda np, a: np.linalg.pinv(a[0]), (3, 3)),
    ("matrix_power of a non-square matrix", lambda np, a:
     np.linalg.matrix_power(a[:2], 2), (3, 3)),
    ("matrix_power with a float exponent", lambda np, a:
     np.linalg.matrix_power(a, 2.0), (3, 3)),
    ("matrix_power(-1) of a singular matrix", lambda np, a:
     np.linalg.matrix_power(a * 0.0, -1), (3, 3)),
    ("multi_dot of one array", lambda np, a: np.linalg.multi_dot([a]), (3, 3)),
    ("multi_dot with a 3-d array", lambda np, a: np.linalg.multi_dot(
        [a, a[None], a]), (3, 3)),
    ("norm with an unknown matrix order", lambda np, a: np.linalg.norm(a, 3), (3, 3)),
    ("norm with a string order of a vector", lambda np, a: np.linalg.norm(a[0], "fro"),
     (3, 3)),
    ("norm over a repeated axis", lambda np, a: np.linalg.norm(a, axis=(0, 0)),
     (3, 3)),
    ("norm over an axis out of range", lambda np, a: np.linalg.norm(a, axis=2),
     (3, 3)),
    ("norm of a 3-d array with an order", lambda np, a: np.linalg.norm(a[None], 2),
     (3, 3)),
    ("cross of 2-vectors", lambda np, a: np.linalg.cross(a[0, :2], a[1, :2]), (3, 3)),
    ("tensorsolve with mismatched shapes", lambda np, a:
     np.linalg.tensorsolve(a, np.ones(2)), (3, 3)),
]


if NUMPY_1:
    LINALG_ERRORS = [case for case in LINALG_ERRORS if not case[0].startswith(ARRAY_API)]


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


@pytest.mark.parametrize("f, error, match", [
    (lambda a: fnp.linalg.eig(a)[0], TypeError, "holomorphic_grad"),
    (lambda a: fnp.linalg.eigvals(a), TypeError, "holomorphic_grad"),
    (lambda a: fnp.linalg.qr(a[:, :2], "complete")[0], NotImplementedError,
     "complete"),
    (lambda a: fnp.linalg.qr(a, "raw")[0], NotImplementedError, "raw"),
], ids=["eig", "eigvals", "qr complete of a tall matrix", "qr raw"])
def test_results_without_a_real_derivative_are_refused(f, error, match):
    """A rotation's eigenvalues are cos t +- i sin t: their sum is a complex value, which
    grad refuses (tests/test_complex_linalg.py differentiates real losses of them)."""
    rotation = np.array([[0.6, -0.8, 0.0], [0.8, 0.6, 0.0], [0.0, 0.0, 1.0]])
    with pytest.raises(error, match=match):
        grad(lambda a: fnp.sum(f(a)))(rotation)


# -- against JAX (forward and reverse mode) --------------------------------------------

def symmetric_part(np, a):
    return (a + np.swapaxes(a, -1, -2)) / 2.0


# (a few: JAX's first call of each function compiles it, seconds each)
JAX_SPECS = [s for s in FACTORIZATION_SPECS if s.name.split(" [")[0] in {
    "svd thin (batches)", "qr (tall)", "pinv (wide, batches)"}] + [
    # JAX's eigh symmetrizes its input where NumPy reads a triangle: the two agree
    # on functions of a symmetric matrix
    array_spec("eigh of a symmetric matrix", lambda np, a: eigh_both(
        np, symmetric_part(np, a)), (2, 4, 4)),
] + [s for s in norm_specs() if s.name.split(" [")[0] in {
    "norm(ord=2, axis=(2, 0))"}]
assert len(JAX_SPECS) == 5


@pytest.mark.parametrize("spec", JAX_SPECS, ids=str)
def test_vjp_and_jvp_match_jax(spec, rng):
    jax, jnp = jax_spelling()
    args, ref, u = spec.draw(rng)
    spelling = fasttape_spelling()
    _, grads = fasttape_vjp(spec.fun, spelling, args, u)
    _, jax_vjp = jax.vjp(lambda *a: spec.fun(jnp, *a), *args)
    for g, e in zip(grads, jax_vjp(u)):
        np.testing.assert_allclose(g, np.asarray(e), rtol=1e-9, atol=1e-11)
    tangents = tuple(rng.standard_normal(np.shape(a)) for a in args)
    _, t_out = jvp(lambda *a: spec.fun(spelling, *a), args, tangents)
    _, expected = jax.jvp(lambda *a: spec.fun(jnp, *a), args, tangents)
    np.testing.assert_allclose(t_out, np.asarray(expected), rtol=1e-9, atol=1e-11)


# -- closed forms and conventions ------------------------------------------------------

def test_spectral_and_nuclear_norm_gradients_closed_forms(rng):
    """d s_max = u_1 v_1^T, d s_min = u_k v_k^T, d sum(s) = U V^T (thin)."""
    a = rng.standard_normal((4, 3))
    u, s, vh = np.linalg.svd(a, full_matrices=False)
    np.testing.assert_allclose(grad(lambda a: fnp.linalg.norm(a, 2))(a),
                               np.outer(u[:, 0], vh[0]), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(grad(lambda a: fnp.linalg.norm(a, -2))(a),
                               np.outer(u[:, -1], vh[-1]), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(grad(lambda a: fnp.linalg.norm(a, "nuc"))(a), u @ vh,
                               rtol=1e-10, atol=1e-14)


def test_matrix_one_and_inf_norm_gradients_closed_forms(rng):
    """The 1-norm is the largest column sum of |a|: its gradient is sign(a) in that
    column and 0 elsewhere; the inf-norm is the same for rows."""
    a = rng.standard_normal((3, 4))
    col = np.argmax(np.abs(a).sum(axis=0))
    expected = np.zeros_like(a)
    expected[:, col] = np.sign(a[:, col])
    np.testing.assert_array_equal(grad(lambda a: fnp.linalg.norm(a, 1))(a), expected)
    row = np.argmin(np.abs(a).sum(axis=1))
    expected = np.zeros_like(a)
    expected[row] = np.sign(a[row])
    np.testing.assert_array_equal(grad(lambda a: fnp.linalg.norm(a, -np.inf))(a),
                                  expected)


def test_negative_and_zero_order_vector_norms(rng):
    x = rng.uniform(0.5, 2.0, 5) * rng.choice([-1.0, 1.0], 5)
    p = -2.0
    n = np.sum(np.abs(x) ** p) ** (1 / p)
    np.testing.assert_allclose(grad(lambda x: fnp.linalg.norm(x, p))(x),
                               np.sign(x) * np.abs(x) ** (p - 1) * n ** (1 - p),
                               rtol=1e-12)
    x[1] = 0.0
    value, g = value_and_grad(lambda x: fnp.linalg.norm(x, 0))(x)
    assert value == 4.0 and np.array_equal(g, np.zeros(5))


def test_eigh_gradient_lives_on_the_triangle_it_reads(rng):
    """eigh reads one triangle: d w_k = v_k v_k^T of the symmetric matrix, folded onto
    that triangle (off-diagonal entries count twice, the other triangle not at all)."""
    a = rng.standard_normal((4, 4))
    for uplo, fold in [("L", np.tril), ("U", np.triu)]:
        w, v = np.linalg.eigh(a, uplo)
        g = grad(lambda a: fnp.linalg.eigh(a, uplo)[0][2])(a)
        outer = np.outer(v[:, 2], v[:, 2])
        np.testing.assert_allclose(g, fold(2 * outer) - np.diag(np.diag(outer)),
                                   rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(grad(lambda a: fnp.linalg.eigvalsh(a, uplo)[2])(a),
                                   g, rtol=1e-10, atol=1e-14)


def test_results_are_numpy_s_named_tuples(rng):
    a = rng.standard_normal((3, 3))

    def f(a):
        e = fnp.linalg.eigh(a)
        s = fnp.linalg.svd(a)
        q = fnp.linalg.qr(a)
        d = fnp.linalg.slogdet(a + 3 * np.eye(3))
        return (fnp.sum(e.eigenvalues) + fnp.sum(e.eigenvectors ** 2) + fnp.sum(s.S)
                + fnp.sum(s.U ** 2) + fnp.sum(s.Vh ** 2) + fnp.sum(q.R) + fnp.sum(q.Q)
                + d.logabsdet)

    value, g = value_and_grad(f)(a)
    e, s, q = np.linalg.eigh(a), np.linalg.svd(a), np.linalg.qr(a)
    assert value == pytest.approx(
        np.sum(e.eigenvalues) + np.sum(e.eigenvectors ** 2) + np.sum(s.S)
        + np.sum(s.U ** 2) + np.sum(s.Vh ** 2) + np.sum(q.R) + np.sum(q.Q)
        + np.linalg.slogdet(a + 3 * np.eye(3)).logabsdet, rel=1e-12)
    assert g.shape == a.shape and np.all(np.isfinite(g))
    assert_argument_gradients_match_differences(lambda a: float(f(a)), (a,), (g,), rng)


def test_svd_full_matrices_of_a_tall_matrix(rng):
    """U's extra columns are not a function of A: a cotangent on them raises, their
    tangent is NaN; the defined parts agree with the thin factorization."""
    a = rng.standard_normal((5, 3))
    w = rng.standard_normal((5, 3))
    full = grad(lambda a: fnp.sum(fnp.linalg.svd(a)[0][:, :3] * w))(a)
    thin = grad(lambda a: fnp.sum(fnp.linalg.svd(a, full_matrices=False)[0] * w))(a)
    np.testing.assert_allclose(full, thin, rtol=1e-12)
    with pytest.raises(ValueError, match="full_matrices=False"):
        grad(lambda a: fnp.sum(fnp.linalg.svd(a)[0]))(a)
    _, t = jvp(lambda a: fnp.linalg.svd(a)[0], (a,), (rng.standard_normal((5, 3)),))
    assert np.all(np.isnan(t[:, 3:])) and np.all(np.isfinite(t[:, :3]))


def test_svd_full_matrices_of_a_wide_matrix(rng):
    """The same for Vh's extra rows."""
    a = rng.standard_normal((2, 4))
    w = rng.standard_normal((2, 4))
    full = grad(lambda a: fnp.sum(fnp.linalg.svd(a)[2][:2] * w))(a)
    thin = grad(lambda a: fnp.sum(fnp.linalg.svd(a, full_matrices=False)[2] * w))(a)
    np.testing.assert_allclose(full, thin, rtol=1e-12)
    with pytest.raises(ValueError, match="full_matrices=False"):
        grad(lambda a: fnp.sum(fnp.linalg.svd(a)[2][2:] * w))(a)
    _, t = jvp(lambda a: fnp.linalg.svd(a)[2], (a,), (rng.standard_normal((2, 4)),))
    assert np.all(np.isnan(t[2:])) and np.all(np.isfinite(t[:2]))


@pytest.mark.parametrize("name, values, vectors, a", [
    ("eigh", lambda a: fnp.linalg.eigh(a)[0], lambda a: fnp.linalg.eigh(a)[1],
     np.diag([1.0, 2.0, 2.0])),
    ("svd", lambda a: fnp.linalg.svd(a)[1], lambda a: fnp.linalg.svd(a)[0],
     np.diag([3.0, 1.0, 1.0])),
    ("eig", lambda a: fnp.linalg.eig(a)[0], lambda a: fnp.linalg.eig(a)[1],
     np.diag([1.0, 2.0, 2.0])),
], ids=["eigh", "svd", "eig"])
def test_repeated_eigen_or_singular_values(name, values, vectors, a, rng):
    """At a repeated value the values' derivatives stay finite (trace-like sums are
    exact) and the vectors' are not defined: inf/NaN propagate, as in autograd."""
    u = rng.standard_normal(3)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g = grad(lambda a: fnp.sum(values(a) * u))(a)
        assert np.all(np.isfinite(g))
        np.testing.assert_allclose(grad(lambda a: fnp.sum(values(a)))(a), np.eye(3),
                                   atol=1e-12)
        bad = grad(lambda a: fnp.sum(vectors(a) * rng.standard_normal((3, 3))))(a)
        assert not np.all(np.isfinite(bad))
        _, t = jvp(vectors, (a,), (rng.standard_normal((3, 3)),))
        assert not np.all(np.isfinite(t))


def test_linalg_nodes_replay_in_a_traced_function(rng):
    """The factorization nodes carry an evaluate function and a recipe: a traced
    function replays them at new points and survives pickling."""
    import pickle

    def f(a):
        u, s, vh = fnp.linalg.svd(a, full_matrices=False)
        w, v = fnp.linalg.eigh(a)
        q, r = fnp.linalg.qr(a)
        b = a @ a.T + np.eye(3)
        return (fnp.sum(s) + fnp.sum((u @ vh) ** 2) + fnp.sum(w * w)
                + fnp.sum(v ** 4) + fnp.sum(r ** 2) + fnp.linalg.norm(a, 2)
                + fnp.sum(fnp.linalg.pinv(a) ** 2)
                + fnp.sum(fnp.linalg.pinv(b, hermitian=True) ** 2)
                + fnp.sum(fnp.linalg.svd(b, compute_uv=False, hermitian=True) ** 2)
                + fnp.sum(fnp.linalg.eigvalsh(b, "U") ** 2)
                + fnp.sum(fnp.linalg.eigvals(b) ** 2)
                + fnp.sum(fnp.linalg.eig(b)[1] ** 4))

    a0 = rng.standard_normal((3, 3))
    a1 = a0 + 0.1 * rng.standard_normal((3, 3))
    traced = fasttape.trace(f, a0)
    again = pickle.loads(pickle.dumps(traced))
    for g in (traced, again):
        np.testing.assert_allclose(g.grad(a1), grad(f)(a1), rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("f", [
    lambda a: fnp.sum(fnp.linalg.eigh(a)[0] ** 3)
    + fnp.sum(fnp.linalg.eigh(a)[1][0] ** 3),
    lambda a: fnp.sum(fnp.linalg.svd(a)[0][:, 0] ** 3) + fnp.linalg.norm(a, 2) ** 2,
    lambda a: fnp.sum(fnp.linalg.qr(a)[1] ** 3),
    lambda a: fnp.sum(fnp.linalg.pinv(a[:2]) ** 3),
], ids=["eigh", "svd", "qr", "pinv"])
def test_hessian_and_hvp_match_differences_of_the_gradient(f, rng):
    a = rng.standard_normal((3, 3))
    h = fasttape.hessian(f)(a)
    gradient = grad(f)
    for i, j in [(0, 0), (2, 1), (1, 2)]:
        e = np.zeros((3, 3))
        e[i, j] = 1.0
        np.testing.assert_allclose(h[:, :, i, j],
                                   directional_derivative(gradient, a, e),
                                   rtol=1e-6, atol=1e-8)
    v = rng.standard_normal((3, 3))
    np.testing.assert_allclose(fasttape.hvp(f)(a, v), np.tensordot(h, v, 2),
                               rtol=1e-10, atol=1e-12)
