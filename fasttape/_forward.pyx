# The forward sweeps: the replay (the tape's values again at new inputs, then its
# recorded comparisons checked) and the tangent sweep (forward mode), each one loop
# over the nodes in recording order with one case per op (the op table's formulas,
# from _opmath), array nodes by their steps (_array_forward).

from libc.stdint cimport int64_t, uint8_t
from libc.string cimport memcpy, memset

import numpy as np

from fasttape._array_forward cimport array_forward_c, array_tangent_c
from fasttape._opmath cimport replay_step, tangent_step
from fasttape._tape_storage cimport *

# -- forward replay: re-evaluate a recorded tape at new inputs -------------------------
#
# Each node's value from its operands' (the forward formulas of _opmath), in recording
# order, into a value buffer whose leaf slots hold the new inputs. Then the recorded
# comparisons are re-evaluated: the index of the first whose outcome differs from the
# recording is returned (the replay followed a branch the function would not take),
# or -1. Array nodes re-evaluate in their own arrays (array_forward_c): the buffers
# given are for scalar slots, so a tape with array nodes replays in its own buffers.

cdef int forward_replay_c(TapeStorage t, double* values) noexcept nogil:
    """Returns 0, or -1 when a value function in Python (AOP_PYFUNC) raised: the
    exception is then in t.sweep_error."""
    cdef Py_ssize_t i = 0
    while i < t.n_nodes:
        # scalar runs in a loop with no calls out (a call in the loop costs the scalar
        # nodes ~40%: measured 3.3 -> 5.5 ns per node); array nodes between runs
        i = scalar_replay_run_c(t, values, i)
        if i < t.n_nodes:
            # (array_forward_c is in another module: never inlined into the
            # scalar loop, where inlining made it ~30% slower)
            if array_forward_c(t, t.arg0s[i]) < 0:
                return -1
            i += 1
    return 0


cdef Py_ssize_t scalar_replay_run_c(TapeStorage t, double* values,
                                    Py_ssize_t begin) noexcept nogil:
    """Replay scalar nodes from `begin` up to the next array node; returns its index
    (or n_nodes)."""
    cdef const opcode_t* ops = t.ops
    cdef const index_t* arg0s = t.arg0s
    cdef const index_t* arg1s = t.arg1s
    cdef const double* constants = t.constants
    cdef const index_t* extras = t.extras
    cdef Py_ssize_t i
    cdef opcode_t op
    for i in range(begin, t.n_nodes):
        op = ops[i]
        if op <= OP_CONST:             # inputs and constants keep their values
            continue
        elif op == OP_ARRAY:
            return i
        # the op's formula (_opmath.replay_step, from the op table)
        values[i] = replay_step(op, arg0s[i], arg1s[i], values, constants, extras)
    return t.n_nodes


cdef Py_ssize_t first_changed_guard_c(TapeStorage t, const double* values) noexcept nogil:
    cdef Py_ssize_t k
    cdef double x, y
    cdef opcode_t g
    for k in range(t.n_guards):
        g = t.guard_ops[k]
        x = values[t.guard_arg0s[k]]
        y = t.constants[t.guard_arg1s[k]] if g & GUARD_CONST_RHS else values[t.guard_arg1s[k]]
        if compare_c(g & 7, x, y) != t.guard_outcomes[k]:
            return k
    return -1


# -- the tangent (forward-mode) sweep --------------------------------------------------
#
# tangent[y] = sum over operands of d y / d operand * tangent[operand], node by node in
# recording order, with the partials of _opmath (the same formulas as the reverse
# sweep). Zero-tangent rule, the mirror of the reverse one: a term whose operand
# tangent is exactly 0.0 contributes nothing (no 0 * inf = nan).

cdef int tangent_sweep_c(TapeStorage t, Py_ssize_t node_begin,
                         Py_ssize_t node_end) noexcept nogil:
    """Returns 0, or -1 when a Python forward rule (AOP_PYFUNC) raised."""
    cdef const opcode_t* ops = t.ops
    cdef const index_t* arg0s = t.arg0s
    cdef const index_t* arg1s = t.arg1s
    cdef const double* values = t.values
    cdef const double* constants = t.constants
    cdef double* tangents = t.tangents
    cdef Py_ssize_t i
    cdef opcode_t op
    for i in range(node_begin, node_end):      # node i writes slot i
        op = ops[i]
        if op == OP_ARRAY:
            if array_tangent_c(t, arg0s[i]) < 0:
                return -1
        elif op == OP_LEAF:                    # seeded by the caller
            pass
        else:                                  # the op's formula (_opmath)
            tangents[i] = tangent_step(op, arg0s[i], arg1s[i], values[i], values,
                                       constants, t.extras, tangents)
    return 0


