"""The multivariate normal distribution, differentiable in x, mean and cov.

logpdf factors cov = L L^T (Cholesky): log det cov = 2 sum log diag L and the
Mahalanobis terms are |L^-1 (x - mean)|^2, one triangular system for all points. With
allow_singular=True it uses the eigendecomposition instead, as SciPy does: the
pseudo-determinant and the pseudo-inverse over the eigenvalues above SciPy's cutoff
(its derivative in cov needs distinct eigenvalues). Arguments as SciPy's: x of shape
(..., d) (or a scalar, or (n,) when d = 1), mean of shape (d,) (None: 0), cov a
(d, d) matrix, a vector (its diagonal) or a number (times the identity)."""
import numpy as np
import scipy.linalg as _sla
import scipy.stats as _stats

import fasttape.numpy as fnp
import fasttape.numpy.linalg as flinalg
from fasttape._rule_nodes import operand_slots, rule_node
from fasttape.scipy.stats._common import any_variable, is_variable, value

__all__ = ["pdf", "logpdf", "entropy"]

_LOG_2PI = np.log(2.0 * np.pi)


def _dimension(mean, cov):
    if mean is not None and np.ndim(value(mean)) > 0:
        return np.shape(value(mean))[-1]
    if np.ndim(value(cov)) > 0:
        return np.shape(value(cov))[-1]
    return 1


def _matrix(cov, d):
    ndim = np.ndim(value(cov))
    if ndim == 0:
        return cov * np.eye(d)
    if ndim == 1:
        return fnp.diag(cov) if any_variable(cov) else np.diag(cov)
    if np.shape(value(cov)) != (d, d):
        raise ValueError(f"multivariate_normal: cov of shape {np.shape(value(cov))} "
                         f"does not match the dimension {d}")
    return cov


def _points(x, d):
    """x as (..., d), and the shape SciPy gives the result (its trailing 1s squeezed)."""
    shape = np.shape(value(x))
    if d == 1 and (len(shape) == 0 or shape[-1] != 1):
        x = fnp.reshape(x, shape + (1,)) if any_variable(x) else np.reshape(x, shape + (1,))
        shape = shape + (1,)
    if shape[-1] != d:
        raise ValueError(f"multivariate_normal: x of shape {np.shape(value(x))} does "
                         f"not hold points of dimension {d}")
    return x, shape[:-1]


def _squeezed(out, batch):
    squeezed = tuple(n for n in batch if n != 1) if batch else ()
    if squeezed == tuple(batch):
        return out
    return fnp.reshape(out, squeezed)


def _cutoff(eigenvalues):
    # SciPy's: eigenvalues below 1e6 eps max|w| count as zero
    return 1e6 * np.finfo(float).eps * np.max(np.abs(eigenvalues))


def logpdf(x, mean=None, cov=1, allow_singular=False):
    """-(d log 2 pi + log det cov + (x - mean)^T cov^-1 (x - mean)) / 2 per point."""
    if not any_variable(x, mean, cov):
        return _stats.multivariate_normal.logpdf(x, mean, cov,
                                                 allow_singular=allow_singular)
    d = _dimension(mean, cov)
    cov = _matrix(cov, d)
    x, batch = _points(x, d)
    if allow_singular:
        dev = x if mean is None else x - mean
        rows = fnp.reshape(dev, (-1, d))               # (n, d)
        w, v = flinalg.eigh(cov) if any_variable(cov) else np.linalg.eigh(cov)
        keep = np.asarray(value(w)) > _cutoff(value(w))
        rank = int(keep.sum())
        w_kept = w[keep]
        projected = fnp.dot(rows, v[:, keep]) / fnp.sqrt(w_kept)    # (n, rank)
        maha = fnp.sum(projected * projected, axis=1)
        log_det = fnp.sum(fnp.log(w_kept))
        out = -0.5 * (rank * _LOG_2PI + log_det + maha)
    else:
        if mean is None:
            mean = np.zeros(d)
        elif np.shape(value(mean)) != (d,):
            mean = fnp.broadcast_to(mean, (d,))
        out = gaussian_rows(fnp.reshape(x, (-1, d)), mean, cov)
    return _squeezed(fnp.reshape(out, batch), batch)


