"""Sparse Jacobians and Hessians of traced functions by compressed sweeps.

The pattern (fasttape.sparsity) is coloured once (fasttape._coloring) and cached on
the traced function with its recording (a retrace makes a new one):

- a Jacobian: columns sharing a row get different colours, and one tangent sweep
  per colour gives J @ S (S: the colours' indicator columns); or rows are coloured
  and one reverse sweep per colour gives S^T @ J, whichever needs fewer sweeps.
  Each nonzero is read straight out of the compressed matrix.
- a Hessian: a star colouring of its symmetric pattern, one forward-over-reverse
  sweep (Hessian-vector product) per colour, and direct recovery: H[i, j] is
  B[i, colour j] when j's colour is alone among row i's, else B[j, colour i].
"""
import numpy as np
import scipy.sparse as sp

from fasttape._arrays import ArrayVariable, input_spec_arrays
from fasttape._coloring import (acyclic_coloring, acyclic_recover, column_coloring,
                                star_coloring, star_plan)
from fasttape._recording import reverse_flat
from fasttape._variable import Variable
from fasttape.sparsity import hessian_sparsity, jacobian_sparsity


def largest_first(degrees):
    """Vertices by decreasing degree (ties in index order)."""
    return np.argsort(-np.asarray(degrees, dtype=np.int64), kind="stable").astype(
        np.int64, copy=False)


def color_columns(pattern):
    """Colours of a pattern's columns (columns that share a row differ)."""
    rows = sp.csr_matrix(pattern)
    cols = rows.tocsc()
    return column_coloring(rows.indptr.astype(np.int64), rows.indices.astype(np.int32),
                           cols.indptr.astype(np.int64), cols.indices.astype(np.int32),
                           largest_first(np.diff(cols.indptr)))


def color_star(pattern):
    """A star colouring of a symmetric pattern's adjacency graph (largest first)."""
    m = sp.csr_matrix(pattern)
    return star_coloring(m.indptr.astype(np.int64, copy=False),
                         m.indices.astype(np.int32, copy=False),
                         largest_first(np.diff(m.indptr)))


def _mirror(m):
    """For each entry (i, j) of a symmetric canonical CSR matrix, the entry (j, i)."""
    n = m.shape[0]
    coo = m.tocoo()
    keys = coo.row.astype(np.int64) * n + coo.col
    return np.searchsorted(keys, coo.col.astype(np.int64) * n + coo.row).astype(np.int64)


def color_acyclic(pattern):
    """An acyclic colouring of a symmetric pattern's adjacency graph (largest first)."""
    m = sp.csr_matrix(pattern)
    m.sum_duplicates()
    m.sort_indices()
    mirror = _mirror(m)
    edge_of = np.minimum(np.arange(m.nnz, dtype=np.int64), mirror)
    return acyclic_coloring(m.indptr.astype(np.int64), m.indices.astype(np.int32),
                            edge_of, largest_first(np.diff(m.indptr)))


FORMATS = ("csr", "csc", "coo", "bsr", "dia", "dok", "lil")


def check_format(format):
    """Refuse a scipy.sparse format name that is not one (before any work)."""
    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, not {format!r}")


def in_format(matrix, format):
    """A CSR result in the scipy.sparse format the caller named (checked before)."""
    return matrix if format == "csr" else matrix.asformat(format)


def _with_values(pattern, values):
    """A CSR matrix of pattern's structure (canonical: its coo order is the CSR
    order) holding values."""
    return sp.csr_matrix((values, pattern.indices.copy(), pattern.indptr.copy()),
                         shape=pattern.shape)


class JacobianPlan:
    """A Jacobian pattern and how to compress it: by columns (forward) or rows
    (reverse)."""

    def __init__(self, pattern):
        self.pattern = sp.csr_matrix(pattern)
        column_colors = color_columns(self.pattern)
        row_colors = color_columns(self.pattern.T.tocsr())
        n_cols = int(column_colors.max()) + 1 if column_colors.size else 0
        n_rows = int(row_colors.max()) + 1 if row_colors.size else 0
        self.forward = n_cols <= n_rows
        self.colors = column_colors if self.forward else row_colors
        self.n_colors = n_cols if self.forward else n_rows
        coo = self.pattern.tocoo()
        self.rows, self.cols = coo.row, coo.col
        # where each value is read in the flat compressed matrix (rows or columns x
        # colours, C order)
        width = max(self.n_colors, 1)
        if self.forward:
            self.reads = self.rows.astype(np.int64) * width + self.colors[self.cols]
        else:
            self.reads = self.cols.astype(np.int64) * width + self.colors[self.rows]
        self.leaf_spec = self.output_spec = None    # (the batched sweep's, once asked)
        self._seed_matrix = None

    def seeds(self):
        """One 0/1 vector per colour (over columns forward, rows in reverse)."""
        return _indicators(self.colors, self.n_colors)

    def seed_matrix(self):
        """The seeds as the rows of one (colours x n) array (made once)."""
        if self._seed_matrix is None:
            self._seed_matrix = _indicator_rows(self.colors, self.n_colors)
        return self._seed_matrix

    def values(self, compressed):
        """The Jacobian's values in the pattern's CSR order, from the compressed
        sweeps: (rows x colours) forward, (columns x colours) in reverse."""
        return np.ascontiguousarray(compressed, dtype=float).reshape(-1).take(
            self.reads) if self.reads.size else np.zeros(0)


