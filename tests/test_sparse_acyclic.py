"""Acyclic colourings of symmetric patterns and sparse Hessians recovered from them by
substitution.

The colouring is checked by its structural property (a distance-1 colouring whose
every two-coloured subgraph is a forest), the colour counts against the known ones
(band of half-width b: b + 1; arrowhead: 2), the recovered values against dense
Hessians (fasttape.hessian) and against H @ S computed directly.
"""
import numpy as np
import pytest
import scipy.sparse as sp

import fasttape
import fasttape.numpy as fnp
from fasttape.compressed import HessianPlan, color_acyclic, color_star


def adjacency(pattern):
    p = sp.csr_matrix(pattern)
    return [set(p.indices[p.indptr[v]:p.indptr[v + 1]].tolist()) - {v}
            for v in range(p.shape[0])]


def assert_acyclic_coloring(pattern, colors):
    """Neighbours differ, and for every pair of colours the subgraph they induce has
    no cycle (a forest: edges = vertices - components, counted by union-find)."""
    neighbours = adjacency(pattern)
    for v, near in enumerate(neighbours):
        for w in near:
            assert colors[v] != colors[w], f"edge {v}-{w}"
    n_colors = int(colors.max()) + 1
    for c in range(n_colors):
        for d in range(c + 1, n_colors):
            parent = {}

            def root(x):
                while parent.setdefault(x, x) != x:
                    x = parent[x]
                return x
            for v, near in enumerate(neighbours):
                if colors[v] != c:
                    continue
                for w in near:
                    if colors[w] != d:
                        continue
                    a, b = root(v), root(w)
                    assert a != b, f"colours {c} and {d} close a cycle through {v}-{w}"
                    parent[a] = b


def assert_not_acyclic(pattern, colors):
    with pytest.raises(AssertionError):
        assert_acyclic_coloring(pattern, colors)


def random_symmetric(rng, n, density):
    m = sp.random(n, n, density=density, random_state=rng, format="csr")
    m = (m + m.T + sp.eye(n)).tocsr()
    m.data[:] = 1
    return m


def banded(n, b):
    return sp.diags([np.ones(n - abs(k)) for k in range(-b, b + 1)],
                    list(range(-b, b + 1)), format="csr")


def arrowhead(n):
    p = sp.lil_matrix((n, n))
    p[0, :] = 1
    p[:, 0] = 1
    p.setdiag(1)
    return p.tocsr()


def laplacian_grid(k):
    one = sp.diags([np.ones(k - 1), np.ones(k), np.ones(k - 1)], [-1, 0, 1])
    return (sp.kron(one, sp.eye(k)) + sp.kron(sp.eye(k), one)).tocsr()


# -- the checker can fail ----------------------------------------------------------------

def test_the_checker_finds_a_two_coloured_cycle():
    cycle = sp.csr_matrix(sp.diags([np.ones(3), np.ones(3)], [-1, 1], shape=(4, 4)))
    cycle = (cycle + sp.csr_matrix(([1.0, 1.0], ([0, 3], [3, 0])), shape=(4, 4))).tocsr()
    assert_not_acyclic(cycle, np.array([0, 1, 0, 1]))
    assert_acyclic_coloring(cycle, np.array([0, 1, 0, 2]))


# -- colourings ------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(8))
def test_acyclic_coloring_is_valid_on_random_patterns(seed):
    rng = np.random.default_rng(seed)
    p = random_symmetric(rng, 50, 0.03 + 0.02 * seed)
    colors = color_acyclic(p)
    assert_acyclic_coloring(p, colors)
    # every star colouring is acyclic; the acyclic one needs no more colours than it
    # here (greedy, same order), which the published comparisons also find
    assert colors.max() <= color_star(p).max()


@pytest.mark.parametrize("b", [1, 2, 5])
def test_acyclic_coloring_of_banded_uses_b_plus_1(b):
    p = banded(80, b)
    colors = color_acyclic(p)
    assert_acyclic_coloring(p, colors)
    assert colors.max() + 1 == b + 1


def test_acyclic_coloring_of_arrowhead_uses_two_colors():
    p = arrowhead(300)
    colors = color_acyclic(p)
    assert_acyclic_coloring(p, colors)
    assert colors.max() + 1 == 2


