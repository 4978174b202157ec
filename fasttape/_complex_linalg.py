"""numpy.linalg of complex values (fasttape._complex.ComplexArray, or real matrices
whose results are complex, such as eig of a real matrix with complex eigenvalues).

Each decomposition or determinant is ONE tape node (fasttape._rule_nodes.rule_node)
whose operands are the real parts of its inputs that are Variables and whose value
is its results' real and imaginary parts, flattened and set end to end (split again
into ComplexArrays by views). The rules are written with NumPy's operators and
functions, which dispatch to fasttape for ComplexArrays and Variables and stay plain
NumPy for numbers: the same rule computes numbers in the sweeps and records itself
when a derivative is differentiated again. The rest (norm, cond, kron, matrix_power,
trace, multi_dot) are compositions of complex operations (fasttape._complex).

Conventions. The cotangent of a complex value is its natural real adjoint g_re +
i g_im, for <X, Y> = Re tr(X^H Y), so the rules are the real ones with transposes
made conjugate transposes (Giles' results for det, inv, pinv, cholesky; the complex
SVD and eig adjoints), and the gradient of a real loss is autograd's, df/dx - i df/dy
(fasttape._complex_recording turns these cotangents into it). A real operand's
cotangent is the real part.

Gauges. Eigenvectors and singular vectors of complex matrices are defined up to a
phase per vector; NumPy (LAPACK) picks one. The tangents below fix it by: eigh and
eig, the phase of each vector constant (Im(v_j^H dv_j) = 0); svd, the phase change
split evenly between u_j and v_j. A loss that does not depend on those phases (|v|,
v v^H, u_j v_j^H, the values) has the derivative these give; for another loss the
derivative is that of this gauge. eig also keeps each vector's length 1 (NumPy's).
Repeated eigenvalues or singular values make the vectors' derivatives inf/NaN, as in
the real rules (fasttape.numpy.linalg).
"""
import numpy as np

import fasttape.numpy as fnp
import fasttape.numpy.linalg as fnp_linalg
from fasttape import _complex
from fasttape._compat import solve as _numpy2_solve
from fasttape._complex import ComplexArray, is_variable, make, split
from fasttape._rule_nodes import operand_slots, rule_node

_SVDResult = fnp_linalg._SVDResult
_EighResult = fnp_linalg._EighResult
_EigResult = fnp_linalg._EigResult
_SlogdetResult = fnp_linalg._SlogdetResult


def _traced(x):
    return type(x) is ComplexArray or is_variable(x)


def _plain(x):
    return _complex._plain(x)


def _shape(x):
    return np.shape(_plain(x))


def _mT(x):
    return np.swapaxes(x, -1, -2)


def _mH(x):
    return np.conj(np.swapaxes(x, -1, -2))


def _rows(v):
    return np.expand_dims(v, -2)


def _columns(v):
    return np.expand_dims(v, -1)


def _diagonal(a):
    return np.diagonal(a, axis1=-2, axis2=-1)


def _diag_matrix(v):
    return _rows(v) * np.eye(_shape(v)[-1])


def _gaps(w):
    """F_ij = 1 / (w_j - w_i) off the diagonal, 0 on it (inf at a repeated value)."""
    n = _shape(w)[-1]
    eye = np.eye(n)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (1.0 - eye) / (_rows(w) - _columns(w) + eye)


def _nonzero(x):
    return x is not None and (_traced(x) or bool(np.any(np.asarray(x) != 0)))


def _zeros(shape):
    return np.zeros(shape) if shape else 0.0


# -- one node of complex values ---------------------------------------------------------

def _apply(kind, options, operands):
    """The results (a list) of RULES[kind] on operands (complex or real values) as one
    node of their Variable parts; plain values: NumPy's results."""
    parts = [split(x) for x in operands]
    results = RULES[kind][0](*[_plain(x) for x in operands], **dict(options))
    if not any(is_variable(p) for pair in parts for p in pair):
        return results
    layout = tuple((j, p) for j, pair in enumerate(parts) for p in (0, 1)
                   if is_variable(pair[p]))
    constants = tuple(tuple(None if is_variable(v) else v for v in pair)
                      for pair in parts)
    variables = [parts[j][p] for j, p in layout]
    node = _node(kind, options, layout, constants, *variables, results=results)
    return _unpack(node, _cores(results))


