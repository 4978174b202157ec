"""numpy.linalg, differentiable: the factorizations (svd, eigh, eig, qr, cholesky), the
inverses and solvers (inv, pinv, solve, tensorinv, tensorsolve), det and slogdet,
norms of every order, the values alone (svdvals, eigvalsh, eigvals), and what is
built from them (matrix_power, multi_dot, cond, vector_norm, matrix_norm and the
array API's matrix_transpose, diagonal, trace, outer, vecdot, cross, ...).

The matrix functions are one tape node each, batched over leading dimensions as NumPy
is. Their derivative rules (the standard matrix-calculus results, noted beside each)
are written with fasttape.numpy, so the same rule computes numbers in the C sweeps
(calling LAPACK through NumPy, with the GIL) and records itself when a derivative is
differentiated again. A factorization with several results (U, s, Vh) is one node
whose value packs them side by side along a last axis; the results are slices of it.

Where a result is not differentiable (repeated eigenvalues or singular values for
the vectors, a zero singular value for U or V of a non-square matrix), the rules
divide by the zero gap: inf and NaN propagate, as in autograd. A rule skips the
vector part when the vectors' cotangent is exactly zero, so functions of the values
alone stay finite there.
"""
import numpy as _np
from numpy.linalg import *  # noqa: F401,F403  (LinAlgError, matrix_rank, ...)

import fasttape.numpy as fnp
from fasttape._compat import cond as _numpy2_cond, solve as _numpy2_solve
from fasttape._arrays import ArrayVariable
from fasttape._rule_nodes import operand_slots, rule_node
from fasttape._variable import Variable

# NumPy's named result tuples (its own classes, so that .U, .eigenvalues, ... work)
_SVDResult = type(_np.linalg.svd(_np.eye(1)))
_EighResult = type(_np.linalg.eigh(_np.eye(1)))
_EigResult = type(_np.linalg.eig(_np.eye(1)))
_QRResult = type(_np.linalg.qr(_np.eye(1)))
_SlogdetResult = type(_np.linalg.slogdet(_np.eye(1)))


def _is_variable(x):
    return type(x) is Variable or type(x) is ArrayVariable


def _value(x):
    return x.value if _is_variable(x) else _np.asarray(x, dtype=_np.float64)


def _shape(x):
    return _np.shape(_value(x))


def _mT(a):
    return fnp.swapaxes(a, -1, -2)


def _diagonal(a):
    """The diagonals of a batch of matrices: (..., n, n) -> (..., n)."""
    return fnp.diagonal(a, axis1=-2, axis2=-1)


def _rows(v):
    """(..., n) -> (..., 1, n): v as a row, scaling the columns of a matrix."""
    return fnp.expand_dims(v, -2)


def _columns(v):
    """(..., n) -> (..., n, 1): v as a column, scaling the rows of a matrix."""
    return fnp.expand_dims(v, -1)


def _diag_matrix(v):
    """(..., n) -> (..., n, n) with v on the diagonal."""
    return _rows(v) * _np.eye(_shape(v)[-1])


def _nonzero(x):
    return bool(_np.any(_value(x) != 0.0))


def _pack_batch(parts, batch):
    """parts[i] of shape batch + core_i, flattened and set side by side along one
    last axis: batch + (sum of the core sizes,)."""
    return fnp.concatenate([fnp.reshape(p, batch + (-1,)) for p in parts], axis=-1)


def _unpack(packed, cores):
    """The inverse of _pack_batch: the parts of shapes batch + cores[i]."""
    batch = _shape(packed)[:-1]
    parts, start = [], 0
    for core in cores:
        size = int(_np.prod(core, dtype=_np.int64))
        parts.append(fnp.reshape(packed[..., start:start + size], batch + tuple(core)))
        start += size
    return parts


def _gaps(w):
    """F with F_ij = 1 / (w_j - w_i) off the diagonal and 0 on it: inf where two
    values are equal (the vectors' derivative does not exist there)."""
    n = _shape(w)[-1]
    eye = _np.eye(n)
    with _np.errstate(divide="ignore"):
        return (1.0 - eye) / (_rows(w) - _columns(w) + eye)


def _symmetric_from(a, UPLO):
    """The symmetric matrix that eigh and eigvalsh read from a: its lower (UPLO='L')
    or upper ('U') triangle mirrored."""
    if UPLO.upper() == "L":
        return fnp.tril(a) + _mT(fnp.tril(a, -1))
    return fnp.triu(a) + _mT(fnp.triu(a, 1))


