"""numpy.linalg, differentiable: norm, inv, solve, det, slogdet, cholesky.

The matrix functions are one tape node each whose reverse step calls LAPACK through
NumPy (with the GIL); the formulas are the standard matrix-calculus results, noted
beside each.
"""
import numpy as _np
from numpy.linalg import *  # noqa: F401,F403  (LinAlgError, eig, svd, ...)

from fasttape import _arrays
from fasttape._arrays import ArrayVariable
from fasttape._variable import Variable


def _is_variable(x):
    return type(x) is Variable or type(x) is ArrayVariable


def _value(x):
    return x.value if _is_variable(x) else _np.asarray(x, dtype=_np.float64)


def _mT(a):
    return _np.swapaxes(a, -1, -2)


def norm(x, ord=None, axis=None, keepdims=False):
    """Vector p-norms and the Frobenius norm, built from recorded ops (so the gradient
    of the 2-norm is x / norm, nan at 0 as in autograd)."""
    import fasttape.numpy as fnp
    if not _is_variable(x):
        return _np.linalg.norm(x, ord, axis, keepdims)
    ndim = _np.ndim(x.value)
    matrix = (axis is None and ndim == 2 and ord is not None) or (
        isinstance(axis, tuple) and len(axis) == 2)
    if matrix and ord not in (None, "fro"):
        raise NotImplementedError(f"fasttape differentiates matrix norms of ord None "
                                  f"or 'fro' only, not ord={ord!r}")
    if ord in (None, "fro", 2):
        return fnp.sqrt(fnp.sum(x * x, axis=axis, keepdims=keepdims))
    if ord == 1:
        return fnp.sum(fnp.abs(x), axis=axis, keepdims=keepdims)
    if ord == _np.inf:
        return fnp.max(fnp.abs(x), axis=axis, keepdims=keepdims)
    if ord == -_np.inf:
        return fnp.min(fnp.abs(x), axis=axis, keepdims=keepdims)
    if isinstance(ord, (int, float)) and ord > 0:
        return fnp.sum(fnp.abs(x) ** ord, axis=axis, keepdims=keepdims) ** (1.0 / ord)
    raise NotImplementedError(f"fasttape does not differentiate norm with ord={ord!r}")


def inv(a):
    """Y = A^-1;  dA = -Y^T G Y^T."""
    if not _is_variable(a):
        return _np.linalg.inv(a)
    y = _np.linalg.inv(a.value)

    def reverse(g):
        g = g.reshape(y.shape)
        return (-(_mT(y) @ g @ _mT(y)),)
    return _arrays.pyfunc([a], y, reverse)


def solve(a, b):
    """X = A^-1 B;  dB = A^-T G,  dA = -dB X^T."""
    if not (_is_variable(a) or _is_variable(b)):
        return _np.linalg.solve(a, b)
    va, vb = _value(a), _value(b)
    x = _np.linalg.solve(va, vb)
    vector = vb.ndim == 1

    def reverse(g):
        g = g.reshape(x.shape)
        gb = _np.linalg.solve(_mT(va), g)
        ga = -_np.outer(gb, x) if vector else -(gb @ _mT(x))
        return ga, gb
    return _arrays.pyfunc([a, b], x, reverse)


def det(a):
    """d = det A;  dA = g d A^-T (nan where A is singular)."""
    if not _is_variable(a):
        return _np.linalg.det(a)
    va = _value(a)
    d = _np.linalg.det(va)

    def reverse(g):
        g = g.reshape(_np.shape(d))
        return (_np.asarray(g * d)[..., None, None] * _mT(_np.linalg.inv(va)),)
    return _arrays.pyfunc([a], d, reverse)


def slogdet(a):
    """(sign, log|det A|); the log-determinant's gradient is A^-T, the sign has none."""
    if not _is_variable(a):
        return _np.linalg.slogdet(a)
    va = _value(a)
    sign, logdet = _np.linalg.slogdet(va)

    def reverse(g):
        g = g.reshape(_np.shape(logdet))
        return (_np.asarray(g)[..., None, None] * _mT(_np.linalg.inv(va)),)
    return sign, _arrays.pyfunc([a], logdet, reverse)


def cholesky(a):
    """A = L L^T;  with P = Phi(L^T G) (lower triangle, diagonal halved),
    dA = sym(L^-T P L^-1) where sym(X) = (X + X^T) / 2."""
    if not _is_variable(a):
        return _np.linalg.cholesky(a)
    L = _np.linalg.cholesky(_value(a))

    def reverse(g):
        g = g.reshape(L.shape)
        p = _np.tril(_mT(L) @ g)
        p = p - 0.5 * _np.eye(L.shape[-1]) * p
        linv = _np.linalg.inv(L)
        s = _mT(linv) @ p @ linv
        return (0.5 * (s + _mT(s)),)
    return _arrays.pyfunc([a], L, reverse)


for _function in (norm, inv, solve, det, slogdet, cholesky):
    _arrays.register_array_function(getattr(_np.linalg, _function.__name__), _function)