def _cores(results):
    """(shape, complex) of each result."""
    return [(np.shape(r), np.iscomplexobj(r)) for r in results]


def _node(kind, options, layout, constants, *variables, results=None):
    """The node, its value the results packed (see _pack; results: the plain results
    when the caller has them); also the recipe that records it again, for a pickled
    tape."""
    evaluate_values, reverse_rule, forward_rule = RULES[kind]
    kwargs = dict(options)

    def operands_of(values):
        pairs = [list(c) for c in constants]
        for (j, p), v in zip(layout, values):
            pairs[j][p] = v
        # (a real operand stays real: its imaginary part is None)
        return [re if im is None else make(re, im) for re, im in pairs]

    if results is None:             # (the values at the variables' values)
        results = evaluate_values(*operands_of([v.value for v in variables]), **kwargs)
    cores = _cores(results)

    def evaluate(*values):
        return _pack(evaluate_values(*operands_of(values), **kwargs), cores)

    def reverse(g, ans, *values):
        operands = operands_of(values)
        cotangents = reverse_rule(_unpack(g, cores), _unpack(ans, cores), *operands,
                                  **kwargs)
        result = []
        for j, p in layout:
            c = cotangents[j]
            if c is None:
                result.append(None)
                continue
            re, im = split(c)
            part = re if p == 0 else im
            result.append(part if part is not None else
                          _zeros(np.shape(values[len(result)])))
        return result

    # (an operand with no imaginary part at all is real, and so is its tangent)
    real_operand = [c[1] is None and (j, 1) not in layout
                    for j, c in enumerate(constants)]

    def forward(tangents, ans, *values):
        pairs = [[None, None] for _ in constants]
        for (j, p), t in zip(layout, tangents):
            pairs[j][p] = t
        complex_tangents = [None if re is None and im is None else
                            re if real_operand[j] else make(re, im)
                            for j, (re, im) in enumerate(pairs)]
        out = forward_rule(complex_tangents, _unpack(ans, cores),
                           *operands_of(values), **kwargs)
        return _pack(out, cores)

    packed = _pack(results, cores)
    recipe = (_node, (kind, options, layout, constants) +
              operand_slots(len(variables)), {})
    return rule_node(list(variables), packed, reverse, forward, evaluate, recipe)


def _pack(results, cores):
    """Results (complex or real, None for zeros) as one flat real vector: each one's
    real part, then its imaginary part if it is complex."""
    pieces = []
    for r, (shape, is_complex) in zip(results, cores):
        re, im = split(r) if r is not None else (None, None)
        pieces.append(re if re is not None else np.zeros(shape))
        if is_complex:
            pieces.append(im if im is not None else np.zeros(shape))
    if any(is_variable(p) for p in pieces):
        return fnp.concatenate([fnp.reshape(p, (-1,)) for p in pieces])
    return np.concatenate([np.ravel(p) for p in pieces])


def _unpack(packed, cores):
    """The inverse of _pack (complex results as ComplexArrays of views of a node)."""
    results, start = [], 0

    def take(shape):
        nonlocal start
        size = int(np.prod(shape, dtype=np.int64))
        piece = np.reshape(packed[start:start + size], shape)
        start += size
        return piece

    for shape, is_complex in cores:
        re = take(shape)
        results.append(make(re, take(shape)) if is_complex else re)
    return results


# -- determinants -------------------------------------------------------------------------

def _det_values(a):
    return [np.linalg.det(a)]


def _det_reverse(g, ans, a):
    """d = det A, dd = d tr(A^-1 dA):  A_bar = g conj(d) A^-H."""
    scale = g[0] * np.conj(ans[0])
    return [_columns(_columns(scale)) * _mH(np.linalg.inv(a))]


def _det_forward(t, ans, a):
    return [ans[0] * np.sum(_mT(np.linalg.inv(a)) * t[0], axis=(-2, -1))]


def _slogdet_values(a):
    sign, logdet = np.linalg.slogdet(a)
    return [sign, logdet]


