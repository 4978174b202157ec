# Index sets of array nodes, for fasttape.sparsity: an array node's pattern (one
# sorted set of input columns per value) as a Rows, and the Hessian's pairs gathered
# in a PairBuffer, each operation a C loop costing O(values + set sizes).
#
# A Rows is either shared (every value has the same set, stored once: a scalar
# broadcast over an array, or a reduction's result read back elementwise) or CSR
# (indptr, indices; each row sorted, no repeats). Picking rows of a shared Rows keeps
# it shared, so `x - x[0]` costs O(n) and not n copies of x[0]'s set; the pairs of a
# shared Rows against any other are one block (X x union of the other's rows), not
# one product per value.

from libc.stdint cimport int32_t, int64_t
from libc.stdlib cimport free, malloc, qsort, realloc
from libc.string cimport memcpy

import numpy as np

cimport cython


cdef int compare_int32(const void* a, const void* b) noexcept nogil:
    cdef int32_t x = (<const int32_t*>a)[0], y = (<const int32_t*>b)[0]
    return (x > y) - (x < y)


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


@cython.boundscheck(False)
@cython.wraparound(False)
cdef void sort_unique_row(int32_t* row, Py_ssize_t count, int64_t* stamp, int64_t mark,
                          Py_ssize_t n) noexcept:
    """Sort row (count distinct columns, each stamped `mark`): by qsort when short,
    by a scan of the stamps when the row is a good part of all n columns."""
    cdef Py_ssize_t c, k = 0, i, j
    cdef int32_t v
    if count < 2:
        return
    if count <= 16:                                # (insertion sort)
        for i in range(1, count):
            v = row[i]
            j = i - 1
            while j >= 0 and row[j] > v:
                row[j + 1] = row[j]
                j -= 1
            row[j + 1] = v
        return
    if count * 8 < n:
        qsort(row, count, sizeof(int32_t), compare_int32)
        return
    for c in range(n):
        if stamp[c] == mark:
            row[k] = <int32_t>c
            k += 1


cdef class Rows:
    """One sorted set of input columns (of n) per value of an array node (size
    values): shared (one set for all) or CSR."""
    cdef readonly Py_ssize_t size, n
    cdef readonly bint shared
    cdef readonly object indptr      # int64: size + 1 offsets (shared: [0, length])
    cdef readonly object indices     # int32

    def __init__(self, Py_ssize_t size, Py_ssize_t n, bint shared, indptr, indices):
        self.size, self.n, self.shared = size, n, shared
        self.indptr = np.ascontiguousarray(indptr, dtype=np.int64)
        self.indices = np.ascontiguousarray(indices, dtype=np.int32)
        if self.indptr.shape[0] != (2 if shared else size + 1):
            raise ValueError("Rows: indptr does not match the size")

    @property
    def is_empty(self):
        """No value depends on any column."""
        return self.size == 0 or self.indptr[-1] == 0

    def row(self, Py_ssize_t i):
        """Value i's set (int32)."""
        if not 0 <= i < self.size:
            raise IndexError(f"value {i} of {self.size}")
        if self.shared:
            return self.indices
        return self.indices[self.indptr[i]:self.indptr[i + 1]]

    def csr(self):
        """(indptr, indices) with one row per value (a shared set repeated)."""
        if not self.shared:
            return self.indptr, self.indices
        k = self.indices.shape[0]
        return (np.arange(self.size + 1, dtype=np.int64) * k,
                np.tile(self.indices, self.size))


def shared_rows(indices, Py_ssize_t size, Py_ssize_t n):
    """size values all depending on the sorted, unique columns `indices`."""
    indices = np.ascontiguousarray(indices, dtype=np.int32)
    return Rows(size, n, True, np.array([0, indices.shape[0]], dtype=np.int64), indices)


def empty_rows(Py_ssize_t size, Py_ssize_t n):
    return shared_rows(np.zeros(0, dtype=np.int32), size, n)


def identity_rows(Py_ssize_t size, Py_ssize_t first, Py_ssize_t n):
    """Values 0 .. size - 1 depending on columns first .. first + size - 1."""
    return Rows(size, n, False, np.arange(size + 1, dtype=np.int64),
                np.arange(first, first + size, dtype=np.int32))


cdef inline void span(Rows r, const int64_t[::1] ptr, Py_ssize_t i, Py_ssize_t* start,
                      Py_ssize_t* end) noexcept:
    if r.shared:
        start[0], end[0] = 0, ptr[1]
    else:
        start[0], end[0] = ptr[i], ptr[i + 1]


def check_index(const int64_t[::1] index, Py_ssize_t bound, str what):
    cdef Py_ssize_t k
    for k in range(index.shape[0]):
        if not 0 <= index[k] < bound:
            raise IndexError(f"{what}: position {index[k]} of {bound}")


