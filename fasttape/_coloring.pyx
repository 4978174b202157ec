# Graph colourings for compressed derivatives (Gebremedhin, Manne and Pothen, "What
# color is your Jacobian?", SIAM Review 2005): greedy, in a given vertex order.
#
# column_coloring: columns sharing a row get different colours (distance-2 in the
# bipartite graph of the pattern), so J @ S, S the colours' indicator columns, holds
# every nonzero of J unmixed (Curtis-Powell-Reid).
#
# star_coloring: a distance-1 colouring of the adjacency graph of a symmetric pattern
# in which every path on four vertices uses at least three colours; H @ S then holds
# each nonzero H[i, j] unmixed in row i or in row j (direct recovery). A dense row
# (an arrowhead's hub, coloured first by a largest-first order) costs one colour.
#
# The star rule, for a vertex v about to be coloured:
#   - the colours of v's coloured neighbours are forbidden (distance 1);
#   - through an uncoloured neighbour w, every colour next to w is forbidden (so two
#     neighbours of a vertex coloured after them never share a colour);
#   - through a coloured neighbour w, colour k next to w is forbidden when exactly one
#     neighbour x of w has colour k and x has another neighbour of w's colour
#     (v - w - x - y would be two-coloured). When two or more neighbours of w have
#     colour k, w is the hub of their two-coloured star and v joins it as a leaf.
# Each vertex keeps the colours around it as (colour, count, a witness) entries, so
# a hub of degree n is not rescanned for each of its n leaves.

from libc.stdint cimport int32_t, int64_t
from libc.stdlib cimport free, malloc

import numpy as np


def column_coloring(const int64_t[::1] row_ptr, const int32_t[::1] row_cols,
                    const int64_t[::1] col_ptr, const int32_t[::1] col_rows,
                    const int64_t[::1] order):
    """Colours (0, 1, ...) of the columns of a pattern given by rows (row_ptr,
    row_cols) and by columns (col_ptr, col_rows), coloured in `order`: columns that
    share a row differ."""
    cdef Py_ssize_t n = col_ptr.shape[0] - 1, k, j, r, a, c
    if order.shape[0] != n:
        raise ValueError("order must list every column once")
    colors = np.full(n, -1, dtype=np.int32)
    forbidden = np.full(n + 1, -1, dtype=np.int64)
    cdef int32_t[::1] color = colors
    cdef int64_t[::1] mark = forbidden
    for k in range(n):
        j = order[k]
        if not 0 <= j < n or color[j] >= 0:
            raise ValueError("order must list every column once")
        for a in range(col_ptr[j], col_ptr[j + 1]):
            r = col_rows[a]
            for c in range(row_ptr[r], row_ptr[r + 1]):
                if color[row_cols[c]] >= 0:
                    mark[color[row_cols[c]]] = j
        c = 0
        while mark[c] == j:
            c += 1
        color[j] = <int32_t>c
    return colors


cdef inline Py_ssize_t find_entry(const int32_t* colors_near, Py_ssize_t count,
                                  int32_t colour) noexcept:
    cdef Py_ssize_t e
    for e in range(count):
        if colors_near[e] == colour:
            return e
    return -1


def star_coloring(const int64_t[::1] indptr, const int32_t[::1] indices,
                  const int64_t[::1] order):
    """Star colouring (colours 0, 1, ...) of the adjacency graph of a symmetric
    pattern (CSR; diagonal entries are ignored), vertices coloured in `order`."""
    cdef Py_ssize_t n = indptr.shape[0] - 1, k, v, a, b, w, e, x, c
    cdef int32_t cw
    if order.shape[0] != n:
        raise ValueError("order must list every vertex once")
    colors = np.full(n, -1, dtype=np.int32)
    forbidden = np.full(n + 1, -1, dtype=np.int64)
    cdef int32_t[::1] color = colors
    cdef int64_t[::1] mark = forbidden
    # the colours around each vertex: entries at indptr[v] ... indptr[v] + n_near[v]
    cdef Py_ssize_t nnz = indptr[n]
    cdef int32_t* near_colour = <int32_t*>malloc(max(nnz, 1) * sizeof(int32_t))
    cdef int32_t* near_count = <int32_t*>malloc(max(nnz, 1) * sizeof(int32_t))
    cdef int32_t* near_witness = <int32_t*>malloc(max(nnz, 1) * sizeof(int32_t))
    cdef int32_t* n_near = <int32_t*>malloc(max(n, 1) * sizeof(int32_t))
    if not (near_colour and near_count and near_witness and n_near):
        free(near_colour)
        free(near_count)
        free(near_witness)
        free(n_near)
        raise MemoryError()
    try:
        for v in range(n):
            n_near[v] = 0
        for k in range(n):
            v = order[k]
            if not 0 <= v < n or color[v] >= 0:
                raise ValueError("order must list every vertex once")
            for a in range(indptr[v], indptr[v + 1]):
                w = indices[a]
                if w == v:
                    continue
                cw = color[w]
                if cw >= 0:
                    mark[cw] = v
                    for e in range(indptr[w], indptr[w] + n_near[w]):
                        if near_count[e] == 1:
                            x = near_witness[e]
                            # does x have another neighbour of w's colour?
                            b = find_entry(&near_colour[indptr[x]], n_near[x], cw)
                            if b >= 0 and near_count[indptr[x] + b] >= 2:
                                mark[near_colour[e]] = v
                else:
                    for e in range(indptr[w], indptr[w] + n_near[w]):
                        mark[near_colour[e]] = v
            c = 0
            while mark[c] == v:
                c += 1
            color[v] = <int32_t>c
            # v's colour joins the entries of its neighbours
            for a in range(indptr[v], indptr[v + 1]):
                w = indices[a]
                if w == v:
                    continue
                e = find_entry(&near_colour[indptr[w]], n_near[w], <int32_t>c)
                if e >= 0:
                    near_count[indptr[w] + e] += 1
                else:
                    e = indptr[w] + n_near[w]
                    near_colour[e] = <int32_t>c
                    near_count[e] = 1
                    near_witness[e] = <int32_t>v
                    n_near[w] += 1
    finally:
        free(near_colour)
        free(near_count)
        free(near_witness)
        free(n_near)
    return colors