def _slogdet_forward(t, ans, a):
    """With L = tr(A^-1 dA): d log|det A| = Re L, d sign = i sign Im L."""
    trace = np.sum(_mT(np.linalg.inv(a)) * t[0], axis=(-2, -1))
    return [1j * ans[0] * np.imag(trace), np.real(trace)]


def _slogdet_reverse(g, ans, a):
    """The adjoint of the tangents above: A_bar = conj(w) A^-H, w = g_log - i c with
    c = Re(conj(g_sign) i sign)."""
    weight = g[1]
    if _nonzero(g[0]):
        weight = weight - 1j * np.real(np.conj(g[0]) * 1j * ans[0])
    return [_columns(_columns(np.conj(weight))) * _mH(np.linalg.inv(a))]


def det(a):
    return _apply("det", (), [a])[0]


def slogdet(a):
    return _SlogdetResult(*_apply("slogdet", (), [a]))


# -- Cholesky -------------------------------------------------------------------------------

def _phi(x):
    """Lower triangle with the diagonal halved."""
    return np.tril(x) - 0.5 * np.eye(_shape(x)[-1]) * x


def _hermitian_part(x):
    return 0.5 * (x + _mH(x))


def _cholesky_values(a):
    return [np.linalg.cholesky(a)]


def _cholesky_forward(t, ans, a):
    """A = L L^H (A Hermitian, the tangent taken Hermitian): dL = L Phi(L^-1 dA L^-H)."""
    L = ans[0]
    linv = np.linalg.inv(L)
    return [L @ _phi(linv @ _hermitian_part(t[0]) @ _mH(linv))]


def _cholesky_reverse(g, ans, a):
    """A_bar = herm(L^-H Phi(L^H G) L^-1) (a Hermitian cotangent, as the real rule's
    symmetric one)."""
    L = ans[0]
    linv = np.linalg.inv(L)
    return [_hermitian_part(_mH(linv) @ _phi(_mH(L) @ g[0]) @ linv)]


def cholesky(a):
    return _apply("cholesky", (), [a])[0]


# -- Hermitian eigenproblem --------------------------------------------------------------

def _hermitian_from(a, UPLO):
    """The Hermitian matrix LAPACK reads from one triangle of a (the diagonal's real
    part), as recorded operations."""
    if UPLO.upper() == "L":
        strict = np.tril(a, -1)
    else:
        strict = np.triu(a, 1)
    return strict + _mH(strict) + _diag_matrix(np.real(_diagonal(a)))


def _eigh_values(a):
    w, v = np.linalg.eigh(a)
    return [w, v.astype(complex)]


def _eigh_forward(t, ans, a):
    """P = V^H dA V:  dw = Re diag(P), dV = V (F o P)."""
    w, v = ans
    p = _mH(v) @ t[0] @ v
    return [np.real(_diagonal(p)), v @ (_gaps(w) * p)]


def _eigh_reverse(g, ans, a):
    """A_bar = V (diag(g_w) + F o (V^H g_V)) V^H (the vector part skipped when g_V is
    zero, so that functions of the values stay finite at repeated ones)."""
    w, v = ans
    inner = _diag_matrix(g[0])
    if _nonzero(g[1]):
        inner = inner + _gaps(w) * (_mH(v) @ g[1])
    return [v @ inner @ _mH(v)]


def eigh(a, UPLO="L"):
    fnp_linalg._check_uplo(UPLO)
    return _EighResult(*_apply("eigh", (), [_hermitian_from(a, UPLO)]))


def eigvalsh(a, UPLO="L"):
    return eigh(a, UPLO)[0]


# -- general eigenproblem -------------------------------------------------------------

def _eig_values(a):
    w, v = np.linalg.eig(a)
    return [w.astype(complex), v.astype(complex)]


def _keep_length(v, x):
    """N(X) = X - V diag(Re diag(V^H X)): the change of each unit column of V less its
    part along that column's length."""
    return x - v * _rows(np.real(np.sum(np.conj(v) * x, axis=-2)))


