# Jacobians' reverse sweeps: several outputs' adjoints swept back in one pass over a
# tape of scalar nodes, lane by lane (lane k's adjoints at adjoints + k * stride). Each
# node is decoded and its partials computed once for all the lanes that reach it
# (_opmath.reverse_step_lanes); each lane's arithmetic is the one sweep's
# (_reverse.reverse_sweep_into_c), bit for bit. Its own module: the one sweep's loop is
# sensitive to where the compiler places it, and code added to its module moved it
# (measured: the Rosenbrock sweep 18.3 -> 21.8 us with these functions in _reverse).

from libc.string cimport memset

from fasttape._opmath cimport reverse_step_lanes
from fasttape._tape_storage cimport *


cdef void reverse_lanes_c(TapeStorage t, const double* values, double* adjoints,
                          Py_ssize_t n_lanes, Py_ssize_t stride,
                          const Py_ssize_t* tops) noexcept nogil:
    """The reverse sweeps of n_lanes outputs in one pass over a tape of scalar nodes
    only (no array node): lane k's adjoints are adjoints[k * stride:(k + 1) * stride],
    seeded by the caller at its output, node tops[k]; the lanes are ordered by output,
    last first (tops non-increasing). Each node is decoded, and its partials computed,
    once for all the lanes whose output comes at or after it (reverse_step_lanes),
    where a sweep per output does both once per output. A lane whose adjoint is 0.0
    skips the node (the zero-adjoint rule), and a node no lane reaches costs a look at
    each lane's adjoint."""
    cdef const opcode_t* ops = t.ops
    cdef const index_t* arg0s = t.arg0s
    cdef const index_t* arg1s = t.arg1s
    cdef const double* constants = t.constants
    cdef const index_t* extras = t.extras
    cdef Py_ssize_t i, k, n_active = 0
    cdef opcode_t op
    if n_lanes <= 0:
        return
    for i in range(tops[0], -1, -1):
        while n_active < n_lanes and tops[n_active] >= i:
            n_active += 1
        op = ops[i]
        if op > OP_CONST:              # leaves and constants: nothing to propagate
            for k in range(n_active):
                if adjoints[k * stride + i] != 0.0:
                    # lane k is the first to reach the node: the op's partials, once
                    # for lanes k and after
                    reverse_step_lanes(op, arg0s[i], arg1s[i], values[i], values,
                                       constants, extras, adjoints + k * stride, i,
                                       n_active - k, stride)
                    break


cdef Py_ssize_t order_lanes(const Py_ssize_t* out_nodes, Py_ssize_t n_out,
                            Py_ssize_t* order, Py_ssize_t* tops) noexcept nogil:
    """The lanes of reverse_lanes_c for outputs at nodes out_nodes (-1: a constant
    output, no lane): order[k] is lane k's output, tops[k] its node, last output
    first. Returns the number of lanes."""
    cdef Py_ssize_t j, k, n = 0
    # insertion sort, the outputs taken last first: outputs are mostly recorded in
    # order, and then each lane goes at the end without moving any other
    for j in range(n_out - 1, -1, -1):
        if out_nodes[j] < 0:
            continue
        k = n
        while k > 0 and tops[k - 1] < out_nodes[j]:
            tops[k] = tops[k - 1]
            order[k] = order[k - 1]
            k -= 1
        tops[k] = out_nodes[j]
        order[k] = j
        n += 1
    return n


cdef void sweep_lanes(TapeStorage t, const double* values, double* adjoints,
                      Py_ssize_t n_lanes, Py_ssize_t stride,
                      const Py_ssize_t* tops) noexcept nogil:
    """reverse_lanes_c with the lanes zeroed and seeded (1.0 at each lane's output)."""
    cdef Py_ssize_t k
    memset(adjoints, 0, <size_t>(n_lanes * stride) * sizeof(double))
    for k in range(n_lanes):
        adjoints[k * stride + tops[k]] = 1.0
    reverse_lanes_c(t, values, adjoints, n_lanes, stride, tops)


cdef void lanes_jacobian(TapeStorage t, const double* values, double* adjoints,
                         Py_ssize_t stride, const Py_ssize_t* order,
                         const Py_ssize_t* tops, Py_ssize_t n_lanes,
                         const Py_ssize_t* leaf_slots, Py_ssize_t count,
                         double* jac) noexcept nogil:
    """The Jacobian's rows of the lanes order_lanes numbered: row order[k] of jac
    (row-major, count columns) receives lane k's adjoints at leaf_slots[0:count].
    Sweeps LANE_BLOCK lanes at a time in adjoints (room for LANE_BLOCK lanes of
    stride). The rows of constant outputs (no lane) are left as they are."""
    cdef Py_ssize_t b = 0, block, j, k
    cdef const double* lane
    while b < n_lanes:
        block = min(<Py_ssize_t>LANE_BLOCK, n_lanes - b)
        sweep_lanes(t, values, adjoints, block, stride, tops + b)
        for j in range(block):
            lane = adjoints + j * stride
            for k in range(count):
                jac[order[b + j] * count + k] = lane[leaf_slots[k]]
        b += block