COLORINGS = ("star", "acyclic")


class HessianPlan:
    """A symmetric Hessian pattern, its colouring and how to recover the values:
    directly (star) or by substitution (acyclic)."""

    def __init__(self, pattern, coloring="star"):
        if coloring not in COLORINGS:
            raise ValueError(f"coloring must be one of {COLORINGS}, not {coloring!r}")
        self.coloring = coloring
        self._seed_matrix = None
        self.leaf_spec = None             # (the batched sweeps' leaves, once asked)
        # (a pattern from fasttape.sparsity is kept as it is: canonical, flagged so)
        self.pattern = pattern if type(pattern) is sp.csr_matrix else \
            sp.csr_matrix(pattern)
        self.pattern.sum_duplicates()
        self.pattern.sort_indices()
        n = self.pattern.shape[0]
        if coloring == "acyclic":
            self.colors = color_acyclic(self.pattern)
            self.n_colors = int(self.colors.max()) + 1 if n else 0
            self.mirror = _mirror(self.pattern)
            return
        # H[i, j] is B[i, colour j] when j's colour is alone in row i; else B[j, colour i]
        indptr = self.pattern.indptr.astype(np.int64, copy=False)
        self.colors, self.n_colors, self.reads = star_plan(
            indptr, self.pattern.indices.astype(np.int32, copy=False),
            largest_first(np.diff(indptr)))

    def seeds(self):
        return _indicators(self.colors, self.n_colors)

    def seed_matrix(self):
        """The seeds as the rows of one (colours x n) array (made once; one row of
        zeros when there are no colours)."""
        if self._seed_matrix is None:
            self._seed_matrix = _indicator_rows(self.colors, max(self.n_colors, 1))
        return self._seed_matrix

    def values(self, compressed):
        """The Hessian's values in the pattern's CSR order, from the compressed
        products (n x colours)."""
        if self.coloring == "acyclic":
            return acyclic_recover(
                self.pattern.indptr.astype(np.int64), self.pattern.indices.astype(np.int32),
                self.mirror, self.colors,
                np.ascontiguousarray(compressed, dtype=float))
        return np.ascontiguousarray(compressed, dtype=float).reshape(-1).take(self.reads)


def _indicators(colors, n_colors):
    return list(_indicator_rows(colors, n_colors))


def _indicator_rows(colors, n_colors):
    """Row c: 1.0 where colors == c (n_colors rows)."""
    return (colors[None, :] == np.arange(n_colors)[:, None]).astype(float)


# -- on traced functions ---------------------------------------------------------------------

def _plan(traced, rec, kind, argnum, coloring="star"):
    """The cached plan of `kind` for recording rec (made on first use)."""
    cache = traced.__dict__.setdefault("_sparse_plans", {})
    key = (kind, argnum, coloring)
    entry = cache.get(key)
    if entry is None or entry[0] is not rec:
        if kind == "jacobian":
            plan = JacobianPlan(jacobian_sparsity(rec, argnum))
        else:
            plan = HessianPlan(hessian_sparsity(rec, argnum), coloring)
        entry = cache[key] = (rec, plan)
    return entry[1]


def _argnum(traced):
    if type(traced.argnum) is not int:
        raise TypeError("sparse Jacobians and Hessians need an int argnum")
    return traced.argnum


def jacobian_plan(traced):
    return _plan(traced, traced._current, "jacobian", _argnum(traced))


def hessian_plan(traced, coloring="star"):
    rec = traced._current
    rec.scalar_output()
    return _plan(traced, rec, "hessian", _argnum(traced), coloring)


def sparse_jacobian(traced, args):
    """The Jacobian of traced's flat outputs with respect to argument argnum's flat
    values at args, as scipy.sparse CSR."""
    return _with_values(*jacobian_values(traced, args))


