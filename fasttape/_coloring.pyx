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

from libc.stdint cimport int32_t, int64_t, uint8_t

import numpy as np

cimport cython


# -- what the greedy colourings share ---------------------------------------------------

cdef tuple start_coloring(Py_ssize_t n, const int64_t[::1] order, str vertex):
    """The arrays a greedy colouring of n vertices (columns for column_coloring) in
    `order` starts from: the colours, -1 until coloured, and the marks (mark[c] == v:
    colour c is forbidden for vertex v; n + 1 of them, so one is always free). Checks
    that order has n entries (the loops check each as they colour it)."""
    if order.shape[0] != n:
        raise ValueError(f"order must list every {vertex} once")
    return np.full(n, -1, dtype=np.int32), np.full(n + 1, -1, dtype=np.int64)


# (the helpers called per vertex take pointers: a memoryview argument costs two atomic
# reference counts a call, most of a colouring of an arrowhead's leaves)

cdef inline Py_ssize_t next_in_order(const int64_t* order, Py_ssize_t k,
                                     const int32_t* color, Py_ssize_t n,
                                     bint columns) except -1:
    """order[k], the next vertex to colour, checked: one of the n, not coloured yet."""
    cdef Py_ssize_t v = order[k]
    if not 0 <= v < n or color[v] >= 0:
        raise ValueError(f"order must list every {'column' if columns else 'vertex'} "
                         f"once")
    return v


cdef inline Py_ssize_t first_free(const int64_t* mark, Py_ssize_t v) noexcept:
    """The smallest colour not forbidden for vertex v."""
    cdef Py_ssize_t c = 0
    while mark[c] == v:
        c += 1
    return c


cdef per_entry(Py_ssize_t nnz, dtype):
    """An uninitialised buffer with one element per entry of a pattern of nnz entries
    (at least one, so that its first element can be addressed)."""
    return np.empty(max(nnz, 1), dtype=dtype)


def column_coloring(const int64_t[::1] row_ptr, const int32_t[::1] row_cols,
                    const int64_t[::1] col_ptr, const int32_t[::1] col_rows,
                    const int64_t[::1] order):
    """Colours (0, 1, ...) of the columns of a pattern given by rows (row_ptr,
    row_cols) and by columns (col_ptr, col_rows), coloured in `order`: columns that
    share a row differ."""
    cdef Py_ssize_t n = col_ptr.shape[0] - 1, k, j, r, a, c
    check_csr(row_ptr, row_cols, n)
    check_csr(col_ptr, col_rows, row_ptr.shape[0] - 1)
    colors, forbidden = start_coloring(n, order, "column")
    cdef int32_t[::1] color_view = colors
    cdef int64_t[::1] mark_view = forbidden
    cdef int32_t* color = &color_view[0] if n else NULL
    cdef int64_t* mark = &mark_view[0]
    for k in range(n):
        j = next_in_order(&order[0], k, color, n, True)
        for a in range(col_ptr[j], col_ptr[j + 1]):
            r = col_rows[a]
            for c in range(row_ptr[r], row_ptr[r + 1]):
                if color[row_cols[c]] >= 0:
                    mark[color[row_cols[c]]] = j
        color[j] = <int32_t>first_free(mark, j)
    return colors


cdef inline Py_ssize_t find_entry(const int32_t* colors_near, Py_ssize_t count,
                                  int32_t colour) noexcept:
    cdef Py_ssize_t e
    for e in range(count):
        if colors_near[e] == colour:
            return e
    return -1


