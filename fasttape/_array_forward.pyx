# The forward steps of array nodes: their replay (array_forward_c: the value again
# from the operands', in place) and their tangent step (array_tangent_c): one case per
# AOP_* code (_tape_storage.pxd), each with its kernel below — vector loops for the
# common elementwise ops, walkers for broadcasting, reductions (max/min/prod with
# their derivative weights), strided views, gathers, and BLAS for matrix products.
# The scalar sweeps (_forward) call these for their ARRAY nodes.

from libc cimport math as cm
from libc.stdint cimport int64_t
from libc.string cimport memcpy, memset

import numpy as np

from fasttape._array_helpers cimport (next_index1, next_index2, operand_tangents,
                                      operand_values, pyfunc_inputs, pyfunc_output,
                                      step_partials)
from fasttape._opmath cimport binary_partials, eval_binary, eval_unary, unary_partial
from fasttape._opmath_helpers cimport pow_dbase, sigmoid, times
from fasttape._tape_storage cimport *
from scipy.linalg.cython_blas cimport dgemm


cdef int array_forward_c(TapeStorage t, Py_ssize_t r) noexcept nogil:
    """Re-evaluate array node r from its operands, in place (its value array and the
    tape's own value buffer). The ops replay_support() accepts."""
    cdef ArrayNode* n = &t.anodes[r]
    cdef double* y = &t.values[n.out_slot] if n.out_slot >= 0 else n.value
    cdef Operand* x
    cdef Operand* x1
    cdef const double* xv
    cdef const double* bv
    cdef BinaryLayout broadcast
    cdef MatmulLayout mm
    cdef StridedLayout view
    cdef Py_ssize_t k, size = n.size, ka, kb
    cdef int i
    cdef double one = 1.0, zero = 0.0
    cdef char notrans = b'N'
    if n.aop == AOP_LEAF or n.aop == AOP_RESHAPE:   # inputs; reshapes are views
        return 0
    if n.aop == AOP_PYFUNC:
        return pyfunc_evaluate(t, r)
    x = &t.operands[n.operand0]
    xv = operand_values(t, x)
    if n.aop == AOP_UNARY:
        if n.sop == OP_SQUARE:         # (the cheap ones as loops that vectorise)
            for k in range(size):
                y[k] = xv[k] * xv[k]
        elif n.sop == OP_NEG:
            for k in range(size):
                y[k] = -xv[k]
        elif n.sop == OP_SQRT:
            for k in range(size):
                y[k] = cm.sqrt(xv[k])
        else:
            for k in range(size):
                y[k] = eval_unary(n.sop, xv[k])
    elif n.aop == AOP_BINARY:
        x1 = &t.operands[n.operand0 + 1]
        bv = operand_values(t, x1)
        if (x.size == size or x.size == 1) and (x1.size == size or x1.size == 1):
            # the strides as constants, for loops the compiler vectorises
            if x.size == size and x1.size == size:
                binary_kernel(n.sop, size, xv, 1, bv, 1, y)
            elif x.size == size:
                binary_kernel(n.sop, size, xv, 1, bv, 0, y)
            elif x1.size == size:
                binary_kernel(n.sop, size, xv, 0, bv, 1, y)
            else:
                binary_kernel(n.sop, size, xv, 0, bv, 0, y)
            if n.weights != NULL:        # logaddexp's stored partial, sigmoid(b - a)
                for k in range(size):
                    ka = k if x.size == size else 0
                    kb = k if x1.size == size else 0
                    n.weights[k] = 0.5 if xv[ka] == bv[kb] else sigmoid(bv[kb] - xv[ka])
        else:
            broadcast = binary_layout(t, n)
            binary_forward_walk(n.sop, size, xv, bv, y, &broadcast)
    elif n.aop == AOP_SUM:
        memset(y, 0, <size_t>size * sizeof(double))
        reduce_tangent(x.size, xv, y, n.c, NULL, reduce_layout(t, n))
    elif n.aop == AOP_CUMSUM:
        cumsum_forward(xv, y, cumsum_layout(t, n))
    elif n.aop == AOP_MATMUL:          # y^T (n x m) = b^T (n x k) a^T (k x m)
        x1 = &t.operands[n.operand0 + 1]
        bv = operand_values(t, x1)
        mm = matmul_layout(t, n)
        if mm.k == 0:
            memset(y, 0, <size_t>size * sizeof(double))
        elif mm.m and mm.n:
            for i in range(mm.batch):
                dgemm(&notrans, &notrans, &mm.n, &mm.m, &mm.k, &one,
                      <double*>bv + i * mm.b_stride, &mm.n,
                      <double*>xv + i * mm.a_stride, &mm.k, &zero,
                      y + i * mm.m * mm.n, &mm.n)
    elif n.aop == AOP_GATHER:
        for k in range(size):
            y[k] = xv[n.index[k]]
    elif n.aop == AOP_SCATTER:
        memset(y, 0, <size_t>size * sizeof(double))
        for k in range(x.size):
            y[n.index[k]] += xv[k]
    elif n.aop == AOP_STRIDED:
        strided_gather(y, xv, strided_layout(t, n))
    elif n.aop == AOP_CONCAT:
        for k in range(n.n_operands):
            x = &t.operands[n.operand0 + k]
            scatter_set(y, operand_values(t, x), x.index, x.size)
    elif n.aop == AOP_WHERE:           # (a recorded mask was replayed before: weights
        x1 = &t.operands[n.operand0 + 1]   # point into its values)
        bv = operand_values(t, x1)
        for k in range(size):
            y[k] = xv[k if x.size == size else 0] if n.weights[k] != 0.0 else \
                bv[k if x1.size == size else 0]
    elif n.aop == AOP_MASK:
        if n.sop == MASK_NOT:
            for k in range(size):
                y[k] = 1.0 if xv[k] == 0.0 else 0.0
        else:
            x1 = &t.operands[n.operand0 + 1]
            if n.geom >= 0:
                broadcast = binary_layout(t, n)
            mask_forward(n.sop, size, xv, x.size, operand_values(t, x1), x1.size, y,
                         &broadcast if n.geom >= 0 else NULL)
    elif n.aop == AOP_WEIGHTED_SUM:
        if n.sop == WEIGHTED_PROD:
            prod_forward(x.size, xv, size, y, n.weights, n.index, reduce_layout(t, n))
        else:
            extremum_forward(n.sop == WEIGHTED_MAX, x.size, xv, size, y, n.weights,
                             n.index, reduce_layout(t, n))
    return 0


