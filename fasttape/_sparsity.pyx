# Index sets through a tape's scalar nodes: the sparsity patterns of Jacobians and
# Hessians (fasttape.sparsity walks the tape, and hands each run of scalar nodes to
# ScalarSets.run; array nodes it propagates itself, with scipy.sparse).
#
# Each node's index set is the set of input columns its value depends on (a row of
# the Jacobian pattern). Sets are sorted int32 arrays, shared between nodes when a
# node's set is one operand's (unary ops, x + c, a select of one side), counted by
# reference and freed after their last reader; a binary node whose first operand's
# set dies there extends that set in place (a running sum grows one set, not n).
#
# The Hessian pattern of a scalar output (Walther's nonlinear interaction domains,
# restricted to the nodes the output depends on): every live node whose second
# partials are not identically zero adds X_p x X_p, X_p x X_q (both ways) or
# X_q x X_q, X being the operands' index sets, as (row, column) pairs.

from libc.stdint cimport int32_t, uint8_t, int64_t
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memcpy, memset

import numpy as np

from fasttape._set_helpers cimport merge
from fasttape._tape_storage cimport *

# operand forms of a scalar op code (FORM_*), set by fasttape.sparsity from the op
# table: which of arg0s/arg1s are the Variable operands p and q
cpdef enum:
    FORM_NONE = 0      # a leaf or a constant: no operand
    FORM_UNARY = 1     # p = arg0
    FORM_BINARY = 2    # p = arg0, q = arg1
    FORM_VC = 3        # p = arg0 (arg1 a constant)
    FORM_CV = 4        # q = arg1 (arg0 a constant)
    FORM_SELECT = 5    # p, q = extras[arg1], extras[arg1 + 1] (arg0: the condition)
    FORM_ARRAY = 6     # an array node (fasttape.sparsity's)

# dependence bits (DEP_P, DEP_Q) and second-partial bits (SEC_PP, SEC_PQ, SEC_QQ)
cpdef enum:
    DEP_P = 1
    DEP_Q = 2
    SEC_PP = 1
    SEC_PQ = 2
    SEC_QQ = 4

cdef Py_ssize_t FOREVER = -2   # last use of a node whose set must be kept (pinned)


