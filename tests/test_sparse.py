"""Sparsity patterns, colourings and compressed sparse derivatives of traced functions.

Patterns are checked against the dense derivatives (no nonzero outside the pattern)
of random sparse programs, scalar and array; colourings by their structural property
on random patterns; sparse values against fasttape.jacobian / fasttape.hessian.
"""
import numpy as np
import pytest
import scipy.sparse as sp

import fasttape
import fasttape.numpy as fnp
from fasttape.compressed import color_columns, color_star


# -- helpers -----------------------------------------------------------------------------

def assert_covers(pattern, dense, what=""):
    """Every nonzero of the dense derivative is in the pattern."""
    dense = np.asarray(dense).reshape(pattern.shape)
    missing = (dense != 0) & ~pattern.toarray()
    assert not missing.any(), f"{what}: nonzeros outside the pattern at " \
        f"{np.argwhere(missing)[:5].tolist()}"


def assert_column_coloring(pattern, colors):
    """Columns that share a row have different colours."""
    p = sp.csr_matrix(pattern)
    for r in range(p.shape[0]):
        cols = p.indices[p.indptr[r]:p.indptr[r + 1]]
        assert len(set(colors[cols].tolist())) == len(cols), f"row {r}"


def assert_star_coloring(pattern, colors):
    """A distance-1 colouring in which every path on four vertices has three
    colours (checked on every path of the adjacency graph)."""
    p = sp.csr_matrix(pattern)
    neighbours = [set(p.indices[p.indptr[v]:p.indptr[v + 1]].tolist()) - {v}
                  for v in range(p.shape[0])]
    for v, near in enumerate(neighbours):
        for w in near:
            assert colors[v] != colors[w], f"edge {v}-{w}"
            for x in neighbours[w] - {v}:
                for y in neighbours[x] - {w, v}:
                    assert not (colors[v] == colors[x] and colors[w] == colors[y]), \
                        f"two-coloured path {v}-{w}-{x}-{y}"


def random_symmetric(rng, n, density):
    m = sp.random(n, n, density=density, random_state=rng, format="csr")
    m = (m + m.T + sp.eye(n)).tocsr()
    m.data[:] = 1
    return m


# -- colourings ------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(6))
def test_column_coloring_is_valid_on_random_patterns(seed):
    rng = np.random.default_rng(seed)
    p = sp.random(40, 30, density=0.1, random_state=rng, format="csr")
    colors = color_columns(p)
    assert_column_coloring(p, colors)


@pytest.mark.parametrize("seed", range(6))
def test_star_coloring_is_valid_on_random_patterns(seed):
    rng = np.random.default_rng(seed)
    p = random_symmetric(rng, 40, 0.05 + 0.02 * seed)
    colors = color_star(p)
    assert_star_coloring(p, colors)


def banded(n, b):
    return sp.diags([np.ones(n - abs(k)) for k in range(-b, b + 1)],
                    list(range(-b, b + 1)), format="csr")


@pytest.mark.parametrize("b", [1, 2, 5])
def test_star_coloring_of_banded_uses_2b_plus_1(b):
    p = banded(60, b)
    colors = color_star(p)
    assert_star_coloring(p, colors)
    assert colors.max() + 1 == 2 * b + 1


def test_star_coloring_of_arrowhead_uses_two_colors():
    n = 200
    p = sp.lil_matrix((n, n))
    p[0, :] = 1
    p[:, 0] = 1
    p.setdiag(1)
    colors = color_star(p.tocsr())
    assert_star_coloring(p.tocsr(), colors)
    assert colors.max() + 1 == 2


def test_star_coloring_of_laplacian_grid():
    k = 12
    one = sp.diags([np.ones(k - 1), np.ones(k), np.ones(k - 1)], [-1, 0, 1])
    p = (sp.kron(one, sp.eye(k)) + sp.kron(sp.eye(k), one)).tocsr()
    colors = color_star(p)
    assert_star_coloring(p, colors)
    # ColPack's greedy star colourings of 5-point grids use 5 or 6 colours
    assert colors.max() + 1 <= 6


def test_column_coloring_of_banded_jacobian():
    p = banded(50, 2)
    colors = color_columns(p)
    assert_column_coloring(p, colors)
    assert colors.max() + 1 == 5


# -- patterns of random sparse programs ----------------------------------------------

SCALAR_UNARY = [fasttape.sin, fasttape.exp, fasttape.tanh, lambda v: v * 3.0,
                lambda v: -v, lambda v: v ** 2, lambda v: 2.0 / (v + 3.0),
                fasttape.sqrt]


