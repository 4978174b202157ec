# Forward over reverse: Hessian-vector products in C, recording nothing. A tangent
# sweep along the direction (_forward), then one backwards loop carrying each adjoint
# and its tangent (second_order_sweep_c: one case per op, each the op table's first
# and second partials from _opmath), array nodes by their steps (_array_reverse).

from libc.stdint cimport int64_t, uint8_t
from libc.string cimport memcpy, memset

import numpy as np

from fasttape._array_reverse cimport (array_reverse_c, array_second_order_c,
                                      array_second_order_tangent_c)
from fasttape._forward cimport (check_leaf_spec, prepare_tangents, read_blocks,
                               run_tangent, tangent_sweeps_many)
from fasttape._opmath cimport second_order_step
from fasttape._reverse cimport prepare_sweep
from fasttape._tape_storage cimport *

# -- forward over reverse: the second-order sweep --------------------------------------
#
# With tangents t (d value / d eps along a direction) from the tangent sweep, carry each
# adjoint a and its tangent a' = d a / d eps backwards. For y = f(x):
#     a_x += a_y f'(x)          a'_x += a'_y f'(x) + a_y f''(x) t_x
# and for y = f(u, v) the same with the 2x2 second partials. The result a' at the
# inputs is the Hessian times the direction. Scalar ops only.

cdef int second_order_sweep_c(TapeStorage t, Py_ssize_t node) noexcept nogil:
    """Forward over reverse from `node` (tangents swept and adjoint[node] seeded
    before): every slot's adjoint and the adjoint's tangent. Returns 0, or -1 with the
    error in t.sweep_error."""
    cdef const opcode_t* ops = t.ops
    cdef const index_t* arg0s = t.arg0s
    cdef const index_t* arg1s = t.arg1s
    cdef const double* values = t.values
    cdef const double* constants = t.constants
    cdef const double* tangents = t.tangents
    cdef double* adj = t.adjoints
    cdef double* adj_t = t.adjoint_tangents
    cdef Py_ssize_t i
    cdef double g, gt
    cdef opcode_t op
    for i in range(node, -1, -1):
        op = ops[i]
        if op == OP_ARRAY:
            if array_second_order_c(t, arg0s[i]) < 0:
                return -1
            continue
        g = adj[i]
        gt = adj_t[i]
        if g == 0.0 and gt == 0.0:
            continue
        if op > OP_CONST:
            second_order_step(op, arg0s[i], arg1s[i], g, gt, values[i], values,
                              constants, t.extras, tangents, adj, adj_t)
    return 0


# -- the drivers -----------------------------------------------------------------------

cdef int prepare_adjoint_tangents(TapeStorage t) except -1:
    """Forward over reverse: buffers for the tangents of the adjoints (slots and
    array values), as large as the adjoints' (the array steps swap the two) and
    zeroed."""
    check_idle(t)
    ensure_doubles(&t.adjoint_tangents, &t.adjoint_tangent_capacity,
                   t.adjoint_capacity)
    ensure_doubles(&t.array_adjoint_tangents, &t.array_adjoint_tangent_capacity,
                   t.array_adjoint_capacity)
    memset(t.adjoint_tangents, 0, <size_t>t.n_slots * sizeof(double))
    if t.n_array_values:
        memset(t.array_adjoint_tangents, 0,
               <size_t>t.n_array_values * sizeof(double))
    return 0


cdef object hessian_vector_scalar(TapeStorage t, Py_ssize_t node, list leaf_slots,
                                  direction):
    """Forward over reverse in C, recording nothing: seed the leaves' tangents with
    `direction`, sweep forward, then sweep in reverse carrying each adjoint and its
    tangent; returns (gradient, Hessian times direction) at the leaves. Scalar tapes
    only (returns None when the tape holds array nodes)."""
    cdef Py_ssize_t k, s, n = len(leaf_slots)
    if t.n_anodes:
        return None
    leaf_slots = list(leaf_slots)      # (a private copy: checked once, read twice)
    t.check_slot(node)                 # (the checks of the Python door)
    if len(direction) != n:
        raise ValueError(f"a direction of {len(direction)} values for {n} leaves")
    prepare_tangents(t)
    for k in range(n):
        s = leaf_slots[k]
        t.check_slot(s)
        t.tangents[s] = direction[k]
    run_tangent(t)
    prepare_sweep(t)
    prepare_adjoint_tangents(t)
    t.adjoints[node] = 1.0
    if node > 2048:
        with nogil:
            second_order_sweep_c(t, node)     # (no array nodes: cannot fail)
    else:
        second_order_sweep_c(t, node)
    t.swept_epoch = t.epoch
    t.swept_slot_end = node + 1
    return ([t.adjoints[<Py_ssize_t>s] for s in leaf_slots],
            [t.adjoint_tangents[<Py_ssize_t>s] for s in leaf_slots])


