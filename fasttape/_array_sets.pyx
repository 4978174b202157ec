# Index sets of array nodes, for fasttape.sparsity: an array node's pattern (one
# sorted set of input columns per value) as a Rows, and the Hessian's pairs gathered
# in a PairBuffer, each operation a C loop (or one NumPy call) costing O(values + set
# sizes).
#
# A Rows holds value i's set as base | extras[i]: `base` the columns every value
# depends on, stored once (a scalar broadcast over an array, a reduction read back
# elementwise), and `extras` a CSR of each value's further columns (indptr, indices;
# each row sorted, no repeats; None when there are none), flagged `single` when
# every value has exactly one (an input array, its slices and elementwise images:
# picked by one NumPy take). So `x[1:] - x[0]` is base {0} and extras i + 1, in O(n)
# and not n copies of x[0]'s set, and the Hessian pairs of a Rows against another
# are the blocks base x base, base x (union of extras), plus one product per value of
# the extras alone.

from libc.stdint cimport int32_t, int64_t, uint8_t
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memcpy

from fasttape._set_helpers cimport merge, sort_unique_row

import numpy as np

cimport cython


cdef struct Buffer:
    # a growing int32 array
    int32_t* data
    Py_ssize_t count, capacity


cdef int reserve(Buffer* b, Py_ssize_t more) except -1:
    cdef Py_ssize_t k
    cdef int32_t* grown
    if b.count + more > b.capacity:
        k = max(b.count + more, 2 * b.capacity, 64)
        grown = <int32_t*>realloc(b.data, k * sizeof(int32_t))
        if grown == NULL:
            raise MemoryError()
        b.data = grown
        b.capacity = k
    return 0


cdef object to_array(const int32_t* data, Py_ssize_t count):
    out = np.empty(count, dtype=np.int32)
    cdef int32_t[::1] view = out
    if count:
        memcpy(&view[0], data, count * sizeof(int32_t))
    return out


cdef class Rows:
    """One sorted set of input columns (of n) per value of an array node (size
    values): base | extras[i] (see above)."""
    cdef readonly Py_ssize_t size, n
    cdef readonly object base        # int32, sorted
    cdef readonly bint extras        # False: every value's set is the base
    cdef readonly bint single        # one extra column per value (indices[i])
    cdef object _indptr              # int64 (size + 1); made when asked, if single
    cdef readonly object indices     # int32, or None
    cdef object _extras_union        # the union of all values' extras, once asked
    cdef bint _checked               # every extra column known within 0 .. n - 1 (by
                                     # extras_union)

    def __init__(self, Py_ssize_t size, Py_ssize_t n, base, indptr=None, indices=None,
                 bint single=False):
        """indptr None with indices given and single: one extra column per value."""
        self.size, self.n = size, n
        self.base = np.ascontiguousarray(base, dtype=np.int32)
        self.extras = indices is not None
        self.single = single and self.extras
        if self.extras:
            self.indices = np.ascontiguousarray(indices, dtype=np.int32)
            if indptr is not None:
                self._indptr = np.ascontiguousarray(indptr, dtype=np.int64)
                if self._indptr.shape[0] != size + 1:
                    raise ValueError("Rows: indptr does not match the size")
            elif not self.single or self.indices.shape[0] != size:
                raise ValueError("Rows: extras need indptr, or one column per value")

    @property
    def indptr(self):
        """The extras' row offsets (int64), or None without extras."""
        if self.extras and self._indptr is None:
            self._indptr = np.arange(self.size + 1, dtype=np.int64)
        return self._indptr

    @property
    def is_empty(self):
        """No value depends on any column."""
        return self.size == 0 or (self.base.shape[0] == 0 and (
            not self.extras or (self.indices.shape[0] if self._indptr is None
                                else self._indptr[-1]) == 0))

    def row(self, Py_ssize_t i):
        """Value i's set (sorted int32)."""
        if not 0 <= i < self.size:
            raise IndexError(f"value {i} of {self.size}")
        if not self.extras:
            return self.base
        return merge_sets(self.base, self.indices[self.indptr[i]:self.indptr[i + 1]])

    def csr(self):
        """(indptr, indices): each value's whole set as a CSR row."""
        if self.extras and self.base.shape[0] == 0:
            return self.indptr, self.indices
        return materialize(self)


