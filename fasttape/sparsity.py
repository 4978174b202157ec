"""Sparsity patterns of a traced function's Jacobian and Hessian, read from its tape.

Each value on the tape gets the set of input columns it depends on (its row of the
Jacobian pattern): scalar nodes in C (fasttape._sparsity.ScalarSets), array nodes
here, through their structure, as scipy.sparse patterns of (values x columns): an
elementwise op keeps its operand's rows (picked by the broadcast), a reduction or a
scatter adds rows together, a gather or a strided view picks rows, a matrix product
joins the rows of each inner product (only where a constant factor is nonzero), a
node with Python rules (linalg, einsum, custom primitives) makes every output depend
on every operand.

The Hessian of a scalar output follows Walther's nonlinear interaction domains: each
node the output depends on and whose second partials (from the op table) are not
identically zero joins its operands' sets, X_p x X_q for each such pair. A pattern is
valid wherever the traced branches hold (the guards a replay checks); a where() joins
both sides, as its condition is re-evaluated on replay.
"""
import numpy as np
import scipy.sparse as sp

from fasttape._arrays import ArrayVariable
from fasttape._optable import dependence, expanded, interactions
from fasttape._sparsity import (DEP_P, DEP_Q, FORM_ARRAY, FORM_BINARY, FORM_CV,
                                FORM_NONE, FORM_SELECT, FORM_UNARY, FORM_VC, SEC_PP,
                                SEC_PQ, SEC_QQ, ScalarSets)
from fasttape._variable import Variable

# array ops (the AOP_* codes of _tape_storage.pxd, in their order)
(AOP_LEAF, AOP_UNARY, AOP_BINARY, AOP_SUM, AOP_WEIGHTED_SUM, AOP_CUMSUM, AOP_MATMUL,
 AOP_RESHAPE, AOP_GATHER, AOP_STRIDED, AOP_CONCAT, AOP_WHERE, AOP_PYFUNC, AOP_SCATTER,
 AOP_MASK) = range(15)
OPERAND_CONST, OPERAND_ARRAY, OPERAND_SCALAR, OPERAND_POOLED = range(4)
WEIGHTED_PROD = 1


def op_tables():
    """Per scalar op code: its operand form, dependence bits and second-partial bits
    (uint8 arrays of 256), from the op table."""
    form = np.zeros(256, dtype=np.uint8)
    dep = np.zeros(256, dtype=np.uint8)
    sec = np.zeros(256, dtype=np.uint8)
    for code, (name, op, variant) in enumerate(expanded()):
        if op.kind == "structural":
            form[code] = {"SELECT": FORM_SELECT, "ARRAY": FORM_ARRAY}.get(name, FORM_NONE)
            dep[code] = DEP_P | DEP_Q if name == "SELECT" else 0
            continue
        d = dependence(op)
        pairs = set(interactions(op))
        if op.kind == "unary":
            form[code] = FORM_UNARY
            dep[code] = DEP_P if d["x"] != "none" else 0
            sec[code] = SEC_PP if ("x", "x") in pairs else 0
            continue
        on_a, on_b = d["a"] != "none", d["b"] != "none"
        if variant == "VC":                 # the Variable is a
            form[code], dep[code] = FORM_VC, DEP_P if on_a else 0
            sec[code] = SEC_PP if ("a", "a") in pairs else 0
        elif variant == "CV":               # the Variable is b
            form[code], dep[code] = FORM_CV, DEP_Q if on_b else 0
            sec[code] = SEC_QQ if ("b", "b") in pairs else 0
        else:
            form[code] = FORM_BINARY
            dep[code] = (DEP_P if on_a else 0) | (DEP_Q if on_b else 0)
            sec[code] = ((SEC_PP if ("a", "a") in pairs else 0) |
                         (SEC_PQ if ("a", "b") in pairs else 0) |
                         (SEC_QQ if ("b", "b") in pairs else 0))
    return form, dep, sec


_TABLES = None


def _tables():
    global _TABLES
    if _TABLES is None:
        _TABLES = op_tables()
    return _TABLES


# -- patterns as matrices ----------------------------------------------------------------

