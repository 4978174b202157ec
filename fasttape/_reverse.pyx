# The reverse sweep: adjoints from the output back to the inputs, one backwards loop
# over the nodes (scalar_reverse_run_c: one case per op, each the op table's formula
# from _opmath), array nodes by their steps (_array_reverse). Then the drivers a Tape
# calls: buffers sized and zeroed, the GIL released for long tapes, the error of a
# Python step raised after the loop.

from libc.string cimport memset
from libc.stdint cimport uint8_t

import numpy as np

from fasttape._array_helpers cimport live_adjoints
from fasttape._array_reverse cimport array_reverse_c
from fasttape._opmath cimport reverse_step
from fasttape._tape_storage cimport *

# -- the reverse sweep -----------------------------------------------------------------
#
# Zero-adjoint rule: a node whose output adjoint is exactly 0.0 is skipped (for
# elementwise array ops: each element whose adjoint is 0.0). Nodes off the path to the
# output then cost one compare, and a zero adjoint never meets an infinite partial
# (0 * inf would be nan): d/dx of 0 * log(x) at x = 0 is 0, not nan. A nan adjoint is
# not zero, so nan still propagates. tests/test_tape.py pins this.

cdef int reverse_sweep_c(TapeStorage t, Py_ssize_t node_end) noexcept nogil:
    """Propagate adjoints from nodes node_end - 1, ..., 0 back to their operands.

    Returns 0, or -1 when a Python step (AOP_PYFUNC) raised; the exception is then in
    t.sweep_error.
    """
    return reverse_sweep_into_c(t, t.values, t.adjoints, node_end)


cdef int reverse_sweep_into_c(TapeStorage t, const double* values, double* adjoints,
                              Py_ssize_t node_end) noexcept nogil:
    """The reverse sweep over the tape's nodes with the value and adjoint buffers given
    (the tape's own, or a replaying thread's: array nodes use the tape's own). The
    sweep always ends at node 0: a constant bound (measured: one instruction a node
    fewer than a bound passed in, 4% of the Rosenbrock sweep)."""
    cdef Py_ssize_t i = node_end - 1
    while i >= 0:
        # scalar runs in a loop with no calls out (measured: a call in the loop costs
        # the scalar nodes ~10-40%); array nodes between runs
        i = scalar_reverse_run_c(t, values, adjoints, i)
        if i >= 0:
            # (array_reverse_c is in another module: never inlined into the scalar
            # loop, where inlining made it ~30% slower: 2.6 -> 3.3 ns per node)
            if array_reverse_c(t, t.arg0s[i]) < 0:
                return -1
            i -= 1
    return 0


cdef Py_ssize_t scalar_reverse_run_c(TapeStorage t, const double* values,
                                     double* adjoints, Py_ssize_t last) noexcept nogil:
    """Sweep scalar nodes last, last-1, ... down to 0 or to the first array node met;
    returns that array node's index (or -1). Node i writes slot i (an array node a
    dummy one)."""
    cdef const opcode_t* ops = t.ops
    cdef const index_t* arg0s = t.arg0s
    cdef const index_t* arg1s = t.arg1s
    cdef const double* constants = t.constants
    cdef const index_t* extras = t.extras
    cdef Py_ssize_t i
    cdef double g
    cdef opcode_t op
    for i in range(last, -1, -1):
        op = ops[i]
        if op == OP_ARRAY:
            return i
        g = adjoints[i]
        if g == 0.0:
            continue
        if op > OP_CONST:              # leaves and constants: nothing to propagate
            # the op's formula, from the op table (_opmath.reverse_step: one switch that
            # gcc inlines here; a call out of this loop would cost ~10-40%)
            reverse_step(op, arg0s[i], arg1s[i], g, values[i], values, constants,
                         extras, adjoints)
    return -1


# -- the drivers -----------------------------------------------------------------------

cdef int prepare_sweep(TapeStorage t) except -1:
    """Adjoint buffers sized for the tape and zeroed: every slot, also those after
    the output, whose adjoints (zero) are read for inputs recorded after it."""
    check_idle(t)
    ensure_doubles(&t.adjoints, &t.adjoint_capacity, t.slot_capacity)
    ensure_doubles(&t.array_adjoints, &t.array_adjoint_capacity,
                   t.n_array_values)
    memset(t.adjoints, 0, <size_t>t.n_slots * sizeof(double))
    # array adjoint blocks are zeroed lazily, when the sweep first reaches them
    if t.array_adjoint_live_capacity < t.n_anodes:
        t.array_adjoint_live = <uint8_t*>grow_buffer(
            t.array_adjoint_live, t.n_anodes, sizeof(uint8_t))
        t.array_adjoint_live_capacity = t.n_anodes
    if t.n_anodes:
        memset(t.array_adjoint_live, 0, <size_t>t.n_anodes)
    return 0


cdef int run_reverse(TapeStorage t, Py_ssize_t node, Py_ssize_t slot_end) except -1:
    """Run the reverse sweep from `node` (whose slot ends at slot_end) to 0."""
    cdef int status
    begin_sweep(t)
    # Releasing the GIL costs ~0.1 us: only worth it for tapes that take longer.
    try:
        if node > 2048 or t.n_array_values > 2048:
            with nogil:
                status = reverse_sweep_c(t, node + 1)
        else:
            status = reverse_sweep_c(t, node + 1)
    finally:
        t.sweeping = False
    t.swept_epoch = t.epoch
    t.swept_slot_end = slot_end       # .grad of later Variables is None
    if status < 0:
        error, t.sweep_error = t.sweep_error, None
        raise error
    return 0


cdef int seed_and_sweep(TapeStorage t, list slots, list anodes, list seeds) except -1:
    """Reverse sweep from several outputs at once: scalar slots (anode -1) or array
    nodes, each seeded with its cotangent (a float, or values of its size)."""
    cdef Py_ssize_t j, k, last = -1, node
    cdef ArrayNode* n
    cdef const double[::1] v
    if not len(slots) == len(anodes) == len(seeds):
        raise ValueError("one slot, array node and seed per output")
    for j in range(len(slots)):         # the checks of this door
        t.check_slot(slots[j])
        if anodes[j] >= 0:
            t.check_anode(anodes[j])
            if t.anodes[<Py_ssize_t>anodes[j]].adj < 0:
                raise ValueError(f"array node {anodes[j]} has its one value in slot "
                                 f"{t.anodes[<Py_ssize_t>anodes[j]].out_slot}: seed "
                                 f"that slot")
    prepare_sweep(t)
    for j in range(len(slots)):
        if anodes[j] < 0:
            node = slots[j]
            t.adjoints[node] += seeds[j]
        else:
            n = &t.anodes[<Py_ssize_t>anodes[j]]
            node = slots[j]
            v = np.ascontiguousarray(seeds[j], dtype=np.float64).reshape(-1)
            if v.shape[0] != n.size:
                raise ValueError(f"cotangent of {v.shape[0]} values for an output "
                                 f"of {n.size}")
            live_adjoints(t, <Py_ssize_t>anodes[j])
            for k in range(n.size):
                t.array_adjoints[n.adj + k] += v[k]
        if node > last:
            last = node
    if last >= 0:
        run_reverse(t, last, last + 1)
    return 0