def shared_rows(base, Py_ssize_t size, Py_ssize_t n):
    """size values all depending on the sorted, unique columns `base`."""
    return Rows(size, n, base)


def empty_rows(Py_ssize_t size, Py_ssize_t n):
    return Rows(size, n, np.zeros(0, dtype=np.int32))


def identity_rows(Py_ssize_t size, Py_ssize_t first, Py_ssize_t n):
    """Values 0 .. size - 1 depending on columns first .. first + size - 1."""
    return Rows(size, n, np.zeros(0, dtype=np.int32), None,
                np.arange(first, first + size, dtype=np.int32), True)


@cython.boundscheck(False)
@cython.wraparound(False)
def check_index(const int64_t[::1] index, Py_ssize_t bound, str what):
    cdef Py_ssize_t k
    cdef int64_t low = 0, high = 0
    if index.shape[0]:
        low = high = index[0]
    for k in range(index.shape[0]):          # (a loop that vectorises; then the culprit)
        low = min(low, index[k])
        high = max(high, index[k])
    if low < 0 or high >= bound:
        raise IndexError(f"{what}: position {low if low < 0 else high} of {bound}")


def merge_sets(x, y):
    """The union of two sorted int32 sets."""
    cdef const int32_t[::1] a = x
    cdef const int32_t[::1] b = y
    if b.shape[0] == 0:
        return x
    if a.shape[0] == 0:
        return y
    out = np.empty(a.shape[0] + b.shape[0], dtype=np.int32)
    cdef int32_t[::1] o = out
    return out[:merge(&a[0], a.shape[0], &b[0], b.shape[0], &o[0])]


@cython.boundscheck(False)
@cython.wraparound(False)
def materialize(Rows p):
    """(indptr, indices): each of p's values' whole set (base | extras) as a row."""
    cdef Py_ssize_t i, m = p.size, nb, at = 0, s = 0, e = 0, total
    cdef const int32_t[::1] base = p.base
    cdef const int64_t[::1] ptr
    cdef const int32_t[::1] ix
    cdef bint extras = p.extras
    nb = base.shape[0]
    if extras:
        ptr, ix = p.indptr, p.indices
        total = nb * m + ptr[m]
    else:
        total = nb * m
    indptr = np.empty(m + 1, dtype=np.int64)
    indices = np.empty(total, dtype=np.int32)
    cdef int64_t[::1] op = indptr
    cdef int32_t[::1] oi = indices
    op[0] = 0
    for i in range(m):
        if extras:
            s, e = ptr[i], ptr[i + 1]
        if total:
            at += merge(&base[0] if nb else NULL, nb, &ix[0] + s if e > s else NULL,
                        e - s, &oi[0] + at)
        op[i + 1] = at
    return indptr, indices[:at]


@cython.boundscheck(False)
@cython.wraparound(False)
def pick(Rows p, const int64_t[::1] index):
    """The rows index[0], index[1], ... of p (a gather, a strided view, a broadcast)."""
    cdef Py_ssize_t m = index.shape[0], k, s, at = 0, total = 0
    check_index(index, p.size, "pick")
    if not p.extras:
        return Rows(m, p.n, p.base)
    if p.size == 1:
        return Rows(m, p.n, p.row(0))
    if p.single:
        return Rows(m, p.n, p.base, None, p.indices.take(index), True)
    cdef const int64_t[::1] ptr = p.indptr
    cdef const int32_t[::1] ix = p.indices
    for k in range(m):
        total += ptr[index[k] + 1] - ptr[index[k]]
    indptr = np.empty(m + 1, dtype=np.int64)
    indices = np.empty(total, dtype=np.int32)
    cdef int64_t[::1] op = indptr
    cdef int32_t[::1] oi = indices
    op[0] = 0
    for k in range(m):
        for s in range(ptr[index[k]], ptr[index[k] + 1]):
            oi[at] = ix[s]
            at += 1
        op[k + 1] = at
    return Rows(m, p.n, p.base, indptr, indices)


