# The steps of array nodes in the reverse sweeps (_array_reverse.pyx). Both return 0,
# or -1 when a step with Python rules raised (the exception is then in t.sweep_error).

from fasttape._tape_storage cimport TapeStorage

# adjoints of node r's operands += its output adjoint times its first partials
cdef int array_reverse_c(TapeStorage t, Py_ssize_t r) noexcept nogil
# forward over reverse: the same for the adjoints, and for their tangents
# (adjoint tangent times the first partials plus adjoint times second partials
# times tangents); Python rules have no second partials (callers reject them)
cdef int array_second_order_c(TapeStorage t, Py_ssize_t r) noexcept nogil
# ... its second half alone, the adjoints of the operands done (array_reverse_c): the
# adjoint tangents, along the tangents in t.tangents / t.array_tangents (the batched
# Hessian sweeps point these at one direction's blocks in turn)
cdef int array_second_order_tangent_c(TapeStorage t, Py_ssize_t r) noexcept nogil