def random_scalar_program(rng, n, n_out, steps=25):
    """A function of a list of n floats: random unary and binary steps on random
    earlier values (each new value from one or two of them), n_out outputs."""
    plan = []
    count = n
    for _ in range(steps):
        if rng.random() < 0.5:
            plan.append(("unary", int(rng.integers(len(SCALAR_UNARY))),
                         int(rng.integers(count))))
        else:
            plan.append(("binary", int(rng.integers(4)), int(rng.integers(count)),
                         int(rng.integers(count))))
        count += 1
    outputs = rng.choice(np.arange(n, count), size=n_out, replace=False).tolist()

    def f(x):
        values = [x[i] for i in range(n)]
        for step in plan:
            if step[0] == "unary":
                v = values[step[2]]
                if step[1] == 7:                      # sqrt of a positive value
                    v = v * v + 1.0
                values.append(SCALAR_UNARY[step[1]](v))
            else:
                a, b = values[step[2]], values[step[3]]
                values.append([a + b, a * b, a - b, fasttape.sin(a) * 0.5 + b][step[1]])
        return [values[k] for k in outputs]
    return f


@pytest.mark.parametrize("seed", range(8))
def test_scalar_program_patterns_cover_dense_derivatives(seed):
    rng = np.random.default_rng(seed)
    n = 6
    f = random_scalar_program(rng, n, 3)
    x = list(rng.uniform(0.5, 1.5, n))
    g = fasttape.trace(f, x)
    jac = np.array(fasttape.jacobian(lambda v: fnp.stack(f(list(v))))(np.array(x)))
    assert_covers(g.jacobian_sparsity(), jac, "jacobian")
    J = g.sparse_jacobian(x)
    np.testing.assert_allclose(J.toarray(), jac, rtol=1e-12, atol=1e-12)

    def scalar(v):
        out = f(v)
        return out[0] * out[1] + fasttape.sin(out[2])
    h = fasttape.trace(scalar, x)
    hess = np.array(fasttape.hessian(lambda v: scalar(list(v)))(np.array(x)))
    assert_covers(h.hessian_sparsity(), hess, "hessian")
    H = h.sparse_hessian(x)
    np.testing.assert_allclose(H.toarray(), hess, rtol=1e-10, atol=1e-10)


def test_patterns_are_exact_on_separable_code():
    def f(x):
        return [x[0] * x[1], fasttape.sin(x[2]), x[3] + 2.0 * x[1], x[4] ** 3]
    g = fasttape.trace(f, [1.0, 2.0, 3.0, 4.0, 5.0])
    expected = np.array([[1, 1, 0, 0, 0], [0, 0, 1, 0, 0], [0, 1, 0, 1, 0],
                         [0, 0, 0, 0, 1]], dtype=bool)
    assert (g.jacobian_sparsity().toarray() == expected).all()
    h = fasttape.trace(lambda x: x[0] * x[1] + fasttape.sin(x[2]) + x[3] + x[4] ** 3,
                       [1.0, 2.0, 3.0, 4.0, 5.0])
    hp = np.zeros((5, 5), dtype=bool)
    hp[0, 1] = hp[1, 0] = hp[2, 2] = hp[4, 4] = True
    assert (h.hessian_sparsity().toarray() == hp).all()


def test_dead_nonlinear_code_adds_nothing_to_the_hessian():
    def f(x):
        unused = fasttape.exp(x[0] * x[1])       # noqa: F841 (not in the output)
        return x[0] ** 2 + x[1]
    h = fasttape.trace(f, [1.0, 2.0])
    assert (h.hessian_sparsity().toarray() == np.array([[1, 0], [0, 0]], bool)).all()


ARRAY_PROGRAMS = {
    "elementwise": lambda x: fnp.sin(x) * x ** 2,
    "broadcast": lambda x: (x[:3, None] * x[None, 3:6]).ravel(),
    "shifted": lambda x: x[1:] - x[:-1] ** 2,
    "reduce": lambda x: fnp.sum(x.reshape(2, 4) ** 2, axis=0),
    "prod": lambda x: fnp.prod(x.reshape(4, 2), axis=1),
    "cumsum": lambda x: fnp.cumsum(x[:4] ** 2),
    "gather": lambda x: x[np.array([3, 0, 0, 7])] * x[np.array([1, 2, 5, 6])],
    "strided": lambda x: x.reshape(2, 4).T.ravel() ** 3,
    "matmul_const": lambda x: (np.diag(np.arange(1.0, 5.0)) @ x.reshape(4, 2)).ravel(),
    "matmul": lambda x: (x[:4].reshape(2, 2) @ x[4:].reshape(2, 2)).ravel(),
    "concat": lambda x: fnp.concatenate([x[:2] ** 2, fnp.sin(x[5:])]),
    "where": lambda x: fnp.where(x > 1.0, x ** 2, fnp.exp(x)),
    "max": lambda x: fnp.max(x.reshape(2, 4), axis=1) * x[:2],
    "scalar_mix": lambda x: x[2:4] * fnp.sum(x[:2]) + x[4] ** 2,
    "linalg": lambda x: fnp.linalg.solve(fnp.reshape(x[:4], (2, 2)) + 3 * np.eye(2),
                                         x[4:6]),
}