# -- the drivers -----------------------------------------------------------------------

cdef int prepare_tangents(TapeStorage t) except -1:
    """Tangent buffers sized for the tape and zeroed (then seed the leaves)."""
    check_idle(t)
    ensure_doubles(&t.tangents, &t.tangent_capacity, t.slot_capacity)
    ensure_doubles(&t.array_tangents, &t.array_tangent_capacity,
                   t.n_array_values)
    memset(t.tangents, 0, <size_t>t.n_slots * sizeof(double))
    if t.n_array_values:
        memset(t.array_tangents, 0, <size_t>t.n_array_values * sizeof(double))
    return 0


cdef int run_tangent(TapeStorage t) except -1:
    """Propagate the seeded leaf tangents forward through every node."""
    cdef int status
    begin_sweep(t)
    try:
        if t.n_nodes > 2048 or t.n_array_values > 2048:
            with nogil:
                status = tangent_sweep_c(t, 0, t.n_nodes)
        else:
            status = tangent_sweep_c(t, 0, t.n_nodes)
    finally:
        t.sweeping = False
    if status < 0:
        error, t.sweep_error = t.sweep_error, None
        raise error
    return 0


cdef Py_ssize_t replay_in_place(TapeStorage t, leaf_slots, inputs) except -2:
    """Replay the tape in place with new scalar input values (array inputs are
    written before with write_array_input); returns the index of the first
    comparison whose outcome changed, or -1."""
    cdef Py_ssize_t k
    cdef int failed
    cdef const Py_ssize_t[::1] slots = np.ascontiguousarray(leaf_slots, dtype=np.intp)
    cdef const double[::1] x = np.ascontiguousarray(inputs, dtype=np.float64)
    if x.shape[0] != slots.shape[0]:
        raise ValueError(f"{slots.shape[0]} inputs expected, got {x.shape[0]}")
    cdef Py_ssize_t n_slots = t.n_slots
    for k in range(slots.shape[0]):          # (checked in one C loop: 1 ns a slot)
        if not 0 <= slots[k] < n_slots:
            t.check_slot(slots[k])           # (raises, naming the slot)
    for k in range(slots.shape[0]):
        t.values[slots[k]] = x[k]
    t.swept_epoch = -1
    if t.n_nodes > 2048 or t.n_array_values > 2048:
        with nogil:
            failed = forward_replay_c(t, t.values)
    else:
        failed = forward_replay_c(t, t.values)
    if failed:                     # a value function in Python raised
        error, t.sweep_error = t.sweep_error, None
        raise error
    return first_changed_guard_c(t, t.values)


# -- many directions in one call: the columns of a compressed Jacobian -----------------
#
# k tangent sweeps share one call: the tangents are k blocks (of the slots, and of the
# array values) in the tape's own buffers grown k-fold (kept, so later calls touch no
# new memory); sweep c runs with the tape's tangent pointers moved to block c.

cdef Py_ssize_t check_leaf_spec(TapeStorage t, const int64_t[::1] leaf_index,
                                const uint8_t[::1] leaf_is_array) except -1:
    """The number of values of the leaves (leaf j: array node leaf_index[j] when
    leaf_is_array[j], else that slot), each checked to be an input of t."""
    cdef Py_ssize_t j, index, size = 0
    if leaf_is_array.shape[0] != leaf_index.shape[0]:
        raise ValueError("one is_array flag per leaf")
    for j in range(leaf_index.shape[0]):
        index = leaf_index[j]
        if leaf_is_array[j]:
            if not (0 <= index < t.n_anodes and t.anodes[index].aop == AOP_LEAF
                    and t.anodes[index].adj >= 0):
                raise ValueError(f"array node {index} is not an input of this tape")
            size += t.anodes[index].size
        else:
            if not (0 <= index < t.n_slots and t.ops[index] == OP_LEAF):
                raise ValueError(f"slot {index} is not an input of this tape")
            size += 1
    return size