def pick_range(Rows p, Py_ssize_t start, Py_ssize_t stop):
    """The rows start .. stop - 1 of p (a contiguous view): pick without an index,
    the extras shared with p (views of its arrays)."""
    if not 0 <= start <= stop <= p.size:
        raise IndexError(f"pick_range: rows {start} .. {stop} of {p.size}")
    cdef Py_ssize_t m = stop - start
    if not p.extras:
        return Rows(m, p.n, p.base)
    if p.single:
        return Rows(m, p.n, p.base, None, p.indices[start:stop], True)
    ptr = p.indptr
    return Rows(m, p.n, p.base, ptr[start:stop + 1] - ptr[start],
                p.indices[ptr[start]:ptr[stop]])


@cython.boundscheck(False)
@cython.wraparound(False)
def union(Rows a, Rows b):
    """Value by value, the union of a's and b's sets (of one size)."""
    if a.size != b.size or a.n != b.n:
        raise ValueError("union: patterns of different shapes")
    if b.is_empty:
        return a
    if a.is_empty:
        return b
    base = merge_sets(a.base, b.base)
    if not b.extras:
        return Rows(a.size, a.n, base, a._indptr, a.indices, a.single)
    if not a.extras:
        return Rows(a.size, a.n, base, b._indptr, b.indices, b.single)
    cdef const int64_t[::1] pa = a.indptr
    cdef const int64_t[::1] pb = b.indptr
    cdef const int32_t[::1] xa = a.indices
    cdef const int32_t[::1] xb = b.indices
    cdef Py_ssize_t i, sa, ea, sb, eb, at = 0, m = a.size
    indptr = np.empty(m + 1, dtype=np.int64)
    indices = np.empty(pa[m] + pb[m], dtype=np.int32)
    cdef int64_t[::1] op = indptr
    cdef int32_t[::1] oi = indices
    cdef int32_t* out = &oi[0] if oi.shape[0] else NULL
    cdef const int32_t* ya = &xa[0] if xa.shape[0] else NULL
    cdef const int32_t* yb = &xb[0] if xb.shape[0] else NULL
    op[0] = 0
    for i in range(m):
        sa, ea, sb, eb = pa[i], pa[i + 1], pb[i], pb[i + 1]
        at += merge(ya + sa, ea - sa, yb + sb, eb - sb, out + at)
        op[i + 1] = at
    return Rows(m, a.n, base, indptr, indices[:at])


@cython.boundscheck(False)
@cython.wraparound(False)
def combine_csr(const int64_t[::1] ptr, const int32_t[::1] ix, Py_ssize_t n,
                const int64_t[::1] out, const int64_t[::1] src, Py_ssize_t size):
    """For the CSR rows (ptr, ix) over n columns: row t of the result is the union of
    rows src[k] over the k with out[k] == t. Returns (indptr, indices, every output
    has a term)."""
    cdef Py_ssize_t K = out.shape[0], k, t, s, c, start, rows = ptr.shape[0] - 1
    cdef bint covered = True
    if src.shape[0] != K:
        raise ValueError("combine: out and src differ in length")
    check_index(out, size, "combine")
    check_index(src, rows, "combine")
    first = np.zeros(size + 1, dtype=np.int64)      # the terms of value t, by t
    order = np.empty(K, dtype=np.int64)
    stamps = np.full(max(n, 1), -1, dtype=np.int64)
    indptr = np.empty(size + 1, dtype=np.int64)
    cdef int64_t[::1] f = first
    cdef int64_t[::1] o = order
    cdef int64_t[::1] stamp = stamps
    cdef int64_t[::1] op = indptr
    cdef Buffer b
    b.data, b.count, b.capacity = NULL, 0, 0
    for k in range(K):
        f[out[k] + 1] += 1
    for t in range(size):
        if f[t + 1] == 0:
            covered = False
        f[t + 1] += f[t]
    for k in range(K):
        o[f[out[k]]] = src[k]
        f[out[k]] += 1
    for t in range(size - 1, 0, -1):               # (back to the starts)
        f[t] = f[t - 1]
    if size:
        f[0] = 0
    try:
        op[0] = 0
        for t in range(size):
            start = b.count
            for k in range(f[t], f[t + 1]):
                reserve(&b, ptr[o[k] + 1] - ptr[o[k]])
                for s in range(ptr[o[k]], ptr[o[k] + 1]):
                    c = ix[s]
                    if stamp[c] != t:
                        stamp[c] = t
                        b.data[b.count] = <int32_t>c
                        b.count += 1
            if f[t + 1] - f[t] > 1:                 # (one row alone is sorted)
                sort_unique_row(b.data + start, b.count - start, &stamp[0], <int64_t>t, n)
            op[t + 1] = b.count
        return indptr, to_array(b.data, b.count), covered
    finally:
        free(b.data)