def _eig_forward(t, ans, a):
    """P = V^-1 dA V:  dw = diag(P), dV = N(V (F o P))."""
    w, v = ans
    p = np.linalg.solve(v, t[0] @ v)
    return [_diagonal(p), _keep_length(v, v @ (_gaps(w) * p))]


def _eig_reverse(g, ans, a):
    """A_bar = V^-H (diag(g_w) + conj(F) o (V^H N(g_V))) V^H (N is self-adjoint)."""
    w, v = ans
    inner = _diag_matrix(g[0])
    if _nonzero(g[1]):
        inner = inner + np.conj(_gaps(w)) * (_mH(v) @ _keep_length(v, g[1]))
    return [np.linalg.solve(_mH(v), inner @ _mH(v))]


def eig(a):
    return _EigResult(*_apply("eig", (), [a]))


def eigvals(a):
    return eig(a)[0]


# -- singular value decomposition ----------------------------------------------------------

def _svd_values(a, full_matrices, hermitian):
    u, s, vh = np.linalg.svd(a, full_matrices, True, hermitian)
    return [u.astype(complex), s, vh.astype(complex)]


def _svd_thin(ans):
    u, s, vh = ans
    k = _shape(s)[-1]
    return u[..., :, :k], s, _mH(vh[..., :k, :])


def _svd_forward(t, ans, a, full_matrices, hermitian):
    """P = U^H dA V, F_ij = 1/(s_j^2 - s_i^2), D = diag(i Im(P_ii) / (2 s_i)):
    ds = Re diag(P), dU = U (F o (P S + S P^H) + D) + (I - U U^H) dA V S^-1,
    dV = V (F o (S P + P^H S) - D) + (I - V V^H) dA^H U S^-1 (the last terms for
    non-square A)."""
    u, s, v = _svd_thin(ans)
    m, mu = _shape(ans[0])[-2:]
    nv, n = _shape(ans[2])[-2:]
    k = _shape(s)[-1]
    ta = t[0]
    p = _mH(u) @ ta @ v
    f = _gaps(s * s)
    phase = _diag_matrix(0.5j * np.imag(_diagonal(p)) / s)
    du = u @ (f * (p * _rows(s) + _columns(s) * _mH(p)) + phase)
    dv = v @ (f * (_columns(s) * p + _mH(p) * _rows(s)) - phase)
    if m > k:
        du = du + (ta @ v - u @ p) / _rows(s)
    if n > k:
        dv = dv + (_mH(ta) @ u - v @ _mH(p)) / _rows(s)
    dvh = _mH(dv)
    batch = _shape(s)[:-1]
    if mu > k:                       # U's extra columns: no derivative
        du = np.concatenate([du, np.full(batch + (m, mu - k), np.nan)], axis=-1)
    if nv > k:
        dvh = np.concatenate([dvh, np.full(batch + (nv - k, n), np.nan)], axis=-2)
    return [du, np.real(_diagonal(p)), dvh]


def _svd_reverse(g, ans, a, full_matrices, hermitian):
    """The adjoint of the tangents above: with J = U^H g_U, K = V^H g_V,
    M = diag(g_s) + (F o (J - J^H)) S + S (F o (K - K^H)) + diag(i Im(J_ii - K_ii)
    / (2 s_i)):  A_bar = U M V^H + (I - U U^H) g_U S^-1 V^H + U S^-1 g_V^H (I - V V^H)."""
    u, s, v = _svd_thin(ans)
    k = _shape(s)[-1]
    m, mu = _shape(ans[0])[-2:]
    nv, n = _shape(ans[2])[-2:]
    gu_full, gs, gvh_full = g
    if (mu > k and _nonzero(gu_full[..., :, k:])) or (
            nv > k and _nonzero(gvh_full[..., k:, :])):
        raise ValueError(
            "svd(full_matrices=True): the extra columns of U (or rows of Vh) of a "
            "non-square matrix are not a function of it and have no derivative; use "
            "full_matrices=False")
    gu, gv = gu_full[..., :, :k], _mH(gvh_full[..., :k, :])
    inner = _diag_matrix(gs)
    vector_part = _nonzero(gu) or _nonzero(gv)
    if vector_part:
        f = _gaps(s * s)
        j, kk = _mH(u) @ gu, _mH(v) @ gv
        inner = inner + (f * (j - _mH(j))) * _rows(s) \
            + _columns(s) * (f * (kk - _mH(kk))) \
            + _diag_matrix(0.5j * np.imag(_diagonal(j) - _diagonal(kk)) / s)
    ga = u @ inner @ _mH(v)
    if vector_part and m > k:
        ga = ga + ((gu - u @ (_mH(u) @ gu)) / _rows(s)) @ _mH(v)
    if vector_part and n > k:
        ga = ga + u @ _mH((gv - v @ (_mH(v) @ gv)) / _rows(s))
    return [ga]