cdef class ScalarSets:
    """The index sets of a tape's scalar slots (node i <-> slot i), built by runs."""
    cdef TapeStorage t
    cdef Py_ssize_t n
    cdef int32_t** data          # set s (created by node s): its sorted columns
    cdef int32_t* length
    cdef int32_t* capacity
    cdef int32_t* refs
    cdef Py_ssize_t* set_of      # node -> set id, or -1 (empty)
    cdef Py_ssize_t* last_use    # node -> the last node reading it, or FOREVER
    cdef uint8_t* live           # node -> the Hessian's output depends on it (set by
                                 # set_live and live_run, backwards)
    cdef uint8_t* needed         # node -> its set is read (by a second-order node's
                                 # pairs, or to make such a set); NULL: every set
    cdef uint8_t form[256]
    cdef uint8_t dep[256]
    cdef uint8_t sec[256]
    cdef int32_t* pair_rows
    cdef int32_t* pair_cols
    cdef Py_ssize_t n_pairs, pair_capacity
    cdef bint hessian
    cdef int32_t* scratch
    cdef Py_ssize_t scratch_capacity

    def __cinit__(self, TapeStorage tape, const uint8_t[::1] form,
                  const uint8_t[::1] dep, const uint8_t[::1] sec, bint hessian):
        cdef Py_ssize_t i, n = tape.n_nodes
        self.t = tape
        self.n = n
        self.hessian = hessian
        memset(self.form, 0, 256)
        memset(self.dep, 0, 256)
        memset(self.sec, 0, 256)
        for i in range(min(form.shape[0], 256)):
            self.form[i] = form[i]
            self.dep[i] = dep[i]
            self.sec[i] = sec[i]
        self.data = <int32_t**>malloc((n + 1) * sizeof(int32_t*))
        self.length = <int32_t*>malloc((n + 1) * sizeof(int32_t))
        self.capacity = <int32_t*>malloc((n + 1) * sizeof(int32_t))
        self.refs = <int32_t*>malloc((n + 1) * sizeof(int32_t))
        self.set_of = <Py_ssize_t*>malloc((n + 1) * sizeof(Py_ssize_t))
        self.last_use = <Py_ssize_t*>malloc((n + 1) * sizeof(Py_ssize_t))
        self.live = <uint8_t*>malloc(n + 1)
        if not (self.data and self.length and self.capacity and self.refs and
                self.set_of and self.last_use and self.live):
            raise MemoryError()
        for i in range(n):
            self.data[i] = NULL
            self.length[i] = 0
            self.capacity[i] = 0
            self.refs[i] = 0
            self.set_of[i] = -1
            self.last_use[i] = -1
        memset(self.live, 0, n + 1)
        self.needed = NULL
        self.find_last_uses()

    def __dealloc__(self):
        cdef Py_ssize_t i
        if self.data != NULL:
            for i in range(self.n):
                free(self.data[i])
        free(self.data)
        free(self.length)
        free(self.capacity)
        free(self.refs)
        free(self.set_of)
        free(self.last_use)
        free(self.live)
        free(self.needed)
        free(self.pair_rows)
        free(self.pair_cols)
        free(self.scratch)

    # -- the operands of a node ----------------------------------------------------------

    cdef inline void operands(self, Py_ssize_t i, Py_ssize_t* p, Py_ssize_t* q) noexcept:
        """The Variable operands p, q of scalar node i (-1: none), by its form; only
        those the node's value depends on (its dependence bits)."""
        cdef opcode_t op = self.t.ops[i]
        cdef uint8_t f = self.form[op], d = self.dep[op]
        cdef index_t e
        p[0] = -1
        q[0] = -1
        if f == FORM_UNARY or f == FORM_VC:
            p[0] = self.t.arg0s[i]
        elif f == FORM_BINARY:
            p[0] = self.t.arg0s[i]
            q[0] = self.t.arg1s[i]
        elif f == FORM_CV:
            q[0] = self.t.arg1s[i]
        elif f == FORM_SELECT:
            e = self.t.arg1s[i]
            p[0] = self.t.extras[e]
            q[0] = self.t.extras[e + 1]
        if not d & DEP_P:
            p[0] = -1
        if not d & DEP_Q:
            q[0] = -1

    cdef void find_last_uses(self) noexcept:
        """last_use of every node read by a scalar node; the operands of array nodes
        are pinned (read by fasttape.sparsity)."""
        cdef Py_ssize_t i, j, p, q
        cdef ArrayNode* a
        cdef Operand* o
        for i in range(self.n):
            if self.t.ops[i] == OP_ARRAY:
                a = &self.t.anodes[self.t.arg0s[i]]
                for j in range(a.n_operands):
                    o = &self.t.operands[a.operand0 + j]
                    if o.kind == OPERAND_SCALAR:
                        self.last_use[o.ref] = FOREVER
                continue
            self.operands(i, &p, &q)
            if p >= 0 and self.last_use[p] != FOREVER:
                self.last_use[p] = i
            if q >= 0 and self.last_use[q] != FOREVER:
                self.last_use[q] = i

    def pin(self, Py_ssize_t node):
        """Keep node's set to the end (an output)."""
        self.t.check_slot(node)
        self.last_use[node] = FOREVER

    def live_run(self, Py_ssize_t start):
        """Liveness backwards through scalar nodes start, start - 1, ... down to the
        next array node (returned; fasttape.sparsity marks its operands, value by
        value) or past the first node (-1 returned)."""
        cdef Py_ssize_t i, p, q
        if not -1 <= start < self.n:
            raise IndexError(f"node {start} is not on the tape")
        for i in range(start, -1, -1):
            if self.t.ops[i] == OP_ARRAY:
                return i
            if not self.live[i]:
                continue
            self.operands(i, &p, &q)
            if p >= 0:
                self.live[p] = 1
            if q >= 0:
                self.live[q] = 1
        return -1

    def find_needed(self):
        """For a Hessian, once liveness is known: which nodes' sets are read, backwards
        from the second-order nodes that are live (their operands' sets make pairs)
        through the nodes that make those sets. The operands of array nodes count as
        read. run() then makes no set that nothing reads (a sum of sums at the
        output, dead code)."""
        cdef Py_ssize_t i, j, p, q
        cdef opcode_t op
        cdef ArrayNode* a
        cdef Operand* o
        if self.needed == NULL:
            self.needed = <uint8_t*>malloc(self.n + 1)
            if self.needed == NULL:
                raise MemoryError()
        memset(self.needed, 0, self.n + 1)
        for i in range(self.n - 1, -1, -1):
            op = self.t.ops[i]
            if op == OP_ARRAY:
                a = &self.t.anodes[self.t.arg0s[i]]
                for j in range(a.n_operands):
                    o = &self.t.operands[a.operand0 + j]
                    if o.kind == OPERAND_SCALAR:
                        self.needed[o.ref] = 1
                continue
            if not self.live[i] or not (self.sec[op] or self.needed[i]):
                continue
            self.operands(i, &p, &q)
            if p >= 0:
                self.needed[p] = 1
            if q >= 0:
                self.needed[q] = 1

    def is_needed(self, Py_ssize_t node):
        """Whether node's set is read (always, before find_needed)."""
        self.t.check_slot(node)
        return self.needed == NULL or bool(self.needed[node])

    def set_live(self, Py_ssize_t node):
        self.t.check_slot(node)
        self.live[node] = 1

    def is_live(self, Py_ssize_t node):
        self.t.check_slot(node)
        return bool(self.live[node])

    # -- sets ----------------------------------------------------------------------------

    cdef int ensure_scratch(self, Py_ssize_t needed) except -1:
        cdef int32_t* grown
        if needed > self.scratch_capacity:
            grown = <int32_t*>realloc(self.scratch, max(needed, 2 * self.scratch_capacity)
                                      * sizeof(int32_t))
            if grown == NULL:
                raise MemoryError()
            self.scratch = grown
            self.scratch_capacity = max(needed, 2 * self.scratch_capacity)
        return 0

    cdef int new_set(self, Py_ssize_t node, const int32_t* values, Py_ssize_t count) \
            except -1:
        """Set `node` (id node) holding `count` sorted values; node's set is it."""
        free(self.data[node])
        self.data[node] = <int32_t*>malloc(max(count, 1) * sizeof(int32_t))
        if self.data[node] == NULL:
            raise MemoryError()
        if count:
            memcpy(self.data[node], values, count * sizeof(int32_t))
        self.length[node] = <int32_t>count
        self.capacity[node] = <int32_t>max(count, 1)
        self.refs[node] = 1
        self.set_of[node] = node
        return 0

    cdef void release(self, Py_ssize_t node) noexcept:
        """Drop node's reference to its set (freed with its last reference)."""
        cdef Py_ssize_t s = self.set_of[node]
        if s < 0:
            return
        self.set_of[node] = -1
        self.refs[s] -= 1
        if self.refs[s] == 0:
            free(self.data[s])
            self.data[s] = NULL
            self.length[s] = 0

    cdef inline void share(self, Py_ssize_t node, Py_ssize_t s) noexcept:
        self.set_of[node] = s
        if s >= 0:
            self.refs[s] += 1

    cdef int extend_in_place(self, Py_ssize_t s, Py_ssize_t b) except -1:
        """Set s gets set b's values (s is owned by one node that is done with it).
        b's values that s lacks are found by binary search and merged in from the
        back: a running sum that gains a column or two pays for those, not for the
        whole set."""
        cdef int32_t* x = self.data[s]
        cdef const int32_t* y = self.data[b]
        cdef Py_ssize_t nx = self.length[s], ny = self.length[b], i, j, k, lo, hi, mid
        cdef Py_ssize_t n_missing = 0
        cdef int32_t* grown
        cdef int32_t* missing
        if ny == 0:
            return 0
        if ny * 8 > nx:
            # comparable sizes: one merge beats a binary search per value of y
            self.ensure_scratch(nx + ny)
            k = merge(x, nx, y, ny, self.scratch)
            if k > self.capacity[s]:
                grown = <int32_t*>realloc(x, k * sizeof(int32_t))
                if grown == NULL:
                    raise MemoryError()
                self.data[s] = x = grown
                self.capacity[s] = <int32_t>k
            memcpy(x, self.scratch, k * sizeof(int32_t))
            self.length[s] = <int32_t>k
            return 0
        self.ensure_scratch(ny)
        missing = self.scratch
        for j in range(ny):
            lo, hi = 0, nx
            while lo < hi:
                mid = (lo + hi) >> 1
                if x[mid] < y[j]:
                    lo = mid + 1
                else:
                    hi = mid
            if lo == nx or x[lo] != y[j]:
                missing[n_missing] = y[j]
                n_missing += 1
        if n_missing == 0:
            return 0
        if nx + n_missing > self.capacity[s]:
            k = max(nx + n_missing, 2 * self.capacity[s])
            grown = <int32_t*>realloc(x, k * sizeof(int32_t))
            if grown == NULL:
                raise MemoryError()
            self.data[s] = x = grown
            self.capacity[s] = <int32_t>k
        i, j, k = nx - 1, n_missing - 1, nx + n_missing - 1
        while j >= 0:
            if i >= 0 and x[i] > missing[j]:
                x[k] = x[i]
                i -= 1
            else:
                x[k] = missing[j]
                j -= 1
            k -= 1
        self.length[s] = <int32_t>(nx + n_missing)
        return 0

    cdef int union_into(self, Py_ssize_t node, Py_ssize_t p, Py_ssize_t q) except -1:
        """node's set = p's set | q's set (p, q nodes, -1 for none)."""
        cdef Py_ssize_t sp = self.set_of[p] if p >= 0 else -1
        cdef Py_ssize_t sq = self.set_of[q] if q >= 0 else -1
        cdef Py_ssize_t k
        if sq < 0 or sp == sq:
            self.share(node, sp)
            return 0
        if sp < 0:
            self.share(node, sq)
            return 0
        if self.refs[sp] == 1 and self.last_use[p] == node:
            # p's set dies here: extend it and hand it over
            self.extend_in_place(sp, sq)
            self.set_of[p] = -1
            self.set_of[node] = sp
            return 0
        if self.refs[sq] == 1 and self.last_use[q] == node:
            self.extend_in_place(sq, sp)
            self.set_of[q] = -1
            self.set_of[node] = sq
            return 0
        self.ensure_scratch(self.length[sp] + self.length[sq])
        k = merge(self.data[sp], self.length[sp], self.data[sq], self.length[sq],
                  self.scratch)
        self.new_set(node, self.scratch, k)
        return 0

    cdef int add_pairs(self, Py_ssize_t a, Py_ssize_t b, bint both) except -1:
        """Hessian pairs X_a x X_b (and X_b x X_a when both)."""
        cdef Py_ssize_t sa = self.set_of[a], sb = self.set_of[b], i, j, k, need
        cdef int32_t* x
        cdef int32_t* y
        cdef int32_t* grown
        if sa < 0 or sb < 0:
            return 0
        x, y = self.data[sa], self.data[sb]
        need = <Py_ssize_t>self.length[sa] * self.length[sb] * (2 if both else 1)
        if self.n_pairs + need > self.pair_capacity:
            k = max(self.n_pairs + need, 2 * self.pair_capacity, 64)
            grown = <int32_t*>realloc(self.pair_rows, k * sizeof(int32_t))
            if grown == NULL:
                raise MemoryError()
            self.pair_rows = grown
            grown = <int32_t*>realloc(self.pair_cols, k * sizeof(int32_t))
            if grown == NULL:
                raise MemoryError()
            self.pair_cols = grown
            self.pair_capacity = k
        k = self.n_pairs
        for i in range(self.length[sa]):
            for j in range(self.length[sb]):
                self.pair_rows[k] = x[i]
                self.pair_cols[k] = y[j]
                k += 1
                if both:
                    self.pair_rows[k] = y[j]
                    self.pair_cols[k] = x[i]
                    k += 1
        self.n_pairs = k
        return 0

    # -- the run -------------------------------------------------------------------------

    def run(self, Py_ssize_t start):
        """Propagate the sets through scalar nodes start, start + 1, ... up to the next
        array node (returned) or the end of the tape (n_nodes returned)."""
        cdef Py_ssize_t i, p, q
        cdef opcode_t op
        cdef uint8_t s
        if not 0 <= start <= self.n:
            raise IndexError(f"node {start} is not on the tape")
        for i in range(start, self.n):
            op = self.t.ops[i]
            if op == OP_ARRAY:
                return i
            if op == OP_LEAF or op == OP_CONST:
                continue
            self.operands(i, &p, &q)
            s = self.sec[op]
            if self.hessian and s and self.live[i]:
                if self.form[op] == FORM_CV:     # its one operand is q
                    if s & SEC_QQ:
                        self.add_pairs(q, q, False)
                else:
                    if s & SEC_PP and p >= 0:
                        self.add_pairs(p, p, False)
                    if s & SEC_PQ and p >= 0 and q >= 0:
                        self.add_pairs(p, q, True)
                    if s & SEC_QQ and q >= 0:
                        self.add_pairs(q, q, False)
            if self.needed == NULL or self.needed[i]:
                self.union_into(i, p, q)  # (after the pairs: it may extend p's set)
            if p >= 0 and self.last_use[p] == i:
                self.release(p)
            if q >= 0 and q != p and self.last_use[q] == i:
                self.release(q)
        return self.n

    # -- the door for array nodes ----------------------------------------------------------

    def assign(self, Py_ssize_t node, indices):
        """Node's set = the sorted unique int32 `indices` (a leaf, or an array node's
        one-value output)."""
        values_array = np.ascontiguousarray(indices, dtype=np.int32)
        if values_array.shape[0] > 1 and not (values_array[1:] > values_array[:-1]).all():
            values_array = np.unique(values_array)      # (not already sorted, unique)
        cdef const int32_t[::1] values = values_array
        self.t.check_slot(node)
        self.release(node)
        if values.shape[0]:
            self.new_set(node, &values[0], values.shape[0])

    def assign_leaves(self, const int64_t[::1] nodes):
        """Leaf nodes[k] depends on column k alone."""
        cdef Py_ssize_t k
        cdef int32_t column
        for k in range(nodes.shape[0]):
            self.t.check_slot(nodes[k])
            self.release(nodes[k])
            column = <int32_t>k
            self.new_set(nodes[k], &column, 1)

    def rows(self, const int64_t[::1] nodes):
        """The sets of `nodes` as CSR arrays (indptr, indices)."""
        cdef Py_ssize_t k, total = 0, s, at = 0
        for k in range(nodes.shape[0]):
            self.t.check_slot(nodes[k])
            s = self.set_of[nodes[k]]
            total += self.length[s] if s >= 0 else 0
        indptr = np.zeros(nodes.shape[0] + 1, dtype=np.int64)
        indices = np.empty(total, dtype=np.int32)
        cdef int64_t[::1] ip = indptr
        cdef int32_t[::1] ix = indices
        for k in range(nodes.shape[0]):
            s = self.set_of[nodes[k]]
            if s >= 0 and self.length[s]:
                memcpy(&ix[at], self.data[s], self.length[s] * sizeof(int32_t))
                at += self.length[s]
            ip[k + 1] = at
        return indptr, indices

    def pairs(self):
        """The Hessian pairs found so far: (rows, cols) int32 arrays."""
        rows = np.empty(self.n_pairs, dtype=np.int32)
        cols = np.empty(self.n_pairs, dtype=np.int32)
        if self.n_pairs:
            memcpy(<void*><Py_ssize_t>rows.ctypes.data, self.pair_rows,
                   self.n_pairs * sizeof(int32_t))
            memcpy(<void*><Py_ssize_t>cols.ctypes.data, self.pair_cols,
                   self.n_pairs * sizeof(int32_t))
        return rows, cols
