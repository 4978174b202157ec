# The scalar sweeps' steps of the ops marked out of line in the op table
# (_optable.OUT_OF_LINE: the special functions from SciPy's cython_special). _opmath's
# inlined steps call these for any op code they have no case for; a cimported
# function is called through a pointer, so it never joins the sweep loops.

from fasttape._opcodes cimport index_t, opcode_t

cdef void reverse_step_rare(opcode_t op, index_t a, index_t b, double g, double y,
                            const double* values, const double* constants,
                            const index_t* extras, double* adjoints) noexcept nogil
cdef double replay_step_rare(opcode_t op, index_t a, index_t b, const double* values,
                             const double* constants,
                             const index_t* extras) noexcept nogil
cdef double tangent_step_rare(opcode_t op, index_t a, index_t b, double y,
                              const double* values, const double* constants,
                              const index_t* extras,
                              const double* tangents) noexcept nogil
cdef void second_order_step_rare(opcode_t op, index_t a, index_t b, double g,
                                 double gt, double y, const double* values,
                                 const double* constants, const index_t* extras,
                                 const double* tangents, double* adj,
                                 double* adj_t) noexcept nogil