@pytest.mark.parametrize("name", sorted(ARRAY_PROGRAMS))
def test_array_program_patterns_cover_dense_derivatives(name):
    f = ARRAY_PROGRAMS[name]
    rng = np.random.default_rng(1)
    x = rng.uniform(0.3, 2.0, 8)
    g = fasttape.trace(f, x)
    jac = np.array(fasttape.jacobian(f)(x))
    pattern = g.jacobian_sparsity()
    assert pattern.shape == jac.reshape(-1, 8).shape
    assert_covers(pattern, jac, name)
    np.testing.assert_allclose(g.sparse_jacobian(x).toarray(), jac.reshape(-1, 8),
                               rtol=1e-10, atol=1e-12)

    weights = rng.uniform(0.5, 1.5, jac.reshape(-1, 8).shape[0])

    def scalar(v):
        out = f(v)
        return fnp.sum(fnp.sin(out) * weights) + fnp.sum(out ** 2)
    h = fasttape.trace(scalar, x)
    hess = np.array(fasttape.hessian(scalar)(x))
    assert_covers(h.hessian_sparsity(), hess, name)
    np.testing.assert_allclose(h.sparse_hessian(x).toarray(), hess, rtol=1e-9,
                               atol=1e-10)


def test_sparse_hessian_values_away_from_the_trace_point():
    def f(x):
        return fnp.sum((x[1:] - x[0]) ** 4) + fnp.sum(x ** 2)
    x0 = np.linspace(0.1, 1.0, 30)
    g = fasttape.trace(f, x0)
    x1 = np.cos(np.arange(30.0))
    np.testing.assert_allclose(g.sparse_hessian(x1).toarray(),
                               fasttape.hessian(f)(x1), rtol=1e-10, atol=1e-10)
    assert g.hessian_colors().max() + 1 <= 3


def test_arrowhead_python_loop_uses_few_colors():
    def f(x):
        total = 0.0
        for i in range(1, len(x)):
            total = total + (x[i] - x[0]) ** 4
        for v in x:
            total = total + v * v
        return total
    x = list(np.linspace(0.1, 1.0, 40))
    g = fasttape.trace(f, x)
    H = g.sparse_hessian(x)
    np.testing.assert_allclose(H.toarray(), fasttape.hessian(
        lambda v: f(list(v)))(np.array(x)), rtol=1e-10, atol=1e-10)
    assert g.hessian_colors().max() + 1 <= 3


def test_eager_wrappers_and_reverse_compression():
    # a dense row: columns need 6 colours, rows 2: the reverse sweep is chosen
    def f(x):
        return fnp.concatenate([fnp.sum(x ** 2, keepdims=True), x[1:] * 2.0])
    x = np.arange(1.0, 7.0)
    J = fasttape.sparse_jacobian(f)(x)
    np.testing.assert_allclose(J.toarray(), fasttape.jacobian(f)(x))
    g = fasttape.trace(f, x)
    colors, forward = g.jacobian_colors()
    assert not forward and colors.max() + 1 == 2
    H = fasttape.sparse_hessian(lambda v: fnp.sum(v[1:] * v[:-1]))(x)
    np.testing.assert_allclose(H.toarray(), fasttape.hessian(
        lambda v: fnp.sum(v[1:] * v[:-1]))(x))
    assert isinstance(H, sp.csr_matrix)


def test_sparse_derivatives_refuse_tuple_argnum():
    g = fasttape.trace(lambda a, b: a * b, 1.0, 2.0, argnum=(0, 1))
    with pytest.raises(TypeError, match="int argnum"):
        g.sparse_jacobian(1.0, 2.0)