def test_acyclic_coloring_of_laplacian_grid():
    p = laplacian_grid(12)
    colors = color_acyclic(p)
    assert_acyclic_coloring(p, colors)
    # a 5-point grid needs at least 3 colours acyclically (a 4-cycle in 2 colours
    # is a cycle); greedy orders find 3 to 5
    assert 3 <= colors.max() + 1 <= 5


def test_acyclic_coloring_refuses_a_bad_order():
    from fasttape._coloring import acyclic_coloring
    p = banded(5, 1)
    with pytest.raises(ValueError, match="order"):
        acyclic_coloring(p.indptr.astype(np.int64), p.indices.astype(np.int32),
                         np.arange(p.nnz, dtype=np.int64), np.zeros(5, dtype=np.int64))


# -- recovery by substitution ----------------------------------------------------------

@pytest.mark.parametrize("seed", range(6))
def test_substitution_recovers_random_symmetric_matrices(seed):
    rng = np.random.default_rng(seed)
    p = random_symmetric(rng, 60, 0.04 + 0.01 * seed)
    h = sp.random(60, 60, density=1.0, random_state=rng).toarray()
    h = (h + h.T) * p.toarray()
    plan = HessianPlan(p, coloring="acyclic")
    seeds = np.stack(plan.seeds(), axis=1)
    recovered = sp.csr_matrix((plan.values(h @ seeds), plan.pattern.indices,
                               plan.pattern.indptr), shape=h.shape).toarray()
    np.testing.assert_allclose(recovered, h, rtol=1e-10, atol=1e-12)
    assert plan.n_colors == plan.colors.max() + 1


def test_unknown_coloring_is_refused():
    with pytest.raises(ValueError, match="coloring"):
        HessianPlan(banded(5, 1), coloring="distance-3")


def arrow_numpy(x):
    return fnp.sum((x[1:] - x[0]) ** 4) + fnp.sum(x ** 2)


def banded_numpy(x):
    # couples x[i] with x[i + 1] ... x[i + 3]: half-width 3
    total = fnp.sum(fnp.sin(x) * x)
    for k in range(1, 4):
        total = total + fnp.sum((x[k:] * x[:-k]) ** 2)
    return total


def grid_python(x):
    k = 6
    total = 0.0
    for i in range(k):
        for j in range(k):
            v = x[i * k + j]
            total = total + fasttape.cos(v)
            if i + 1 < k:
                total = total + (v - x[(i + 1) * k + j]) ** 4
            if j + 1 < k:
                total = total + v * x[i * k + j + 1] * 0.5
    return total


@pytest.mark.parametrize("f, n, most", [(arrow_numpy, 40, 2), (banded_numpy, 30, 4),
                                        (grid_python, 36, 5)])
def test_acyclic_sparse_hessian_equals_dense(f, n, most):
    rng = np.random.default_rng(3)
    x0 = rng.normal(size=n)
    args = list(x0) if f is grid_python else x0
    g = fasttape.trace(f, args)
    x = rng.normal(size=n)
    point = list(x) if f is grid_python else x
    sparse = g.sparse_hessian(point, coloring="acyclic")
    dense = np.asarray(fasttape.hessian(f)(point)).reshape(n, n)
    np.testing.assert_allclose(sparse.toarray(), dense, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(g.sparse_hessian(point).toarray(), dense,
                               rtol=1e-9, atol=1e-9)
    colors = g.hessian_colors(coloring="acyclic")
    assert_acyclic_coloring(g.hessian_sparsity(), colors)
    assert colors.max() + 1 <= most
    assert colors.max() <= g.hessian_colors().max()


def test_eager_sparse_hessian_takes_the_coloring():
    x = np.linspace(-1.0, 1.0, 25)
    dense = np.asarray(fasttape.hessian(arrow_numpy)(x))
    for coloring in ("star", "acyclic"):
        h = fasttape.sparse_hessian(arrow_numpy, coloring=coloring)(x)
        np.testing.assert_allclose(h.toarray(), dense, rtol=1e-10, atol=1e-10)
    with pytest.raises(ValueError, match="coloring"):
        fasttape.sparse_hessian(arrow_numpy, coloring="greedy")(x)