def _to_triangle(g, UPLO):
    """The adjoint of _symmetric_from: a cotangent of the symmetric matrix read from
    a triangle, as a cotangent of the whole input (zero on the unread triangle)."""
    both = g + _mT(g)
    diagonal = g * _np.eye(_shape(g)[-1])
    if UPLO.upper() == "L":
        return fnp.tril(both, -1) + diagonal
    return fnp.triu(both, 1) + diagonal


def _check_uplo(UPLO):
    if UPLO not in ("L", "U", "l", "u"):
        raise ValueError("UPLO argument must be 'L' or 'U'")


# -- inverse, solve, determinants, Cholesky --------------------------------------------

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
    if _is_complex_constant(a) or _is_complex_constant(b):
        return _COMPLEX["solve"](a, b)
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
    """The adjoint of broadcasting an operand of `shape` to x's shape: sum the leading
    (batch) axes x has beyond it away, and the axes where the operand has length 1."""
    x_shape = _np.shape(_value(x))
    extra = len(x_shape) - len(shape)
    if extra > 0:
        x = fnp.sum(x, axis=tuple(range(extra)))
        x_shape = x_shape[extra:]
    stretched = tuple(i for i, (d, e) in enumerate(zip(shape, x_shape)) if d == 1 != e)
    return fnp.sum(x, axis=stretched, keepdims=True) if stretched else x


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
    return _SlogdetResult(sign, logdet)


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


# -- symmetric eigenproblem ------------------------------------------------------------

def eigh(a, UPLO="L"):
    """w, V = eigh(A) reading one triangle of A (UPLO), as NumPy does: the derivatives
    are those of the symmetric S mirrored from that triangle, so the other triangle's
    cotangent is zero. With P = V^T dS V: dw = diag(P), dV = V (F o P) where F_ij =
    1/(w_j - w_i) (inf at repeated eigenvalues: V's derivative does not exist there
    and inf/NaN propagate; w's stays finite). Reverse: dS = V (diag(gw) + F o (V^T gV))
    V^T, the eigenvector part skipped when gV is zero."""
    if not _is_variable(a):
        return _np.linalg.eigh(a, UPLO)
    _check_uplo(UPLO)
    n = _shape(a)[-1]
    w, v = _unpack(_eigh_packed(a, UPLO), [(n,), (n, n)])
    return _EighResult(w, v)


def _eigh_packed(a, UPLO):
    """The node of eigh: w and V packed as (..., n + n * n)."""
    shape = _shape(a)
    if len(shape) < 2 or shape[-1] != shape[-2]:
        _np.linalg.eigh(_value(a), UPLO)                        # NumPy's own error
    n, batch = shape[-1], shape[:-2]

    def evaluate(a):
        w, v = _np.linalg.eigh(a, UPLO)
        return _np.concatenate([w, v.reshape(batch + (n * n,))], axis=-1)

    def forward(t, packed, a):
        w, v = _unpack(packed, [(n,), (n, n)])
        p = _mT(v) @ _symmetric_from(t[0], UPLO) @ v
        return _pack_batch([_diagonal(p), v @ (_gaps(w) * p)], batch)

    def reverse(g, packed, a):
        w, v = _unpack(packed, [(n,), (n, n)])
        gw, gv = _unpack(g, [(n,), (n, n)])
        inner = _diag_matrix(gw)
        if _nonzero(gv):
            inner = inner + _gaps(w) * (_mT(v) @ gv)
        return [_to_triangle(v @ inner @ _mT(v), UPLO)]

    return rule_node([a], evaluate(_value(a)), reverse, forward, evaluate,
                     (_eigh_packed, operand_slots(1) + (UPLO,), {}))


def eigvalsh(a, UPLO="L"):
    """The eigenvalues of the symmetric matrix read from one triangle of A (see eigh),
    NumPy's values; dw = diag(V^T dS V), dS = V diag(gw) V^T. Finite at repeated
    eigenvalues to first order (the second order goes through V)."""
    if not _is_variable(a):
        return _np.linalg.eigvalsh(a, UPLO)
    _check_uplo(UPLO)

    def forward(t, w, a):
        v = eigh(a, UPLO)[1]
        return fnp.sum(v * (_symmetric_from(t[0], UPLO) @ v), axis=-2)

    def reverse(g, w, a):
        v = eigh(a, UPLO)[1]
        return [_to_triangle((v * _rows(g)) @ _mT(v), UPLO)]

    def evaluate(a):
        return _np.linalg.eigvalsh(a, UPLO)

    return rule_node([a], evaluate(_value(a)), reverse, forward, evaluate,
                     (eigvalsh, operand_slots(1) + (UPLO,), {}))


# -- general eigenproblem (real spectra) -----------------------------------------------

