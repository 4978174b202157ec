# The reverse sweep (_reverse.pyx).

from fasttape._tape_storage cimport TapeStorage

# nogil loops: adjoints of nodes node_end - 1, ..., 0 passed back to their operands.
# Return 0, or -1 when a step with Python rules raised (the exception is then in
# t.sweep_error). The _into variant takes the value and adjoint buffers of a
# replaying thread (array nodes use the tape's own).
cdef int reverse_sweep_c(TapeStorage t, Py_ssize_t node_end) noexcept nogil
cdef int reverse_sweep_into_c(TapeStorage t, const double* values, double* adjoints,
                              Py_ssize_t node_end) noexcept nogil

# with the GIL: adjoint buffers sized for the tape and zeroed (seed after it)
cdef int prepare_sweep(TapeStorage t) except -1
# sweep from `node` (its slot ends at slot_end) to 0; raises a Python step's error
cdef int run_reverse(TapeStorage t, Py_ssize_t node, Py_ssize_t slot_end) except -1
# prepare, seed several outputs (scalar slots, or array nodes with anode >= 0), sweep
cdef int seed_and_sweep(TapeStorage t, list slots, list anodes, list seeds) except -1