@cython.boundscheck(False)
@cython.wraparound(False)
def pick(Rows p, const int64_t[::1] index):
    """The rows index[0], index[1], ... of p (a gather, a strided view, a broadcast)."""
    cdef Py_ssize_t m = index.shape[0], k, s, e, total = 0, at = 0
    check_index(index, p.size, "pick")
    if p.shared:
        return Rows(m, p.n, True, p.indptr, p.indices)
    if p.size == 1:
        return Rows(m, p.n, True, p.indptr, p.indices)
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
        s, e = ptr[index[k]], ptr[index[k] + 1]
        if e > s:
            memcpy(&oi[at], &ix[s], (e - s) * sizeof(int32_t))
        at += e - s
        op[k + 1] = at
    return Rows(m, p.n, False, indptr, indices)


@cython.boundscheck(False)
@cython.wraparound(False)
cdef Py_ssize_t merge(const int32_t* x, Py_ssize_t nx, const int32_t* y, Py_ssize_t ny,
                      int32_t* out) noexcept:
    """The sorted union of sorted x and y into out; returns its length."""
    cdef Py_ssize_t i = 0, j = 0, k = 0
    while i < nx and j < ny:
        if x[i] < y[j]:
            out[k] = x[i]
            i += 1
        elif y[j] < x[i]:
            out[k] = y[j]
            j += 1
        else:
            out[k] = x[i]
            i += 1
            j += 1
        k += 1
    while i < nx:
        out[k] = x[i]
        i += 1
        k += 1
    while j < ny:
        out[k] = y[j]
        j += 1
        k += 1
    return k


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
    cdef const int64_t[::1] pa = a.indptr
    cdef const int64_t[::1] pb = b.indptr
    cdef const int32_t[::1] xa = a.indices
    cdef const int32_t[::1] xb = b.indices
    cdef Py_ssize_t i, sa, ea, sb, eb, at = 0
    cdef Py_ssize_t m = 1 if a.shared and b.shared else a.size
    cdef Py_ssize_t bound = (pa[1] * m if a.shared else pa[m]) + \
        (pb[1] * m if b.shared else pb[m])
    indptr = np.empty(m + 1, dtype=np.int64)
    indices = np.empty(bound, dtype=np.int32)
    cdef int64_t[::1] op = indptr
    cdef int32_t[::1] oi = indices
    op[0] = 0
    for i in range(m):
        span(a, pa, i, &sa, &ea)
        span(b, pb, i, &sb, &eb)
        at += merge(&xa[0] + sa, ea - sa, &xb[0] + sb, eb - sb, &oi[0] + at)
        op[i + 1] = at
    indices = indices[:at]
    if a.shared and b.shared:
        return Rows(a.size, a.n, True, indptr, indices)
    return Rows(a.size, a.n, False, indptr, indices)


@cython.boundscheck(False)
@cython.wraparound(False)
def combine(Rows p, const int64_t[::1] out, const int64_t[::1] src, Py_ssize_t size):
    """The pattern of M @ p for the 0/1 matrix M with ones at (out[k], src[k]): value
    t's set is the union of p's rows src[k] over the k with out[k] == t (a reduction,
    a scatter, a cumulative sum, a concatenation, a matrix product's terms)."""
    cdef Py_ssize_t K = out.shape[0], k, t, s = 0, e = 0, c, j, start, n = p.n
    if src.shape[0] != K:
        raise ValueError("combine: out and src differ in length")
    check_index(out, size, "combine")
    check_index(src, p.size, "combine")
    cdef const int64_t[::1] ptr = p.indptr
    cdef const int32_t[::1] ix = p.indices
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
        f[t + 1] += f[t]
    for k in range(K):
        o[f[out[k]]] = src[k]
        f[out[k]] += 1
    for t in range(size - 1, 0, -1):               # (back to the starts)
        f[t] = f[t - 1]
    f[0] = 0
    try:
        op[0] = 0
        for t in range(size):
            start = b.count
            for k in range(f[t], f[t + 1]):
                span(p, ptr, o[k], &s, &e)
                reserve(&b, e - s)
                for j in range(s, e):
                    c = ix[j]
                    if stamp[c] != t:
                        stamp[c] = t
                        b.data[b.count] = <int32_t>c
                        b.count += 1
            if f[t + 1] - f[t] > 1:                 # (one row alone is sorted)
                sort_unique_row(b.data + start, b.count - start, &stamp[0], t, n)
            op[t + 1] = b.count
        return Rows(size, n, False, indptr, to_array(b.data, b.count))
    finally:
        free(b.data)


def union_of(Rows p, live=None):
    """The union of p's sets (of its values at positions live, when given): sorted
    int32."""
    if p.shared:
        return p.indices if p.size and (live is None or len(live)) else p.indices[:0]
    src = np.arange(p.size, dtype=np.int64) if live is None else \
        np.ascontiguousarray(live, dtype=np.int64)
    return combine(p, np.zeros(src.shape[0], dtype=np.int64), src, 1).indices