def _pattern(rows, cols, shape):
    """A 0/1 CSR pattern with ones at (rows, cols)."""
    m = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=shape)
    m.sum_duplicates()
    m.data[:] = 1.0
    return m


def _ones(m):
    """m with its stored values set to 1 (a pattern again after a product)."""
    m = sp.csr_matrix(m)
    m.eliminate_zeros()
    m.data[:] = 1.0
    return m


def _pick(p, index):
    """Rows index of pattern p (a gather of CSR rows, in NumPy)."""
    index = np.asarray(index, dtype=np.int64)
    indptr = p.indptr.astype(np.int64, copy=False)
    starts = indptr[index]
    lengths = indptr[index + 1] - starts
    out_ptr = np.zeros(len(index) + 1, dtype=np.int64)
    np.cumsum(lengths, out=out_ptr[1:])
    positions = np.repeat(starts - out_ptr[:-1], lengths) + np.arange(out_ptr[-1])
    return sp.csr_matrix((np.ones(len(positions)), p.indices[positions], out_ptr),
                         shape=(len(index), p.shape[1]))


def _identity(size, first, n):
    """Values 0 .. size - 1 depending on columns first .. first + size - 1."""
    return sp.csr_matrix((np.ones(size), np.arange(first, first + size),
                          np.arange(size + 1)), shape=(size, n))


def _union(a, b):
    """The rowwise union of two patterns of one shape."""
    if not b.nnz:
        return a
    if not a.nnz:
        return b
    return _ones(a + b)


def _strided_index(shape, strides, offset=0):
    """Flat operand positions of a view with these shape and element strides."""
    index = np.full((), offset, dtype=np.int64)
    for d, (n, s) in enumerate(zip(shape, strides)):
        axis = np.arange(n, dtype=np.int64) * s
        index = index[..., None] + axis
    return index.reshape(-1)


