"""The multivariate normal distribution, differentiable in x, mean and cov.

logpdf factors cov = L L^T (Cholesky): log det cov = 2 sum log diag L and the
Mahalanobis terms are |L^-1 (x - mean)|^2, one triangular system for all points. With
allow_singular=True it uses the eigendecomposition instead, as SciPy does: the
pseudo-determinant and the pseudo-inverse over the eigenvalues above SciPy's cutoff
(its derivative in cov needs distinct eigenvalues). Arguments as SciPy's: x of shape
(..., d) (or a scalar, or (n,) when d = 1), mean of shape (d,) (None: 0), cov a
(d, d) matrix, a vector (its diagonal) or a number (times the identity)."""
import numpy as np
import scipy.stats as _stats

import fasttape.numpy as fnp
import fasttape.numpy.linalg as flinalg
from fasttape.scipy.stats._common import any_variable, value

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
    dev = x if mean is None else x - mean
    rows = fnp.reshape(dev, (-1, d))               # (n, d)
    if allow_singular:
        w, v = flinalg.eigh(cov) if any_variable(cov) else np.linalg.eigh(cov)
        keep = np.asarray(value(w)) > _cutoff(value(w))
        rank = int(keep.sum())
        w_kept = w[keep]
        projected = fnp.dot(rows, v[:, keep]) / fnp.sqrt(w_kept)    # (n, rank)
        maha = fnp.sum(projected * projected, axis=1)
        log_det = fnp.sum(fnp.log(w_kept))
        out = -0.5 * (rank * _LOG_2PI + log_det + maha)
    else:
        try:
            chol = flinalg.cholesky(cov) if any_variable(cov) else np.linalg.cholesky(cov)
        except np.linalg.LinAlgError:
            raise np.linalg.LinAlgError(
                "multivariate_normal: cov is not positive definite (pass "
                "allow_singular=True for a singular covariance)") from None
        z = flinalg.solve(chol, fnp.transpose(rows))      # (d, n): L^-1 (x - mean)
        maha = fnp.sum(z * z, axis=0)
        log_det = 2.0 * fnp.sum(fnp.log(fnp.diagonal(chol)))
        out = -0.5 * (d * _LOG_2PI + log_det) - 0.5 * maha
    return _squeezed(fnp.reshape(out, batch), batch)


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