@cython.boundscheck(False)
@cython.wraparound(False)
def union_rows(ptr, const int32_t[::1] ix, Py_ssize_t n, positions):
    """The union of CSR rows (ptr, ix) over n columns (ptr None: row i is ix[i]
    alone), of those at positions (all when None): sorted int32."""
    cdef const int64_t[::1] at_rows
    cdef const int64_t[::1] offsets
    cdef bint all_rows = positions is None, single = ptr is None
    cdef Py_ssize_t m = ix.shape[0] if single else len(ptr) - 1, k, i, s, c, count = 0
    if not single:
        offsets = ptr
    if not all_rows:
        at_rows = positions
        check_index(at_rows, m, "union_rows")
        m = at_rows.shape[0]
    marks = np.zeros(max(n, 1), dtype=np.uint8)
    cdef uint8_t[::1] mark = marks
    for k in range(m):
        i = k if all_rows else at_rows[k]
        for s in range(i if single else offsets[i], i + 1 if single else offsets[i + 1]):
            c = ix[s]
            if not 0 <= c < n:
                raise IndexError(f"union_rows: column {c} of {n}")
            if not mark[c]:
                mark[c] = 1
                count += 1
    out = np.empty(count, dtype=np.int32)
    cdef int32_t[::1] o = out
    k = 0
    for c in range(n):
        if mark[c]:
            o[k] = <int32_t>c
            k += 1
    return out


def combine(Rows p, out, src, Py_ssize_t size):
    """The pattern of M @ p for the 0/1 matrix M with ones at (out[k], src[k]): value
    t's set is the union of p's rows src[k] over the k with out[k] == t (a reduction,
    a scatter, a cumulative sum, a concatenation, a matrix product's terms)."""
    out = np.ascontiguousarray(out, dtype=np.int64)
    src = np.ascontiguousarray(src, dtype=np.int64)
    if size == 1 and out.shape[0]:                # a full reduction: one union
        check_index(out, 1, "combine")
        return Rows(1, p.n, union_of(p, src))
    if not p.extras:
        if p.base.shape[0] == 0:
            return Rows(size, p.n, p.base)
        ptr = np.zeros(p.size + 1, dtype=np.int64)    # (rows of no extras)
        indptr, indices, covered = combine_csr(ptr, p.base[:0], p.n, out, src, size)
        if covered:
            return Rows(size, p.n, p.base)
    elif p.base.shape[0] == 0:
        indptr, indices, covered = combine_csr(p.indptr, p.indices, p.n, out, src, size)
        return Rows(size, p.n, p.base, indptr, indices)
    else:
        indptr, indices, covered = combine_csr(p.indptr, p.indices, p.n, out, src, size)
        if covered:
            return Rows(size, p.n, p.base, indptr, indices)
    # some value has no term: the base is not every value's; spell the rows out
    ptr, ix = materialize(p)
    indptr, indices, _ = combine_csr(ptr, ix, p.n, out, src, size)
    return Rows(size, p.n, np.zeros(0, dtype=np.int32), indptr, indices)