cdef int tangent_sweeps_many(TapeStorage t, const int64_t[::1] leaf_index,
                             const uint8_t[::1] leaf_is_array,
                             const double[:, ::1] d) except -1:
    """One tangent sweep per row of d ((k, N), flat over the leaves' values; leaves
    checked by check_leaf_spec): direction c's tangents are left at
    t.tangents + c * n_slots and t.array_tangents + c * n_array_values. Raises a
    Python rule's error."""
    cdef Py_ssize_t k = d.shape[0], S = t.n_slots, A = t.n_array_values
    cdef Py_ssize_t j, c, at = 0, index
    cdef int status = 0
    cdef double* tangents
    cdef double* array_tangents
    cdef ArrayNode* n
    check_idle(t)
    ensure_doubles(&t.tangents, &t.tangent_capacity, max(t.slot_capacity, k * S))
    ensure_doubles(&t.array_tangents, &t.array_tangent_capacity, k * A)
    tangents, array_tangents = t.tangents, t.array_tangents
    memset(tangents, 0, <size_t>(k * S) * sizeof(double))
    # of the array values, only the leaves' need zeros first: every other array
    # node's step clears its own block before writing it (array_tangent_c)
    for j in range(t.n_anodes):
        n = &t.anodes[j]
        if n.aop == AOP_LEAF and n.size and n.adj >= 0:    # (the checked leaves' kind)
            for c in range(k):
                memset(&array_tangents[c * A + n.adj], 0, <size_t>n.size * sizeof(double))
    for j in range(leaf_index.shape[0]):
        index = leaf_index[j]
        if leaf_is_array[j]:
            n = &t.anodes[index]
            if n.size:
                for c in range(k):
                    memcpy(&array_tangents[c * A + n.adj], &d[c, at],
                           <size_t>n.size * sizeof(double))
            at += n.size
        else:
            for c in range(k):
                tangents[c * S + index] = d[c, at]
            at += 1
    begin_sweep(t)
    try:
        with nogil:
            for c in range(k):
                t.tangents = tangents + c * S
                t.array_tangents = array_tangents + c * A
                status = tangent_sweep_c(t, 0, t.n_nodes)
                if status < 0:
                    break
    finally:
        t.tangents, t.array_tangents = tangents, array_tangents
        t.sweeping = False
    if status < 0:
        error, t.sweep_error = t.sweep_error, None
        raise error
    return 0


cdef object tangents_many(TapeStorage t, const int64_t[::1] leaf_index,
                          const uint8_t[::1] leaf_is_array, directions,
                          const int64_t[::1] output_index,
                          const uint8_t[::1] output_is_array):
    """The outputs' tangents along each row of directions ((k, N), flat over the
    leaves' values): (M, k), M the outputs' values flat in order; output j is array
    node output_index[j] when output_is_array[j], else that slot. The Jacobian times
    each direction, in one call."""
    cdef const double[:, ::1] d = np.ascontiguousarray(directions, dtype=np.float64)
    cdef Py_ssize_t k = d.shape[0], N = check_leaf_spec(t, leaf_index, leaf_is_array)
    cdef Py_ssize_t j, index, M = 0
    if d.shape[1] != N:
        raise ValueError(f"directions of {d.shape[1]} values for leaves of {N}")
    if output_is_array.shape[0] != output_index.shape[0]:
        raise ValueError("one is_array flag per output")
    for j in range(output_index.shape[0]):
        index = output_index[j]
        if output_is_array[j]:
            if not 0 <= index < t.n_anodes:
                raise ValueError(f"no array node {index} on this tape")
            M += t.anodes[index].size
        else:
            if not 0 <= index < t.n_slots:
                raise ValueError(f"no slot {index} on this tape")
            M += 1
    out = np.zeros((M, k))
    if k == 0 or M == 0:
        return out
    tangent_sweeps_many(t, leaf_index, leaf_is_array, d)
    read_blocks(t, output_index, output_is_array, t.tangents, t.array_tangents, out)
    return out


cdef void read_blocks(TapeStorage t, const int64_t[::1] index,
                      const uint8_t[::1] is_array, const double* slots,
                      const double* arrays, double[:, ::1] out) noexcept:
    """out[:, c] = the values of the slots and array nodes named by (index,
    is_array), flat in order, in direction c's blocks: slots + c * n_slots and
    arrays + c * n_array_values (k = out.shape[1] directions; indices checked)."""
    cdef Py_ssize_t j, c, r, at = 0, k = out.shape[1]
    cdef Py_ssize_t S = t.n_slots, A = t.n_array_values
    cdef ArrayNode* n
    for j in range(index.shape[0]):
        if is_array[j]:
            n = &t.anodes[index[j]]
            for c in range(k):
                if n.adj < 0:              # a one-value result kept in a scalar slot
                    out[at, c] = slots[c * S + n.out_slot]
                    continue
                for r in range(n.size):
                    out[at + r, c] = arrays[c * A + n.adj + r]
            at += n.size
        else:
            for c in range(k):
                out[at, c] = slots[c * S + index[j]]
            at += 1