# The complex versions of eig, eigvals and solve (fasttape._complex_linalg, a layer
# above; filled by fasttape._wiring): a real matrix with complex eigenvalues, or a
# complex constant operand, is handed over to them.
_COMPLEX = {}


def register_complex_functions(functions):
    _COMPLEX.update(functions)


class _ComplexSpectrum(TypeError):
    """Raised by the real eig's evaluation when the eigenvalues are complex (eig and
    eigvals then record the complex node; a replay of the real one says so)."""


def _real_spectrum(w, v=None):
    if _np.iscomplexobj(w) or (v is not None and _np.iscomplexobj(v)):
        raise _ComplexSpectrum(
            "fasttape.numpy.linalg.eig: the eigenvalues are complex where the recorded "
            "ones were real (a replay of a traced function); trace it again")
    return w, v


def _is_complex_constant(x):
    return not _is_variable(x) and _np.iscomplexobj(x)


def eig(a):
    """w, V = eig(A) for a real matrix whose eigenvalues are real (TypeError when they
    are complex). NumPy scales each eigenvector to unit length. With P = V^-1 dA V:
    dw = diag(P) and dV = N(V (F o P)), F_ij = 1/(w_j - w_i), where N(X) = X -
    V diag(diag(V^T X)) keeps the columns' length. Reverse: dA = V^-T (diag(gw) +
    F o (V^T N(gV))) V^T (N is its own adjoint). Repeated eigenvalues: inf/NaN in the
    eigenvector part, skipped when gV is zero."""
    if not _is_variable(a):
        return _np.linalg.eig(a)
    n = _shape(a)[-1]
    try:
        w, v = _unpack(_eig_packed(a), [(n,), (n, n)])
    except _ComplexSpectrum:
        return _COMPLEX["eig"](a)
    return _EigResult(w, v)


def _keep_length(v, x):
    """N(X) = X - V diag(diag(V^T X)): X less its part along each unit column of V."""
    return x - v * _rows(fnp.sum(v * x, axis=-2))


def _eig_packed(a):
    shape = _shape(a)
    if len(shape) < 2 or shape[-1] != shape[-2]:
        _np.linalg.eig(_value(a))                               # NumPy's own error
    n, batch = shape[-1], shape[:-2]

    def evaluate(a):
        w, v = _real_spectrum(*_np.linalg.eig(a))
        return _np.concatenate([w, v.reshape(batch + (n * n,))], axis=-1)

    def forward(t, packed, a):
        w, v = _unpack(packed, [(n,), (n, n)])
        p = solve(v, t[0] @ v)
        return _pack_batch([_diagonal(p), _keep_length(v, v @ (_gaps(w) * p))], batch)

    def reverse(g, packed, a):
        w, v = _unpack(packed, [(n,), (n, n)])
        gw, gv = _unpack(g, [(n,), (n, n)])
        inner = _diag_matrix(gw)
        if _nonzero(gv):
            inner = inner + _gaps(w) * (_mT(v) @ _keep_length(v, gv))
        return [solve(_mT(v), inner @ _mT(v))]

    return rule_node([a], evaluate(_value(a)), reverse, forward, evaluate,
                     (_eig_packed, operand_slots(1), {}))


def eigvals(a):
    """The eigenvalues of a real matrix with a real spectrum (TypeError when they are
    complex): dw = diag(V^-1 dA V), dA = V^-T diag(gw) V^T."""
    if not _is_variable(a):
        return _np.linalg.eigvals(a)

    def forward(t, w, a):
        v = eig(a)[1]
        return _diagonal(solve(v, t[0] @ v))

    def reverse(g, w, a):
        v = eig(a)[1]
        return [solve(_mT(v), _diag_matrix(g) @ _mT(v))]

    def evaluate(a):
        return _real_spectrum(_np.linalg.eigvals(a))[0]

    try:
        value = evaluate(_value(a))
    except _ComplexSpectrum:
        return _COMPLEX["eigvals"](a)
    return rule_node([a], value, reverse, forward, evaluate,
                     (eigvals, operand_slots(1), {}))


# -- singular value decomposition ------------------------------------------------------

