"""Index sets of array nodes (fasttape._array_sets) and the patterns they give.

The set operations are checked against dense boolean references on random patterns
(a shared base, per-value extras of one column or of several, both); whole programs
whose values share a broadcast set are checked against dense Jacobians and Hessians
(the patterns exactly, at generic points) and their sparse Hessians' values.
"""
import numpy as np
import pytest

import fasttape
import fasttape.numpy as fnp
from fasttape._array_sets import (PairBuffer, Rows, combine, empty_rows, identity_rows,
                                  pick, pick_range, shared_rows, union, union_of)

N = 9          # columns of the random patterns


def dense(rows):
    """A Rows as a (size x n) boolean matrix, through its CSR rows."""
    indptr, indices = rows.csr()
    out = np.zeros((rows.size, rows.n), dtype=bool)
    for i in range(rows.size):
        row = indices[indptr[i]:indptr[i + 1]]
        assert (np.diff(row) > 0).all(), "a row is not sorted without repeats"
        out[i, row] = True
    return out


def built_pattern(pairs):
    """PairBuffer.build()'s CSR as a dense boolean pattern, each row checked to be
    sorted without repeats."""
    indptr, indices = pairs.build()
    got = np.zeros((N, N), dtype=bool)
    for i in range(N):
        row = indices[indptr[i]:indptr[i + 1]]
        assert (np.diff(row) > 0).all()
        got[i, row] = True
    return got


def random_rows(rng, size, kind):
    """A random Rows of `size` values over N columns: "base" (shared only), "single"
    (one extra column each), "csr" (several), "mixed" (a base and several)."""
    base = np.sort(rng.choice(N, rng.integers(1, 4), replace=False)).astype(np.int32)
    if kind == "base":
        return shared_rows(base, size, N)
    if kind == "single":
        return Rows(size, N, base[:0] if rng.random() < 0.5 else base, None,
                    rng.integers(0, N, size).astype(np.int32), True)
    counts = rng.integers(0, 4, size)
    indptr = np.concatenate([[0], np.cumsum(counts)])
    indices = np.concatenate([np.sort(rng.choice(N, c, replace=False)) for c in counts]
                             + [np.zeros(0, dtype=int)]).astype(np.int32)
    return Rows(size, N, base if kind == "mixed" else base[:0], indptr, indices)


KINDS = ("base", "single", "csr", "mixed")


@pytest.mark.parametrize("kind", KINDS)
def test_pick_and_union_match_dense(kind):
    rng = np.random.default_rng(KINDS.index(kind))
    for _ in range(20):
        a = random_rows(rng, 7, kind)
        b = random_rows(rng, 7, KINDS[rng.integers(4)])
        index = rng.integers(0, 7, 11).astype(np.int64)
        assert (dense(pick(a, index)) == dense(a)[index]).all()
        assert (dense(union(a, b)) == (dense(a) | dense(b))).all()
        one = random_rows(rng, 1, kind)                # a broadcast of one value
        assert (dense(pick(one, np.zeros(5, dtype=np.int64))) ==
                np.repeat(dense(one), 5, axis=0)).all()


@pytest.mark.parametrize("kind", KINDS)
def test_combine_and_union_of_match_dense(kind):
    rng = np.random.default_rng(10 + KINDS.index(kind))
    for _ in range(20):
        p = random_rows(rng, 6, kind)
        size = int(rng.integers(1, 5))
        terms = int(rng.integers(0, 10))
        out = rng.integers(0, size, terms).astype(np.int64)
        src = rng.integers(0, 6, terms).astype(np.int64)
        expected = np.zeros((size, N), dtype=bool)    # outputs with no term: empty
        for t, s in zip(out, src):
            expected[t] |= dense(p)[s]
        assert (dense(combine(p, out, src, size)) == expected).all()
        live = np.flatnonzero(rng.random(6) < 0.5)
        got = np.zeros(N, dtype=bool)
        got[union_of(p, live)] = True
        assert (got == dense(p)[live].any(axis=0)).all()
        got[:] = False
        got[union_of(p)] = True
        assert (got == dense(p).any(axis=0)).all()


@pytest.mark.parametrize("kind_a", KINDS)
@pytest.mark.parametrize("kind_b", KINDS)
def test_pairs_of_two_patterns_match_dense(kind_a, kind_b):
    rng = np.random.default_rng(20 + 4 * KINDS.index(kind_a) + KINDS.index(kind_b))
    for _ in range(10):
        a, b = random_rows(rng, 5, kind_a), random_rows(rng, 5, kind_b)
        live = np.flatnonzero(rng.random(5) < 0.6)
        pairs = PairBuffer(N)
        pairs.add_rows(a, b, live)
        pairs.add_rows(a, a)                            # a set against itself
        expected = np.zeros((N, N), dtype=bool)
        for i in live:
            expected |= np.outer(dense(a)[i], dense(b)[i])
        for i in range(5):
            expected |= np.outer(dense(a)[i], dense(a)[i])
        expected |= expected.T
        assert (built_pattern(pairs) == expected).all()