@cython.boundscheck(False)
@cython.wraparound(False)
def check_csr(const int64_t[::1] indptr, const int32_t[::1] indices, Py_ssize_t n_cols):
    """Raise ValueError unless (indptr, indices) is a CSR pattern over n_cols columns
    (the colourings index their arrays by it unchecked)."""
    cdef Py_ssize_t n = indptr.shape[0] - 1, i, a
    cdef bint decreases = False
    cdef int32_t low = 0, high = 0
    if n < 0 or indptr[0] != 0 or indptr[n] != indices.shape[0]:
        raise ValueError("not a CSR pattern: indptr does not match indices")
    # (loops without an exit, which the compiler vectorises; the culprit found after)
    for i in range(n):
        decreases |= indptr[i + 1] < indptr[i]
    if decreases:
        raise ValueError("not a CSR pattern: indptr decreases")
    if indices.shape[0]:
        low = high = indices[0]
    for a in range(indices.shape[0]):
        low = min(low, indices[a])
        high = max(high, indices[a])
    if low < 0 or high >= n_cols:
        raise ValueError(f"not a CSR pattern: column {low if low < 0 else high} of "
                         f"{n_cols}")


@cython.boundscheck(False)
@cython.wraparound(False)
def star_coloring(const int64_t[::1] indptr, const int32_t[::1] indices,
                  const int64_t[::1] order):
    """Star colouring (colours 0, 1, ...) of the adjacency graph of a symmetric
    pattern (CSR; diagonal entries are ignored), vertices coloured in `order`."""
    check_csr(indptr, indices, indptr.shape[0] - 1)
    return star_coloring_of_checked(indptr, indices, order)[0]


@cython.boundscheck(False)
@cython.wraparound(False)
cdef tuple star_coloring_of_checked(const int64_t[::1] indptr,
                                    const int32_t[::1] indices,
                                    const int64_t[::1] order):
    """star_coloring of a checked pattern: (colours, the colours around each vertex
    as (near_colours, near_counts, n_nears): vertex v's at indptr[v] ...
    indptr[v] + n_nears[v], each colour of v's neighbours and how many have it)."""
    cdef Py_ssize_t n = indptr.shape[0] - 1, k, v, a, b, w, e, x, c
    cdef int32_t cw
    colors, forbidden = start_coloring(n, order, "vertex")
    cdef int32_t[::1] color_view = colors
    cdef int64_t[::1] mark_view = forbidden
    cdef int32_t* color = &color_view[0] if n else NULL
    cdef int64_t* mark = &mark_view[0]
    # the colours around each vertex: entries at indptr[v] ... indptr[v] + n_near[v]
    cdef Py_ssize_t nnz = indptr[n]
    cdef int32_t[::1] near_colours = per_entry(nnz, np.int32)
    cdef int32_t[::1] near_counts = per_entry(nnz, np.int32)
    cdef int32_t[::1] near_witnesses = per_entry(nnz, np.int32)
    cdef int32_t[::1] n_nears = np.zeros(max(n, 1), dtype=np.int32)
    cdef int32_t* near_colour = &near_colours[0]
    cdef int32_t* near_count = &near_counts[0]
    cdef int32_t* near_witness = &near_witnesses[0]
    cdef int32_t* n_near = &n_nears[0]
    for k in range(n):
        v = next_in_order(&order[0], k, color, n, False)
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
        c = first_free(mark, v)
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
                if n_near[w] >= indptr[w + 1] - indptr[w]:
                    # (w's colours outnumber its row: only a pattern that is not
                    # symmetric gets here, and would write past w's entries)
                    raise ValueError("the pattern is not symmetric")
                e = indptr[w] + n_near[w]
                near_colour[e] = <int32_t>c
                near_count[e] = 1
                near_witness[e] = <int32_t>v
                n_near[w] += 1
    return colors, near_colours.base, near_counts.base, n_nears.base


# acyclic_coloring: a distance-1 colouring in which every cycle uses at least three
# colours, so each two-coloured subgraph is a forest (Coleman and Cai 1986; the
# two-coloured trees kept as disjoint sets of edges, as in Gebremedhin, Tarafdar,
# Manne and Pothen, "New acyclic and star coloring algorithms", SIAM J. Sci. Comput.
# 2007). It needs fewer colours than a star colouring (b + 1 against 2b + 1 on a band
# of half-width b) at the price of recovery by substitution (acyclic_recover).
#
# Giving v colour c adds, for each colour d, the edges from v to its d-coloured
# neighbours to the (c, d) forest; that closes a cycle exactly when two of those
# neighbours already lie in one (c, d) tree. The tree of a coloured vertex w in the
# (c, d) forest is found through any edge (w, x) with colour(x) == c (w's entry for
# colour c, kept as in star_coloring); w with no such edge is alone in its tree.