def jacobian_values(traced, args):
    """(pattern, values): sparse_jacobian's CSR pattern (the plan's own, kept across
    calls while the recording holds) and its values in CSR order, no matrix built."""
    argnum = _argnum(traced)
    with traced._lock:
        rec = traced._replay(args)
        plan = _plan(traced, rec, "jacobian", argnum)
        outputs = [o for o in rec.outputs if o is not None]
        m, n = plan.pattern.shape
        compressed = np.zeros((m if plan.forward else n, max(plan.n_colors, 1)))
        if not outputs or plan.pattern.nnz == 0:
            return plan.pattern, plan.values(compressed)
        if plan.forward:
            # every colour's tangent sweep in one call
            if plan.output_spec is None:
                plan.leaf_spec = traced._leaf_spec(rec)
                plan.output_spec = _output_spec(rec)
            index, is_array = plan.leaf_spec
            out_index, out_is_array, rows = plan.output_spec
            block = rec.tape.tangents_many(index, is_array, plan.seed_matrix(),
                                           out_index, out_is_array)
            if rows is None:
                return plan.pattern, plan.values(block)
            compressed[rows] = block
            return plan.pattern, plan.values(compressed)
        # one reverse sweep per colour (of the outputs), argument argnum's adjoints read
        leaves = rec.leaves[argnum % len(rec.leaves)]
        all_leaves = rec.all_leaves()
        mine = [any(leaf is other for other in leaves) for leaf in all_leaves] \
            if len(leaves) < 64 else _members(all_leaves, leaves)
        pieces = _output_pieces(rec)
        for c, seed in enumerate(plan.seeds()):
            seeds = [float(seed[at]) if type(o) is Variable else
                     seed[at:at + size].reshape(o.shape)
                     for o, at, size in pieces if o is not None]
            grads = reverse_flat(rec.tape, outputs, seeds, all_leaves)
            ours = [g for g, is_ours in zip(grads, mine) if is_ours]
            compressed[:, c] = np.concatenate([np.ravel(np.asarray(g, dtype=float))
                                               for g in ours])
        return plan.pattern, plan.values(compressed)


def _output_pieces(rec):
    """(output, its first row, its number of rows) of each of the recording's
    outputs, flat in order (a constant output, None, takes one row)."""
    pieces, at = [], 0
    for o in rec.outputs:
        size = 1 if type(o) is not ArrayVariable else o.size
        pieces.append((o, at, size))
        at += size
    return pieces


def _output_spec(rec):
    """(index, is_array) of the recording's outputs as the batched sweeps name them,
    and the rows of the flat outputs they fill (None: all, no constant outputs)."""
    outputs = [o for o in rec.outputs if o is not None]
    index, is_array = input_spec_arrays(outputs)
    if len(outputs) == len(rec.outputs):
        return index, is_array, None
    rows = [row for o, at, size in _output_pieces(rec) if o is not None
            for row in range(at, at + size)]
    return index, is_array, np.array(rows, dtype=np.int64)


def _members(all_leaves, leaves):
    """Whether each of all_leaves is one of leaves (by identity)."""
    ids = {id(leaf) for leaf in leaves}
    return [id(leaf) in ids for leaf in all_leaves]


def sparse_hessian(traced, args, hvp_by_function, coloring="star", batched=True):
    """The Hessian of traced's scalar output with respect to argument argnum at args,
    as scipy.sparse CSR (hessian_values)."""
    return _with_values(*hessian_values(traced, args, hvp_by_function, coloring,
                                        batched))


def hessian_values(traced, args, hvp_by_function, coloring="star", batched=True):
    """(pattern, values) of the Hessian of traced's scalar output with respect to
    argument argnum at args (the pattern the plan's own, values in its CSR order): one
    Hessian-vector product per colour, all colours in one pass over the tape
    (batched; else one pass each).
    hvp_by_function(args, direction) is the product for tapes whose nodes have Python
    rules (no second derivatives in C)."""
    argnum = _argnum(traced)
    with traced._lock:
        rec = traced._replay(args)
        plan = _plan(traced, rec, "hessian", argnum, coloring)
        n = plan.pattern.shape[0]
        by_function = traced._python_rules_hvp(rec)
        if not by_function and batched:
            if plan.leaf_spec is None:
                plan.leaf_spec = traced._leaf_spec(rec)
            products = traced._hessian_times_many(rec, plan.seed_matrix(), plan.leaf_spec)
            return plan.pattern, plan.values(products)
        compressed = np.zeros((n, max(plan.n_colors, 1)))
        if not by_function:
            slots = list(rec.leaf_slots[argnum]) if rec.scalar_only else None
            for c, seed in enumerate(plan.seeds()):
                compressed[:, c] = traced._hessian_times(rec, seed, slots)
    if by_function:
        for c, seed in enumerate(plan.seeds()):
            compressed[:, c] = hvp_by_function(args, seed)
    return plan.pattern, plan.values(compressed)
