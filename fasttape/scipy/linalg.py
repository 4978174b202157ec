"""scipy.linalg, differentiable: sqrtm, solve_triangular, solve_banded,
solve_sylvester, and (through fasttape.numpy.linalg) cholesky, inv, det and solve.

Each function is one tape node whose rules (noted beside each) are written with
fasttape.numpy and with the functions of this module, so a rule records itself when
a derivative is differentiated again: reverse and forward mode, every order. Every
other name of scipy.linalg is SciPy's own function, for plain arrays: called with a
Variable it raises a TypeError naming it (autograd wraps them the same way, without
derivatives).
"""
import numpy as _np
import scipy.linalg as _sla

import fasttape.numpy as fnp
import fasttape.numpy.linalg as _fla
from fasttape import _complex
from fasttape._arrays import ArrayVariable
from fasttape._rule_nodes import operand_slots, rule_node
from fasttape._variable import Variable

__all__ = ["sqrtm", "solve_triangular", "solve_banded", "solve_sylvester", "cholesky",
           "inv", "det", "solve"]


def _is_variable(x):
    return type(x) is Variable or type(x) is ArrayVariable


def _value(x):
    return x.value if _is_variable(x) else _np.asarray(x, dtype=_np.float64)


def _mT(a):
    return fnp.swapaxes(a, -1, -2)


def _columns(x, vector):
    """A right-hand side as a matrix: (n,) -> (n, 1) when it was a vector."""
    return fnp.reshape(x, (-1, 1)) if vector else x


def _square(a, name):
    shape = _np.shape(_value(a))
    if len(shape) != 2 or shape[0] != shape[1]:
        raise ValueError(f"{name}: expected a square matrix, got shape {shape}")
    return shape[0]


# -- through fasttape.numpy.linalg --------------------------------------------------------

def inv(a, overwrite_a=False, check_finite=True):
    """A^-1 (fasttape.numpy.linalg.inv's rules)."""
    if not _is_variable(a):
        return _sla.inv(a, overwrite_a=overwrite_a, check_finite=check_finite)
    return _fla.inv(a)


def det(a, overwrite_a=False, check_finite=True):
    """det A (fasttape.numpy.linalg.det's rules)."""
    if not _is_variable(a):
        return _sla.det(a, overwrite_a=overwrite_a, check_finite=check_finite)
    return _fla.det(a)


def solve(a, b, **options):
    """A^-1 B for a general square A (fasttape.numpy.linalg.solve's rules); SciPy's
    structure options (assume_a, ...) are for plain arrays only."""
    if not (_is_variable(a) or _is_variable(b)):
        return _sla.solve(a, b, **options)
    if options.get("assume_a", "gen") != "gen" or options.get("transposed", False):
        raise NotImplementedError("fasttape.scipy.linalg.solve differentiates the "
                                  "general solve only (assume_a='gen', transposed=False)")
    return _fla.solve(a, b)


def cholesky(a, lower=False, overwrite_a=False, check_finite=True):
    """The Cholesky factor of a symmetric positive definite A, upper (A = U^T U, the
    default, reading A's upper triangle) or lower (A = L L^T, reading the lower
    one), as SciPy. Derivatives are fasttape.numpy.linalg.cholesky's, taken with
    respect to symmetric perturbations of A (autograd's convention)."""
    if not _is_variable(a):
        return _sla.cholesky(a, lower=lower, overwrite_a=overwrite_a,
                             check_finite=check_finite)
    if lower:
        return _fla.cholesky(a)
    return _mT(_fla.cholesky(_mT(a)))


# -- triangular and banded systems --------------------------------------------------------

def _transposed(trans):
    if trans in (0, "N", "n"):
        return False
    if trans in (1, "T", "t", 2, "C", "c"):      # (real matrices: C is T)
        return True
    raise ValueError(f"solve_triangular: trans must be 0, 1, 2, 'N', 'T' or 'C', "
                     f"not {trans!r}")


