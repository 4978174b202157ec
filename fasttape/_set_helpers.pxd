# Sorted sets of int32 columns: the C helpers that the index-set modules share
# (_sparsity's scalar sets, _array_sets' array patterns and Hessian pairs), inline.
# Declarations only: no module of its own.

from libc.stdint cimport int32_t, int64_t
from libc.stdlib cimport qsort

ctypedef fused stamp_t:
    int32_t
    int64_t


cdef inline int compare_int32(const void* a, const void* b) noexcept nogil:
    cdef int32_t x = (<const int32_t*>a)[0], y = (<const int32_t*>b)[0]
    return (x > y) - (x < y)


cdef inline Py_ssize_t merge(const int32_t* x, Py_ssize_t nx, const int32_t* y,
                             Py_ssize_t ny, int32_t* out) noexcept nogil:
    """The sorted union of sorted x and y into out (room for nx + ny); returns its
    length."""
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


cdef inline void sort_unique_row(int32_t* row, Py_ssize_t count, const stamp_t* stamp,
                                 stamp_t mark, Py_ssize_t n) noexcept nogil:
    """Sort row (count distinct columns of n, each stamped `mark` in stamp): by
    insertion when short, by qsort when a small part of all n columns, else by one
    scan of the stamps."""
    cdef Py_ssize_t c, k = 0, i, j
    cdef int32_t v
    if count < 2:
        return
    if count <= 16:
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