def _singular_values_values(a, hermitian):
    return [np.linalg.svd(a, compute_uv=False, hermitian=hermitian)]


def _singular_values_forward(t, ans, a, hermitian):
    """ds = Re diag(U^H dA V) (U, V recomputed: a recorded svd when differentiated
    again)."""
    u, _, vh = np.linalg.svd(a, full_matrices=False, hermitian=hermitian)
    return [np.real(np.sum(np.conj(u) * (t[0] @ _mH(vh)), axis=-2))]


def _singular_values_reverse(g, ans, a, hermitian):
    """A_bar = U diag(g_s) V^H."""
    u, _, vh = np.linalg.svd(a, full_matrices=False, hermitian=hermitian)
    return [(u * _rows(g[0])) @ vh]


def svd(a, full_matrices=True, compute_uv=True, hermitian=False):
    """hermitian=True: the Hermitian matrix read from the lower triangle (as NumPy's
    eigh-based path reads it), decomposed by NumPy's Hermitian path."""
    if len(_shape(a)) < 2:
        np.linalg.svd(_plain(a))                                # NumPy's own error
    hermitian = bool(hermitian)
    if hermitian:
        a = _hermitian_from(a, "L")
    if not compute_uv:
        return _apply("singular_values", (("hermitian", hermitian),), [a])[0]
    return _SVDResult(*_apply("svd", (("full_matrices", bool(full_matrices)),
                                      ("hermitian", hermitian)), [a]))


def svdvals(x, /):
    return svd(x, compute_uv=False)


# -- pseudo-inverse -------------------------------------------------------------------------

def _pinv_values(a, rcond, rtol):
    kwargs = {} if rtol is None else {"rtol": rtol}
    return [fnp_linalg._numpy_pinv(a, rcond, False, **kwargs).astype(complex)]


def _pinv_forward(t, ans, a, rcond, rtol):
    """X = A^+ (constant rank): dX = -X dA X + X X^H dA^H (I - A X) +
    (I - X A) dA^H X^H X."""
    x = ans[0]
    m, n = _shape(a)[-2:]
    ta_h = _mH(t[0])
    return [-(x @ t[0] @ x) + x @ (_mH(x) @ ta_h) @ (np.eye(m) - a @ x)
            + (np.eye(n) - x @ a) @ ta_h @ (_mH(x) @ x)]


def _pinv_reverse(g, ans, a, rcond, rtol):
    """A_bar = -X^H G X^H + (I - A X) G^H X X^H + X^H X G^H (I - X A)."""
    x = ans[0]
    m, n = _shape(a)[-2:]
    gh = _mH(g[0])
    return [-(_mH(x) @ g[0] @ _mH(x)) + (np.eye(m) - a @ x) @ gh @ (x @ _mH(x))
            + (_mH(x) @ x) @ gh @ (np.eye(n) - x @ a)]


def pinv(a, rcond=None, hermitian=False, *, rtol=None):
    if len(_shape(a)) < 2:
        np.linalg.pinv(_plain(a))                               # NumPy's own error
    if hermitian:
        a = _hermitian_from(a, "L")
    return _apply("pinv", (("rcond", rcond), ("rtol", rtol)), [a])[0]



# -- inverse and solve ----------------------------------------------------------------

def _inv_values(a):
    return [np.asarray(np.linalg.inv(a), dtype=complex)]


def _inv_forward(t, ans, a):
    """Y = A^-1:  dY = -Y dA Y."""
    return [-(ans[0] @ t[0] @ ans[0])]


