# Forward over reverse (_second_order.pyx).

from libc.stdint cimport int64_t, uint8_t

from fasttape._tape_storage cimport TapeStorage

# nogil loop from `node` (tangents swept, adjoint buffers and their tangents zeroed and
# the output seeded before): every slot's adjoint and the adjoint's tangent. 0, or -1
# with the error in t.sweep_error.
cdef int second_order_sweep_c(TapeStorage t, Py_ssize_t node) noexcept nogil

# with the GIL: buffers for the adjoints' tangents, sized and zeroed
cdef int prepare_adjoint_tangents(TapeStorage t) except -1
# (gradient, Hessian times direction) at the leaves: scalar tapes (None for others) ...
cdef object hessian_vector_scalar(TapeStorage t, Py_ssize_t node, list leaf_slots,
                                  direction)
# ... and tapes with array nodes (leaves: (is_array, slot or array node); flat arrays)
cdef object hessian_vector_arrays(TapeStorage t, Py_ssize_t output, list leaves,
                                  direction, Py_ssize_t output_anode)
# ... and along many directions at once: (N, k), the products with the k rows of
# directions (leaves as two arrays: index, is_array)
cdef object hessian_times_many(TapeStorage t, Py_ssize_t output,
                               const int64_t[::1] leaf_index,
                               const uint8_t[::1] leaf_is_array, directions,
                               Py_ssize_t output_anode)