cdef class PairBuffer:
    """The Hessian pattern's (row, column) pairs, gathered and then built into a
    symmetric CSR pattern (each pair with its mirror, repeats dropped)."""
    cdef Buffer rows, cols
    cdef readonly Py_ssize_t n

    def __cinit__(self, Py_ssize_t n):
        self.n = n
        self.rows.data, self.rows.count, self.rows.capacity = NULL, 0, 0
        self.cols.data, self.cols.count, self.cols.capacity = NULL, 0, 0

    def __dealloc__(self):
        free(self.rows.data)
        free(self.cols.data)

    @property
    def count(self):
        return self.rows.count

    cdef int check(self, const int32_t[::1] x) except -1:
        cdef Py_ssize_t k
        for k in range(x.shape[0]):
            if not 0 <= x[k] < self.n:
                raise IndexError(f"pair column {x[k]} of {self.n}")
        return 0

    @cython.boundscheck(False)
    @cython.wraparound(False)
    def add_block(self, const int32_t[::1] x, const int32_t[::1] y):
        """Every pair of x x y."""
        cdef Py_ssize_t i, j, nx = x.shape[0], ny = y.shape[0], k
        self.check(x)
        self.check(y)
        reserve(&self.rows, nx * ny)
        reserve(&self.cols, nx * ny)
        k = self.rows.count
        for i in range(nx):
            for j in range(ny):
                self.rows.data[k] = x[i]
                self.cols.data[k] = y[j]
                k += 1
        self.rows.count = self.cols.count = k

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

    @cython.boundscheck(False)
    @cython.wraparound(False)
    def add_rows(self, Rows a, Rows b, live=None):
        """Value by value, a's set x b's set, over the values at positions live (all
        when None): one block when either is shared."""
        cdef const int64_t[::1] positions
        cdef const int64_t[::1] pa
        cdef const int64_t[::1] pb
        cdef const int32_t[::1] xa
        cdef const int32_t[::1] xb
        cdef Py_ssize_t k, i, sa, ea, sb, eb, u, v, need = 0, at
        if a.size != b.size:
            raise ValueError("add_rows: patterns of different sizes")
        if a.is_empty or b.is_empty:
            return
        if a.shared:
            self.add_block(a.indices, union_of(b, live))
            return
        if b.shared:
            self.add_block(union_of(a, live), b.indices)
            return
        positions = np.arange(a.size, dtype=np.int64) if live is None else \
            np.ascontiguousarray(live, dtype=np.int64)
        check_index(positions, a.size, "add_rows")
        pa, pb, xa, xb = a.indptr, b.indptr, a.indices, b.indices
        for k in range(positions.shape[0]):
            i = positions[k]
            need += (pa[i + 1] - pa[i]) * (pb[i + 1] - pb[i])
        reserve(&self.rows, need)
        reserve(&self.cols, need)
        at = self.rows.count
        for k in range(positions.shape[0]):
            i = positions[k]
            sa, ea, sb, eb = pa[i], pa[i + 1], pb[i], pb[i + 1]
            for u in range(sa, ea):
                for v in range(sb, eb):
                    self.rows.data[at] = xa[u]
                    self.cols.data[at] = xb[v]
                    at += 1
        self.rows.count = self.cols.count = at

    @cython.boundscheck(False)
    @cython.wraparound(False)
    def build(self):
        """The symmetric pattern of the pairs and their mirrors: CSR (indptr int64,
        indices int32), each row sorted, no repeats."""
        cdef Py_ssize_t n = self.n, K = self.rows.count, k, i, r, c, w = 0, start
        cdef int32_t* R = self.rows.data
        cdef int32_t* C = self.cols.data
        indptr = np.zeros(n + 1, dtype=np.int64)
        cdef int64_t[::1] op = indptr
        firsts = np.zeros(n + 1, dtype=np.int64)
        cdef int64_t[::1] f = firsts
        stamps = np.full(max(n, 1), -1, dtype=np.int64)
        cdef int64_t[::1] stamp = stamps
        cdef int32_t* bucket = <int32_t*>malloc(max(2 * K, 1) * sizeof(int32_t))
        if bucket == NULL:
            raise MemoryError()
        try:
            for k in range(K):
                f[R[k] + 1] += 1
                f[C[k] + 1] += 1
            for i in range(n):
                f[i + 1] += f[i]
            for k in range(K):
                r, c = R[k], C[k]
                bucket[f[r]] = <int32_t>c
                f[r] += 1
                bucket[f[c]] = <int32_t>r
                f[c] += 1
            # (f[i] is now row i's end; row i starts at f[i - 1])
            for i in range(n):
                start = w
                for k in range(f[i - 1] if i else 0, f[i]):
                    c = bucket[k]
                    if stamp[c] != i:
                        stamp[c] = i
                        bucket[w] = <int32_t>c
                        w += 1
                sort_unique_row(bucket + start, w - start, &stamp[0], i, n)
                op[i + 1] = w
            return indptr, to_array(bucket, w)
        finally:
            free(bucket)
