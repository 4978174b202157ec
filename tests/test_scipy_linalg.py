"""fasttape.scipy.linalg: values against scipy.linalg, derivatives in every
differentiable argument against central differences (fasttape.check_grads, forward
and reverse mode, second order), against autograd's where it is installed, the
triangle and band conventions (entries that are not read have a zero cotangent), and
errors."""
import numpy as np
import pytest
import scipy.linalg

import fasttape
import fasttape.numpy as fnp
import fasttape.scipy.linalg as fla
from fasttape.check import check_grads


def well_conditioned(rng, n):
    return rng.standard_normal((n, n)) + 4.0 * np.eye(n)


def positive_definite(rng, n):
    m = rng.standard_normal((n, n))
    return m @ m.T + n * np.eye(n)


def symmetrized(f):
    """f of the symmetric part of its (first) argument: for functions defined on
    symmetric matrices, so that central differences stay in their domain."""
    return lambda x, *rest: f(0.5 * (x + fnp.swapaxes(x, -1, -2)), *rest)


def check(f, *args, order=2):
    check_grads(f, modes=("fwd", "rev"), order=order)(*args)


@pytest.mark.parametrize("trans", [0, 1, 2, "N", "T", "C"])
@pytest.mark.parametrize("lower", [False, True])
@pytest.mark.parametrize("unit_diagonal", [False, True])
@pytest.mark.parametrize("b_shape", [(4,), (4, 2)])
def test_solve_triangular(rng, trans, lower, unit_diagonal, b_shape):
    a, b = well_conditioned(rng, 4), rng.standard_normal(b_shape)
    options = dict(trans=trans, lower=lower, unit_diagonal=unit_diagonal)

    def f(a, b):
        return fla.solve_triangular(a, b, **options)
    np.testing.assert_allclose(f(a, b), scipy.linalg.solve_triangular(a, b, **options),
                               rtol=1e-13)
    check(f, a, b)


def test_solve_triangular_reads_one_triangle(rng):
    a, b = well_conditioned(rng, 4), rng.standard_normal(4)
    for lower, unit, unread in [(True, False, np.triu(np.ones((4, 4)), 1)),
                                (False, False, np.tril(np.ones((4, 4)), -1)),
                                (True, True, np.triu(np.ones((4, 4))))]:
        ga = fasttape.grad(lambda a: fnp.sum(fla.solve_triangular(
            a, b, lower=lower, unit_diagonal=unit)))(a)
        assert np.all(ga[unread == 1] == 0.0)
        assert np.all(ga[unread == 0] != 0.0)


@pytest.mark.parametrize("l_and_u", [(1, 1), (0, 2), (2, 0), (1, 2), (0, 0)])
@pytest.mark.parametrize("b_shape", [(5,), (5, 3)])
def test_solve_banded(rng, l_and_u, b_shape):
    lower, upper = l_and_u
    ab = rng.standard_normal((lower + upper + 1, 5))
    ab[upper] += 4.0                                   # a dominant diagonal
    b = rng.standard_normal(b_shape)

    def f(ab, b):
        return fla.solve_banded(l_and_u, ab, b)
    np.testing.assert_allclose(f(ab, b), scipy.linalg.solve_banded(l_and_u, ab, b),
                               rtol=1e-13)
    check(f, ab, b)
    # the corners of ab outside the band are never read
    gab = fasttape.grad(lambda ab: fnp.sum(f(ab, b)))(ab)
    for r in range(lower + upper + 1):
        for j in range(5):
            if not 0 <= j + r - upper < 5:
                assert gab[r, j] == 0.0


def test_solve_sylvester(rng):
    a, b, q = rng.standard_normal((3, 3)), rng.standard_normal((3, 3)), \
        rng.standard_normal((3, 3))
    np.testing.assert_allclose(fla.solve_sylvester(a, b, q),
                               scipy.linalg.solve_sylvester(a, b, q))
    check(fla.solve_sylvester, a, b, q)
    check(lambda a: fla.solve_sylvester(a, b, q), a)


def test_sqrtm(rng):
    s = positive_definite(rng, 3)
    x = fasttape.grad(lambda s: fnp.sum(fla.sqrtm(s) ** 2))(s)
    assert x.shape == (3, 3)
    check(fla.sqrtm, s)
    check(symmetrized(fla.sqrtm), s)
    # a non-symmetric matrix with a real principal root
    a = np.array([[4.0, 1.0, 0.0], [0.5, 3.0, 0.2], [0.1, 0.0, 2.0]])
    root = scipy.linalg.sqrtm(a)
    np.testing.assert_allclose(fla.sqrtm(a), root)
    check(fla.sqrtm, a)


def parts(z):
    """A complex result as a real array: its real and imaginary parts stacked."""
    return fnp.stack([z.real, z.imag])