def svd(a, full_matrices=True, compute_uv=True, hermitian=False):
    """U, s, Vh = svd(A), A (..., m, n), k = min(m, n). Thin parts (Townsend's
    results): with P = U^T dA V, S = diag(s), F_ij = 1/(s_j^2 - s_i^2) off the
    diagonal: ds = diag(P), dU = U (F o (P S + S P^T)) + (I - U U^T) dA V S^-1,
    dV = V (F o (S P + P^T S)) + (I - V V^T) dA^T U S^-1 (the last terms only for
    non-square A). Reverse: dA = U (J S + diag(gs) + S K) V^T + (I - U U^T) gU S^-1 V^T
    + U S^-1 gV^T (I - V V^T), J = F o (U^T gU - gU^T U), K = F o (V^T gV - gV^T V).
    Repeated singular values (and a zero one, for non-square A) make U and V's
    derivatives inf/NaN; s's stay finite.

    full_matrices=True on a non-square matrix: the m - k (or n - k) extra columns
    of U (rows of Vh) are any orthonormal basis of a complement, not a function of A.
    Their tangent is NaN in forward mode, and a nonzero cotangent on them raises
    ValueError in reverse mode; the other parts are differentiated as above.
    hermitian=True reads the lower triangle, as NumPy does."""
    if not _is_variable(a):
        return _np.linalg.svd(a, full_matrices, compute_uv, hermitian)
    if _np.ndim(_value(a)) < 2:
        _np.linalg.svd(_value(a), full_matrices, compute_uv)    # NumPy's own error
    if hermitian:
        a = _symmetric_from(a, "L")
    if not compute_uv:
        return _singular_values(a, hermitian)
    m, n = _shape(a)[-2:]
    k = min(m, n)
    mu, nv = (m, n) if full_matrices else (k, k)
    u, s, vh = _unpack(_svd_packed(a, full_matrices, hermitian),
                       [(m, mu), (k,), (nv, n)])
    return _SVDResult(u, s, vh)


def _svd_packed(a, full_matrices, hermitian):
    shape = _shape(a)
    batch, (m, n) = shape[:-2], shape[-2:]
    k = min(m, n)
    mu, nv = (m, n) if full_matrices else (k, k)
    cores = [(m, mu), (k,), (nv, n)]

    def evaluate(a):
        u, s, vh = _np.linalg.svd(a, full_matrices, True, hermitian)
        return _np.concatenate([u.reshape(batch + (m * mu,)), s,
                                vh.reshape(batch + (nv * n,))], axis=-1)

    def thin(packed):
        u, s, vh = _unpack(packed, cores)
        return u[..., :, :k], s, _mT(vh[..., :k, :])

    def forward(t, packed, a):
        u, s, v = thin(packed)
        ta = t[0]
        p = _mT(u) @ ta @ v
        f = _gaps(s * s)
        du = u @ (f * (p * _rows(s) + _columns(s) * _mT(p)))
        dv = v @ (f * (_columns(s) * p + _mT(p) * _rows(s)))
        if m > k:
            du = du + (ta @ v - u @ p) / _rows(s)
        if n > k:
            dv = dv + (_mT(ta) @ u - v @ _mT(p)) / _rows(s)
        dvh = _mT(dv)
        if mu > k:                       # U's extra columns: no derivative
            du = fnp.concatenate([du, _np.full(batch + (m, mu - k), _np.nan)], axis=-1)
        if nv > k:                       # Vh's extra rows
            dvh = fnp.concatenate([dvh, _np.full(batch + (nv - k, n), _np.nan)],
                                  axis=-2)
        return _pack_batch([du, _diagonal(p), dvh], batch)

    def reverse(g, packed, a):
        u, s, v = thin(packed)
        gu_full, gs, gvh_full = _unpack(g, cores)
        if (mu > k and _nonzero(gu_full[..., :, k:])) or (
                nv > k and _nonzero(gvh_full[..., k:, :])):
            raise ValueError(
                "svd(full_matrices=True): the extra columns of U (or rows of Vh) of a "
                "non-square matrix are not a function of it and have no derivative; "
                "use full_matrices=False")
        gu, gv = gu_full[..., :, :k], _mT(gvh_full[..., :k, :])
        inner = _diag_matrix(gs)
        vector_part = _nonzero(gu) or _nonzero(gv)
        if vector_part:
            f = _gaps(s * s)
            utgu, vtgv = _mT(u) @ gu, _mT(v) @ gv
            inner = inner + (f * (utgu - _mT(utgu))) * _rows(s) \
                + _columns(s) * (f * (vtgv - _mT(vtgv)))
        ga = u @ inner @ _mT(v)
        if vector_part and m > k:
            ga = ga + ((gu - u @ (_mT(u) @ gu)) / _rows(s)) @ _mT(v)
        if vector_part and n > k:
            ga = ga + u @ _mT((gv - v @ (_mT(v) @ gv)) / _rows(s))
        return [ga]

    return rule_node([a], evaluate(_value(a)), reverse, forward, evaluate,
                     (_svd_packed, operand_slots(1) + (full_matrices, hermitian), {}))