cdef inline double mask_of(int sop, double a, double b) noexcept nogil:
    if sop == MASK_AND:
        return 1.0 if a != 0.0 and b != 0.0 else 0.0
    if sop == MASK_OR:
        return 1.0 if a != 0.0 or b != 0.0 else 0.0
    if sop == MASK_XOR:
        return 1.0 if (a != 0.0) != (b != 0.0) else 0.0
    return 1.0 if compare_c(sop, a, b) else 0.0


cdef void mask_forward(int sop, Py_ssize_t size, const double* a, Py_ssize_t na,
                       const double* b, Py_ssize_t nb, double* y,
                       const BinaryLayout* g) noexcept nogil:
    """y = mask_of(sop, a, b), broadcast flat (sizes size or 1; g NULL) or by g (as
    the binary nodes')."""
    cdef Py_ssize_t k, ka = 0, kb = 0
    cdef int ndim, d
    cdef int64_t counter[MAX_NDIM]
    if g == NULL:
        for k in range(size):
            y[k] = mask_of(sop, a[k if na == size else 0], b[k if nb == size else 0])
        return
    ndim = g.ndim
    for d in range(ndim):
        counter[d] = 0
    for k in range(size):
        y[k] = mask_of(sop, a[ka], b[kb])
        next_index2(ndim, g.shape, counter, &ka, g.a_strides, &kb, g.b_strides)


