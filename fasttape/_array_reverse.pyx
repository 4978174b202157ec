# The reverse steps of array nodes (array_reverse_c), and their forward-over-reverse
# steps (array_second_order_c): one case per AOP_* code (_tape_storage.pxd), each
# with its kernel below — flat elementwise loops the compiler vectorises, walkers for
# broadcasting, reductions, strided views, gathers, and BLAS for matrix products.
# The scalar sweeps (_reverse, _second_order) call these for their ARRAY nodes.

from cpython.mem cimport PyMem_RawFree, PyMem_RawMalloc
from libc.stdint cimport int64_t
from libc.string cimport memcpy, memset

import numpy as np

from fasttape._array_helpers cimport (live_adjoints, next_index1, next_index2,
                                      operand_adjoints, operand_block, operand_tangents,
                                      operand_values, pyfunc_inputs, pyfunc_output,
                                      step_partials)
from fasttape._opmath cimport binary_partials, binary_second, unary_reverse, unary_second
from fasttape._opmath_helpers cimport curvature, pow_dbase_dbase, put, sigmoid
from fasttape._tape_storage cimport *
from scipy.linalg.cython_blas cimport dgemm, dgemv


cdef inline double* fresh_adjoints(TapeStorage t, Operand* o,
                                   double* beta) noexcept nogil:
    """For a kernel that can write instead of add (BLAS's beta): the operand's block,
    with beta 0 if nothing is there yet (and no zeroing done), else 1."""
    if o.kind == OPERAND_ARRAY and not t.array_adjoint_live[o.ref]:
        t.array_adjoint_live[o.ref] = 1
        beta[0] = 0.0
        return &t.array_adjoints[t.anodes[o.ref].adj]
    beta[0] = 1.0
    return operand_adjoints(t, o)