def _singular_values(a, hermitian=False):
    """The node of svd(a, compute_uv=False): ds = diag(U^T dA V), dA = U diag(gs) V^T
    (U, V recomputed by the rules: a recorded svd when differentiated again)."""
    def forward(t, s, a):
        u, _, vh = svd(a, full_matrices=False, hermitian=hermitian)
        return fnp.sum(u * (t[0] @ _mT(vh)), axis=-2)

    def reverse(g, s, a):
        u, _, vh = svd(a, full_matrices=False, hermitian=hermitian)
        return [(u * _rows(g)) @ vh]

    def evaluate(a):
        return _np.linalg.svd(a, compute_uv=False, hermitian=hermitian)

    return rule_node([a], evaluate(_value(a)), reverse, forward, evaluate,
                     (_singular_values, operand_slots(1) + (hermitian,), {}))


def svdvals(x, /):
    """The singular values, as svd(x, compute_uv=False)."""
    if not _is_variable(x):
        return _np.linalg.svdvals(x)
    return _singular_values(x)


# -- pseudo-inverse and QR -------------------------------------------------------------

def pinv(a, rcond=None, hermitian=False, **kwargs):
    """X = A^+ (Golub and Pereyra, for A of constant rank): dX = -X dA X +
    X X^T dA^T (I - A X) + (I - X A) dA^T X^T X; reverse: dA = -X^T G X^T +
    (I - A X) G^T X X^T + X^T X G^T (I - X A). Where the rank changes (a singular value
    crossing the cutoff) pinv is discontinuous and this is the derivative at fixed rank.
    hermitian=True reads the lower triangle, as NumPy does. kwargs: rtol (NumPy 2)."""
    if not _is_variable(a):
        return _numpy_pinv(a, rcond, hermitian, **kwargs)
    if _np.ndim(_value(a)) < 2:
        _numpy_pinv(_value(a), rcond, hermitian, **kwargs)  # NumPy's own error
    if hermitian:
        a = _symmetric_from(a, "L")
    return _pinv_node(a, rcond, hermitian, **kwargs)


def _numpy_pinv(a, rcond, hermitian, **kwargs):
    """NumPy's pinv; rcond None means its default (NumPy 1 takes no None)."""
    if rcond is None:
        return _np.linalg.pinv(a, hermitian=hermitian, **kwargs)
    return _np.linalg.pinv(a, rcond, hermitian, **kwargs)


def _pinv_node(a, rcond, hermitian, **kwargs):
    m, n = _shape(a)[-2:]

    def forward(t, x, a):
        ta_t = _mT(t[0])
        return (-(x @ t[0] @ x) + x @ (_mT(x) @ ta_t) @ (_np.eye(m) - a @ x)
                + (_np.eye(n) - x @ a) @ ta_t @ (_mT(x) @ x))

    def reverse(g, x, a):
        gt = _mT(g)
        return [-(_mT(x) @ g @ _mT(x)) + (_np.eye(m) - a @ x) @ gt @ (x @ _mT(x))
                + (_mT(x) @ x) @ gt @ (_np.eye(n) - x @ a)]

    def evaluate(a):
        return _numpy_pinv(a, rcond, hermitian, **kwargs)

    return rule_node([a], evaluate(_value(a)), reverse, forward, evaluate,
                     (_pinv_node, operand_slots(1) + (rcond, hermitian), dict(kwargs)))


def qr(a, mode="reduced"):
    """Q, R = qr(A) for mode 'reduced' (the default), 'r' (R alone) and 'complete' when
    m <= n (the same as reduced). For m >= n, with C = Q^T dA R^-1 and Om = L - L^T
    (L the strictly lower triangle of C): dR = (C - Om) R, dQ = dA R^-1 - Q (C - Om).
    Reverse: dA = (gQ + Q Z) R^-T with Z = triu(B) + tril(B^T, -1), B = gR R^T -
    Q^T gQ. For m < n, A = [X | Y] with X square:
    Q, R1 = qr(X) and R = [R1 | Q^T Y], differentiated through those recorded ops
    (R's last n - m columns then agree with LAPACK's to rounding). R must be invertible
    (A of full column rank, or X for m < n). 'complete' with m > n (Q's extra columns
    are not a function of A) and 'raw' raise NotImplementedError."""
    if not _is_variable(a):
        return _np.linalg.qr(a, mode)
    shape = _shape(a)
    if len(shape) < 2 or mode not in ("reduced", "complete", "r", "raw"):
        _np.linalg.qr(_value(a), mode)                          # NumPy's own error
    m, n = shape[-2:]
    if mode == "raw" or (mode == "complete" and m > n):
        raise NotImplementedError(
            f"fasttape differentiates qr with mode 'reduced', 'r', or 'complete' for "
            f"m <= n, not mode={mode!r} on a {m}x{n} matrix")
    if m < n:
        q, r1 = qr(a[..., :, :m])
        r = fnp.concatenate([r1, _mT(q) @ a[..., :, m:]], axis=-1)
    else:
        q, r = _unpack(_qr_packed(a), [(m, n), (n, n)])
    return r if mode == "r" else _QRResult(q, r)