cdef void extremum_forward(bint is_max, Py_ssize_t n, const double* x, Py_ssize_t n_out,
                           double* y, double* weights, int64_t* hits,
                           ReduceLayout g) noexcept nogil:
    """max or min of x over the reduced axes (nan wins, as in NumPy), and the weights
    of its derivative: 1/(number of ties) at the elements equal to it, else 0."""
    cdef int ndim = g.ndim, d
    cdef const int64_t* shape = g.shape
    cdef const int64_t* so = g.out_strides
    cdef Py_ssize_t k, ko
    cdef int64_t counter[MAX_NDIM]
    for k in range(n_out):
        y[k] = -cm.INFINITY if is_max else cm.INFINITY
        hits[k] = 0
    if n_out == 1:                     # over everything: plain loops
        for k in range(n):
            if (x[k] > y[0] if is_max else x[k] < y[0]) or x[k] != x[k]:
                if y[0] == y[0]:
                    y[0] = x[k]
        for k in range(n):
            hits[0] += x[k] == y[0]
        for k in range(n):
            weights[k] = (1.0 if x[k] == y[0] else 0.0) / <double>hits[0]
        return
    for d in range(ndim):
        counter[d] = 0
    ko = 0
    for k in range(n):
        if (x[k] > y[ko] if is_max else x[k] < y[ko]) or x[k] != x[k]:
            if y[ko] == y[ko]:         # once nan, stays nan
                y[ko] = x[k]
        next_index1(ndim, shape, counter, &ko, so)
    ko = 0
    for k in range(n):
        hits[ko] += x[k] == y[ko]
        next_index1(ndim, shape, counter, &ko, so)
    ko = 0
    for k in range(n):
        weights[k] = (1.0 if x[k] == y[ko] else 0.0) / <double>hits[ko]
        next_index1(ndim, shape, counter, &ko, so)


cdef void prod_forward(Py_ssize_t n, const double* x, Py_ssize_t n_out, double* y,
                       double* weights, int64_t* zeros, ReduceLayout g) noexcept nogil:
    """Product of x over the reduced axes, and its partials: the product of the other
    elements, exact with zeros (the product of the nonzero ones at a single zero)."""
    cdef int ndim = g.ndim, d
    cdef const int64_t* shape = g.shape
    cdef const int64_t* so = g.out_strides
    cdef Py_ssize_t k, ko
    cdef int64_t counter[MAX_NDIM]
    for k in range(n_out):
        y[k] = 1.0                     # first the product of the nonzero elements
        zeros[k] = 0
    for d in range(ndim):
        counter[d] = 0
    ko = 0
    for k in range(n):
        if x[k] == 0.0:
            zeros[ko] += 1
        else:
            y[ko] *= x[k]
        next_index1(ndim, shape, counter, &ko, so)
    ko = 0
    for k in range(n):
        if zeros[ko] == 0:
            weights[k] = y[ko] / x[k]
        elif zeros[ko] == 1 and x[k] == 0.0:
            weights[k] = y[ko]
        else:
            weights[k] = 0.0
        next_index1(ndim, shape, counter, &ko, so)
    for k in range(n_out):
        if zeros[k]:
            y[k] *= 0.0                # (nan or inf among the others gives nan)