cdef inline Py_ssize_t find_root(int64_t* parent, Py_ssize_t e) noexcept:
    cdef Py_ssize_t r = e, nxt
    while parent[r] != r:
        r = parent[r]
    while parent[e] != r:            # path compression
        nxt = parent[e]
        parent[e] = r
        e = nxt
    return r


cdef inline void join(int64_t* parent, Py_ssize_t a, Py_ssize_t b) noexcept:
    a = find_root(parent, a)
    b = find_root(parent, b)
    if a != b:
        parent[a] = b


def acyclic_coloring(const int64_t[::1] indptr, const int32_t[::1] indices,
                     const int64_t[::1] edge_of, const int64_t[::1] order):
    """Acyclic colouring (colours 0, 1, ...) of the adjacency graph of a symmetric
    pattern (CSR with sorted rows; diagonal entries are ignored), vertices coloured in
    `order`. edge_of[a] names the undirected edge of entry a (the same for (i, j) and
    (j, i))."""
    cdef Py_ssize_t n = indptr.shape[0] - 1, k, v, a, b, w, e, c, root, n_tree
    cdef int32_t cw
    cdef int64_t stamp = 0
    check_csr(indptr, indices, n)
    colors, forbidden = start_coloring(n, order, "vertex")
    if edge_of.shape[0] != indices.shape[0]:
        raise ValueError("edge_of must name the edge of every entry")
    cdef int32_t[::1] color_view = colors
    cdef int64_t[::1] mark_view = forbidden
    cdef int32_t* color = &color_view[0] if n else NULL
    cdef int64_t* mark = &mark_view[0]
    cdef Py_ssize_t nnz = indptr[n]
    # near_colour/near_edge at indptr[w] ...: colour k next to w and one edge to it
    cdef int32_t[::1] near_colours = per_entry(nnz, np.int32)
    cdef int64_t[::1] near_edges = per_entry(nnz, np.int64)
    cdef int32_t[::1] n_nears = np.zeros(max(n, 1), dtype=np.int32)
    cdef int64_t[::1] parents = per_entry(nnz, np.int64)
    cdef int64_t[::1] seens = per_entry(nnz, np.int64)
    cdef int32_t* near_colour = &near_colours[0]
    cdef int64_t* near_edge = &near_edges[0]
    cdef int32_t* n_near = &n_nears[0]
    cdef int64_t* parent = &parents[0]
    cdef int64_t* seen = &seens[0]
    for a in range(nnz):
        e = edge_of[a]
        if not 0 <= e < nnz:
            raise ValueError("edge_of out of range")
        parent[a] = a
        seen[a] = -1
    for k in range(n):
        v = next_in_order(&order[0], k, color, n, False)
        for a in range(indptr[v], indptr[v + 1]):
            w = indices[a]
            if w != v and color[w] >= 0:
                mark[color[w]] = v
        c = 0
        while True:
            while mark[c] == v:
                c += 1
            # would colour c close a two-coloured cycle?
            stamp += 1
            n_tree = 0
            for a in range(indptr[v], indptr[v + 1]):
                w = indices[a]
                if w == v or color[w] < 0:
                    continue
                e = find_entry(&near_colour[indptr[w]], n_near[w], <int32_t>c)
                if e < 0:
                    continue
                root = find_root(parent, near_edge[indptr[w] + e])
                if seen[root] == stamp:
                    n_tree = -1
                    break
                seen[root] = stamp
            if n_tree == 0:
                break
            mark[c] = v
        color[v] = <int32_t>c
        # v's edges to coloured neighbours join their two-coloured trees
        for a in range(indptr[v], indptr[v + 1]):
            w = indices[a]
            if w == v or color[w] < 0:
                continue
            cw = color[w]
            e = edge_of[a]
            b = find_entry(&near_colour[indptr[w]], n_near[w], <int32_t>c)
            if b >= 0:
                join(parent, e, near_edge[indptr[w] + b])
            else:
                if n_near[w] >= indptr[w + 1] - indptr[w]:
                    raise ValueError("the pattern is not symmetric")   # (as above)
                b = indptr[w] + n_near[w]
                near_colour[b] = <int32_t>c
                near_edge[b] = e
                n_near[w] += 1
            b = find_entry(&near_colour[indptr[v]], n_near[v], cw)
            if b >= 0:
                join(parent, e, near_edge[indptr[v] + b])
            else:
                b = indptr[v] + n_near[v]
                near_colour[b] = cw
                near_edge[b] = e
                n_near[v] += 1
    return colors