def _qr_packed(a):
    batch, (m, n) = _shape(a)[:-2], _shape(a)[-2:]
    cores = [(m, n), (n, n)]

    def evaluate(a):
        q, r = _np.linalg.qr(a)
        return _np.concatenate([q.reshape(batch + (m * n,)),
                                r.reshape(batch + (n * n,))], axis=-1)

    def times_r_inverse(x, r):
        return _mT(solve(_mT(r), _mT(x)))                       # x R^-1

    def forward(t, packed, a):
        q, r = _unpack(packed, cores)
        y = times_r_inverse(t[0], r)
        c = _mT(q) @ y
        lower = fnp.tril(c, -1)
        c_less_omega = c - lower + _mT(lower)
        return _pack_batch([y - q @ c_less_omega, c_less_omega @ r], batch)

    def reverse(g, packed, a):
        q, r = _unpack(packed, cores)
        gq, gr = _unpack(g, cores)
        b = gr @ _mT(r) - _mT(q) @ gq
        z = fnp.triu(b) + fnp.tril(_mT(b), -1)
        return [_mT(solve(r, _mT(gq + q @ z)))]                 # (gQ + Q Z) R^-T

    return rule_node([a], evaluate(_value(a)), reverse, forward, evaluate,
                     (_qr_packed, operand_slots(1), {}))


# -- norms -----------------------------------------------------------------------------

def norm(x, ord=None, axis=None, keepdims=False):
    """NumPy's vector and matrix norms, built from recorded ops (and, for ord 2, -2 and
    'nuc' of matrices, from the singular values). Conventions where a norm has a kink:

    - 2-norm and Frobenius norm at 0: NaN (x / norm, as autograd);
    - 1-norm and p-norms with p > 1 at a zero entry: 0 in that entry (abs's
      derivative at 0); 0 < p < 1 with a zero entry: not differentiable (reverse mode
      gives NaN); p < 0 with a zero entry: the norm is 0 and so is its gradient;
    - inf/-inf norms of vectors, and 1/-1/inf/-inf norms of matrices: the max (min)
      splits its derivative evenly among tied entries (sums), as fasttape.numpy.max;
    - ord=0 (the count of nonzero entries): derivative 0, NaN where x is inf;
    - spectral norm (2) and -2 at a repeated extreme singular value: u v^T of the pair
      LAPACK returns first (one subgradient); nuclear norm with a zero singular value
      of a square matrix: sum of u_i v_i^T over all pairs (one subgradient).
    """
    if not _is_variable(x):
        return _np.linalg.norm(x, ord, axis, keepdims)
    shape = _shape(x)
    ndim = len(shape)

    def numpy_s_error():
        _np.linalg.norm(_value(x), ord, axis, keepdims)           # raises for bad input
        raise NotImplementedError(f"fasttape does not differentiate norm with "
                                  f"ord={ord!r}, axis={axis!r}")

    if axis is None:
        if ord is None or (ord in ("fro", "f") and ndim == 2):
            result = fnp.sqrt(fnp.sum(x * x))
            return fnp.reshape(result, (1,) * ndim) if keepdims else result
        if ndim not in (1, 2):
            numpy_s_error()
        axes = tuple(range(ndim))
    else:
        try:
            axes = tuple(_normalize_axis(a, ndim)
                         for a in _np.atleast_1d(axis).tolist())
        except (TypeError, ValueError, _np.exceptions.AxisError):
            numpy_s_error()
        if len(axes) not in (1, 2) or len(set(axes)) != len(axes):
            numpy_s_error()
    if len(axes) == 1:
        if isinstance(ord, str):
            numpy_s_error()
        result = _vector_norm(x, ord, axes[0])
    else:
        result = _matrix_norm(x, ord, *axes)
        if result is None:
            numpy_s_error()
    if keepdims:
        result = fnp.reshape(result, tuple(1 if i in axes else d
                                           for i, d in enumerate(shape)))
    return result


def _normalize_axis(a, ndim):
    if not isinstance(a, (int, _np.integer)) or not -ndim <= a < ndim:
        raise ValueError(a)
    return int(a) % ndim


