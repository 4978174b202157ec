# The steps of array nodes in the forward sweeps (_array_forward.pyx). Both return 0,
# or -1 when a step with Python rules raised (the exception is then in t.sweep_error).

from fasttape._tape_storage cimport TapeStorage

# replay: node r's value again from its operands' (in its own array, or the tape's
# value slot for a one-value output); the ops Tape.replay_support() accepts
cdef int array_forward_c(TapeStorage t, Py_ssize_t r) noexcept nogil
# tangent: node r's output tangent from its operands' tangents
cdef int array_tangent_c(TapeStorage t, Py_ssize_t r) noexcept nogil