@pytest.mark.parametrize("eigenvalues", [(-1.0, 2.0, 3.0), (-1.0, -2.5, 0.5)])
def test_sqrtm_with_a_complex_root(rng, eigenvalues):
    # negative eigenvalues: the principal root is complex (imaginary eigenvalues)
    q, _ = np.linalg.qr(rng.standard_normal((3, 3)))
    a = q @ np.diag(eigenvalues) @ q.T + 0.3 * rng.standard_normal((3, 3))
    expected = scipy.linalg.sqrtm(a)
    assert np.abs(expected.imag).max() > 0.1
    got = fasttape.make_vjp(lambda a: parts(fla.sqrtm(a)))(a)[1]
    np.testing.assert_allclose(got[0] + 1j * got[1], expected, rtol=1e-12, atol=1e-12)
    check(lambda a: parts(fla.sqrtm(a)), a)
    check(lambda a: parts(fla.sqrtm(0.5 * (a + a.T))), a)


@pytest.mark.parametrize("lower", [False, True])
def test_cholesky(rng, lower):
    s = positive_definite(rng, 4)
    factor = scipy.linalg.cholesky(s, lower=lower)
    np.testing.assert_allclose(fla.cholesky(s, lower=lower), factor)
    got = fasttape.jvp(lambda s: fla.cholesky(s, lower=lower), (s,), (np.eye(4),))[0]
    np.testing.assert_allclose(got, factor, rtol=1e-13)
    check(symmetrized(lambda s: fla.cholesky(s, lower=lower)), s)


def test_cholesky_reads_scipys_triangle(rng):
    # SciPy's upper factor reads the upper triangle: a matrix whose lower triangle
    # is garbage still gives the factor of the symmetric matrix of its upper one
    s = positive_definite(rng, 3)
    garbled = np.triu(s) + np.tril(rng.standard_normal((3, 3)), -1)
    value = fasttape.jvp(lambda a: fla.cholesky(a), (garbled,), (np.eye(3),))[0]
    np.testing.assert_allclose(value, scipy.linalg.cholesky(garbled), rtol=1e-13)


def test_inv_det_solve(rng):
    a, b = well_conditioned(rng, 3), rng.standard_normal(3)
    np.testing.assert_allclose(fla.inv(a), scipy.linalg.inv(a))
    assert fla.det(a) == pytest.approx(scipy.linalg.det(a))
    check(fla.inv, a)
    check(fla.det, a)
    check(fla.solve, a, b)


def test_gradients_match_autograd(rng):
    autograd = pytest.importorskip("autograd")
    import autograd.numpy as anp
    import autograd.scipy.linalg as aspla
    a, b, q = (well_conditioned(rng, 4), rng.standard_normal((4, 4)),
               rng.standard_normal((4, 4)))
    s = positive_definite(rng, 4)
    u = rng.standard_normal((4, 4))
    cases = [
        (lambda a, q: fla.solve_triangular(a, q, trans=1, lower=True),
         lambda a, q: aspla.solve_triangular(a, q, trans=1, lower=True), (a, q)),
        (fla.solve_sylvester, aspla.solve_sylvester, (a, b, q)),
        (fla.sqrtm, aspla.sqrtm, (s,)),
    ]
    for ours, theirs, args in cases:
        argnums = tuple(range(len(args)))
        got = fasttape.grad(lambda *x: fnp.sum(u * ours(*x)), argnums)(*args)
        expected = autograd.grad(lambda *x: anp.sum(u * theirs(*x)), argnums)(*args)
        for x, y in zip(got, expected):
            np.testing.assert_allclose(x, y, rtol=1e-9, atol=1e-11)


def test_other_scipy_names_are_scipys_for_plain_arrays(rng):
    a = well_conditioned(rng, 3)
    np.testing.assert_allclose(fla.expm(a), scipy.linalg.expm(a))
    assert fla.LinAlgError is scipy.linalg.LinAlgError
    with pytest.raises(TypeError, match="expm has no derivative"):
        fasttape.grad(lambda a: fnp.sum(fla.expm(a)))(a)
    with pytest.raises(AttributeError):
        fla.no_such_function


def test_errors_name_the_problem(rng):
    a, b = well_conditioned(rng, 3), rng.standard_normal(3)
    with pytest.raises(ValueError, match="trans"):
        fasttape.grad(lambda a: fnp.sum(fla.solve_triangular(a, b, trans="X")))(a)
    with pytest.raises(ValueError, match="square"):
        fasttape.grad(lambda a: fnp.sum(fla.sqrtm(a[:2])))(a)
    with pytest.raises(ValueError, match="rows"):
        fasttape.grad(lambda ab: fnp.sum(fla.solve_banded((1, 1), ab, b)))(a[:2])
    with pytest.raises(NotImplementedError, match="assume_a"):
        fasttape.grad(lambda a: fnp.sum(fla.solve(a, b, assume_a="pos")))(a)