def _vector_norm(x, ord, axis):
    if ord is None or ord == 2:
        return fnp.sqrt(fnp.sum(x * x, axis=axis))
    if ord == _np.inf:
        return fnp.max(fnp.abs(x), axis=axis)
    if ord == -_np.inf:
        return fnp.min(fnp.abs(x), axis=axis)
    if ord == 0:
        count = _np.sum(_value(x) != 0, axis=axis).astype(_np.float64)
        return count + 0.0 * fnp.sum(x, axis=axis)
    if ord == 1:
        return fnp.sum(fnp.abs(x), axis=axis)
    return fnp.sum(fnp.abs(x) ** float(ord), axis=axis) ** (1.0 / float(ord))


def _matrix_norm(x, ord, row, col):
    """The norm over the axes (row, col), or None for an order NumPy refuses."""
    if ord is None or ord in ("fro", "f"):
        return fnp.sqrt(fnp.sum(x * x, axis=(row, col)))
    if ord in ("nuc", 2, -2):
        s = _singular_values(fnp.moveaxis(x, (row, col), (-2, -1)))
        return fnp.sum(s, axis=-1) if ord == "nuc" else s[..., 0 if ord == 2 else -1]
    if ord in (1, -1, _np.inf, -_np.inf):
        summed, other = (row, col) if ord in (1, -1) else (col, row)
        if other > summed:
            other -= 1
        sums = fnp.sum(fnp.abs(x), axis=summed)
        return fnp.max(sums, axis=other) if ord > 0 else fnp.min(sums, axis=other)
    return None


def vector_norm(x, /, *, axis=None, keepdims=False, ord=2):
    """NumPy 2's vector_norm: the norm of the entries over `axis` (all of them by
    default, or a tuple of axes) as one vector; conventions as in norm."""
    if not _is_variable(x):
        return _np.linalg.vector_norm(x, axis=axis, keepdims=keepdims, ord=ord)
    shape = _shape(x)
    axes = tuple(range(len(shape))) if axis is None else tuple(
        _normalize_axis(a, len(shape)) for a in _np.atleast_1d(axis).tolist())
    rest = tuple(i for i in range(len(shape)) if i not in axes)
    flat = fnp.reshape(fnp.transpose(x, rest + axes),
                       tuple(shape[i] for i in rest) + (-1,))
    result = _vector_norm(flat, ord, -1)
    if keepdims:
        result = fnp.reshape(result, tuple(1 if i in axes else d
                                           for i, d in enumerate(shape)))
    return result


def matrix_norm(x, /, *, keepdims=False, ord="fro"):
    """NumPy 2's matrix_norm: norm over the last two axes."""
    if not _is_variable(x):
        return _np.linalg.matrix_norm(x, keepdims=keepdims, ord=ord)
    return norm(x, ord, (-2, -1), keepdims)


def cond(x, p=None):
    """The condition number: s_max / s_min for p None, 2 (and the inverse for -2),
    else norm(x, p) * norm(inv(x), p); derivatives through those (see norm)."""
    if not _is_variable(x):
        return _numpy2_cond(x, p)
    if p is None or p in (2, -2):
        s = _singular_values(x)
        return s[..., 0] / s[..., -1] if p != -2 else s[..., -1] / s[..., 0]
    return norm(x, p, (-2, -1)) * norm(inv(x), p, (-2, -1))


# -- built from the above --------------------------------------------------------------

def matrix_power(a, n):
    """A^n by repeated squaring of recorded products (n >= 0), of inv(A) for n < 0;
    the identity (a constant) for n = 0."""
    if not _is_variable(a):
        return _np.linalg.matrix_power(a, n)
    shape = _shape(a)
    if len(shape) < 2 or shape[-1] != shape[-2]:
        return _np.linalg.matrix_power(_value(a), n)            # NumPy's own error
    if not isinstance(n, (int, _np.integer)):
        raise TypeError("exponent must be an integer")
    if n == 0:
        return _np.broadcast_to(_np.eye(shape[-1]), shape).copy()
    base = inv(a) if n < 0 else a
    n = abs(int(n))
    result = None
    while n:
        if n & 1:
            result = base if result is None else result @ base
        n >>= 1
        if n:
            base = base @ base
    return result


def multi_dot(arrays, *, out=None):
    """dot of a chain, the first and last arrays may be 1-d (NumPy's rule), multiplied
    left to right as recorded products (NumPy picks the cheapest order instead; the
    values agree to rounding)."""
    if not any(_is_variable(x) for x in arrays):
        return _np.linalg.multi_dot(arrays, out=out)
    if out is not None:
        raise TypeError("multi_dot: out= is not supported for Variables")
    if len(arrays) < 2:
        raise ValueError("Expecting at least two arrays.")
    ends = (_np.ndim(_value(arrays[0])), _np.ndim(_value(arrays[-1])))
    if any(_np.ndim(_value(x)) != 2 for x in arrays[1:-1]) or not all(
            1 <= d <= 2 for d in ends):
        return _np.linalg.multi_dot([_value(x) for x in arrays])  # NumPy's own error
    result = arrays[0]
    for x in arrays[1:]:
        result = fnp.dot(result, x)
    return result