def solve_triangular(a, b, trans=0, lower=False, unit_diagonal=False,
                     overwrite_b=False, check_finite=True):
    """X = op(A)^-1 B for a triangular A (op: the identity, or the transpose for
    trans=1/'T'/2/'C'), reading only A's lower (lower=True) or upper triangle, and
    not its diagonal when unit_diagonal. With G_B = op(A)^-T G: dB = G_B, d op(A) =
    -G_B X^T restricted to the triangle read; tangent op(A)^-1 (tB - op(tA) X)."""
    if not (_is_variable(a) or _is_variable(b)):
        return _sla.solve_triangular(a, b, trans=trans, lower=lower,
                                     unit_diagonal=unit_diagonal,
                                     overwrite_b=overwrite_b, check_finite=check_finite)
    transposed = _transposed(trans)
    n = _square(a, "solve_triangular")
    vector = _np.ndim(_value(b)) == 1
    diagonal_offset = 1 if unit_diagonal else 0
    read = (_np.tril(_np.ones((n, n)), -diagonal_offset) if lower
            else _np.triu(_np.ones((n, n)), diagonal_offset))
    options = {"trans": int(transposed), "lower": lower, "unit_diagonal": unit_diagonal}

    def op(m):
        return _mT(m) if transposed else m

    def reverse(g, x, a, b):
        gb = solve_triangular(a, g, trans=int(not transposed), lower=lower,
                              unit_diagonal=unit_diagonal)
        ga = op(-(_columns(gb, vector) @ _mT(_columns(x, vector)))) * read
        return [ga, gb]

    def forward(t, x, a, b):
        rhs = 0.0
        if t[1] is not None:
            rhs = _columns(t[1], vector)
        if t[0] is not None:
            rhs = rhs - op(t[0] * read) @ _columns(x, vector)
        dx = solve_triangular(a, rhs + _np.zeros(_np.shape(_value(_columns(x, vector)))),
                              **options)
        return fnp.reshape(dx, _np.shape(_value(x)))

    def evaluate(a, b):
        return _sla.solve_triangular(a, b, **options)

    evaluate.__name__ = "solve_triangular"
    return rule_node([a, b], evaluate(_value(a), _value(b)), reverse, forward,
                     evaluate, (solve_triangular, operand_slots(2), options))


def _band_gather(band, rows, columns, valid):
    """band[rows, columns] where valid, 0 elsewhere (fixed integer index arrays)."""
    return band[rows, columns] * valid