def _inv_reverse(g, ans, a):
    """A_bar = -Y^H G Y^H."""
    y_h = _mH(ans[0])
    return [-(y_h @ g[0] @ y_h)]


def inv(a):
    if len(_shape(a)) < 2:
        np.linalg.inv(_plain(a))                                # NumPy's own error
    return _apply("inv", (), [a])[0]


def _solve_values(a, b):
    return [np.asarray(_numpy2_solve(a, b), dtype=complex)]


def _as_columns(v, vector):
    return np.expand_dims(v, -1) if vector else v


def _sum_to(x, shape):
    """The adjoint of broadcasting an operand of `shape` to x's shape."""
    x_shape = _shape(x)
    extra = len(x_shape) - len(shape)
    if extra > 0:
        x = np.sum(x, axis=tuple(range(extra)))
        x_shape = x_shape[extra:]
    stretched = tuple(i for i, (d, e) in enumerate(zip(shape, x_shape)) if d == 1 != e)
    return np.sum(x, axis=stretched, keepdims=True) if stretched else x


def _solve_forward(t, ans, a, b):
    """X = A^-1 B:  dX = A^-1 (dB - dA X) (a 1-d B: one vector for a batch of A)."""
    vector = len(_shape(b)) == 1
    x = _as_columns(ans[0], vector)
    rhs = np.zeros(_shape(x))
    if t[1] is not None:
        rhs = rhs + _as_columns(t[1], vector)
    if t[0] is not None:
        rhs = rhs - t[0] @ x
    return [np.reshape(np.linalg.solve(a, rhs), _shape(ans[0]))]


def _solve_reverse(g, ans, a, b):
    """B_bar = A^-H G, A_bar = -B_bar X^H, each summed over the batch axes its operand
    was broadcast along."""
    vector = len(_shape(b)) == 1
    gb = np.linalg.solve(_mH(a), _as_columns(g[0], vector))
    ga = -(gb @ _mH(_as_columns(ans[0], vector)))
    if vector:
        gb = gb[..., 0]
    return [_sum_to(ga, _shape(a)), _sum_to(gb, _shape(b))]


def solve(a, b):
    """solve with a complex matrix or right-hand side (NumPy 2's rule for a 1-d b)."""
    if len(_shape(a)) < 2:
        _numpy2_solve(_plain(a), _plain(b))                     # NumPy's own error
    return _apply("solve", (), [a, b])[0]



# kind: (values, reverse rule, forward rule), see _apply
RULES = {
    "det": (_det_values, _det_reverse, _det_forward),
    "slogdet": (_slogdet_values, _slogdet_reverse, _slogdet_forward),
    "cholesky": (_cholesky_values, _cholesky_reverse, _cholesky_forward),
    "eigh": (_eigh_values, _eigh_reverse, _eigh_forward),
    "eig": (_eig_values, _eig_reverse, _eig_forward),
    "svd": (_svd_values, _svd_reverse, _svd_forward),
    "singular_values": (_singular_values_values, _singular_values_reverse,
                        _singular_values_forward),
    "pinv": (_pinv_values, _pinv_reverse, _pinv_forward),
    "inv": (_inv_values, _inv_reverse, _inv_forward),
    "solve": (_solve_values, _solve_reverse, _solve_forward),
}


# -- built from complex operations ------------------------------------------------------

def _abs_parts(x):
    """|x| elementwise, a real value (hypot of the parts)."""
    return _complex.absolute(x)


def _sum_of_squares(x, axis, keepdims=False):
    re, im = split(x)
    squares = re * re if im is None else (im * im if re is None else
                                          re * re + im * im)
    return fnp.sum(squares, axis=axis, keepdims=keepdims)