cdef inline void binary_kernel(opcode_t sop, Py_ssize_t n, const double* a,
                               Py_ssize_t sa, const double* b, Py_ssize_t sb,
                               double* y) noexcept nogil:
    """y[k] = sop(a[k * sa], b[k * sb]); called with constant strides (0 or 1), so
    that the common operations become vector loops once inlined."""
    cdef Py_ssize_t k
    cdef double c
    if sa == 1 and sb == 0 and OP_ADD_VV <= sop <= OP_DIV_VV:
        # (an operand broadcast from one value: held in a local, so that the loop
        # vectorises whether or not the strides reach here as constants)
        c = b[0]
        if sop == OP_ADD_VV:
            for k in range(n):
                y[k] = a[k] + c
            return
        elif sop == OP_SUB_VV:
            for k in range(n):
                y[k] = a[k] - c
            return
        elif sop == OP_MUL_VV:
            for k in range(n):
                y[k] = a[k] * c
            return
        elif sop == OP_DIV_VV:
            for k in range(n):
                y[k] = a[k] / c
            return
    elif sa == 0 and sb == 1 and OP_ADD_VV <= sop <= OP_DIV_VV:
        c = a[0]
        if sop == OP_ADD_VV:
            for k in range(n):
                y[k] = c + b[k]
            return
        elif sop == OP_SUB_VV:
            for k in range(n):
                y[k] = c - b[k]
            return
        elif sop == OP_MUL_VV:
            for k in range(n):
                y[k] = c * b[k]
            return
        elif sop == OP_DIV_VV:
            for k in range(n):
                y[k] = c / b[k]
            return
    if sop == OP_ADD_VV:
        for k in range(n):
            y[k] = a[k * sa] + b[k * sb]
    elif sop == OP_SUB_VV:
        for k in range(n):
            y[k] = a[k * sa] - b[k * sb]
    elif sop == OP_MUL_VV:
        for k in range(n):
            y[k] = a[k * sa] * b[k * sb]
    elif sop == OP_DIV_VV:
        for k in range(n):
            y[k] = a[k * sa] / b[k * sb]
    elif sop == OP_POW_VV and sb == 0 and b[0] == 2.0:
        for k in range(n):
            y[k] = a[k * sa] * a[k * sa]
    elif sop == OP_POW_VV and sb == 0 and b[0] == 3.0:
        # (x**3 and x**4 by multiplication, as their derivatives' small_pow: within
        # a rounding or two of libm's pow, at a twentieth of its cost)
        for k in range(n):
            y[k] = a[k * sa] * a[k * sa] * a[k * sa]
    elif sop == OP_POW_VV and sb == 0 and b[0] == 4.0:
        for k in range(n):
            y[k] = (a[k * sa] * a[k * sa]) * (a[k * sa] * a[k * sa])
    else:
        for k in range(n):
            y[k] = eval_binary(sop, a[k * sa], b[k * sb])


cdef void binary_forward_walk(opcode_t sop, Py_ssize_t n, const double* a,
                              const double* b, double* y,
                              const BinaryLayout* g) noexcept nogil:
    """y = sop(a, b) over y's shape with broadcast strides."""
    cdef int ndim = g.ndim, d
    cdef const int64_t* shape = g.shape
    cdef const int64_t* sa = g.a_strides
    cdef const int64_t* sb = g.b_strides
    cdef Py_ssize_t k, ka = 0, kb = 0
    cdef int64_t counter[MAX_NDIM]
    for d in range(ndim):
        counter[d] = 0
    for k in range(n):
        y[k] = eval_binary(sop, a[ka], b[kb])
        next_index2(ndim, shape, counter, &ka, sa, &kb, sb)