class _Walk:
    """One propagation of index sets through a recording's tape."""

    def __init__(self, rec, argnum, hessian):
        self.rec = rec
        self.tape = tape = rec.tape
        self.hessian = hessian
        leaves = rec.leaves[argnum]
        if rec.scalar_only:
            self.n = len(leaves)
        else:
            self.n = sum(1 if type(leaf) is Variable else leaf.size for leaf in leaves)
        form, dep, sec = _tables()
        self.dep, self.sec = dep, sec
        self.sets = ScalarSets(tape, form, dep, sec, hessian)
        self.patterns = {}                 # array node -> its pattern
        self.hessian_parts = []            # (n x n) patterns from array nodes
        if rec.scalar_only:             # (the leaves' slots, as recorded)
            self.sets.assign_leaves(np.asarray(rec.leaf_slots[argnum], dtype=np.int64))
            leaves = ()
        column = 0
        for leaf in leaves:
            if type(leaf) is Variable:
                self.sets.assign(leaf.slot, [column])
                column += 1
            else:
                self.patterns[leaf.anode] = _identity(leaf.size, column, self.n)
                column += leaf.size
        for o in rec.outputs:
            if type(o) is Variable:
                self.sets.pin(o.slot)
        if hessian:
            out = rec.outputs[0] if len(rec.outputs) == 1 else None
            if out is not None:
                self.sets.mark_live(np.array([out.node], dtype=np.int64))
        self.arg0s = tape.arrays()["arg0s"]

    def run(self):
        i, end = 0, self.tape.n_nodes
        while True:
            i = self.sets.run(i)
            if i >= end:
                return self
            r = int(self.arg0s[i])
            info = self.tape.array_node(r)
            live = self.hessian and self.sets.is_live(info.node)
            p = self.array_rule(info, r, live)
            self.patterns[r] = p
            if info.out_slot >= 0:
                self.sets.assign(info.out_slot, p.indices)
            i += 1

    # -- operands --------------------------------------------------------------------------

    def operand(self, o):
        """An operand's pattern: (its size x n)."""
        if o.kind == OPERAND_ARRAY:
            return self.patterns[o.ref]
        if o.kind == OPERAND_SCALAR:
            indptr, indices = self.sets.rows(np.array([o.ref], dtype=np.int64))
            return sp.csr_matrix((np.ones(len(indices)), indices, indptr),
                                 shape=(1, self.n))
        return sp.csr_matrix((o.size, self.n))

    def empty(self, size):
        return sp.csr_matrix((size, self.n))

    def interact(self, a, b):
        """The Hessian pairs joining each row of a with the same row of b."""
        if a.nnz and b.nnz:
            part = a.T @ b
            self.hessian_parts.append(part)
            if a is not b:
                self.hessian_parts.append(part.T)

    # -- the array ops ---------------------------------------------------------------------

    def array_rule(self, info, r, live):
        aop, size = info.aop, info.size
        ops = info.operands
        if aop == AOP_LEAF:
            return self.patterns.get(r, self.empty(size))
        if aop == AOP_MASK:
            return self.empty(size)
        if aop in (AOP_UNARY, AOP_RESHAPE):
            x = self.operand(ops[0])
            if aop == AOP_UNARY:
                if not self.dep[info.sop] & DEP_P:
                    return self.empty(size)
                if live and self.sec[info.sop] & SEC_PP:
                    self.interact(x, x)
            return x
        if aop in (AOP_BINARY, AOP_WHERE):
            picks = self.binary_picks(info)
            a = _pick(self.operand(ops[0]), picks[0])
            b = _pick(self.operand(ops[1]), picks[1])
            if aop == AOP_WHERE:
                return _union(a, b)
            d, s = self.dep[info.sop], self.sec[info.sop]
            if live:
                if s & SEC_PP:
                    self.interact(a, a)
                if s & SEC_PQ:
                    self.interact(a, b)
                if s & SEC_QQ:
                    self.interact(b, b)
            return _union(a if d & DEP_P else self.empty(size),
                          b if d & DEP_Q else self.empty(size))
        if aop in (AOP_SUM, AOP_WEIGHTED_SUM):
            g = info.layout
            x = self.operand(ops[0])
            targets = _strided_index(g.shape, g.out_strides)
            out = _ones(_pattern(targets, np.arange(len(targets)), (size, x.shape[0])) @ x)
            if live and aop == AOP_WEIGHTED_SUM and info.sop == WEIGHTED_PROD:
                self.interact(out, out)
            return out
        if aop == AOP_CUMSUM:
            g = info.layout
            x = self.operand(ops[0])
            later, earlier = np.tril_indices(g.n)
            lane = (np.arange(g.outer)[:, None] * g.n * g.inner +
                    np.arange(g.inner)[None, :]).reshape(-1, 1)
            rows = (lane + later * g.inner).reshape(-1)
            cols = (lane + earlier * g.inner).reshape(-1)
            return _ones(_pattern(rows, cols, (size, x.shape[0])) @ x)
        if aop == AOP_MATMUL:
            return self.matmul(info, live)
        if aop == AOP_GATHER:
            return _pick(self.operand(ops[0]), np.asarray(info.index)[:size])
        if aop == AOP_STRIDED:
            g = info.layout
            return _pick(self.operand(ops[0]), _strided_index(g.shape, g.strides,
                                                               g.offset))
        if aop == AOP_SCATTER:
            x = self.operand(ops[0])
            index = np.asarray(info.index)[:x.shape[0]]
            return _ones(_pattern(index, np.arange(len(index)), (size, x.shape[0])) @ x)
        if aop == AOP_CONCAT:
            parts = [self.operand(o) for o in ops]
            positions = np.concatenate([np.asarray(o.index, dtype=np.int64).reshape(-1)
                                        for o in ops])
            stacked = sp.vstack(parts, format="csr")
            return _ones(_pattern(positions, np.arange(len(positions)),
                                  (size, len(positions))) @ stacked)
        if aop == AOP_PYFUNC:
            # Python rules: every output value depends on every operand value
            union = self.empty(1)
            for o in ops:
                x = self.operand(o)
                union = union + sp.csr_matrix(x.sum(axis=0))
            union = _ones(union)
            if live:
                self.interact(union, union)
            return _ones(sp.csr_matrix(np.ones((size, 1))) @ union)
        raise NotImplementedError(f"sparsity: array op {aop} is not supported")

    def binary_picks(self, info):
        """For an elementwise node of two operands: the operand position behind
        each output value, per operand."""
        size = info.size
        g = info.layout if info.aop == AOP_BINARY else None
        picks = []
        for j, o in enumerate(info.operands[:2]):
            if g is not None:
                picks.append(_strided_index(g.shape, g.a_strides if j == 0
                                            else g.b_strides))
            elif o.size == size:
                picks.append(np.arange(size))
            else:
                picks.append(np.zeros(size, dtype=np.int64))
        return picks

    def matmul(self, info, live):
        """y[t, i, j] = sum over k of a[t, i, k] b[t, k, j]: each output joins row i
        of a and column j of b (the nonzeros alone of a constant factor)."""
        g = info.layout
        oa, ob = info.operands
        t = np.arange(g.batch)[:, None, None, None]
        i = np.arange(g.m)[None, :, None, None]
        j = np.arange(g.n)[None, None, :, None]
        k = np.arange(g.k)[None, None, None, :]
        shape = (g.batch, g.m, g.n, g.k)
        out = np.broadcast_to(t * g.m * g.n + i * g.n + j, shape).reshape(-1)
        ia = np.broadcast_to(t * g.a_stride + i * g.k + k, shape).reshape(-1)
        ib = np.broadcast_to(t * g.b_stride + k * g.n + j, shape).reshape(-1)
        keep = np.ones(out.shape, dtype=bool)
        for o, index in ((oa, ia), (ob, ib)):
            if o.kind in (OPERAND_CONST, OPERAND_POOLED) and o.data is not None:
                keep &= np.ravel(np.asarray(o.data, dtype=float))[index] != 0.0 \
                    if np.size(o.data) > 1 else bool(np.ravel(o.data)[0] != 0.0)
        out, ia, ib = out[keep], ia[keep], ib[keep]
        pa, pb = self.operand(oa), self.operand(ob)
        result = (_pattern(out, ia, (info.size, pa.shape[0])) @ pa +
                  _pattern(out, ib, (info.size, pb.shape[0])) @ pb)
        if live and pa.nnz and pb.nnz:
            joined = _pattern(ia, ib, (pa.shape[0], pb.shape[0]))
            part = pa.T @ joined @ pb
            self.hessian_parts.extend([part, part.T])
        return _ones(result)

    # -- results -------------------------------------------------------------------------

    def jacobian(self):
        rows = []
        for o in self.rec.outputs:
            if o is None:
                rows.append(self.empty(1))
            elif type(o) is Variable:
                indptr, indices = self.sets.rows(np.array([o.slot], dtype=np.int64))
                rows.append(sp.csr_matrix((np.ones(len(indices)), indices, indptr),
                                          shape=(1, self.n)))
            else:
                rows.append(self.patterns[o.anode])
        if not rows:
            return sp.csr_matrix((0, self.n), dtype=bool)
        return _as_bool(sp.vstack(rows, format="csr"))

    def hessian_pattern(self):
        i, j = self.sets.pairs()
        total = sp.csr_matrix((np.ones(len(i)), (i, j)), shape=(self.n, self.n))
        for part in self.hessian_parts:
            total = _union(total, sp.csr_matrix(part))
        return _as_bool(_union(total, total.T.tocsr()))


def _as_bool(m):
    m = sp.csr_matrix(m)
    m.sum_duplicates()
    m.eliminate_zeros()
    out = sp.csr_matrix((np.ones(m.nnz, dtype=bool), m.indices.astype(np.int32),
                         m.indptr.astype(np.int64)), shape=m.shape)
    out.sort_indices()
    return out


def jacobian_sparsity(rec, argnum):
    """The Jacobian pattern of recording rec's (flat) outputs with respect to argument
    argnum's (flat) values: a boolean scipy.sparse CSR matrix."""
    return _Walk(rec, argnum, False).run().jacobian()


def hessian_sparsity(rec, argnum):
    """The Hessian pattern of recording rec's scalar output with respect to argument
    argnum's values: a symmetric boolean scipy.sparse CSR matrix."""
    rec.scalar_output()
    return _Walk(rec, argnum, True).run().hessian_pattern()
