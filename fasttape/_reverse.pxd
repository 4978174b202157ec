# The reverse sweep (_reverse.pyx).

from fasttape._tape_storage cimport TapeStorage

# nogil loops: adjoints of nodes node_end - 1, ..., 0 passed back to their operands.
# Return 0, or -1 when a step with Python rules raised (the exception is then in
# t.sweep_error). The _into variant takes the value and adjoint buffers of a
# replaying thread (array nodes use the tape's own).
cdef int reverse_sweep_c(TapeStorage t, Py_ssize_t node_end) noexcept nogil
cdef int reverse_sweep_into_c(TapeStorage t, const double* values, double* adjoints,
                              Py_ssize_t node_end) noexcept nogil
# Several outputs' reverse sweeps in one pass over a tape of scalar nodes (no array
# node; node i writes slot i), for Jacobians: lane k's adjoints at adjoints + k *
# stride, seeded at its output, node tops[k] (non-increasing). order_lanes numbers the
# lanes of outputs at out_nodes (-1: a constant output, no lane); sweep_lanes zeroes
# and seeds the lanes, then sweeps. Lanes go LANE_BLOCK at a time, on tapes of at most
# MAX_LANE_SLOTS slots (the block's adjoints stay in cache).
cdef enum:
    LANE_BLOCK = 16
    MAX_LANE_SLOTS = 8192

cdef inline bint lanes_apply(TapeStorage t) noexcept:
    return t.n_anodes == 0 and t.n_slots == t.n_nodes and t.n_slots <= MAX_LANE_SLOTS

cdef void reverse_lanes_c(TapeStorage t, const double* values, double* adjoints,
                          Py_ssize_t n_lanes, Py_ssize_t stride,
                          const Py_ssize_t* tops) noexcept nogil
cdef void sweep_lanes(TapeStorage t, const double* values, double* adjoints,
                      Py_ssize_t n_lanes, Py_ssize_t stride,
                      const Py_ssize_t* tops) noexcept nogil
cdef Py_ssize_t order_lanes(const Py_ssize_t* out_nodes, Py_ssize_t n_out,
                            Py_ssize_t* order, Py_ssize_t* tops) noexcept nogil

# with the GIL: adjoint buffers sized for the tape and zeroed (seed after it)
cdef int prepare_sweep(TapeStorage t) except -1
# sweep from `node` (its slot ends at slot_end) to 0; raises a Python step's error
cdef int run_reverse(TapeStorage t, Py_ssize_t node, Py_ssize_t slot_end) except -1
# prepare, seed several outputs (scalar slots, or array nodes with anode >= 0), sweep
cdef int seed_and_sweep(TapeStorage t, list slots, list anodes, list seeds) except -1
