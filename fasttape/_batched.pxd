# Replay then sweep, at many points (_batched.pyx). Each checks the recorded
# comparisons at every point and stops at the first whose branch changed.

from fasttape._tape_storage cimport TapeStorage

# scalar tapes, rows of `inputs` on n_threads threads: (outputs, gradients, changed),
# changed (row, guard) of the first changed row, or None
cdef object replay_gradients(TapeStorage t, Py_ssize_t output, leaf_slots, inputs,
                             Py_ssize_t n_threads)
# tapes with array nodes, in their own buffers: the gradients of the leaves into the
# rows of `gradients`; returns the rows done
cdef Py_ssize_t replay_array_gradients(TapeStorage t, Py_ssize_t output_node,
                                       Py_ssize_t output_anode, list leaves, inputs,
                                       gradients) except -1
# one point, a flat list of floats, in the caller's scratch buffers: (output value,
# adjoints of leaves first .. first + count), or (None, changed guard)
cdef object replay_gradient_of_list(TapeStorage t, Py_ssize_t output,
                                    const Py_ssize_t[::1] slots, list values,
                                    Py_ssize_t first, Py_ssize_t count,
                                    double[::1] scratch_values,
                                    double[::1] scratch_adjoints)