cdef Py_ssize_t seeded_adjoints(TapeStorage t, Py_ssize_t output,
                                Py_ssize_t output_anode) except -1:
    """The adjoints ready for a forward-over-reverse sweep: zeroed, every array block
    live (both passes add into them), 1.0 at scalar slot `output` or at array node
    output_anode's one value (checked by check_leaves_and_output). Returns the node
    the sweep starts from."""
    prepare_sweep(t)
    if t.n_array_values:
        memset(t.array_adjoints, 0, <size_t>t.n_array_values * sizeof(double))
    if t.n_anodes:
        memset(t.array_adjoint_live, 1, <size_t>t.n_anodes)
    if output_anode >= 0:
        t.array_adjoints[t.anodes[output_anode].adj] = 1.0
        return t.anodes[output_anode].node
    t.adjoints[output] = 1.0
    return output


cdef int refuse_python_rules(TapeStorage t) except -1:
    """NotImplementedError naming the first node whose rules are Python: they have no
    second derivatives in C."""
    cdef Py_ssize_t r
    for r in range(t.n_anodes):
        if t.anodes[r].aop == AOP_PYFUNC:
            raise NotImplementedError(
                f"Hessian-vector products of traced code with an operation whose "
                f"rules are Python ("
                f"{getattr(t.keepalive[t.anodes[r].pyfunc], '__name__', '?')})"
                f" are not computed in C; use fasttape.hvp")
    return 0


cdef object hessian_vector_arrays(TapeStorage t, Py_ssize_t output, list leaves,
                                  direction, Py_ssize_t output_anode):
    """hessian_vector_scalar for tapes with array nodes, from scalar slot `output` (or
    from array node output_anode, of one value). leaves: (is_array, index) per
    leaf, index a slot or an array node; direction: their values' tangents, flat,
    in order. Returns (gradient, Hessian times direction), flat, in the same order.
    NotImplementedError for Python-rule nodes (no second derivatives in C)."""
    cdef Py_ssize_t r, k, at = 0, size
    cdef int status
    cdef ArrayNode* n
    cdef const double[::1] d = np.ascontiguousarray(direction, dtype=np.float64)
    t.check_leaves_and_output(leaves, output, output_anode)
    refuse_python_rules(t)
    prepare_tangents(t)
    for is_array, index in leaves:
        size = t.anodes[index].size if is_array else 1
        if at + size > d.shape[0]:
            raise ValueError("the direction has fewer values than the leaves")
        if is_array and size:
            memcpy(&t.array_tangents[t.anodes[index].adj], &d[at],
                   <size_t>size * sizeof(double))
        elif not is_array:
            t.tangents[<Py_ssize_t>index] = d[at]
        at += size
    if at != d.shape[0]:
        raise ValueError("the direction has more values than the leaves")
    run_tangent(t)
    output = seeded_adjoints(t, output, output_anode)
    prepare_adjoint_tangents(t)
    begin_sweep(t)
    try:
        if output > 2048 or t.n_array_values > 2048:
            with nogil:
                status = second_order_sweep_c(t, output)
        else:
            status = second_order_sweep_c(t, output)
    finally:
        t.sweeping = False
    t.swept_epoch = t.epoch
    t.swept_slot_end = output + 1
    if status < 0:
        error, t.sweep_error = t.sweep_error, None
        raise error
    gradient, product = [], []
    for is_array, index in leaves:
        if is_array:
            n = &t.anodes[<Py_ssize_t>index]
            gradient.append(_copy_f64(&t.array_adjoints[n.adj], n.size))
            product.append(_copy_f64(&t.array_adjoint_tangents[n.adj], n.size))
        else:
            gradient.append(np.array([t.adjoints[<Py_ssize_t>index]]))
            product.append(np.array([t.adjoint_tangents[<Py_ssize_t>index]]))
    return np.concatenate(gradient), np.concatenate(product)


# -- many directions in one pass: the columns of a compressed Hessian ------------------
#
# k directions share one replay, one gradient and one walk over the tape: the tangents
# and the adjoints' tangents are k blocks each (of the slots, and of the array values),
# in the tape's own buffers grown k-fold (kept, so later calls touch no new memory).
# Each node is visited once: its adjoint step once, then its adjoint-tangent step for
# each direction, the buffer pointers moved to that direction's blocks.

