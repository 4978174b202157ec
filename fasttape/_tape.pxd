# The Wengert tape: op codes, buffers and the inline recording helpers.
#
# Layout (struct of arrays, one entry per node unless said otherwise):
#
#   node i  --  ops[i]     what the node computes (an OpCode below)
#               arg0s[i]   first operand: a value slot, or a constants index for the
#               arg1s[i]   second operand  /  "_C" operand of a VC / CV op variant
#
#   values[s]      forward value of slot s; a node writes a contiguous block of slots.
#                  A scalar node writes one slot; its slot is implicit: nodes are laid
#                  out in slot order, so a sweep walking the nodes keeps a running slot
#                  counter instead of storing an output index per node.
#   adjoints[s]    reverse-sweep accumulator for slot s (allocated on first sweep)
#   constants[k]   the constants pool: the constant operand of *_VC / *_CV ops
#
# Comparisons made on Variables are remembered in the guard arrays (one entry per
# comparison: what was compared and the boolean outcome) so that a replay can check
# that it follows the same branches.
#
# Indices are int32 (CppAD's default address type): a tape holds at most
# 2**31 - 1 nodes and slots; recording past that raises OverflowError.

from libc.stdint cimport int32_t, uint8_t

ctypedef uint8_t opcode_t
ctypedef int32_t index_t

# Op codes. Order matters: OP_ARITY and OP_NAMES in _tape.pyx follow it, and
# tests/test_tape.py checks that they stay in step.
cdef enum:
    OP_LEAF = 0       # an input (leaf) variable
    OP_CONST          # a constant promoted to a slot (no derivative flows out of it)
    # arithmetic; _VC: second operand is constants[arg1]; _CV: first is constants[arg0]
    OP_ADD_VV
    OP_ADD_VC
    OP_SUB_VV
    OP_SUB_VC
    OP_SUB_CV
    OP_MUL_VV
    OP_MUL_VC
    OP_DIV_VV
    OP_DIV_VC
    OP_DIV_CV
    OP_POW_VV
    OP_POW_VC
    OP_POW_CV
    # unary
    OP_NEG
    OP_SQUARE
    OP_RECIPROCAL
    OP_SQRT
    OP_CBRT
    OP_EXP
    OP_EXP2
    OP_EXPM1
    OP_LOG
    OP_LOG2
    OP_LOG10
    OP_LOG1P
    OP_SIN
    OP_COS
    OP_TAN
    OP_ARCSIN
    OP_ARCCOS
    OP_ARCTAN
    OP_SINH
    OP_COSH
    OP_TANH
    OP_ARCSINH
    OP_ARCCOSH
    OP_ARCTANH
    OP_ABS
    OP_SIGN
    OP_ERF
    OP_SIGMOID
    # binary functions (both operands are slots; constants are promoted with OP_CONST)
    OP_ARCTAN2
    OP_HYPOT
    OP_MAXIMUM
    OP_MINIMUM
    OP_LOGADDEXP
    N_OPS

# Comparison codes stored in guard_ops (low 3 bits); GUARD_CONST_RHS marks a
# comparison whose right operand is constants[arg1] rather than a slot.
cdef enum:
    CMP_LT = 0
    CMP_LE
    CMP_GT
    CMP_GE
    CMP_EQ
    CMP_NE
    GUARD_CONST_RHS = 8


cdef class Tape:
    # node arrays (capacity node_capacity)
    cdef opcode_t* ops
    cdef index_t* arg0s
    cdef index_t* arg1s
    cdef Py_ssize_t n_nodes
    cdef Py_ssize_t node_capacity
    # slot arrays (capacity slot_capacity; adjoints capacity adjoint_capacity)
    cdef double* values
    cdef double* adjoints
    cdef Py_ssize_t n_slots
    cdef Py_ssize_t slot_capacity
    cdef Py_ssize_t adjoint_capacity
    # constants pool
    cdef double* constants
    cdef Py_ssize_t n_constants
    cdef Py_ssize_t constant_capacity
    # guards: one entry per recorded comparison
    cdef opcode_t* guard_ops        # CMP_* | GUARD_CONST_RHS
    cdef index_t* guard_arg0s       # left operand slot
    cdef index_t* guard_arg1s       # right operand slot, or constants index
    cdef index_t* guard_nodes       # n_nodes when the comparison was made
    cdef uint8_t* guard_outcomes    # 1 if the comparison was true
    cdef Py_ssize_t n_guards
    cdef Py_ssize_t guard_capacity

    cdef readonly Py_ssize_t epoch  # bumped by reset(); Variables remember theirs
    cdef Py_ssize_t max_size        # limit on nodes and slots (2**31 - 1 unless testing)
    # the last reverse sweep: adjoints[0:swept_slot_end] are valid while
    # swept_epoch == epoch
    cdef Py_ssize_t swept_epoch
    cdef Py_ssize_t swept_slot_end
    cdef object __weakref__

    cdef int grow_nodes(self) except -1
    cdef int grow_slots(self, Py_ssize_t needed) except -1
    cdef int grow_constants(self) except -1
    cdef int grow_guards(self) except -1
    cpdef reset(self)
    cdef int reverse_c(self, Py_ssize_t node, Py_ssize_t slot, double seed) except -1


cdef inline Py_ssize_t push_node(Tape t, opcode_t op, index_t a, index_t b,
                                 double value) except -1:
    """Append a scalar node; returns its node index. Its slot is t.n_slots - 1."""
    cdef Py_ssize_t node = t.n_nodes
    if node >= t.node_capacity:
        t.grow_nodes()
    if t.n_slots >= t.slot_capacity:
        t.grow_slots(1)
    t.ops[node] = op
    t.arg0s[node] = a
    t.arg1s[node] = b
    t.values[t.n_slots] = value
    t.n_nodes = node + 1
    t.n_slots += 1
    return node


cdef inline index_t push_constant(Tape t, double c) except -1:
    """Append c to the constants pool; returns its index."""
    cdef Py_ssize_t k = t.n_constants
    if k >= t.constant_capacity:
        t.grow_constants()
    t.constants[k] = c
    t.n_constants = k + 1
    return <index_t>k


cdef inline int push_guard(Tape t, opcode_t cmp, index_t a, index_t b,
                           bint outcome) except -1:
    cdef Py_ssize_t k = t.n_guards
    if k >= t.guard_capacity:
        t.grow_guards()
    t.guard_ops[k] = cmp
    t.guard_arg0s[k] = a
    t.guard_arg1s[k] = b
    t.guard_nodes[k] = <index_t>t.n_nodes
    t.guard_outcomes[k] = outcome
    t.n_guards = k + 1
    return 0

