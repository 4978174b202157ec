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

from fasttape._array_sets import (PairBuffer, combine, empty_rows, identity_rows,
                                  pick, pick_range, shared_rows, union, union_of)
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
ONE = "one"                # binary_picks: an operand of one value, broadcast
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


# -- geometry -------------------------------------------------------------------------------

def _strided_index(shape, strides, offset=0):
    """Flat operand positions of a view with these shape and element strides."""
    if len(shape) == 1:
        index = np.arange(shape[0], dtype=np.int64)
        if strides[0] != 1:
            index *= strides[0]
        return index + offset if offset else index
    index = np.full((), offset, dtype=np.int64)
    for n, s in zip(shape, strides):
        axis = np.arange(n, dtype=np.int64) * s
        index = index[..., None] + axis
    return index.reshape(-1)


class _Walk:
    """One propagation of index sets through a recording's tape.

    For a Hessian, a backward pass first finds which values the output depends on
    (scalar nodes in C, array nodes value by value: ``live``), so that a node's
    unused values add no pairs (``y = x**2; y[0]`` has one, not n)."""

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
        self.patterns = {}                 # array node -> its pattern (a Rows)
        self.pairs = PairBuffer(self.n)    # the Hessian pairs of array nodes
        self.infos = {}                    # array node -> its ArrayNodeInfo
        self.maps = {}                     # (what, array node) -> its index map
        self.live = {}                     # array node -> live values (bool), Hessian
        if rec.scalar_only:             # (the leaves' slots, as recorded)
            self.sets.assign_leaves(np.asarray(rec.leaf_slots[argnum], dtype=np.int64))
            leaves = ()
        column = 0
        for leaf in leaves:
            if type(leaf) is Variable:
                self.sets.assign(leaf.slot, [column])
                column += 1
            else:
                self.patterns[leaf.anode] = identity_rows(leaf.size, column, self.n)
                column += leaf.size
        for o in rec.outputs:
            if type(o) is Variable:
                self.sets.pin(o.slot)
        self.arg0s = tape.arrays()["arg0s"]
        if hessian:
            out = rec.outputs[0] if len(rec.outputs) == 1 else None
            if type(out) is Variable:
                self.sets.set_live(out.slot)
            elif out is not None:
                self.live[out.anode] = True
            self.mark_live()
            self.sets.find_needed()

    def info(self, r):
        info = self.infos.get(r)
        if info is None:
            info = self.infos[r] = self.tape.array_node(r)
        return info

    def run(self):
        i, end = 0, self.tape.n_nodes
        while True:
            i = self.sets.run(i)
            if i >= end:
                return self
            r = int(self.arg0s[i])
            info = self.info(r)
            p = self.array_rule(info, r, self.live_values(info, r))
            self.patterns[r] = p
            if info.out_slot >= 0 and self.sets.is_needed(info.out_slot):
                self.sets.assign(info.out_slot, p.row(0))
            i += 1

    # -- liveness (Hessians) ----------------------------------------------------------------

    def live_values(self, info, r):
        """The live values of array node r: True (all), a bool array, or None (none
        is live, or not a Hessian)."""
        if not self.hessian:
            return None
        if info.out_slot >= 0:
            return True if self.sets.is_live(info.out_slot) else None
        mask = self.live.get(r)
        if mask is None or mask is True:
            return mask
        return mask if mask.any() else None

    def mark_live(self):
        i = self.tape.n_nodes - 1
        while True:
            i = self.sets.live_run(i)
            if i < 0:
                return
            r = int(self.arg0s[i])
            info = self.info(r)
            mask = self.live_values(info, r)
            if mask is not None:
                self.live_back(info, r, mask)
            i -= 1

    def mark(self, o, positions):
        """Operand o's values at positions (None: all) are live."""
        if type(positions) is slice:               # (a contiguous range, not empty)
            pass
        elif positions is not None:
            positions = np.asarray(positions, dtype=np.int64)
            if not positions.size:
                return
        if o.kind == OPERAND_SCALAR:
            self.sets.set_live(o.ref)
        elif o.kind == OPERAND_ARRAY:
            info = self.info(o.ref)
            if info.out_slot >= 0:
                self.sets.set_live(info.out_slot)
                return
            live = self.live.get(o.ref)
            if positions is None:
                self.live[o.ref] = True            # (all, without an array)
            elif live is not True:
                if live is None:
                    live = self.live[o.ref] = np.zeros(info.size, dtype=bool)
                live[positions] = True

    def live_back(self, info, r, mask):
        """Mark the operand values that array node `info`'s live values (True: all,
        or a bool array) read."""
        aop, ops = info.aop, info.operands
        every = mask is True or mask.all()
        live = None if every else np.flatnonzero(mask)
        if aop in (AOP_LEAF, AOP_MASK):
            return
        if aop == AOP_UNARY:
            if self.dep[info.sop] & DEP_P:
                self.mark(ops[0], live)
        elif aop == AOP_RESHAPE:
            self.mark(ops[0], live)
        elif aop in (AOP_BINARY, AOP_WHERE):
            d = DEP_P | DEP_Q if aop == AOP_WHERE else self.dep[info.sop]
            for j, pick_j in enumerate(self.binary_picks(info, r)):
                if d & (DEP_P if j == 0 else DEP_Q):
                    if pick_j is None:
                        self.mark(ops[j], live)
                    elif pick_j is ONE:
                        self.mark(ops[j], None)     # (its one value, read by all)
                    else:
                        self.mark(ops[j], pick_j if every else pick_j[live])
        elif aop in (AOP_SUM, AOP_WEIGHTED_SUM):
            self.mark(ops[0], None if every else
                      np.flatnonzero(mask[self.reduce_targets(info, r)]))
        elif aop == AOP_CUMSUM:
            rows, cols = self.cumsum_pairs(info, r)
            self.mark(ops[0], None if every else cols[mask[rows]])
        elif aop == AOP_MATMUL:
            out, ia, ib = self.matmul_triples(info, r)
            used = slice(None) if every else mask[out]
            self.mark(ops[0], ia[used])
            self.mark(ops[1], ib[used])
        elif aop == AOP_GATHER:
            index = self.gather_index(info, r)
            self.mark(ops[0], index if every else index[live])
        elif aop == AOP_STRIDED:
            index = self.strided_index(info, r)
            if type(index) is slice and not every:
                index = np.arange(index.start, index.stop, dtype=np.int64)
            self.mark(ops[0], index if every else index[live])
        elif aop == AOP_SCATTER:
            index = np.asarray(info.index)[:ops[0].size]
            self.mark(ops[0], None if every else np.flatnonzero(mask[index]))
        elif aop == AOP_CONCAT:
            for o in ops:
                index = np.asarray(o.index, dtype=np.int64).reshape(-1)
                self.mark(o, None if every else np.flatnonzero(mask[index]))
        else:                              # Python rules: every operand value
            for o in ops:
                self.mark(o, None)

    # -- operands --------------------------------------------------------------------------

    def operand(self, o):
        """An operand's pattern: a Rows of its size."""
        if o.kind == OPERAND_ARRAY:
            return self.patterns[o.ref]
        if o.kind == OPERAND_SCALAR:
            _, indices = self.sets.rows(np.array([o.ref], dtype=np.int64))
            return shared_rows(indices, 1, self.n)
        return empty_rows(o.size, self.n)

    def empty(self, size):
        return empty_rows(size, self.n)

    def interact(self, a, b, live):
        """The Hessian pairs joining each live value's set in a with its set in b."""
        if live is None:
            return
        self.pairs.add_rows(a, b, None if live is True or live.all()
                            else np.flatnonzero(live))

    # -- geometry (index maps, each computed once per node) --------------------------------

    def cached(self, what, r, compute):
        key = (what, r)
        value = self.maps.get(key)
        if value is None:
            value = self.maps[key] = compute()
        return value

    def binary_picks(self, info, r):
        """For an elementwise node of two operands: the operand position behind
        each output value, per operand (None: the same position; ONE: an operand of
        one value, read by every output value)."""
        def compute():
            size = info.size
            g = info.layout if info.aop == AOP_BINARY else None
            picks = []
            for j, o in enumerate(info.operands[:2]):
                if o.size == 1 and size != 1:
                    picks.append(ONE)
                elif g is not None:
                    strides = g.a_strides if j == 0 else g.b_strides
                    if o.size == size and tuple(g.shape) == (size,) \
                            and tuple(strides) == (1,):
                        picks.append(None)
                    else:
                        picks.append(_strided_index(g.shape, strides))
                elif o.size == size:
                    picks.append(None)
                else:
                    picks.append(np.zeros(size, dtype=np.int64))
            return picks
        return self.cached("binary", r, compute)

    def reduce_targets(self, info, r):
        """The output position each input value of a reduction adds into."""
        def compute():
            g = info.layout
            return _strided_index(g.shape, g.out_strides)
        return self.cached("reduce", r, compute)

    def gather_index(self, info, r):
        return self.cached("gather", r, lambda: np.ascontiguousarray(
            np.asarray(info.index)[:info.size], dtype=np.int64))

    def strided_index(self, info, r):
        """The operand position behind each value of a strided view; a slice when
        they are a contiguous range (x[1:] of a vector: picked as a view)."""
        def compute():
            g = info.layout
            if len(g.shape) == 1 and tuple(g.strides) == (1,) and g.shape[0]:
                return slice(g.offset, g.offset + g.shape[0])
            return _strided_index(g.shape, g.strides, g.offset)
        return self.cached("strided", r, compute)

    def cumsum_pairs(self, info, r):
        """(output, input) positions of a cumulative sum: out[.., j, ..] reads
        in[.., i, ..] for i <= j along each lane."""
        def compute():
            g = info.layout
            later, earlier = np.tril_indices(g.n)
            lane = (np.arange(g.outer)[:, None] * g.n * g.inner +
                    np.arange(g.inner)[None, :]).reshape(-1, 1)
            return ((lane + later * g.inner).reshape(-1),
                    (lane + earlier * g.inner).reshape(-1))
        return self.cached("cumsum", r, compute)

    def matmul_triples(self, info, r):
        """(output, a, b) positions of each product a[t, i, k] b[t, k, j] adding into
        y[t, i, j], leaving out those whose constant factor is zero."""
        def compute():
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
                    values = np.ravel(np.asarray(o.data, dtype=float))
                    keep &= values[index] != 0.0 if values.size > 1 \
                        else bool(values[0] != 0.0)
            return out[keep], ia[keep], ib[keep]
        return self.cached("matmul", r, compute)

    # -- the array ops ---------------------------------------------------------------------

    def array_rule(self, info, r, live):
        """Array node r's pattern from its operands' (adding its Hessian pairs at
        its live values)."""
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
                if self.sec[info.sop] & SEC_PP:
                    self.interact(x, x, live)
            return x
        if aop in (AOP_BINARY, AOP_WHERE):
            sides = []
            for o, index in zip(ops[:2], self.binary_picks(info, r)):
                x = self.operand(o)
                if index is ONE:                   # (its one set, shared by all)
                    sides.append(shared_rows(union_of(x), size, self.n))
                else:
                    sides.append(x if index is None else pick(x, index))
            a, b = sides
            if aop == AOP_WHERE:
                return union(a, b)
            d, s = self.dep[info.sop], self.sec[info.sop]
            if s & SEC_PP:
                self.interact(a, a, live)
            if s & SEC_PQ:
                self.interact(a, b, live)        # (the pattern adds the mirrors)
            if s & SEC_QQ:
                self.interact(b, b, live)
            return union(a if d & DEP_P else self.empty(size),
                         b if d & DEP_Q else self.empty(size))
        if aop in (AOP_SUM, AOP_WEIGHTED_SUM):
            x = self.operand(ops[0])
            if size == 1:                          # a full reduction: one union
                out = shared_rows(union_of(x), 1, self.n)
            else:
                targets = self.reduce_targets(info, r)
                out = combine(x, targets, np.arange(len(targets), dtype=np.int64), size)
            if aop == AOP_WEIGHTED_SUM and info.sop == WEIGHTED_PROD:
                self.interact(out, out, live)
            return out
        if aop == AOP_CUMSUM:
            rows, cols = self.cumsum_pairs(info, r)
            return combine(self.operand(ops[0]), rows, cols, size)
        if aop == AOP_MATMUL:
            return self.matmul(info, r, live)
        if aop == AOP_GATHER:
            return pick(self.operand(ops[0]), self.gather_index(info, r))
        if aop == AOP_STRIDED:
            index = self.strided_index(info, r)
            if type(index) is slice:
                return pick_range(self.operand(ops[0]), index.start, index.stop)
            return pick(self.operand(ops[0]), index)
        if aop == AOP_SCATTER:
            x = self.operand(ops[0])
            index = np.ascontiguousarray(np.asarray(info.index)[:x.size], dtype=np.int64)
            return combine(x, index, np.arange(x.size, dtype=np.int64), size)
        if aop == AOP_CONCAT:
            out = self.empty(size)
            for o in ops:
                positions = np.asarray(o.index, dtype=np.int64).reshape(-1)
                out = union(out, combine(self.operand(o), positions,
                                         np.arange(len(positions), dtype=np.int64), size))
            return out
        if aop == AOP_PYFUNC:
            # Python rules: every output value depends on every operand value
            every = np.zeros(0, dtype=np.int32)
            for o in ops:
                every = np.union1d(every, union_of(self.operand(o))).astype(np.int32)
            if live is not None:
                self.pairs.add_block(every, every)
            return shared_rows(every, size, self.n)
        raise NotImplementedError(f"sparsity: array op {aop} is not supported")

    def matmul(self, info, r, live):
        """y[t, i, j] = sum over k of a[t, i, k] b[t, k, j]: each output joins row i
        of a and column j of b (the nonzeros alone of a constant factor)."""
        oa, ob = info.operands
        out, ia, ib = self.matmul_triples(info, r)
        pa, pb = self.operand(oa), self.operand(ob)
        if live is not None and not (pa.is_empty or pb.is_empty):
            used = slice(None) if live is True else live[out]
            a, b = pick(pa, ia[used]), pick(pb, ib[used])
            self.pairs.add_rows(a, b)            # (the pattern adds the mirrors)
        return union(combine(pa, out, ia, info.size), combine(pb, out, ib, info.size))

    # -- results -------------------------------------------------------------------------

    def jacobian(self):
        indptrs, indices = [np.zeros(1, dtype=np.int64)], []
        at = 0
        for o in self.rec.outputs:
            if o is None:
                p = self.empty(1)
            elif type(o) is Variable:
                _, row = self.sets.rows(np.array([o.slot], dtype=np.int64))
                p = shared_rows(row, 1, self.n)
            else:
                p = self.patterns[o.anode]
            ptr, ix = p.csr()
            indptrs.append(ptr[1:] + at)
            indices.append(ix)
            at += len(ix)
        indptr = np.concatenate(indptrs)
        indices = np.concatenate(indices) if indices else np.zeros(0, dtype=np.int32)
        return _bool_csr(indptr, indices, (len(indptr) - 1, self.n))

    def hessian_pattern(self):
        self.pairs.add_pairs(*self.sets.pairs())
        indptr, indices = self.pairs.build()
        return _bool_csr(indptr, indices, (self.n, self.n))


def _bool_csr(indptr, indices, shape):
    """A boolean CSR pattern of rows each sorted without repeats."""
    m = sp.csr_matrix((np.ones(len(indices), dtype=bool),
                       indices.astype(np.int32, copy=False),
                       indptr.astype(np.int64, copy=False)), shape=shape)
    m.has_sorted_indices = True
    m.has_canonical_format = True
    return m


def jacobian_sparsity(rec, argnum):
    """The Jacobian pattern of recording rec's (flat) outputs with respect to argument
    argnum's (flat) values: a boolean scipy.sparse CSR matrix."""
    return _Walk(rec, argnum, False).run().jacobian()


def hessian_sparsity(rec, argnum):
    """The Hessian pattern of recording rec's scalar output with respect to argument
    argnum's values: a symmetric boolean scipy.sparse CSR matrix."""
    rec.scalar_output()
    return _Walk(rec, argnum, True).run().hessian_pattern()