# max's pattern joins every value of each group (which one is largest may change
# where the trace is replayed); the others are exact on these generic programs
@pytest.mark.parametrize("name", sorted(set(ARRAY_PROGRAMS) - {"max"}))
def test_array_program_patterns_are_exact(name):
    f = ARRAY_PROGRAMS[name]
    rng = np.random.default_rng(2)
    x = rng.uniform(0.3, 2.0, 8)
    jac = np.array(fasttape.jacobian(f)(x)).reshape(-1, 8)
    assert (fasttape.trace(f, x).jacobian_sparsity().toarray() == (jac != 0)).all()

    def scalar(v):
        return fnp.sum(fnp.sin(f(v))) + fnp.sum(f(v) ** 2)
    hess = np.array(fasttape.hessian(scalar)(x))
    assert (fasttape.trace(scalar, x).hessian_sparsity().toarray() == (hess != 0)).all()


def test_sparse_hessian_matches_central_differences_of_the_gradient():
    def f(x):
        return fnp.sum(fnp.exp(x[1:] * x[:-1])) + fnp.sum(fnp.sin(x) ** 3)
    x = np.linspace(-0.5, 0.7, 9)
    H = fasttape.trace(f, x).sparse_hessian(x).toarray()
    grad = fasttape.grad(f)
    eps = 1e-5
    numeric = np.array([(grad(x + eps * e) - grad(x - eps * e)) / (2 * eps)
                        for e in np.eye(9)])
    np.testing.assert_allclose(H, numeric, rtol=1e-6, atol=1e-7)


def test_sparse_jacobian_with_respect_to_a_second_argument():
    def f(a, x):
        return fnp.concatenate([a * x[:3] ** 2, fnp.sum(x, keepdims=True)])
    a, x = 1.5, np.arange(1.0, 6.0)
    g = fasttape.trace(f, a, x, argnum=1)
    J = g.sparse_jacobian(a, x).toarray()
    np.testing.assert_allclose(J, fasttape.jacobian(f, 1)(a, x))
    assert g.jacobian_sparsity().shape == (4, 5)


def test_scalar_argument_and_constant_output():
    g = fasttape.trace(lambda t: fasttape.sin(t) * t, 0.3)
    np.testing.assert_allclose(g.sparse_hessian(0.3).toarray(),
                               [[fasttape.hessian(lambda t: fasttape.sin(t) * t)(0.3)]])
    c = fasttape.trace(lambda x: 2.0, [1.0, 2.0])
    assert c.sparse_hessian([1.0, 2.0]).nnz == 0
    assert c.hessian_sparsity().shape == (2, 2)


def test_hessian_of_a_vector_output_is_refused():
    g = fasttape.trace(lambda x: x * 2.0, np.ones(3))
    with pytest.raises(TypeError, match="one scalar output"):
        g.sparse_hessian(np.ones(3))


def test_a_retrace_gets_the_pattern_of_its_branch():
    def f(x):
        if x[0] > 0:
            return x[0] * x[1] + x[2]
        return x[0] + x[1] * x[2]
    g = fasttape.trace(f, [1.0, 2.0, 3.0], retrace=True)
    assert g.hessian_sparsity().toarray()[0, 1]
    H = g.sparse_hessian([-1.0, 2.0, 3.0]).toarray()
    np.testing.assert_allclose(H, [[0, 0, 0], [0, 0, 1], [0, 1, 0]])
    assert g.hessian_sparsity().toarray()[1, 2] and not g.hessian_sparsity().toarray()[0, 1]
    with pytest.raises(fasttape.BranchChangedError):
        fasttape.trace(f, [1.0, 2.0, 3.0]).sparse_hessian([-1.0, 2.0, 3.0])


@pytest.mark.parametrize("f, expected", [
    (lambda x: (x ** 3)[0] + x[1], [(0, 0)]),
    (lambda x: fnp.sum(fnp.sin(x)[1:3]), [(1, 1), (2, 2)]),
    (lambda x: fnp.sum((x[:2, None] * x[None, 2:])[0]), [(0, 2), (0, 3)]),
    (lambda x: (x.reshape(2, 2) @ x.reshape(2, 2))[0, 1],
     [(0, 1), (1, 3)]),
    (lambda x: fnp.cumsum(x ** 2)[1], [(0, 0), (1, 1)]),
])
def test_values_the_output_does_not_read_add_no_hessian_pairs(f, expected):
    x = np.array([0.5, 1.5, -0.7, 2.0])
    pattern = np.zeros((4, 4), dtype=bool)
    for i, j in expected:
        pattern[i, j] = pattern[j, i] = True
    got = fasttape.trace(f, x).hessian_sparsity().toarray()
    hess = np.array(fasttape.hessian(f)(x))
    assert (got == pattern).all() and (got == (hess != 0)).all()