def norm(x, ord=None, axis=None, keepdims=False):
    """NumPy's norms of a complex array. The 2-norm and Frobenius norm are
    sqrt(sum(re^2 + im^2)); the matrix norms of order 2, -2 and 'nuc' come from the
    complex singular values; every other order is a function of the moduli |x|, and is
    the real norm (fasttape.numpy.linalg.norm, with its conventions at kinks) of them."""
    shape = _shape(x)
    ndim = len(shape)
    np.linalg.norm(np.zeros(shape), ord, axis, keepdims)          # NumPy's errors
    if axis is None and (ord is None or (ord in ("fro", "f") and ndim == 2)):
        result = fnp.sqrt(_sum_of_squares(x, None))
        return fnp.reshape(result, (1,) * ndim) if keepdims else result
    axes = tuple(range(ndim)) if axis is None else tuple(
        int(a) % ndim for a in np.atleast_1d(axis).tolist())
    if len(axes) == 1 and (ord is None or ord == 2):
        return fnp.sqrt(_sum_of_squares(x, axes[0], keepdims))
    if len(axes) == 2 and (ord is None or ord in ("fro", "f")):
        return fnp.sqrt(_sum_of_squares(x, axes, keepdims))
    if len(axes) == 2 and ord in ("nuc", 2, -2):
        s = svd(_complex.moveaxis(x, axes, (-2, -1)), compute_uv=False)
        result = fnp.sum(s, axis=-1) if ord == "nuc" else \
            s[..., 0 if ord == 2 else -1]
        if keepdims:
            result = fnp.reshape(result, tuple(1 if i in axes else d
                                               for i, d in enumerate(shape)))
        return result
    return fnp_linalg.norm(_abs_parts(x), ord, axis, keepdims)


def vector_norm(x, /, *, axis=None, keepdims=False, ord=2):
    return fnp_linalg.vector_norm(_abs_parts(x), axis=axis, keepdims=keepdims, ord=ord)


def matrix_norm(x, /, *, keepdims=False, ord="fro"):
    return norm(x, ord, (-2, -1), keepdims)


def cond(x, p=None):
    """s_max / s_min of the complex singular values for p None or 2 (the inverse for
    -2), else norm(x, p) * norm(inv(x), p)."""
    if p is None or p in (2, -2):
        s = svd(x, compute_uv=False)
        return s[..., 0] / s[..., -1] if p != -2 else s[..., -1] / s[..., 0]
    return norm(x, p, (-2, -1)) * norm(inv(x), p, (-2, -1))


def matrix_power(a, n):
    """A^n by repeated squaring of complex products (of inv(A) for n < 0)."""
    shape = _shape(a)
    if len(shape) < 2 or shape[-1] != shape[-2]:
        return np.linalg.matrix_power(_plain(a), n)             # NumPy's own error
    if not isinstance(n, (int, np.integer)):
        raise TypeError("exponent must be an integer")
    if n == 0:
        return np.broadcast_to(np.eye(shape[-1], dtype=complex), shape).copy()
    base = inv(a) if n < 0 else a
    n = abs(int(n))
    result = None
    while n:
        if n & 1:
            result = base if result is None else _complex.matmul(result, base)
        n >>= 1
        if n:
            base = _complex.matmul(base, base)
    return result


def trace(x, /, *, offset=0, dtype=None):
    """numpy.linalg.trace (the array API's): over the last two axes."""
    return _complex.sum(_complex.diagonal(x, offset, axis1=-2, axis2=-1), axis=-1)


def multi_dot(arrays, *, out=None):
    if out is not None:
        raise TypeError("multi_dot: out= is not supported for Variables")
    result = arrays[0]
    for x in arrays[1:]:
        result = _complex.dot(result, x)
    return result


kron = _complex._bilinear(fnp.kron)       # (four real products of the parts at most)


# the dispatch table for NumPy calls on ComplexArrays (merged into fasttape._complex's
# by fasttape._wiring), and the functions that fasttape.numpy.linalg hands a real
# matrix with a complex result, or a complex constant operand, to
FUNCTIONS = {getattr(np.linalg, f.__name__): f
             for f in (det, slogdet, cholesky, eigh, eigvalsh, eig, eigvals, svd,
                       svdvals, pinv, inv, solve, norm, vector_norm, matrix_norm, cond,
                       matrix_power, trace, multi_dot)
             if hasattr(np.linalg, f.__name__)}
FUNCTIONS[np.kron] = kron
FOR_REAL_LINALG = {"eig": eig, "eigvals": eigvals, "solve": solve}