cdef int array_tangent_c(TapeStorage t, Py_ssize_t r) noexcept nogil:
    """The forward-mode step of array node r: its output tangent from its operands'."""
    cdef ArrayNode* n = &t.anodes[r]
    cdef double* ty
    cdef const double* y
    cdef Py_ssize_t k, size = n.size
    cdef Operand* x
    cdef Operand* x1
    cdef double* tx
    cdef double* tx1
    cdef BinaryLayout broadcast
    cdef double da, db
    if n.aop == AOP_LEAF:
        return 0
    if n.out_slot >= 0:
        ty = &t.tangents[n.out_slot]
        y = &t.values[n.out_slot]
    else:
        ty = &t.array_tangents[n.adj]
        y = n.value
    memset(ty, 0, <size_t>size * sizeof(double))
    x = &t.operands[n.operand0]
    tx = operand_tangents(t, x)
    if n.aop == AOP_PYFUNC:
        return pyfunc_tangent(t, r)
    if n.aop == AOP_CONCAT:            # y[x_j.index[k]] = x_j[k]
        for k in range(n.n_operands):
            x = &t.operands[n.operand0 + k]
            tx = operand_tangents(t, x)
            if tx != NULL:
                scatter_set(ty, tx, x.index, x.size)
        return 0
    if n.aop == AOP_BINARY:            # y = sop(a, b): da ta + db tb, broadcast
        x1 = &t.operands[n.operand0 + 1]
        tx1 = operand_tangents(t, x1)
        if n.geom >= 0:
            broadcast = binary_layout(t, n)
        binary_tangent(n.sop, size, operand_values(t, x), x.size, tx,
                       operand_values(t, x1), x1.size, tx1, y, ty,
                       &broadcast if n.geom >= 0 else NULL)
        return 0
    if n.aop == AOP_MATMUL:            # y = a @ b: ta @ b + a @ tb
        x1 = &t.operands[n.operand0 + 1]
        matmul_tangent(operand_values(t, x), tx, operand_values(t, x1),
                       operand_tangents(t, x1), ty, matmul_layout(t, n))
        return 0
    if n.aop == AOP_WHERE:             # y[k] = a[k] if mask[k] else b[k]
        x1 = &t.operands[n.operand0 + 1]
        tx1 = operand_tangents(t, x1)
        for k in range(size):
            if n.weights[k] != 0.0:
                ty[k] = tx[k if x.size == size else 0] if tx != NULL else 0.0
            else:
                ty[k] = tx1[k if x1.size == size else 0] if tx1 != NULL else 0.0
        return 0
    if tx == NULL or n.aop == AOP_MASK:   # a constant operand, or a mask: tangent zero
        return 0
    if n.aop == AOP_UNARY:             # y[k] = sop(x[k])
        xv = operand_values(t, x)
        if n.sop == OP_SQUARE:         # (the commonest, without the op's dispatch)
            for k in range(size):
                ty[k] = times(2.0 * xv[k], tx[k])
        else:
            for k in range(size):
                ty[k] = times(unary_partial(n.sop, xv[k], y[k]), tx[k])
    elif n.aop == AOP_SUM or n.aop == AOP_WEIGHTED_SUM:
        reduce_tangent(x.size, tx, ty, n.c, n.weights, reduce_layout(t, n))
    elif n.aop == AOP_CUMSUM:          # cumulative sum of the tangent along the axis
        cumsum_forward(tx, ty, cumsum_layout(t, n))
    elif n.aop == AOP_RESHAPE:
        memcpy(ty, tx, <size_t>size * sizeof(double))
    elif n.aop == AOP_GATHER:          # y[k] = x[index[k]]
        for k in range(size):
            ty[k] = tx[n.index[k]]
    elif n.aop == AOP_SCATTER:         # y[index[k]] += x[k]
        for k in range(x.size):
            ty[n.index[k]] += tx[k]
    elif n.aop == AOP_STRIDED:         # y = view of x
        strided_gather(ty, tx, strided_layout(t, n))
    return 0