def acyclic_recover(const int64_t[::1] indptr, const int32_t[::1] indices,
                    const int64_t[::1] mirror, const int32_t[::1] colors,
                    const double[:, ::1] compressed):
    """The values (in CSR entry order) of a symmetric matrix H with the pattern
    (indptr, indices) from compressed = H @ S, S the indicator columns of an acyclic
    colouring: each two-coloured forest is peeled from its leaves. mirror[a] is the
    entry of (j, i) for entry a = (i, j)."""
    cdef Py_ssize_t n = indptr.shape[0] - 1, nc = compressed.shape[1]
    cdef Py_ssize_t nnz = indptr[n], i, j, a, k, ci, head = 0, tail = 0
    if compressed.shape[0] != n or colors.shape[0] != n or mirror.shape[0] != nnz:
        raise ValueError("shapes of the pattern, colours and compressed matrix differ")
    for i in range(n):
        if not 0 <= colors[i] < nc:
            raise ValueError("a colour has no column in the compressed matrix")
    values = np.zeros(nnz)
    residual_array = np.array(compressed, dtype=float)     # B minus the recovered
    count_array = np.zeros((n, nc), dtype=np.int64)        # unrecovered per colour
    done_array = np.zeros(nnz, dtype=np.uint8)
    queue_array = np.empty(n * nc + 1, dtype=np.int64)
    cdef double[::1] value = values
    cdef double[:, ::1] residual = residual_array
    cdef int64_t[:, ::1] count = count_array
    cdef uint8_t[::1] done = done_array
    cdef int64_t[::1] queue = queue_array
    with nogil:
        for i in range(n):
            for a in range(indptr[i], indptr[i + 1]):
                j = indices[a]
                if j == i:
                    value[a] = compressed[i, colors[i]]   # no neighbour shares i's colour
                    done[a] = 1
                else:
                    count[i, colors[j]] += 1
        for i in range(n):
            for k in range(nc):
                if count[i, k] == 1:
                    queue[tail] = i * nc + k
                    tail += 1
        while head < tail:
            i = queue[head] // nc
            k = queue[head] % nc
            head += 1
            if count[i, k] != 1:
                continue
            for a in range(indptr[i], indptr[i + 1]):
                j = indices[a]
                if not done[a] and colors[j] == k:
                    break
            # i is a leaf of its (colour i, k) tree: its one remaining edge is (i, j)
            value[a] = residual[i, k]
            value[mirror[a]] = residual[i, k]
            done[a] = 1
            done[mirror[a]] = 1
            count[i, k] = 0
            ci = colors[i]
            residual[j, ci] -= value[a]
            count[j, ci] -= 1
            if count[j, ci] == 1:
                queue[tail] = j * nc + ci
                tail += 1
    if not done_array.all():
        raise ValueError("the colouring is not acyclic on this pattern")
    return values


