# The forward sweeps: replay and tangents (_forward.pyx).

from libc.stdint cimport int64_t, uint8_t

from fasttape._tape_storage cimport TapeStorage

# nogil loops. Replay: every node's value again, into `values` (the tape's own
# buffer, or a replaying thread's for scalar tapes); 0, or -1 when a value function
# in Python raised (the exception is then in t.sweep_error).
cdef int forward_replay_c(TapeStorage t, double* values) noexcept nogil
# the first recorded comparison whose outcome differs at `values`, or -1
cdef Py_ssize_t first_changed_guard_c(TapeStorage t, const double* values) noexcept nogil
# tangents of nodes [node_begin, node_end) from their operands'; 0, or -1 (as above)
cdef int tangent_sweep_c(TapeStorage t, Py_ssize_t node_begin,
                         Py_ssize_t node_end) noexcept nogil

# with the GIL: tangent buffers sized and zeroed (seed the leaves after it)
cdef int prepare_tangents(TapeStorage t) except -1
# the tangent sweep over the whole tape; raises a Python rule's error
cdef int run_tangent(TapeStorage t) except -1
# write the scalar inputs, replay in the tape's buffers: the first changed guard or -1
cdef Py_ssize_t replay_in_place(TapeStorage t, leaf_slots, inputs) except -2

# many directions at once (the columns of a compressed Jacobian): the leaves' values
# counted and checked; k tangent sweeps into k blocks of the tape's tangent buffers;
# the outputs' tangents along each direction, (M, k)
cdef Py_ssize_t check_leaf_spec(TapeStorage t, const int64_t[::1] leaf_index,
                                const uint8_t[::1] leaf_is_array) except -1
cdef int tangent_sweeps_many(TapeStorage t, const int64_t[::1] leaf_index,
                             const uint8_t[::1] leaf_is_array,
                             const double[:, ::1] d) except -1
# out[:, c] = the named slots' and array nodes' values in direction c's blocks
cdef void read_blocks(TapeStorage t, const int64_t[::1] index,
                      const uint8_t[::1] is_array, const double* slots,
                      const double* arrays, double[:, ::1] out) noexcept
cdef object tangents_many(TapeStorage t, const int64_t[::1] leaf_index,
                          const uint8_t[::1] leaf_is_array, directions,
                          const int64_t[::1] output_index,
                          const uint8_t[::1] output_is_array)