cdef int second_order_sweep_many_c(TapeStorage t, Py_ssize_t node, Py_ssize_t k,
                                   double* tangents, double* array_tangents,
                                   double* adj_t, double* array_adj_t,
                                   double* scratch) noexcept nogil:
    """Forward over reverse from `node` along k directions at once (tangents swept,
    adjoints and their tangents zeroed and the output seeded before): direction c's
    tangents at tangents + c * n_slots and array_tangents + c * n_array_values, its
    adjoint tangents likewise in adj_t and array_adj_t. The adjoints (the gradient)
    are t.adjoints'. scratch (n_slots doubles) takes the adjoint contributions of the
    scalar steps of directions after the first (the same again). Leaves t's tangent
    and adjoint-tangent pointers at some direction's blocks: the caller puts them
    back. Returns 0, or -1 with the error in t.sweep_error."""
    cdef const opcode_t* ops = t.ops
    cdef const index_t* arg0s = t.arg0s
    cdef const index_t* arg1s = t.arg1s
    cdef const double* values = t.values
    cdef const double* constants = t.constants
    cdef double* adj = t.adjoints
    cdef Py_ssize_t i, c, S = t.n_slots, A = t.n_array_values
    cdef double g, gt
    cdef opcode_t op
    for i in range(node, -1, -1):
        op = ops[i]
        if op == OP_ARRAY:
            if t.anodes[arg0s[i]].aop == AOP_LEAF or t.anodes[arg0s[i]].aop == AOP_MASK:
                continue
            if array_reverse_c(t, arg0s[i]) < 0:
                return -1
            for c in range(k):
                t.tangents = tangents + c * S
                t.array_tangents = array_tangents + c * A
                t.adjoint_tangents = adj_t + c * S
                t.array_adjoint_tangents = array_adj_t + c * A
                if array_second_order_tangent_c(t, arg0s[i]) < 0:
                    return -1
            continue
        if op <= OP_CONST:
            continue
        g = adj[i]
        for c in range(k):
            gt = adj_t[c * S + i]
            if g == 0.0 and gt == 0.0:
                continue
            # (the first direction adds the adjoints' terms; the others, the same
            # again, go to scratch)
            second_order_step(op, arg0s[i], arg1s[i], g, gt, values[i], values,
                              constants, t.extras, tangents + c * S,
                              adj if c == 0 else scratch, adj_t + c * S)
    return 0


cdef object hessian_times_many(TapeStorage t, Py_ssize_t output,
                               const int64_t[::1] leaf_index,
                               const uint8_t[::1] leaf_is_array, directions,
                               Py_ssize_t output_anode):
    """The Hessian of scalar slot `output` (or of array node output_anode, of one
    value) times each row of directions ((k, N): flat over the leaves' values, in
    order; leaf j is array node leaf_index[j] when leaf_is_array[j], else that
    slot): an (N, k) array, column c the product with direction c. Every
    hessian_vector_arrays product at once: one tangent sweep per direction, then
    one reverse walk for all. NotImplementedError for Python-rule nodes."""
    cdef const double[:, ::1] d = np.ascontiguousarray(directions, dtype=np.float64)
    cdef Py_ssize_t k = d.shape[0], N = d.shape[1], S, A
    cdef Py_ssize_t size = check_leaf_spec(t, leaf_index, leaf_is_array)
    cdef int status = 0
    cdef double* tangents
    cdef double* array_tangents
    cdef double* adj_t
    cdef double* array_adj_t
    if size != N:
        raise ValueError(f"directions of {N} values for leaves of {size}")
    t.check_leaves_and_output([], output, output_anode)
    refuse_python_rules(t)
    out = np.zeros((N, k))
    if k == 0:
        return out
    S, A = t.n_slots, t.n_array_values
    # the tangents: k blocks, seeded and swept
    tangent_sweeps_many(t, leaf_index, leaf_is_array, d)
    tangents, array_tangents = t.tangents, t.array_tangents
    # the adjoints (every block live and zeroed) and k + 1 blocks of their tangents
    # (the last one the scratch of second_order_sweep_many_c)
    output = seeded_adjoints(t, output, output_anode)
    ensure_doubles(&t.adjoint_tangents, &t.adjoint_tangent_capacity,
                   max(t.adjoint_capacity, (k + 1) * S))
    ensure_doubles(&t.array_adjoint_tangents, &t.array_adjoint_tangent_capacity,
                   max(t.array_adjoint_capacity, k * A))
    adj_t, array_adj_t = t.adjoint_tangents, t.array_adjoint_tangents
    memset(adj_t, 0, <size_t>((k + 1) * S) * sizeof(double))
    if A:
        memset(array_adj_t, 0, <size_t>(k * A) * sizeof(double))
    begin_sweep(t)
    try:
        with nogil:
            status = second_order_sweep_many_c(t, output, k, tangents, array_tangents,
                                               adj_t, array_adj_t, adj_t + k * S)
    finally:
        t.tangents, t.array_tangents = tangents, array_tangents
        t.adjoint_tangents, t.array_adjoint_tangents = adj_t, array_adj_t
        t.sweeping = False
    t.swept_epoch = t.epoch
    t.swept_slot_end = output + 1
    if status < 0:
        error, t.sweep_error = t.sweep_error, None
        raise error
    read_blocks(t, leaf_index, leaf_is_array, adj_t, array_adj_t, out)
    return out