cdef object extras_union(Rows p, positions):
    """The union of p's extras at positions (all when None: computed once per Rows,
    a Rows being immutable)."""
    if positions is not None:
        return union_rows(p._indptr, p.indices, p.n, positions)
    if p._extras_union is None:
        if p.single and increasing(p.indices, p.n):     # (an input array, a slice of it)
            p._extras_union = p.indices
        else:
            p._extras_union = union_rows(p._indptr, p.indices, p.n, None)
        p._checked = True                 # (both ways check every column)
    return p._extras_union


@cython.boundscheck(False)
@cython.wraparound(False)
cdef bint increasing(const int32_t[::1] x, Py_ssize_t n) noexcept:
    """Whether x is strictly increasing within 0 .. n - 1 (so a sorted set of those
    columns, without repeats)."""
    cdef Py_ssize_t k, m = x.shape[0]
    cdef bint falls = False
    if m and not (x[0] >= 0 and x[m - 1] < n):
        return False
    for k in range(1, m):                 # (no exit: a loop that vectorises)
        falls |= x[k] <= x[k - 1]
    return not falls


def union_of(Rows p, live=None):
    """The union of p's sets (of its values at positions live, when given): sorted
    int32."""
    if p.size == 0 or live is not None and len(live) == 0:
        return p.base[:0]
    if not p.extras:
        return p.base
    return merge_sets(p.base, extras_union(p, None if live is None
                                           else np.ascontiguousarray(live, dtype=np.int64)))


cdef void append_to_rows(int32_t[::1] bucket, int64_t[::1] cursor,
                         const int32_t[::1] rows, const int32_t[::1] cols) noexcept:
    """Every one of cols appended to each row r in rows: at bucket[cursor[r + 1]:],
    the cursor moved past them (PairBuffer.build's fill of a block)."""
    cdef Py_ssize_t k, i, r, m = cols.shape[0]
    for k in range(rows.shape[0]):
        r = rows[k]
        for i in range(m):
            bucket[cursor[r + 1] + i] = cols[i]
        cursor[r + 1] += m