def solve_banded(l_and_u, ab, b, overwrite_ab=False, overwrite_b=False,
                 check_finite=True):
    """X = A^-1 B for a banded A stored as SciPy's: ab[u + i - j, j] = A[i, j] with
    l subdiagonals and u superdiagonals (the entries of ab outside the band are not
    read: their cotangent is zero). Reverse: G_B = A^-T G (A^T is banded with u
    subdiagonals and l superdiagonals), dA = -G_B X^T on the band; tangent
    A^-1 (tB - tA X)."""
    if not (_is_variable(ab) or _is_variable(b)):
        return _sla.solve_banded(l_and_u, ab, b, overwrite_ab=overwrite_ab,
                                 overwrite_b=overwrite_b, check_finite=check_finite)
    n_lower, n_upper = (int(k) for k in l_and_u)
    band_shape = _np.shape(_value(ab))
    if band_shape[0] != n_lower + n_upper + 1:
        raise ValueError(f"solve_banded: ab has {band_shape[0]} rows; (l, u) = "
                         f"{(n_lower, n_upper)} needs {n_lower + n_upper + 1}")
    n = band_shape[1]
    vector = _np.ndim(_value(b)) == 1
    r = _np.arange(n_lower + n_upper + 1)[:, None]
    j = _np.arange(n)[None, :]
    # row i = j + r - u of A for each band position (r, j)
    i = j + r - n_upper
    on_band = ((i >= 0) & (i < n)).astype(float)
    i = _np.clip(i, 0, n - 1)
    # A^T's band: abT[r, j] = A[j, i] with i = j + r - l, i.e. ab[u + l - r, i]
    transposed_rows = _np.broadcast_to(n_upper + n_lower - r, i.shape)
    i_t = j + r - n_lower
    on_band_t = ((i_t >= 0) & (i_t < n)).astype(float)
    i_t = _np.clip(i_t, 0, n - 1)
    # (tA x)[i] = sum_r tab[r, k] x[k] with k = i + u - r
    k = j + n_upper - r
    on_band_k = ((k >= 0) & (k < n)).astype(float)
    k = _np.clip(k, 0, n - 1)
    rows = _np.broadcast_to(r, k.shape)

    def band_matmul(band, x):             # A x for A stored in band form, x (n, m)
        products = fnp.expand_dims(_band_gather(band, rows, k, on_band_k), -1) * x[k]
        return fnp.sum(products, axis=0)

    def reverse(g, x, ab, b):
        ab_t = _band_gather(ab, transposed_rows, i_t, on_band_t)
        gb = solve_banded((n_upper, n_lower), ab_t, g)
        products = _columns(gb, vector)[i] * fnp.expand_dims(_columns(x, vector), 0)
        return [-fnp.sum(products, axis=-1) * on_band, gb]

    def forward(t, x, ab, b):
        rhs = 0.0
        if t[1] is not None:
            rhs = _columns(t[1], vector)
        if t[0] is not None:
            rhs = rhs - band_matmul(t[0], _columns(x, vector))
        dx = solve_banded((n_lower, n_upper), ab,
                          rhs + _np.zeros(_np.shape(_value(_columns(x, vector)))))
        return fnp.reshape(dx, _np.shape(_value(x)))

    def evaluate(ab, b):
        return _sla.solve_banded((n_lower, n_upper), ab, b)

    evaluate.__name__ = "solve_banded"
    return rule_node([ab, b], evaluate(_value(ab), _value(b)), reverse, forward, evaluate,
                     (_solve_banded_recipe, operand_slots(2), {"l_and_u": (n_lower, n_upper)}))


def _solve_banded_recipe(ab, b, l_and_u):
    return solve_banded(l_and_u, ab, b)


# -- Sylvester equations and the matrix square root ---------------------------------------

def solve_sylvester(a, b, q):
    """X with A X + X B = Q. With M solving A^T M + M B^T = G: dQ = M, dA = -M X^T,
    dB = -X^T M; tangent: the X' with A X' + X' B = tQ - tA X - X tB."""
    if not (_is_variable(a) or _is_variable(b) or _is_variable(q)):
        return _sla.solve_sylvester(a, b, q)

    def reverse(g, x, a, b, q):
        m = solve_sylvester(_mT(a), _mT(b), g)
        return [-(m @ _mT(x)), -(_mT(x) @ m), m]

    def forward(t, x, a, b, q):
        rhs = 0.0
        if t[2] is not None:
            rhs = t[2]
        if t[0] is not None:
            rhs = rhs - t[0] @ x
        if t[1] is not None:
            rhs = rhs - x @ t[1]
        return solve_sylvester(a, b, rhs + _np.zeros(_np.shape(_value(x))))

    return rule_node([a, b, q], _sla.solve_sylvester(_value(a), _value(b), _value(q)),
                     reverse, forward, _sla.solve_sylvester,
                     (solve_sylvester, operand_slots(3), {}))


def sqrtm(A, disp=True, blocksize=64):
    """The principal square root X of a real matrix A (X X = A). Tangent: the X' with
    X X' + X' X = tA; reverse: dA = M with X^T M + M X^T = G. Where A has negative
    eigenvalues the root is complex: it is returned as a ComplexArray of one node
    holding its real and imaginary parts, whose rules solve the same Sylvester
    equations as a real linear system of size 2 n^2 (fine for small matrices; it
    costs O(n^6))."""
    # (disp and blocksize passed on only when set: SciPy 1.16 deprecates them)
    options = {} if (disp is True and blocksize == 64) else {"disp": disp,
                                                             "blocksize": blocksize}
    if not _is_variable(A):
        return _sla.sqrtm(A, **options)
    n = _square(A, "sqrtm")
    if not disp:
        raise ValueError("sqrtm: disp=False (the error estimate) is for plain arrays")
    root = _sla.sqrtm(A.value)
    if _np.iscomplexobj(root) and _np.any(root.imag != 0):
        return _complex_sqrtm(A, root, n)

    def reverse(g, x, a):
        return [solve_sylvester(_mT(x), _mT(x), g)]

    def forward(t, x, a):
        return solve_sylvester(x, x, t[0])

    def evaluate(a):
        return _np.real(_sla.sqrtm(a))

    evaluate.__name__ = "sqrtm"
    return rule_node([A], _np.real(root), reverse, forward, evaluate,
                     (sqrtm, operand_slots(1), {}))