@pytest.mark.parametrize("kind", KINDS)
def test_pick_range_is_pick_of_the_range(kind):
    rng = np.random.default_rng(30 + KINDS.index(kind))
    for _ in range(10):
        p = random_rows(rng, 7, kind)
        start = int(rng.integers(0, 8))
        stop = int(rng.integers(start, 8))
        got = pick_range(p, start, stop)
        assert got.size == stop - start
        assert (dense(got) == dense(p)[start:stop]).all()
        assert (dense(got) == dense(pick(p, np.arange(start, stop)))).all()
    with pytest.raises(IndexError, match="pick_range"):
        pick_range(identity_rows(4, 0, 4), 2, 5)
    with pytest.raises(IndexError, match="pick_range"):
        pick_range(identity_rows(4, 0, 4), 3, 2)


def test_pair_forms_build_one_pattern():
    """Blocks (one set against itself, or two), diagonal flags and single pairs,
    mixed, build the pattern of all their pairs and mirrors."""
    rng = np.random.default_rng(7)
    for _ in range(20):
        pairs = PairBuffer(N)
        expected = np.zeros((N, N), dtype=bool)
        for _ in range(rng.integers(0, 4)):
            x = np.sort(rng.choice(N, rng.integers(0, 4), replace=False)).astype(np.int32)
            y = x if rng.random() < 0.5 else \
                np.sort(rng.choice(N, rng.integers(0, 4), replace=False)).astype(np.int32)
            pairs.add_block(x, y)
            expected[np.ix_(x, y)] = True
        diagonal = rng.integers(0, N, rng.integers(0, 5)).astype(np.int32)
        pairs.add_diagonal(diagonal)
        expected[diagonal, diagonal] = True
        rows = rng.integers(0, N, 6).astype(np.int32)
        cols = rng.integers(0, N, 6).astype(np.int32)
        pairs.add_pairs(rows, cols)
        expected[rows, cols] = True
        expected |= expected.T
        assert (built_pattern(pairs) == expected).all()
    with pytest.raises(IndexError, match="column"):
        PairBuffer(4).add_diagonal(np.array([4], dtype=np.int32))


def test_union_of_one_column_per_value():
    """The union of rows of one column each: an increasing slice (kept as it is),
    a reversed or repeating one (sorted), and columns out of range refused."""
    x = identity_rows(10, 0, 10)
    for index in (np.arange(2, 9), np.arange(9, -1, -1), np.array([3, 1, 3, 0])):
        p = pick(x, index.astype(np.int64))
        assert union_of(p).tolist() == sorted(set(index.tolist()))
        assert union_of(p, np.array([0])).tolist() == [index[0]]
    bad = Rows(3, 4, np.zeros(0, dtype=np.int32), None,
               np.array([1, 2, 5], dtype=np.int32), True)
    with pytest.raises(IndexError, match="column"):
        union_of(bad)


def test_shared_sets_stay_shared():
    x = identity_rows(1000, 0, 1000)
    first = pick(x, np.zeros(1, dtype=np.int64))         # x[0]
    broadcast = pick(first, np.zeros(999, dtype=np.int64))
    assert not broadcast.extras and broadcast.base.tolist() == [0]
    shifted = union(pick(x, np.arange(1, 1000, dtype=np.int64)), broadcast)
    assert shifted.base.tolist() == [0] and shifted.single      # x[1:] - x[0]
    assert shifted.indices.shape == (999,)


def test_bad_positions_and_shapes_are_refused():
    x = identity_rows(4, 0, 4)
    with pytest.raises(IndexError, match="pick"):
        pick(x, np.array([0, 4], dtype=np.int64))
    with pytest.raises(IndexError, match="combine"):
        combine(x, np.array([2], dtype=np.int64), np.array([0], dtype=np.int64), 2)
    with pytest.raises(IndexError, match="combine"):
        combine(x, np.array([0], dtype=np.int64), np.array([-1], dtype=np.int64), 2)
    with pytest.raises(ValueError, match="shapes"):
        union(x, empty_rows(3, 4))
    with pytest.raises(ValueError, match="indptr"):
        Rows(3, 4, np.zeros(0, dtype=np.int32), np.zeros(2, dtype=np.int64),
             np.zeros(0, dtype=np.int32))
    pairs = PairBuffer(4)
    with pytest.raises(IndexError, match="column"):
        pairs.add_block(np.array([4], dtype=np.int32), np.array([0], dtype=np.int32))
    with pytest.raises(IndexError, match="add_rows"):
        pairs.add_rows(x, x, np.array([7]))
    # columns out of range in the extras (the diagonal, a block with a base) or in
    # a base: refused before C writes with them
    bad = Rows(2, 4, np.zeros(0, dtype=np.int32), None, np.array([1, 5], dtype=np.int32),
               True)
    shared = shared_rows(np.array([0], dtype=np.int32), 2, 4)
    for a, b in ((bad, bad), (shared, bad), (bad, shared),
                 (shared_rows(np.array([6], dtype=np.int32), 2, 4), shared)):
        with pytest.raises(IndexError, match="column"):
            PairBuffer(4).add_rows(a, b)