def tensorinv(a, ind=2):
    """The inverse of a as a tensor: inv of its (prod(shape[:ind]), -1) matrix."""
    if not _is_variable(a):
        return _np.linalg.tensorinv(a, ind)
    shape = _shape(a)
    if ind <= 0:
        raise ValueError("Invalid ind argument.")
    rows = int(_np.prod(shape[:ind], dtype=_np.int64))
    return fnp.reshape(inv(fnp.reshape(a, (rows, -1))), shape[ind:] + shape[:ind])


def tensorsolve(a, b, axes=None):
    """x with tensordot(a, x, x.ndim) = b: a solve of the matrix forms."""
    if not (_is_variable(a) or _is_variable(b)):
        return _np.linalg.tensorsolve(a, b, axes)
    a_shape = _shape(a)
    if axes is not None:
        order = [i for i in range(len(a_shape)) if i not in
                 [ax % len(a_shape) for ax in axes]]
        order += [ax % len(a_shape) for ax in axes]
        a = fnp.transpose(a, order)
        a_shape = _shape(a)
    b_ndim = _np.ndim(_value(b))
    x_shape = a_shape[b_ndim:]
    size = int(_np.prod(x_shape, dtype=_np.int64))
    if int(_np.prod(a_shape[:b_ndim], dtype=_np.int64)) != size:
        return _np.linalg.tensorsolve(_value(a), _value(b))     # NumPy's own error
    return fnp.reshape(solve(fnp.reshape(a, (size, size)), fnp.reshape(b, (-1,))),
                       x_shape)


def matrix_transpose(x, /):
    return _mT(x) if _is_variable(x) else _np.linalg.matrix_transpose(x)


def diagonal(x, /, *, offset=0):
    return (fnp.diagonal(x, offset, axis1=-2, axis2=-1) if _is_variable(x)
            else _np.linalg.diagonal(x, offset=offset))


def trace(x, /, *, offset=0, dtype=None):
    return (fnp.sum(diagonal(x, offset=offset), axis=-1) if _is_variable(x)
            else _np.linalg.trace(x, offset=offset, dtype=dtype))


def outer(x1, x2, /):
    if not (_is_variable(x1) or _is_variable(x2)):
        return _np.linalg.outer(x1, x2)
    if _np.ndim(_value(x1)) != 1 or _np.ndim(_value(x2)) != 1:
        return _np.linalg.outer(_value(x1), _value(x2))         # NumPy's own error
    return fnp.outer(x1, x2)


def vecdot(x1, x2, /, *, axis=-1):
    if not (_is_variable(x1) or _is_variable(x2)):
        return _np.linalg.vecdot(x1, x2, axis=axis)
    return fnp.sum(x1 * x2, axis=axis)


def matmul(x1, x2, /):
    return fnp.matmul(x1, x2)


def tensordot(x1, x2, /, *, axes=2):
    return fnp.tensordot(x1, x2, axes=axes)


def cross(x1, x2, /, *, axis=-1):
    """The cross product of 3-vectors along `axis`, from recorded products."""
    if not (_is_variable(x1) or _is_variable(x2)):
        return _np.linalg.cross(x1, x2, axis=axis)
    if _shape(x1)[axis] != 3 or _shape(x2)[axis] != 3:
        return _np.linalg.cross(_value(x1), _value(x2), axis=axis)  # NumPy's own error
    a, b = fnp.moveaxis(x1, axis, -1), fnp.moveaxis(x2, axis, -1)
    parts = [a[..., (i + 1) % 3] * b[..., (i + 2) % 3]
             - a[..., (i + 2) % 3] * b[..., (i + 1) % 3] for i in range(3)]
    return fnp.moveaxis(fnp.stack(parts, axis=-1), -1, axis)


# the dispatch table for plain NumPy calls on Variables (registered with
# fasttape._arrays by fasttape._wiring)
# (NumPy 1 lacks the array-API names: svdvals, matrix_norm, vecdot, ...)
_FUNCTIONS = {getattr(_np.linalg, f.__name__): f
              for f in (norm, inv, solve, det, slogdet, cholesky, eigh, eigvalsh, eig,
                        eigvals, svd, svdvals, pinv, qr, vector_norm, matrix_norm, cond,
                        matrix_power, multi_dot, tensorinv, tensorsolve,
                        matrix_transpose, diagonal, trace, outer, vecdot, matmul,
                        tensordot, cross)
              if hasattr(_np.linalg, f.__name__)}