def test_star_plan_is_star_coloring_then_star_reads():
    """star_plan (the star path's one checked call) gives the colours and reads of
    star_coloring and star_reads: random symmetric patterns, a band (rows of many
    colours)."""

    from fasttape._coloring import star_coloring, star_plan, star_reads
    from fasttape.compressed import largest_first
    rng = np.random.default_rng(3)
    band = sp.diags([np.ones(40 - abs(k)) for k in range(-6, 7)], list(range(-6, 7)))
    patterns = []
    for n in (1, 5, 30):
        m = sp.random(n, n, density=0.2, random_state=rng) != 0
        patterns.append(m + m.T + sp.eye(n, dtype=bool))
    patterns.append(band != 0)                     # 13 colours: rows of many
    for m in patterns:
        m = sp.csr_matrix(m)
        m.sort_indices()
        indptr, indices = m.indptr.astype(np.int64), m.indices.astype(np.int32)
        order = largest_first(np.diff(indptr))
        colors, n_colors, reads = star_plan(indptr, indices, order)
        expected = star_coloring(indptr, indices, order)
        assert (colors == expected).all() and n_colors == expected.max() + 1
        assert (reads == star_reads(indptr, indices, expected, n_colors)).all()
    # a pattern that is not symmetric, where a vertex would gather more colours than
    # its row has entries: refused, not written past the row
    from fasttape._coloring import acyclic_coloring
    indptr = np.array([0, 0, 1, 2], dtype=np.int64)        # rows: [], [0], [0]
    indices = np.array([0, 0], dtype=np.int32)
    order = np.arange(3, dtype=np.int64)
    for call in (lambda: star_coloring(indptr, indices, order),
                 lambda: star_plan(indptr, indices, order),
                 lambda: acyclic_coloring(indptr, indices, np.arange(2, dtype=np.int64),
                                          order)):
        with pytest.raises(ValueError, match="not symmetric"):
            call()
    with pytest.raises(ValueError, match="CSR"):
        star_plan(np.array([0, 2], dtype=np.int64), np.array([0], dtype=np.int32),
                  np.zeros(1, dtype=np.int64))


@pytest.mark.parametrize("f", [
    lambda x: (fnp.sum(x[:3]) + x[3]) * x[4] + fnp.sum(x ** 3),   # a sum read by a product
    lambda x: fnp.sum(x[:3] ** 2) + fnp.sum(x[2:]) + x[0] * x[1],  # sums only at the end
    lambda x: fnp.sin(fnp.sum(x[1:] * 2.0) + 1.0) + x[0] ** 2,      # a chain into a sin
    lambda x: fnp.sum((x[1:4] ** 3)[1:]) + x[0],     # a range of a range, part live
])
def test_hessian_patterns_with_sets_that_nothing_reads(f):
    """Sets that no second-order node reads are not made (ScalarSets.find_needed);
    the patterns stay exactly the dense Hessian's nonzeros at a generic point."""
    x = np.random.default_rng(11).uniform(0.5, 1.5, 6)
    h = fasttape.trace(f, x)
    dense = np.array(fasttape.hessian(f)(x)) != 0
    assert (h.hessian_sparsity().toarray() == dense).all()
    np.testing.assert_allclose(h.sparse_hessian(x).toarray(),
                               np.array(fasttape.hessian(f)(x)), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("format", ["coo", "csc", "csr"])
def test_sparse_results_in_the_format_asked_for(format):
    def f(x):
        return fnp.sum((x[1:] - x[0]) ** 4) + fnp.sum(x ** 2)
    x = np.linspace(-1.0, 2.0, 7)
    g = fasttape.trace(f, x)
    dense = np.array(fasttape.hessian(f)(x))
    for hessian in (g.sparse_hessian(x, format=format),
                    fasttape.sparse_hessian(f, format=format)(x)):
        assert hessian.format == format
        np.testing.assert_allclose(hessian.toarray(), dense, rtol=1e-12)
    jacobian = fasttape.sparse_jacobian(lambda v: v[1:] * v[:-1], format=format)(x)
    assert jacobian.format == format
    np.testing.assert_allclose(
        jacobian.toarray(), np.array(fasttape.jacobian(lambda v: v[1:] * v[:-1])(x)),
        rtol=1e-13)


def test_unknown_sparse_format_is_refused():
    g = fasttape.trace(lambda x: fnp.sum(x ** 2), np.ones(3))
    with pytest.raises(ValueError, match="format must be one of"):
        g.sparse_hessian(np.ones(3), format="dense")