cdef int array_reverse_c(TapeStorage t, Py_ssize_t r) noexcept nogil:
    """The reverse step of array node r (see the AOP_* list in _tape_storage.pxd)."""
    cdef ArrayNode* n = &t.anodes[r]
    cdef const double* g
    cdef const double* y
    cdef Py_ssize_t k, size = n.size
    cdef Operand* x
    cdef Operand* x1
    cdef double* gx
    cdef double* gx1
    cdef BinaryLayout broadcast
    cdef StridedLayout view
    cdef double beta_a, beta_b
    if n.out_slot >= 0:
        g = &t.adjoints[n.out_slot]
        y = &t.values[n.out_slot]
    elif not t.array_adjoint_live[r]:  # never reached: no adjoint to pass on
        return 0
    else:
        g = &t.array_adjoints[n.adj]
        y = n.value
    for k in range(size):              # skip the node if its adjoint is all zeros
        if g[k] != 0.0:
            break
    else:
        return 0
    if n.aop == AOP_LEAF:
        return 0
    x = &t.operands[n.operand0]
    beta_a = 1.0
    if n.aop == AOP_UNARY or n.aop == AOP_SUM or n.aop == AOP_WEIGHTED_SUM:
        gx = fresh_adjoints(t, x, &beta_a)      # these write every value of x's block
    elif n.aop == AOP_MATMUL or n.aop == AOP_BINARY or n.aop == AOP_STRIDED:
        gx = NULL                                # (decided below)
    else:
        gx = operand_adjoints(t, x)
    if n.aop == AOP_UNARY:             # y[k] = sop(x[k])
        if gx != NULL:
            unary_reverse(n.sop, size, operand_values(t, x), y, g, gx, beta_a == 0.0)
    elif n.aop == AOP_BINARY:          # y = sop(a, b), broadcast
        x1 = &t.operands[n.operand0 + 1]
        if (x.size == size or x.size == 1) and (x1.size == size or x1.size == 1):
            # flat: a full-size operand's fresh block is written, not zeroed and added
            if x.size == size and size > 1:
                gx = fresh_adjoints(t, x, &beta_a)
            else:
                gx = operand_adjoints(t, x)
                beta_a = 1.0
            if x1.size == size and size > 1:
                gx1 = fresh_adjoints(t, x1, &beta_b)
            else:
                gx1 = operand_adjoints(t, x1)
                beta_b = 1.0
            if n.weights != NULL:        # logaddexp with its partials precomputed
                weighted_pair_reverse(size, n.weights, g, gx, 1 if x.size == size else 0,
                                      beta_a == 0.0, gx1, 1 if x1.size == size else 0,
                                      beta_b == 0.0)
            else:
                binary_flat_reverse(n.sop, size, operand_values(t, x),
                                    1 if x.size == size else 0, gx, beta_a == 0.0,
                                    operand_values(t, x1), 1 if x1.size == size else 0,
                                    gx1, beta_b == 0.0, y, g)
        else:
            gx = operand_adjoints(t, x)
            broadcast = binary_layout(t, n)
            binary_reverse(n.sop, size, operand_values(t, x), x.size, gx,
                           operand_values(t, x1), x1.size, operand_adjoints(t, x1), y,
                           g, &broadcast)
    elif n.aop == AOP_SUM or n.aop == AOP_WEIGHTED_SUM:
        # y = reduce(x) over axes; x's adjoint gets g broadcast back (times weights)
        if gx != NULL:
            reduce_reverse(x.size, gx, g, n.c, n.weights, reduce_layout(t, n),
                           beta_a == 0.0)
    elif n.aop == AOP_CUMSUM:          # y = cumsum(x) along an axis: reversed cumsum
        if gx != NULL:
            cumsum_reverse(gx, g, cumsum_layout(t, n))
    elif n.aop == AOP_MATMUL:          # y = a @ b
        x1 = &t.operands[n.operand0 + 1]
        # a fresh adjoint block is written by BLAS directly (beta 0: no zeroing pass)
        gx = fresh_adjoints(t, x, &beta_a)
        gx1 = fresh_adjoints(t, x1, &beta_b)
        matmul_reverse(operand_values(t, x), gx, beta_a, operand_values(t, x1), gx1,
                       beta_b, g, matmul_layout(t, n))
    elif n.aop == AOP_RESHAPE:         # y = x, reshaped
        if gx != NULL:
            for k in range(size):
                gx[k] += g[k]
    elif n.aop == AOP_GATHER:          # y[k] = x[index[k]]: scatter-add back
        if gx != NULL:
            for k in range(size):
                gx[n.index[k]] += g[k]
    elif n.aop == AOP_SCATTER:         # y[index[k]] += x[k]: gather back
        if gx != NULL:
            gather_add(gx, g, n.index, x.size)
    elif n.aop == AOP_STRIDED:         # y = view of x: scatter-add through the strides
        view = strided_layout(t, n)
        if x.kind == OPERAND_ARRAY and not t.array_adjoint_live[x.ref] and \
                is_one_run(view.ndim, view.shape, view.strides):
            # a fresh block that the view covers in one run (x[1:], x[:-1], x[2:5]
            # of a matrix): g is copied into the run and only the rest is zeroed
            gx = fresh_adjoints(t, x, &beta_a)
            k = view.offset
            memset(gx, 0, <size_t>k * sizeof(double))
            memcpy(gx + k, g, <size_t>size * sizeof(double))
            memset(gx + k + size, 0, <size_t>(x.size - k - size) * sizeof(double))
        else:
            gx = operand_adjoints(t, x)
            if gx != NULL:
                strided_scatter_add(gx, g, 1.0, view.ndim, view.shape, view.strides,
                                    view.offset)
    elif n.aop == AOP_CONCAT:          # y[x_j.index[k]] = x_j[k]
        for k in range(n.n_operands):
            x = &t.operands[n.operand0 + k]
            gx = operand_adjoints(t, x)
            if gx != NULL:
                gather_add(gx, g, x.index, x.size)
    elif n.aop == AOP_WHERE:           # y[k] = a[k] if mask[k] else b[k]
        x1 = &t.operands[n.operand0 + 1]
        where_reverse(size, n.weights, g, gx, x.size, operand_adjoints(t, x1), x1.size)
    elif n.aop == AOP_PYFUNC:
        return pyfunc_reverse(t, r)
    # AOP_MASK: no derivative (and never reached: masks are not differentiable operands)
    return 0