cdef inline void scatter_set(double* ty, const double* tx, const int64_t* index,
                             Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t k
    for k in range(n):
        ty[index[k]] = tx[k]


cdef void binary_tangent(opcode_t sop, Py_ssize_t n,
                         const double* a, Py_ssize_t na, const double* ta,
                         const double* b, Py_ssize_t nb, const double* tb,
                         const double* y, double* ty, const BinaryLayout* g) noexcept nogil:
    """ty = da ta + db tb for y = sop(a, b) broadcast to n values (flat when the
    operands have n values or one; else by g)."""
    cdef Py_ssize_t k, ka = 0, kb = 0
    cdef double da, db
    cdef int ndim, d
    cdef const int64_t* shape
    cdef const int64_t* sa
    cdef const int64_t* sb
    cdef int64_t counter[MAX_NDIM]
    if (na == n or na == 1) and (nb == n or nb == 1):
        # (the common cases without the op's dispatch per value: sums and
        # differences, a ** c elementwise)
        if (sop == OP_ADD_VV or sop == OP_SUB_VV) and ta != NULL and tb != NULL:
            if na == n and nb == n:
                for k in range(n):
                    ty[k] = ta[k] + tb[k] if sop == OP_ADD_VV else ta[k] - tb[k]
                return
            if na == n:
                db = tb[0] if sop == OP_ADD_VV else -tb[0]
                for k in range(n):
                    ty[k] = ta[k] + db
                return
        if sop == OP_MUL_VV and (ta == NULL) != (tb == NULL):
            # a product with a constant (100.0 * x, x * weights): the constant is the
            # partial
            for k in range(n):
                ka = k if na == n else 0
                kb = k if nb == n else 0
                ty[k] = times(b[kb], ta[ka]) if ta != NULL else times(a[ka], tb[kb])
            return
        if sop == OP_POW_VV and tb == NULL and na == n and nb == 1 and ta != NULL:
            db = b[0]
            for k in range(n):
                ty[k] = times(pow_dbase(a[k], db), ta[k])
            return
        for k in range(n):
            ka = k if na == n else 0
            kb = k if nb == n else 0
            step_partials(sop, a[ka], b[kb], y[k], &da, &db, tb != NULL)
            ty[k] = (times(da, ta[ka]) if ta != NULL else 0.0) + (
                times(db, tb[kb]) if tb != NULL else 0.0)
        return
    ndim = g.ndim
    shape = g.shape
    sa = g.a_strides
    sb = g.b_strides
    for d in range(ndim):
        counter[d] = 0
    for k in range(n):
        step_partials(sop, a[ka], b[kb], y[k], &da, &db, tb != NULL)
        ty[k] = (times(da, ta[ka]) if ta != NULL else 0.0) + (
            times(db, tb[kb]) if tb != NULL else 0.0)
        next_index2(ndim, shape, counter, &ka, sa, &kb, sb)


cdef void reduce_tangent(Py_ssize_t n, const double* tx, double* ty, double scale,
                         const double* weights, ReduceLayout g) noexcept nogil:
    """ty[out(k)] += scale * tx[k] (* weights[k]): the mirror of reduce_reverse."""
    cdef int ndim = g.ndim, d
    cdef const int64_t* shape = g.shape
    cdef const int64_t* so = g.out_strides
    cdef Py_ssize_t k, ko = 0
    cdef int64_t counter[MAX_NDIM]
    cdef double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0
    for d in range(ndim):
        counter[d] = 0
        if so[d] != 0:
            break
    else:                              # a sum of everything: four running sums
        if weights == NULL:
            k = 0
            while k + 4 <= n:
                s0 += tx[k]
                s1 += tx[k + 1]
                s2 += tx[k + 2]
                s3 += tx[k + 3]
                k += 4
            while k < n:
                s0 += tx[k]
                k += 1
            ty[0] += scale * ((s0 + s1) + (s2 + s3))
            return
    for d in range(ndim):
        counter[d] = 0
    for k in range(n):
        ty[ko] += scale * tx[k] * (weights[k] if weights != NULL else 1.0)
        next_index1(ndim, shape, counter, &ko, so)


cdef void cumsum_forward(const double* tx, double* ty, CumsumLayout g) noexcept nogil:
    cdef Py_ssize_t o, j, i, base, outer = g.outer, n = g.n, inner = g.inner
    cdef double acc
    for o in range(outer):
        for i in range(inner):
            base = o * n * inner + i
            acc = 0.0
            for j in range(n):
                acc += tx[base + j * inner]
                ty[base + j * inner] = acc


cdef void strided_gather(double* ty, const double* tx, StridedLayout g) noexcept nogil:
    """ty[k] = tx[offset + sum_d i_d strides[d]] over the multi-indices of shape."""
    cdef Py_ssize_t k = 0, j, total = 1, base = g.offset, inner, step
    cdef int d, ndim = g.ndim
    cdef const int64_t* shape = g.shape
    cdef const int64_t* strides = g.strides
    cdef int64_t counter[MAX_NDIM]
    for d in range(ndim):
        counter[d] = 0
        total *= shape[d]
    if total == 0:
        return
    if ndim == 0:
        ty[0] = tx[base]
        return
    inner = shape[ndim - 1]            # rows along the last axis, then the next row
    step = strides[ndim - 1]
    while True:
        if step == 1:
            memcpy(ty + k, tx + base, <size_t>inner * sizeof(double))
        else:
            for j in range(inner):
                ty[k + j] = tx[base + j * step]
        k += inner
        if k >= total or not next_index1(ndim - 1, shape, counter, &base, strides):
            return


cdef void matmul_tangent(const double* a, const double* ta, const double* b,
                         const double* tb, double* ty, MatmulLayout g) noexcept nogil:
    """ty = ta @ b + a @ tb per batch item; column-major view: ty^T = b^T ta^T +
    tb^T a^T."""
    cdef int batch = g.batch, m = g.m, k = g.k, n = g.n
    cdef Py_ssize_t sa = g.a_stride, sb = g.b_stride, sy = <Py_ssize_t>m * n
    cdef double one = 1.0
    cdef int i
    cdef char notrans = b'N'
    if m == 0 or n == 0 or k == 0:
        return
    for i in range(batch):
        if ta != NULL:   # ty^T (n x m) += b^T (n x k) . ta^T (k x m)
            dgemm(&notrans, &notrans, &n, &m, &k, &one, <double*>b + i * sb, &n,
                  <double*>ta + i * sa, &k, &one, ty + i * sy, &n)
        if tb != NULL:   # ty^T += tb^T (n x k) . a^T (k x m)
            dgemm(&notrans, &notrans, &n, &m, &k, &one, <double*>tb + i * sb, &n,
                  <double*>a + i * sa, &k, &one, ty + i * sy, &n)


cdef int pyfunc_evaluate(TapeStorage t, Py_ssize_t r) noexcept nogil:
    """Replay of a Python-rule node: keepalive[pyfunc_eval](inputs) gives its value
    from its operands' (flat copies, as for its rules)."""
    cdef ArrayNode* n = &t.anodes[r]
    cdef const double[::1] out
    cdef double* y
    cdef Py_ssize_t k
    with gil:
        try:
            if n.pyfunc_eval < 0:
                raise TypeError("fasttape internal error: a Python-rule node without a "
                                "value function was replayed")
            out = np.ascontiguousarray(t.keepalive[n.pyfunc_eval](pyfunc_inputs(t, n)),
                                       dtype=np.float64).reshape(-1)
            if out.shape[0] != n.size:
                raise ValueError(f"a value function returned {out.shape[0]} values for "
                                 f"an output of {n.size}")
            y = &t.values[n.out_slot] if n.out_slot >= 0 else n.value
            for k in range(n.size):
                y[k] = out[k]
        except BaseException as e:
            t.sweep_error = e
            return -1
    return 0


cdef int pyfunc_tangent(TapeStorage t, Py_ssize_t r) noexcept nogil:
    """Forward rule written in Python: keepalive[pyfunc_jvp](tangents) with one tangent
    array (or None for a constant) per operand returns the output tangent."""
    cdef ArrayNode* n = &t.anodes[r]
    cdef Operand* x
    cdef double* tx
    cdef double* ty
    cdef const double[::1] out
    cdef Py_ssize_t j, k
    with gil:
        try:
            if n.pyfunc_jvp < 0:
                raise TypeError("forward mode reached an operation that has no forward "
                                "(jvp) rule; use reverse mode (grad, vjp) for it")
            tangents = []
            for j in range(n.n_operands):
                x = &t.operands[n.operand0 + j]
                tx = operand_tangents(t, x)
                tangents.append(None if tx == NULL else _copy_f64(tx, x.size))
            out = np.ascontiguousarray(
                t.keepalive[n.pyfunc_jvp](tangents, pyfunc_output(t, n),
                                          pyfunc_inputs(t, n)),
                dtype=np.float64).reshape(-1)
            if out.shape[0] != n.size:
                raise ValueError(f"a forward rule returned {out.shape[0]} values for an "
                                 f"output of {n.size}")
            ty = &t.tangents[n.out_slot] if n.out_slot >= 0 else &t.array_tangents[n.adj]
            for k in range(n.size):
                ty[k] = out[k]
        except BaseException as e:
            t.sweep_error = e
            return -1
    return 0