def _complex_sqrtm(A, root, n):
    """sqrtm's complex root: one node whose value is (Re X, Im X) stacked."""
    def parts(packed):
        return packed[0], packed[1]

    def reverse(g, packed, a):
        xr, xi = parts(packed)
        top, _ = _complex_sylvester(xr, xi, g[0], g[1], n, adjoint=True)
        return [top]

    def forward(t, packed, a):
        xr, xi = parts(packed)
        return fnp.stack(_complex_sylvester(xr, xi, t[0], _np.zeros((n, n)), n))

    def evaluate(a):
        root = _sla.sqrtm(a).astype(complex)
        return _np.stack([root.real, root.imag])

    evaluate.__name__ = "sqrtm"
    packed = rule_node([A], _np.stack([root.real, root.imag]), reverse, forward,
                       evaluate, (_complex_sqrtm_parts, operand_slots(1), {}))
    return _complex.make(packed[0], packed[1])


def _complex_sqrtm_parts(A):
    root = sqrtm(A)
    return fnp.stack([root.real, root.imag])


def _complex_sylvester(xr, xi, cr, ci, n, adjoint=False):
    """(Yr, Yi) with X Y + Y X = C for X = xr + i xi and C = cr + i ci, as one real
    linear system in W = [Yr; Yi] (2n x n): big(X) W + W xr + J W xi = [cr; ci], with
    big(X) = [[xr, -xi], [xi, xr]] and J = [[0, -I], [I, 0]]. (The 2n x 2n real
    Sylvester equation of big(X) is singular where X has imaginary eigenvalues, the
    very case of a complex root.) adjoint: the transposed system, whose solution's
    top block is the cotangent of a real right-hand side [cr; 0] given the cotangent
    (cr, ci) of (Yr, Yi)."""
    eye = _np.eye(n)
    big = fnp.concatenate([fnp.concatenate([xr, -xi], axis=1),
                           fnp.concatenate([xi, xr], axis=1)], axis=0)
    turn = _np.block([[_np.zeros((n, n)), -eye], [eye, _np.zeros((n, n))]])
    # vec(P W Q) = (Q^T kron P) vec(W), vec stacking columns
    system = (fnp.kron(eye, big) + fnp.kron(_mT(xr), _np.eye(2 * n))
              + fnp.kron(_mT(xi), turn))
    if adjoint:
        system = _mT(system)
    rhs = fnp.reshape(_mT(fnp.concatenate([cr, ci], axis=0)), (-1,))
    w = _mT(fnp.reshape(_fla.solve(system, rhs), (n, 2 * n)))
    return w[:n], w[n:]


# -- the rest of scipy.linalg: SciPy's functions, for plain arrays ------------------------

def __getattr__(name):
    target = getattr(_sla, name)          # (an AttributeError names a missing one)
    if not callable(target) or isinstance(target, type):
        return target

    def plain_only(*args, **kwargs):
        if any(_holds_variable(x) for x in (*args, *kwargs.values())):
            raise TypeError(f"fasttape.scipy.linalg.{name} has no derivative in "
                            f"fasttape: call it on plain arrays (the differentiable "
                            f"functions are {', '.join(__all__)})")
        return target(*args, **kwargs)
    plain_only.__name__ = name
    plain_only.__doc__ = target.__doc__
    return plain_only


def _holds_variable(x):
    if isinstance(x, (tuple, list)):
        return any(_holds_variable(v) for v in x)
    return _is_variable(x)
