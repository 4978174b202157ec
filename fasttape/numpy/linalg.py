"""numpy.linalg, differentiable: norm, inv, solve, det, slogdet, cholesky.

The matrix functions are one tape node each. Their derivative rules (the standard
matrix-calculus results, noted beside each) are written with fasttape.numpy, so the
same rule computes numbers in the C sweeps (calling LAPACK through NumPy, with the
GIL) and records itself when a derivative is differentiated again.
"""
import numpy as _np
from numpy.linalg import *  # noqa: F401,F403  (LinAlgError, eig, svd, ...)

import fasttape.numpy as fnp
from fasttape._compat import solve as _numpy2_solve
from fasttape._arrays import ArrayVariable
from fasttape._rule_nodes import operand_slots, rule_node
from fasttape._variable import Variable


def _is_variable(x):
    return type(x) is Variable or type(x) is ArrayVariable


def _value(x):
    return x.value if _is_variable(x) else _np.asarray(x, dtype=_np.float64)


def _mT(a):
    return fnp.swapaxes(a, -1, -2)


def norm(x, ord=None, axis=None, keepdims=False):
    """Vector p-norms and the Frobenius norm, built from recorded ops (so the gradient
    of the 2-norm is x / norm, nan at 0 as in autograd)."""
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
    """Y = A^-1;  dA = -Y^T G Y^T;  tangent -Y tA Y."""
    if not _is_variable(a):
        return _np.linalg.inv(a)
    return rule_node(
        [a], _np.linalg.inv(a.value),
        lambda g, y, a: [-(_mT(y) @ g @ _mT(y))],
        lambda t, y, a: -(y @ t[0] @ y), _np.linalg.inv, (inv, operand_slots(1), {}))


def solve(a, b):
    """X = A^-1 B;  dB = A^-T G,  dA = -dB X^T;  tangent A^-1 (tB - tA X). A 1-d B is
    one vector for every matrix of a batch A (NumPy's rule); its cotangent sums over
    the batch."""
    if not (_is_variable(a) or _is_variable(b)):
        return _numpy2_solve(a, b)
    a_shape, b_shape = _np.shape(_value(a)), _np.shape(_value(b))
    vector = len(b_shape) == 1

    def as_columns(v):                 # (..., n) -> (..., n, 1) for the vector case
        return fnp.expand_dims(v, -1) if vector else v

    def reverse(g, x, a, b):
        gb = solve(_mT(a), as_columns(g))
        ga = -(gb @ _mT(as_columns(x)))
        if vector:
            gb = fnp.reshape(gb, _np.shape(_value(gb))[:-1])
        return [_sum_to(ga, a_shape), _sum_to(gb, b_shape)]

    def forward(t, x, a, b):
        rhs = 0.0
        if t[1] is not None:
            rhs = as_columns(t[1])
        if t[0] is not None:
            rhs = rhs - t[0] @ as_columns(x)
        dx = solve(a, rhs + fnp.zeros_like(_value(as_columns(x))))
        return fnp.reshape(dx, _np.shape(_value(x)))

    return rule_node([a, b], _numpy2_solve(_value(a), _value(b)), reverse, forward,
                     _numpy2_solve, (solve, operand_slots(2), {}))


def _sum_to(x, shape):
    """Sum the leading (batch) axes of x away to reach `shape`."""
    extra = len(_np.shape(_value(x))) - len(shape)
    return fnp.sum(x, axis=tuple(range(extra))) if extra > 0 else x


def det(a):
    """d = det A;  dA = g d A^-T;  tangent d tr(A^-1 tA) (nan where A is singular)."""
    if not _is_variable(a):
        return _np.linalg.det(a)

    def reverse(g, d, a):
        return [fnp.expand_dims(fnp.expand_dims(g * d, -1), -1) * _mT(inv(a))]

    def forward(t, d, a):
        return d * fnp.sum(_mT(inv(a)) * t[0], axis=(-2, -1))

    value = _np.linalg.det(a.value)
    return rule_node([a], float(value) if _np.ndim(value) == 0 else value, reverse,
                     forward, _np.linalg.det, (det, operand_slots(1), {}))


def slogdet(a):
    """(sign, log|det A|); the log-determinant's gradient is A^-T (tangent
    tr(A^-1 tA)); the sign has none."""
    if not _is_variable(a):
        return _np.linalg.slogdet(a)
    sign, logdet = _np.linalg.slogdet(a.value)

    def reverse(g, y, a):
        return [fnp.expand_dims(fnp.expand_dims(g, -1), -1) * _mT(inv(a))
                if _np.ndim(_value(y)) else g * _mT(inv(a))]

    def forward(t, y, a):
        return fnp.sum(_mT(inv(a)) * t[0], axis=(-2, -1))

    logdet = rule_node([a], float(logdet) if _np.ndim(logdet) == 0 else logdet, reverse,
                       forward, _log_abs_det,
                       (_slogdet_part, operand_slots(1) + (1,), {}))
    if a.tape.replayable:
        # the sign changes with a: a node (of zero derivative) that a replay recomputes
        sign = rule_node([a], float(sign) if _np.ndim(sign) == 0 else sign,
                         lambda g, y, a: [None],
                         lambda t, y, a: _np.zeros(_np.shape(_value(y))),
                         _sign_of_det, (_slogdet_part, operand_slots(1) + (0,), {}))
    return sign, logdet


def _log_abs_det(a):
    return _np.linalg.slogdet(a)[1]


def _sign_of_det(a):
    return _np.linalg.slogdet(a)[0]


def _slogdet_part(a, which):
    """slogdet(a)[which]: the node that records one of slogdet's results."""
    return slogdet(a)[which]


def _phi(x):
    """Lower triangle with the diagonal halved."""
    n = _np.shape(_value(x))[-1]
    return fnp.tril(x) - 0.5 * fnp.eye(n) * x


def cholesky(a):
    """A = L L^T;  with P = Phi(L^T G), dA = sym(L^-T P L^-1) where sym(X) = (X +
    X^T)/2;  tangent L Phi(L^-1 tA L^-T)."""
    if not _is_variable(a):
        return _np.linalg.cholesky(a)

    def reverse(g, L, a):
        linv = inv(L)
        s = _mT(linv) @ _phi(_mT(L) @ g) @ linv
        return [0.5 * (s + _mT(s))]

    def forward(t, L, a):
        linv = inv(L)
        return L @ _phi(linv @ t[0] @ _mT(linv))

    return rule_node([a], _np.linalg.cholesky(a.value), reverse, forward,
                     _np.linalg.cholesky, (cholesky, operand_slots(1), {}))


# the dispatch table for plain NumPy calls on Variables (registered with
# fasttape._arrays by fasttape._wiring)
_FUNCTIONS = {getattr(_np.linalg, f.__name__): f
              for f in (norm, inv, solve, det, slogdet, cholesky)}