cdef inline bint is_one_run(int ndim, const int64_t* shape,
                            const int64_t* strides) noexcept nogil:
    """True if a view of this shape and these (element) strides covers consecutive
    positions in C order (a C-contiguous block, from its offset on)."""
    cdef int64_t step = 1
    cdef int d
    for d in range(ndim - 1, -1, -1):
        if shape[d] != 1 and strides[d] != step:
            return False
        step *= shape[d]
    return True


cdef inline void gather_add(double* gx, const double* g, const int64_t* index,
                            Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t k
    for k in range(n):
        gx[k] += g[index[k]]


# Elementwise loops. The generic loops call the formulas of _opmath per element; the
# hot ops have their own loops, with the same formulas spelled out, that the compiler
# vectorises (measured on the vectorised Rosenbrock sweep: 3x faster than the generic
# loop, which gcc does not specialise by inlining). The zero-adjoint rule is applied per
# element as a select (d if g != 0 else 0), which keeps the loops branch-free.

cdef void binary_flat_reverse(opcode_t sop, Py_ssize_t n,
                              const double* a, Py_ssize_t sa, double* ga, bint assign_a,
                              const double* b, Py_ssize_t sb, double* gb, bint assign_b,
                              const double* y, const double* g) noexcept nogil:
    """Operands of y's size (stride 1) or of one value (stride 0); assign_a / assign_b:
    the operand's block is fresh (stride 1 only) and is written, not added to."""
    cdef Py_ssize_t k
    cdef double da, db, gk, d
    if sop == OP_ADD_VV or sop == OP_SUB_VV:       # (1, +-1)
        if ga != NULL:
            flat_add(ga, sa, g, 1.0, n, assign_a)
        if gb != NULL:
            flat_add(gb, sb, g, 1.0 if sop == OP_ADD_VV else -1.0, n, assign_b)
    elif sop == OP_MUL_VV:                          # (b, a)
        if ga != NULL:
            product_add(ga, sa, g, b, sb, n, assign_a)
        if gb != NULL:
            product_add(gb, sb, g, a, sa, n, assign_b)
    elif sop == OP_LOGADDEXP and sa == 0 and ga == NULL:
        # logaddexp(c, b), the usual softplus form: d/db = sigmoid(b - c)
        for k in range(n):
            d = g[k] * sigmoid(b[k] - a[0]) if a[0] != b[k] else 0.5 * g[k]
            put(gb, k * sb, d if g[k] != 0.0 else 0.0, assign_b)
    else:
        for k in range(n):
            gk = g[k]
            step_partials(sop, a[k * sa], b[k * sb], y[k], &da, &db, gb != NULL)
            if ga != NULL:
                put(ga, k * sa, gk * da if gk != 0.0 else 0.0, assign_a)
            if gb != NULL:
                put(gb, k * sb, gk * db if gk != 0.0 else 0.0, assign_b)


cdef void weighted_pair_reverse(Py_ssize_t n, const double* w, const double* g,
                                double* ga, Py_ssize_t sa, bint assign_a,
                                double* gb, Py_ssize_t sb, bint assign_b) noexcept nogil:
    """ga += g (1 - w), gb += g w: a binary op whose partials (1 - w, w) were stored at
    recording (logaddexp). Strides 1 or 0 as in binary_flat_reverse."""
    cdef Py_ssize_t k
    cdef double d, total = 0.0
    if ga != NULL:
        if sa == 1:
            for k in range(n):
                d = g[k] * (1.0 - w[k])
                put(ga, k, d if g[k] != 0.0 else 0.0, assign_a)
        else:
            for k in range(n):
                d = g[k] * (1.0 - w[k])
                total += d if g[k] != 0.0 else 0.0
            ga[0] += total
    total = 0.0
    if gb != NULL:
        if sb == 1:
            for k in range(n):
                d = g[k] * w[k]
                put(gb, k, d if g[k] != 0.0 else 0.0, assign_b)
        else:
            for k in range(n):
                d = g[k] * w[k]
                total += d if g[k] != 0.0 else 0.0
            gb[0] += total


cdef inline void product_add(double* gx, Py_ssize_t sx, const double* g,
                             const double* other, Py_ssize_t so,
                             Py_ssize_t n, bint assign) noexcept nogil:
    """gx += g * other (the adjoint of one factor of a product), each of stride 1 or
    0; a stride-0 gx receives the sum. `assign`: write a fresh stride-1 block."""
    cdef Py_ssize_t k
    cdef double d, c, total = 0.0
    if sx == 1 and so == 1:
        for k in range(n):
            d = g[k] * other[k]
            put(gx, k, d if g[k] != 0.0 else 0.0, assign)
    elif sx == 1:
        c = other[0]
        for k in range(n):
            d = g[k] * c
            put(gx, k, d if g[k] != 0.0 else 0.0, assign)
    else:
        for k in range(n):
            d = g[k] * other[k * so]
            total += d if g[k] != 0.0 else 0.0
        gx[0] += total


cdef inline void flat_add(double* gx, Py_ssize_t stride, const double* g, double scale,
                          Py_ssize_t n, bint assign) noexcept nogil:
    cdef Py_ssize_t k
    cdef double total = 0.0
    if stride == 1 and assign and scale == 1.0:
        memcpy(gx, g, <size_t>n * sizeof(double))   # (libc's copy uses the widest vectors)
    elif stride == 1:
        for k in range(n):
            put(gx, k, scale * g[k], assign)
    else:
        for k in range(n):
            total += g[k]
        gx[0] += scale * total


cdef void binary_reverse(opcode_t sop, Py_ssize_t n,
                         const double* a, Py_ssize_t na, double* ga,
                         const double* b, Py_ssize_t nb, double* gb,
                         const double* y, const double* g,
                         const BinaryLayout* geom) noexcept nogil:
    """Adjoints of y = sop(a, b) where a and b broadcast to y's n values.

    Operands of n values or of one value take flat loops; any other broadcast walks
    the output's shape with per-operand strides (0 along broadcast axes), from geom.
    """
    cdef Py_ssize_t sa = 1 if na == n else 0, sb = 1 if nb == n else 0
    cdef int ndim
    if (na == n or na == 1) and (nb == n or nb == 1):
        binary_flat_reverse(sop, n, a, sa, ga, False, b, sb, gb, False, y, g)
        return
    ndim = geom.ndim
    if sop == OP_ADD_VV or sop == OP_SUB_VV:
        # the partials are constants: each operand's adjoint is a strided sum of g
        if ga != NULL:
            strided_scatter_add(ga, g, 1.0, ndim, geom.shape, geom.a_strides, 0)
        if gb != NULL:
            strided_scatter_add(gb, g, 1.0 if sop == OP_ADD_VV else -1.0, ndim,
                                geom.shape, geom.b_strides, 0)
        return
    binary_walk(sop, n, a, ga, b, gb, y, g, ndim, geom.shape, geom.a_strides,
                geom.b_strides)


cdef void binary_walk(opcode_t sop, Py_ssize_t n, const double* a, double* ga,
                      const double* b, double* gb, const double* y, const double* g,
                      int ndim, const int64_t* shape, const int64_t* sa,
                      const int64_t* sb) noexcept nogil:
    """The general broadcast case: walk y's shape in C order, operands by strides."""
    cdef Py_ssize_t k, ka = 0, kb = 0
    cdef double da, db
    cdef int d
    cdef int64_t counter[MAX_NDIM]
    for d in range(ndim):
        counter[d] = 0
    for k in range(n):
        if g[k] != 0.0:
            step_partials(sop, a[ka], b[kb], y[k], &da, &db, gb != NULL)
            if ga != NULL:
                ga[ka] += g[k] * da
            if gb != NULL:
                gb[kb] += g[k] * db
        next_index2(ndim, shape, counter, &ka, sa, &kb, sb)


cdef void strided_scatter_add(double* gx, const double* g, double scale, int ndim,
                              const int64_t* shape, const int64_t* strides,
                              Py_ssize_t offset) noexcept nogil:
    """gx[offset + sum_d i_d strides[d]] += scale * g[k] for every multi-index i of
    `shape` in C order (k = 0, 1, ...): the reverse of a strided view (slices,
    transposes, broadcast_to), and of broadcasting in sums. The last axis is the
    inner loop."""
    cdef Py_ssize_t k = 0, j, inner, s_inner, base = offset, total = 1
    cdef int d
    cdef int64_t counter[MAX_NDIM]
    if ndim == 0:
        gx[offset] += scale * g[0]
        return
    for d in range(ndim):
        counter[d] = 0
        total *= shape[d]
    if total == 0:
        return
    inner = shape[ndim - 1]
    s_inner = strides[ndim - 1]
    while True:
        if s_inner == 1:
            for j in range(inner):
                gx[base + j] += scale * g[k + j]
        elif s_inner == 0:
            for j in range(inner):
                gx[base] += scale * g[k + j]
        else:
            for j in range(inner):
                gx[base + j * s_inner] += scale * g[k + j]
        k += inner
        # next row: advance the multi-index of the outer axes
        if not next_index1(ndim - 1, shape, counter, &base, strides):
            return


cdef void reduce_reverse(Py_ssize_t n, double* gx, const double* g, double scale,
                         const double* weights, ReduceLayout geom,
                         bint assign) noexcept nogil:
    """gx[k] += scale * g[out(k)] (* weights[k]) over x's n values, where out(k) is the
    output position x[k] was reduced into (geom: x's shape, the output strides 0
    along the reduced axes)."""
    cdef int ndim = geom.ndim, d
    cdef const int64_t* shape = geom.shape
    cdef const int64_t* so = geom.out_strides
    cdef Py_ssize_t k = 0, j, inner, s_inner, ko = 0
    cdef double gk
    cdef int64_t counter[MAX_NDIM]
    if n == 0:
        return
    if ndim == 0:
        put(gx, 0, scale * g[0] * (weights[0] if weights != NULL else 1.0), assign)
        return
    for d in range(ndim):
        counter[d] = 0
    inner = shape[ndim - 1]
    s_inner = so[ndim - 1]
    while True:
        if s_inner == 0:               # reduced along the last axis: one g per row
            gk = scale * g[ko]
            if weights != NULL:
                for j in range(inner):
                    put(gx, k + j, gk * weights[k + j], assign)
            else:
                for j in range(inner):
                    put(gx, k + j, gk, assign)
        else:
            if weights != NULL:
                for j in range(inner):
                    put(gx, k + j, scale * g[ko + j * s_inner] * weights[k + j], assign)
            else:
                for j in range(inner):
                    put(gx, k + j, scale * g[ko + j * s_inner], assign)
        k += inner
        if not next_index1(ndim - 1, shape, counter, &ko, so):
            return


cdef void cumsum_reverse(double* gx, const double* g, CumsumLayout geom) noexcept nogil:
    """x's adjoint along each lane x[o, :, i] is the reversed cumulative sum of g."""
    cdef Py_ssize_t outer = geom.outer, n = geom.n, inner = geom.inner
    cdef Py_ssize_t o, j, i, base
    cdef double acc
    for o in range(outer):
        for i in range(inner):
            base = o * n * inner + i
            acc = 0.0
            for j in range(n - 1, -1, -1):
                acc += g[base + j * inner]
                gx[base + j * inner] += acc


cdef void matmul_reverse(const double* a, double* ga, double beta_a, const double* b,
                         double* gb, double beta_b, const double* g,
                         MatmulLayout geom) noexcept nogil:
    """y[i] = a[i] @ b[i] for each of `batch` (m, k) @ (k, n) products, row-major
    (an operand's batch stride 0: broadcast).
    ga = beta_a ga + g b^T and gb = beta_b gb + a^T g, by BLAS (column-major: row-major
    X is X^T); a broadcast operand's block accumulates over the batch."""
    cdef int batch = geom.batch, m = geom.m, k = geom.k, n = geom.n
    cdef Py_ssize_t sa = geom.a_stride, sb = geom.b_stride, sy = <Py_ssize_t>m * n
    cdef double one = 1.0, beta
    cdef int i, inc = 1
    cdef char trans = b'T', notrans = b'N'
    if m == 0 or n == 0 or k == 0:
        if ga != NULL and beta_a == 0.0:
            memset(ga, 0, <size_t>(sa * batch if sa else m * k) * sizeof(double))
        if gb != NULL and beta_b == 0.0:
            memset(gb, 0, <size_t>(sb * batch if sb else k * n) * sizeof(double))
        return
    for i in range(batch):
        if ga != NULL:
            beta = beta_a if sa != 0 or i == 0 else 1.0
            if m == 1:   # a vector times a matrix: ga (k) = beta ga + b (k x n) . g (n)
                dgemv(&trans, &n, &k, &one, <double*>b + i * sb, &n,
                      <double*>g + i * sy, &inc, &beta, ga + i * sa, &inc)
            else:        # ga^T (k x m) = beta ga^T + b (k x n) . g^T (n x m)
                dgemm(&trans, &notrans, &k, &m, &n, &one, <double*>b + i * sb, &n,
                      <double*>g + i * sy, &n, &beta, ga + i * sa, &k)
        if gb != NULL:
            beta = beta_b if sb != 0 or i == 0 else 1.0
            if n == 1:   # a matrix times a vector: gb (k) = beta gb + a^T (k x m) . g (m)
                dgemv(&notrans, &k, &m, &one, <double*>a + i * sa, &k,
                      <double*>g + i * sy, &inc, &beta, gb + i * sb, &inc)
            else:        # gb^T (n x k) = beta gb^T + g^T (n x m) . a (m x k)
                dgemm(&notrans, &trans, &n, &k, &m, &one, <double*>g + i * sy, &n,
                      <double*>a + i * sa, &k, &beta, gb + i * sb, &n)


cdef void where_reverse(Py_ssize_t n, const double* mask, const double* g,
                        double* ga, Py_ssize_t na, double* gb,
                        Py_ssize_t nb) noexcept nogil:
    cdef Py_ssize_t k
    for k in range(n):
        if mask[k] != 0.0:
            if ga != NULL:
                ga[k if na == n else 0] += g[k]
        elif gb != NULL:
            gb[k if nb == n else 0] += g[k]


cdef int pyfunc_reverse(TapeStorage t, Py_ssize_t r) noexcept nogil:
    """Reverse step written in Python: keepalive[pyfunc](g) returns one cotangent
    array (or None) per operand, each of the operand's size."""
    cdef ArrayNode* n = &t.anodes[r]
    cdef Operand* x
    cdef double* gx
    cdef const double[::1] cot
    cdef Py_ssize_t j, k
    with gil:
        try:
            if n.out_slot >= 0:
                g = np.array([t.adjoints[n.out_slot]])
            else:
                g = _copy_f64(&t.array_adjoints[n.adj], n.size)
            cotangents = t.keepalive[n.pyfunc](g, pyfunc_output(t, n),
                                               pyfunc_inputs(t, n))
            for j in range(n.n_operands):
                x = &t.operands[n.operand0 + j]
                gx = operand_adjoints(t, x)
                if gx == NULL or cotangents[j] is None:
                    continue
                cot = np.ascontiguousarray(cotangents[j], dtype=np.float64).reshape(-1)
                if cot.shape[0] != x.size:
                    raise ValueError(f"a reverse step returned {cot.shape[0]} values "
                                     f"for an operand of {x.size}")
                for k in range(x.size):
                    gx[k] += cot[k]
        except BaseException as e:
            t.sweep_error = e
            return -1
    return 0


# -- forward over reverse for array nodes ----------------------------------------------
#
# The adjoint tangent of an operand is  gt * (first partial)  +  g * (second partials)
# * (tangents). The first term is the node's ordinary reverse step applied to the
# adjoint tangents: array_reverse_c with the adjoint buffers swapped for theirs. The
# second is zero for the linear nodes (sums, views, gathers, joins, where, max/min at
# fixed weights) and added below for the others.

cdef inline void swap_adjoint_buffers(TapeStorage t) noexcept nogil:
    cdef double* p = t.adjoints
    t.adjoints = t.adjoint_tangents
    t.adjoint_tangents = p
    p = t.array_adjoints
    t.array_adjoints = t.array_adjoint_tangents
    t.array_adjoint_tangents = p


cdef inline double* operand_adjoint_tangents(TapeStorage t, Operand* o) noexcept nogil:
    return operand_block(t, o, t.adjoint_tangents, t.array_adjoint_tangents)


cdef int array_second_order_c(TapeStorage t, Py_ssize_t r) noexcept nogil:
    cdef ArrayNode* n = &t.anodes[r]
    if n.aop == AOP_LEAF or n.aop == AOP_MASK:
        return 0
    if array_reverse_c(t, r) < 0:
        return -1
    return array_second_order_tangent_c(t, r)


cdef int array_second_order_tangent_c(TapeStorage t, Py_ssize_t r) noexcept nogil:
    cdef ArrayNode* n = &t.anodes[r]
    cdef const double* g
    cdef const double* y
    cdef Operand* x
    cdef Operand* x1
    cdef const double* tx
    cdef const double* tx1
    cdef double* gtx
    cdef Py_ssize_t k
    cdef double q
    cdef BinaryLayout broadcast
    cdef int status
    if n.aop == AOP_LEAF or n.aop == AOP_MASK:
        return 0
    swap_adjoint_buffers(t)
    status = array_reverse_c(t, r)
    swap_adjoint_buffers(t)
    if status < 0:
        return -1
    if n.out_slot >= 0:
        g = &t.adjoints[n.out_slot]
        y = &t.values[n.out_slot]
    else:
        g = &t.array_adjoints[n.adj]
        y = n.value
    x = &t.operands[n.operand0]
    tx = operand_tangents(t, x)
    if n.aop == AOP_UNARY:             # g y''(x) tx
        gtx = operand_adjoint_tangents(t, x)
        if tx != NULL and gtx != NULL:
            xv = operand_values(t, x)
            if n.sop == OP_SQUARE:     # y'' = 2 (the commonest, without the dispatch)
                for k in range(n.size):
                    if g[k] != 0.0 and tx[k] != 0.0:
                        gtx[k] += g[k] * 2.0 * tx[k]
            else:
                for k in range(n.size):
                    if g[k] != 0.0 and tx[k] != 0.0:
                        q = unary_second(n.sop, xv[k], y[k])
                        if q != 0.0:
                            gtx[k] += g[k] * q * tx[k]
    elif n.aop == AOP_BINARY:
        x1 = &t.operands[n.operand0 + 1]
        tx1 = operand_tangents(t, x1)
        if tx != NULL or tx1 != NULL:
            if n.geom >= 0:
                broadcast = binary_layout(t, n)
            binary_second_term(n.sop, n.size, operand_values(t, x), x.size, tx,
                               operand_adjoint_tangents(t, x), operand_values(t, x1),
                               x1.size, tx1, operand_adjoint_tangents(t, x1), y, g,
                               &broadcast if n.geom >= 0 else NULL)
    elif n.aop == AOP_MATMUL:          # d(a @ b): ga += g tb^T, gb += ta^T g
        x1 = &t.operands[n.operand0 + 1]
        tx1 = operand_tangents(t, x1)
        matmul_reverse(tx if tx != NULL else operand_values(t, x),
                       operand_adjoint_tangents(t, x) if tx1 != NULL else NULL, 1.0,
                       tx1 if tx1 != NULL else operand_values(t, x1),
                       operand_adjoint_tangents(t, x1) if tx != NULL else NULL, 1.0,
                       g, matmul_layout(t, n))
    elif n.aop == AOP_WEIGHTED_SUM and n.sop == WEIGHTED_PROD:
        gtx = operand_adjoint_tangents(t, x)
        if tx != NULL and gtx != NULL:
            if prod_second_term(x.size, operand_values(t, x), tx, gtx, n.size, g,
                                reduce_layout(t, n)) < 0:
                with gil:
                    t.sweep_error = MemoryError("no memory for a Hessian-vector product")
                return -1
    return 0


cdef void binary_second_term(opcode_t sop, Py_ssize_t n, const double* a,
                             Py_ssize_t na, const double* ta, double* gta,
                             const double* b, Py_ssize_t nb, const double* tb,
                             double* gtb, const double* y, const double* g,
                             const BinaryLayout* geom) noexcept nogil:
    """gta += g (d2y/da2 ta + d2y/dadb tb), gtb += g (d2y/dadb ta + d2y/db2 tb),
    broadcast flat (sizes n or 1; geom NULL) or by geom (as binary_reverse)."""
    cdef Py_ssize_t k, ka = 0, kb = 0
    cdef int ndim = 0, d
    cdef int64_t counter[MAX_NDIM]
    cdef double daa, dab, dbb, sa, sb
    cdef bint constant_b = tb == NULL and gtb == NULL
    cdef double p
    if sop == OP_ADD_VV or sop == OP_SUB_VV:        # (no second partials)
        return
    if sop == OP_MUL_VV and (tb == NULL or gta == NULL) and (ta == NULL or gtb == NULL):
        # (the one second partial, d2/dadb = 1, meets no tangent: a product with a
        # constant)
        return
    if constant_b and sop == OP_POW_VV and geom == NULL and nb == 1 and na == n \
            and ta != NULL and gta != NULL:
        # a ** c elementwise (x**4): the exponent read once, the loop without the
        # op's dispatch
        p = b[0]
        for k in range(n):
            if g[k] != 0.0:
                gta[k] += g[k] * curvature(pow_dbase_dbase(a[k], p), ta[k])
        return
    if geom != NULL:
        ndim = geom.ndim
        for d in range(ndim):
            counter[d] = 0
    for k in range(n):
        if geom == NULL:
            ka = k if na == n else 0
            kb = k if nb == n else 0
        if g[k] != 0.0:
            if constant_b and sop == OP_POW_VV:     # only d2/da2 is read (pow_dbase_dbase)
                daa = pow_dbase_dbase(a[ka], b[kb])
                dab = dbb = 0.0
            else:
                binary_second(sop, a[ka], b[kb], y[k], &daa, &dab, &dbb)
            sa = ta[ka] if ta != NULL else 0.0
            sb = tb[kb] if tb != NULL else 0.0
            if gta != NULL:
                gta[ka] += g[k] * (curvature(daa, sa) + curvature(dab, sb))
            if gtb != NULL:
                gtb[kb] += g[k] * (curvature(dab, sa) + curvature(dbb, sb))
        if geom != NULL:
            next_index2(ndim, geom.shape, counter, &ka, geom.a_strides, &kb,
                        geom.b_strides)


cdef int prod_second_term(Py_ssize_t n, const double* x, const double* tx, double* gtx,
                          Py_ssize_t n_out, const double* g,
                          ReduceLayout geom) noexcept nogil:
    """gtx_i += g sum_{j != i} d2P/dx_i dx_j tx_j for P the product over the reduced
    axes, exact with zeros: with P' the product of the nonzero elements, S the sum of
    tx_j / x_j over them and T the sum of tx_j over the zeros, the sum is
    P'/x_i (S - tx_i/x_i) without zeros; with one zero P'/x_i T at a nonzero x_i and
    P' S at the zero; with two, P' (T - tx_i) at each zero; with more, 0."""
    cdef int ndim = geom.ndim, d
    cdef const int64_t* shape = geom.shape
    cdef const int64_t* so = geom.out_strides
    cdef Py_ssize_t k, ko = 0
    cdef int64_t counter[MAX_NDIM]
    cdef double term
    cdef double* scratch = <double*>PyMem_RawMalloc(<size_t>(4 * n_out + 1) * sizeof(double))
    if scratch == NULL:
        return -1
    cdef double* zeros = scratch
    cdef double* p = scratch + n_out
    cdef double* s = scratch + 2 * n_out
    cdef double* tz = scratch + 3 * n_out
    for k in range(n_out):
        zeros[k] = 0.0
        p[k] = 1.0
        s[k] = 0.0
        tz[k] = 0.0
    for d in range(ndim):
        counter[d] = 0
    for k in range(n):
        if x[k] == 0.0:
            zeros[ko] += 1.0
            tz[ko] += tx[k]
        else:
            p[ko] *= x[k]
            s[ko] += tx[k] / x[k]
        next_index1(ndim, shape, counter, &ko, so)
    ko = 0
    for k in range(n):
        if g[ko] != 0.0:
            if zeros[ko] == 0.0:
                term = p[ko] / x[k] * (s[ko] - tx[k] / x[k])
            elif zeros[ko] == 1.0:
                term = p[ko] * s[ko] if x[k] == 0.0 else p[ko] / x[k] * tz[ko]
            elif zeros[ko] == 2.0:
                term = p[ko] * (tz[ko] - tx[k]) if x[k] == 0.0 else 0.0
            else:
                term = 0.0
            gtx[k] += g[ko] * term
        next_index1(ndim, shape, counter, &ko, so)
    PyMem_RawFree(scratch)
    return 0