cdef class PairBuffer:
    """The Hessian pattern's (row, column) pairs, gathered and then built into a
    symmetric CSR pattern (each pair with its mirror, repeats dropped). Pairs are
    kept in the form they come in, so that none is written twice before the build:
    single pairs, blocks x x y (the sets kept, not their products) and diagonal
    entries (one flag per column)."""
    cdef Buffer rows, cols
    cdef list blocks                 # (x, y) int32 arrays, each checked
    cdef object diagonal             # uint8 flags (n), or None
    cdef readonly Py_ssize_t n

    def __cinit__(self, Py_ssize_t n):
        self.n = n
        self.rows.data, self.rows.count, self.rows.capacity = NULL, 0, 0
        self.cols.data, self.cols.count, self.cols.capacity = NULL, 0, 0
        self.blocks = []
        self.diagonal = None

    def __dealloc__(self):
        free(self.rows.data)
        free(self.cols.data)

    @property
    def count(self):
        """The number of pairs gathered (a block counting its products, a diagonal
        flag one)."""
        cdef Py_ssize_t total = self.rows.count
        for x, y in self.blocks:
            total += len(x) * len(y)
        if self.diagonal is not None:
            total += int(np.count_nonzero(self.diagonal))
        return total

    @cython.boundscheck(False)
    @cython.wraparound(False)
    cdef int check(self, const int32_t[::1] x) except -1:
        cdef Py_ssize_t k
        cdef int32_t low = 0, high = 0
        if x.shape[0]:
            low = high = x[0]
        for k in range(x.shape[0]):          # (as check_index)
            low = min(low, x[k])
            high = max(high, x[k])
        if low < 0 or high >= self.n:
            raise IndexError(f"pair column {low if low < 0 else high} of {self.n}")
        return 0

    def add_block(self, x, y):
        """Every pair of x x y (int32 arrays, kept as they are: not to be changed
        after)."""
        x = np.ascontiguousarray(x, dtype=np.int32)
        y = x if y is x else np.ascontiguousarray(y, dtype=np.int32)
        self.check(x)
        if y is not x:
            self.check(y)
        if x.shape[0] and y.shape[0]:
            self.blocks.append((x, y))

    cdef void append_block(self, x, y):
        """add_block of checked int32 arrays."""
        if len(x) and len(y):
            self.blocks.append((x, y))

    def add_diagonal(self, columns):
        """The pairs (c, c) for c in columns."""
        c = np.ascontiguousarray(columns, dtype=np.int32)
        self.check(c)
        self.set_diagonal(c)

    @cython.boundscheck(False)
    @cython.wraparound(False)
    cdef int set_diagonal(self, const int32_t[::1] c) except -1:
        """add_diagonal of checked columns."""
        cdef Py_ssize_t k
        cdef uint8_t[::1] flag
        if not c.shape[0]:
            return 0
        if self.diagonal is None:
            self.diagonal = np.zeros(self.n, dtype=np.uint8)
        flag = self.diagonal
        for k in range(c.shape[0]):
            flag[c[k]] = 1
        return 0

    @cython.boundscheck(False)
    @cython.wraparound(False)
    def add_pairs(self, rows, cols):
        """The pairs (rows[k], cols[k])."""
        cdef const int32_t[::1] r = np.ascontiguousarray(rows, dtype=np.int32)
        cdef const int32_t[::1] c = np.ascontiguousarray(cols, dtype=np.int32)
        cdef Py_ssize_t m = r.shape[0]
        if c.shape[0] != m:
            raise ValueError("add_pairs: rows and cols differ in length")
        self.check(r)
        self.check(c)
        if not m:
            return
        reserve(&self.rows, m)
        reserve(&self.cols, m)
        memcpy(self.rows.data + self.rows.count, &r[0], m * sizeof(int32_t))
        memcpy(self.cols.data + self.cols.count, &c[0], m * sizeof(int32_t))
        self.rows.count += m
        self.cols.count += m

    def add_rows(self, Rows a, Rows b, live=None):
        """Value by value, a's set x b's set, over the values at positions live (all
        when None): the blocks of the bases and the extras' unions, then the extras
        value by value. (Mirrors are left to build.)"""
        if a.size != b.size or a.n != self.n or b.n != self.n:
            raise ValueError("add_rows: patterns of different shapes")
        if a.is_empty or b.is_empty or live is not None and len(live) == 0:
            return
        positions = None
        if live is not None:
            positions = np.ascontiguousarray(live, dtype=np.int64)
            check_index(positions, a.size, "add_rows")
        self.add_block(a.base, b.base)        # (checks both bases; the extras' unions
        if a.base.shape[0] and b.extras:      # are checked by extras_union)
            self.append_block(a.base, extras_union(b, positions))
        if a is not b and b.base.shape[0] and a.extras:
            self.append_block(extras_union(a, positions), b.base)
        if not a.extras or not b.extras:
            return
        if a is b and a.single:               # one column per value: the diagonal
            extras_union(a, None)             # (checks a's columns once, and is kept)
            self.set_diagonal(a.indices if positions is None
                              else a.indices.take(positions))
            return
        self.add_extras(a, b, positions)

    @cython.boundscheck(False)
    @cython.wraparound(False)
    cdef int add_extras(self, Rows a, Rows b, positions) except -1:
        """Value by value, a's extras x b's extras (positions validated, or None)."""
        cdef const int64_t[::1] pa = a.indptr
        cdef const int64_t[::1] pb = b.indptr
        cdef const int32_t[::1] xa = a.indices
        cdef const int32_t[::1] xb = b.indices
        cdef const int64_t[::1] at_values
        cdef bint all_values = positions is None, same = a is b
        cdef Py_ssize_t m = a.size, k, i, u, v, need = 0, at
        cdef int32_t* R
        cdef int32_t* C
        cdef int32_t value
        if not all_values:
            at_values = positions
            m = at_values.shape[0]
        for k in range(m):
            i = k if all_values else at_values[k]
            need += (pa[i + 1] - pa[i]) * (pb[i + 1] - pb[i])
        reserve(&self.rows, need)
        reserve(&self.cols, need)
        R, C, at = self.rows.data, self.cols.data, self.rows.count
        for k in range(m):
            i = k if all_values else at_values[k]
            for u in range(pa[i], pa[i + 1]):
                value = xa[u]
                # a set against itself: each pair once (build adds the mirrors)
                for v in range(u if same else pb[i], pb[i + 1]):
                    R[at] = value
                    C[at] = xb[v]
                    at += 1
        self.rows.count = self.cols.count = at
        return 0

    @cython.boundscheck(False)
    @cython.wraparound(False)
    def build(self):
        """The symmetric pattern of the pairs and their mirrors: CSR (indptr int64,
        indices int32), each row sorted, no repeats."""
        cdef Py_ssize_t n = self.n, K = self.rows.count, k, i, r, c, w = 0, start, end
        cdef Py_ssize_t row_start = 0, total = 0, nx, ny
        cdef int32_t* R = self.rows.data
        cdef int32_t* C = self.cols.data
        cdef const int32_t[::1] bx
        cdef const int32_t[::1] by
        cdef const uint8_t[::1] flag
        cdef bint has_diagonal = self.diagonal is not None, mirrored
        if has_diagonal:
            flag = self.diagonal
        # f: counts at f[r + 2], then write cursors at f[r + 1]; after the fill f[i] is
        # row i's start in the bucket, then (rewritten row by row) in the output
        offsets = np.zeros(n + 2, dtype=np.int64)
        cdef int64_t[::1] f = offsets
        for k in range(K):
            f[R[k] + 2] += 1
            if C[k] != R[k]:
                f[C[k] + 2] += 1
        # a block x x y: row x[i] gets y, row y[j] gets x (a block of one set against
        # itself, once)
        for x, y in self.blocks:
            bx, by = x, y
            nx, ny = bx.shape[0], by.shape[0]
            mirrored = x is not y
            for k in range(nx):
                f[bx[k] + 2] += ny
            if mirrored:
                for k in range(ny):
                    f[by[k] + 2] += nx
        if has_diagonal:
            for i in range(n):
                f[i + 2] += flag[i]
        for i in range(n):
            f[i + 2] += f[i + 1]
        total = f[n + 1]
        stamps = np.full(max(n, 1), -1, dtype=np.int32)
        cdef int32_t[::1] stamp = stamps
        buckets = np.empty(max(total, 1), dtype=np.int32)
        cdef int32_t[::1] bucket = buckets
        for k in range(K):
            r, c = R[k], C[k]
            bucket[f[r + 1]] = <int32_t>c
            f[r + 1] += 1
            if c != r:
                bucket[f[c + 1]] = <int32_t>r
                f[c + 1] += 1
        for x, y in self.blocks:
            append_to_rows(bucket, f, x, y)
            if x is not y:
                append_to_rows(bucket, f, y, x)
        if has_diagonal:
            for i in range(n):
                if flag[i]:
                    bucket[f[i + 1]] = <int32_t>i
                    f[i + 1] += 1
        # (f[i + 1] is now row i's end in the bucket; rows compacted in place)
        for i in range(n):
            start, end = w, f[i + 1]
            for k in range(row_start, end):
                c = bucket[k]
                if stamp[c] != i:
                    stamp[c] = <int32_t>i
                    bucket[w] = <int32_t>c
                    w += 1
            row_start = end
            sort_unique_row(&bucket[0] + start, w - start, &stamp[0], <int32_t>i, n)
            f[i + 1] = w
        return offsets[:n + 1], buckets[:w]