@cython.boundscheck(False)
@cython.wraparound(False)
def star_reads(const int64_t[::1] indptr, const int32_t[::1] indices,
               const int32_t[::1] colors, Py_ssize_t n_colors):
    """Where a star colouring's compressed Hessian B (n x n_colors, C order) holds
    each entry (i, j) of the symmetric pattern, in CSR order: at B[i, colour j] when
    j's colour is alone among row i's columns, else at B[j, colour i] (the star
    property makes one of the two unmixed)."""
    cdef Py_ssize_t n = indptr.shape[0] - 1, i
    check_csr(indptr, indices, n)
    if colors.shape[0] != n:
        raise ValueError("a colour per vertex is needed")
    for i in range(n):
        if not 0 <= colors[i] < n_colors:
            raise ValueError(f"colour {colors[i]} of {n_colors}")
    return reads_of_star(indptr, indices, colors, n_colors)


def star_plan(const int64_t[::1] indptr, const int32_t[::1] indices,
              const int64_t[::1] order):
    """star_coloring then star_reads on one symmetric pattern, checked once:
    (colours, number of colours, reads)."""
    check_csr(indptr, indices, indptr.shape[0] - 1)
    colors, near_colours, near_counts, n_nears = star_coloring_of_checked(
        indptr, indices, order)
    cdef Py_ssize_t n_colors = int(colors.max()) + 1 if colors.shape[0] else 0
    return colors, n_colors, reads_of_star(indptr, indices, colors, max(n_colors, 1),
                                           near_colours, near_counts, n_nears)


@cython.boundscheck(False)
@cython.wraparound(False)
cdef reads_of_star(const int64_t[::1] indptr, const int32_t[::1] indices,
                   const int32_t[::1] colors, Py_ssize_t n_colors,
                   near_colours=None, near_counts=None, n_nears=None):
    """star_reads on a checked pattern and colouring; with the colours around each
    vertex that star_coloring_of_checked left, a row of few of them reads its counts
    there (in one pass) rather than counting its columns' colours."""
    cdef Py_ssize_t n = indptr.shape[0] - 1, i, a, j, e, m, found
    reads = np.empty(indices.shape[0], dtype=np.int64)
    counts = np.zeros(max(n_colors, 1), dtype=np.int64)
    stamps = np.full(max(n_colors, 1), -1, dtype=np.int64)   # (count[c] is row i's
    cdef int64_t[::1] out = reads                            # when stamp[c] == i)
    cdef int64_t[::1] count = counts
    cdef int64_t[::1] stamp = stamps
    cdef int32_t c
    cdef bint near = near_colours is not None
    cdef const int32_t[::1] near_colour
    cdef const int32_t[::1] near_count
    cdef const int32_t[::1] n_near
    if near:
        near_colour, near_count, n_near = near_colours, near_counts, n_nears
    for i in range(n):
        if near and n_near[i] <= 8:
            # (the diagonal's colour is alone in its row, a distance-1 colouring; any
            # other column's colour is among the neighbours', with its count)
            m = n_near[i]
            for a in range(indptr[i], indptr[i + 1]):
                j = indices[a]
                c = colors[j]
                if j == i:
                    out[a] = i * n_colors + c
                    continue
                found = -1
                for e in range(indptr[i], indptr[i] + m):
                    if near_colour[e] == c:
                        found = e
                        break
                if found < 0:          # (not symmetric: count the row's colours)
                    break
                out[a] = i * n_colors + c if near_count[found] == 1 else \
                    j * n_colors + colors[i]
            else:
                continue
        for a in range(indptr[i], indptr[i + 1]):
            c = colors[indices[a]]
            if stamp[c] != i:
                stamp[c] = i
                count[c] = 0
            count[c] += 1
        for a in range(indptr[i], indptr[i + 1]):
            j = indices[a]
            if count[colors[j]] == 1:
                out[a] = i * n_colors + colors[j]
            else:
                out[a] = j * n_colors + colors[i]
    return reads