def gaussian_rows(rows, mean, cov):
    """The log densities of the n rows of `rows` (n, d) under N(mean, cov) as one node
    with Python rules, its operands rows, mean (d,) and cov (d, d) (Variables or
    constants). With cov = L L^T and Z = L^-1 (rows - mean)^T (one triangular solve for
    all rows), y_i = -(d log 2 pi + 2 sum log diag L + |Z_i|^2)/2. The rules, with
    A = cov^-1 (rows - mean)^T = L^-T Z and g the output cotangent:
    rows: -(A g)^T row by row; mean: A g summed over rows; cov: (A diag(g) A^T
    - sum(g) cov^-1)/2 (the symmetric gradient). On numbers they are triangular solves
    and one matrix product (SciPy's BLAS and LAPACK); on Variables (derivatives of
    derivatives) the same formulas written with fasttape.numpy, which record."""
    rows_value, mean_value, cov_value = (np.asarray(value(v), dtype=float)
                                         for v in (rows, mean, cov))
    d = cov_value.shape[0]
    chol = _cholesky(cov_value)
    z = _sla.solve_triangular(chol, (rows_value - mean_value).T, lower=True,
                              check_finite=False)
    log_det = 2.0 * np.sum(np.log(np.diagonal(chol)))
    out = -0.5 * (d * _LOG_2PI + log_det) - 0.5 * np.einsum("ij,ij->j", z, z)

    def whitened(rows, mean, cov):
        # A = cov^-1 (rows - mean)^T, and cov^-1 (from the Cholesky factor on numbers)
        if any_variable(rows, mean, cov):
            return (flinalg.solve(cov, fnp.transpose(rows - mean)), flinalg.inv(cov))
        chol = _cholesky(cov)
        a = _sla.cho_solve((chol, True), (rows - mean).T, check_finite=False)
        return a, _sla.cho_solve((chol, True), np.eye(d), check_finite=False)

    def reverse(g, y, rows, mean, cov):
        a, inverse = whitened(rows, mean, cov)
        ag = a * g                                        # (d, n): column j times g_j
        return [-fnp.transpose(ag) if is_variable(rows_operand) else None,
                fnp.sum(ag, axis=1) if is_variable(mean_operand) else None,
                0.5 * (fnp.dot(ag, fnp.transpose(a)) - fnp.sum(g) * inverse)
                if is_variable(cov_operand) else None]

    def forward(tangents, y, rows, mean, cov):
        t_rows, t_mean, t_cov = tangents
        a, inverse = whitened(rows, mean, cov)
        out = 0.0
        if t_rows is not None:
            out = out - fnp.sum(a * fnp.transpose(t_rows), axis=0)
        if t_mean is not None:
            out = out + fnp.dot(t_mean, a)
        if t_cov is not None:
            out = out + 0.5 * fnp.sum(a * fnp.dot(t_cov, a), axis=0) \
                - 0.5 * fnp.sum(inverse * fnp.transpose(t_cov))
        return out

    rows_operand, mean_operand, cov_operand = rows, mean, cov
    return rule_node([rows, mean, cov], out, reverse, forward, _gaussian_rows_value,
                     (gaussian_rows, operand_slots(3), {}))


def _cholesky(cov):
    try:
        return np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        raise np.linalg.LinAlgError(
            "multivariate_normal: cov is not positive definite (pass "
            "allow_singular=True for a singular covariance)") from None


def _gaussian_rows_value(rows, mean, cov):
    chol = _cholesky(cov)
    z = _sla.solve_triangular(chol, (rows - mean).T, lower=True, check_finite=False)
    return -0.5 * (cov.shape[0] * _LOG_2PI + 2.0 * np.sum(np.log(np.diagonal(chol)))) \
        - 0.5 * np.einsum("ij,ij->j", z, z)


def pdf(x, mean=None, cov=1, allow_singular=False):
    if not any_variable(x, mean, cov):
        return _stats.multivariate_normal.pdf(x, mean, cov, allow_singular=allow_singular)
    return fnp.exp(logpdf(x, mean, cov, allow_singular=allow_singular))


def entropy(mean=None, cov=1):
    """(rank (1 + log 2 pi) + log pdet cov) / 2, independent of the mean: by Cholesky
    when cov is positive definite, else over the eigenvalues above SciPy's cutoff
    (SciPy's pseudo-determinant)."""
    if not any_variable(mean, cov):
        return _stats.multivariate_normal.entropy(mean, cov)
    d = _dimension(mean, cov)
    cov = _matrix(cov, d)
    try:
        chol = flinalg.cholesky(cov) if any_variable(cov) else np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        w = flinalg.eigvalsh(cov) if any_variable(cov) else np.linalg.eigvalsh(cov)
        keep = np.asarray(value(w)) > _cutoff(value(w))
        return 0.5 * (int(keep.sum()) * (1.0 + _LOG_2PI) + fnp.sum(fnp.log(w[keep])))
    return 0.5 * d * (1.0 + _LOG_2PI) + fnp.sum(fnp.log(fnp.diagonal(chol)))