# -- programs whose values share a broadcast set ---------------------------------------

SHARED_PROGRAMS = {
    "arrowhead": lambda x: fnp.sum((x[1:] - x[0]) ** 4) + fnp.sum(x ** 2),
    "times_total": lambda x: fnp.sum(fnp.sin(x * fnp.sum(x[:3]))),
    "live_part": lambda x: fnp.sum((x[1:] * x[0])[:2] ** 2),
    "grid_by_scalar": lambda x: fnp.sum(fnp.sum((x[:6].reshape(2, 3) * x[6]) ** 2,
                                                axis=0) * x[7:10]),
    "concat_parts": lambda x: fnp.sum(fnp.concatenate([x[:3] + x[3], x[4:6] * x[7]])
                                      ** 3),
    "cumsum_broadcast": lambda x: fnp.sum(fnp.cumsum(x[:4] * x[5]) ** 2),
    "matmul_broadcast": lambda x: fnp.sum((x[:4].reshape(2, 2) * x[4]) @
                                          x[5:9].reshape(2, 2)),
    "prod_broadcast": lambda x: fnp.sin(fnp.prod(x[:4] + x[9])),
}


@pytest.mark.parametrize("name", sorted(SHARED_PROGRAMS))
def test_shared_set_programs_have_exact_patterns(name):
    f = SHARED_PROGRAMS[name]
    rng = np.random.default_rng(3)
    x = rng.uniform(0.3, 1.7, 12)
    g = fasttape.trace(f, x)
    hess = np.array(fasttape.hessian(f)(x))
    pattern = g.hessian_sparsity().toarray()
    assert (pattern == (hess != 0)).all(), name
    np.testing.assert_allclose(g.sparse_hessian(x).toarray(), hess, rtol=1e-9,
                               atol=1e-10)
    grad = np.array(fasttape.grad(f)(x))
    assert (g.jacobian_sparsity().toarray().ravel() == (grad != 0)).all(), name


def test_arrowhead_pattern_at_a_large_size():
    n = 3000
    x = np.linspace(-1.0, 1.0, n)
    g = fasttape.trace(SHARED_PROGRAMS["arrowhead"], x)
    p = g.hessian_sparsity()
    assert p.nnz == 3 * n - 2
    rows, cols = p.nonzero()
    assert ((rows == cols) | (rows == 0) | (cols == 0)).all()
    assert g.hessian_colors().max() + 1 == 2


def test_a_where_of_broadcasts_covers_both_branches():
    # the condition is re-evaluated on replay: the pattern joins both sides
    def f(x):
        return fnp.sum(fnp.where(x > 0.0, x * x[0], x[1]) ** 2)
    rng = np.random.default_rng(4)
    x = rng.uniform(0.3, 1.7, 10)
    g = fasttape.trace(f, x)
    pattern = g.hessian_sparsity().toarray()
    for point in (x, -x, np.where(np.arange(10) % 2, x, -x)):
        hess = np.array(fasttape.hessian(f)(point))
        assert not ((hess != 0) & ~pattern).any()
        np.testing.assert_allclose(g.sparse_hessian(point).toarray(), hess,
                                   rtol=1e-9, atol=1e-10)


VECTOR_PROGRAMS = {
    "shifted": lambda x: x[1:] - x[0],
    "grid_by_scalar": lambda x: (x[:6].reshape(2, 3) * x[6]).ravel(),
    "concat_parts": lambda x: fnp.concatenate([x[:3] + x[3], x[4:6] * x[7]]),
    "cumsum_broadcast": lambda x: fnp.cumsum(x[:4] * x[5]),
    "column_sums": lambda x: fnp.sum(x[:6].reshape(2, 3) + x[8], axis=0),
}


@pytest.mark.parametrize("name", sorted(VECTOR_PROGRAMS))
def test_shared_set_jacobians_are_exact(name):
    f = VECTOR_PROGRAMS[name]
    x = np.random.default_rng(5).uniform(0.3, 1.7, 10)
    g = fasttape.trace(f, x)
    jac = np.array(fasttape.jacobian(f)(x)).reshape(-1, 10)
    assert (g.jacobian_sparsity().toarray() == (jac != 0)).all(), name
    np.testing.assert_allclose(g.sparse_jacobian(x).toarray(), jac, rtol=1e-12,
                               atol=1e-12)
