# Variable: a handle to one value slot on a tape. The inline helpers below are the
# whole recording path of an operation: validate operands (with the GIL, raising
# precise errors), compute the value, append one node, wrap it in a new handle.

cimport cython
from cpython.float cimport PyFloat_AS_DOUBLE, PyFloat_Check
from cpython.long cimport PyLong_AsDouble, PyLong_Check
from cpython.object cimport PyObject

from fasttape._tape cimport (Tape, index_t, opcode_t, push_constant, push_node,
                             OP_CONST)
from fasttape._tape_pools cimport n_paused, recording_paused


@cython.final
cdef class Variable:
    cdef readonly Tape tape     # the tape holding this value
    cdef readonly Py_ssize_t node   # index of the node that wrote it
    cdef readonly Py_ssize_t slot   # index of its value in tape.values
    cdef Py_ssize_t epoch       # tape.epoch when recorded; differs once the tape resets


cdef int raise_stale(Variable v) except -1
cdef int raise_mismatch(Variable a, Variable b) except -1
cdef bint as_double(object o, double* out) except -1


# a new Variable for `node` writing scalar `slot` of t (Variable's own allocator: a
# free list, and the object's fields written in place; see _variable.pyx)
cdef Variable variable_at(Tape t, Py_ssize_t node, Py_ssize_t slot)
# push_node, then a Variable for the node: the recording path of every op, one call.
# The tape comes as a borrowed pointer (an operand's, alive for the call): passed as
# an object, it would be taken and dropped once per recorded op.
cdef Variable push_variable(PyObject* tape, opcode_t op, index_t a, index_t b,
                            double value)


cdef inline Variable new_variable(Tape t, Py_ssize_t node):
    """Handle for the node just pushed (its slot is the last one written)."""
    return variable_at(t, node, t.n_slots - 1)


cdef inline Variable handle_at(Tape t, Py_ssize_t slot):
    """A handle to the existing scalar slot `slot` (= its node); the caller checks it."""
    return variable_at(t, slot, slot)


cdef inline int check_live(Variable v) except -1:
    if v.epoch != v.tape.epoch:
        raise_stale(v)
    return 0


cdef inline int check_pair(Variable a, Variable b) except -1:
    if a.tape is not b.tape:
        raise_mismatch(a, b)
    if a.epoch != a.tape.epoch:
        raise_stale(a)
    if b.epoch != a.tape.epoch:
        raise_stale(b)
    return 0


cdef inline double value_of(Variable v) noexcept:
    return v.tape.values[v.slot]


# Inside a no_grad() block (fasttape.differential.no_grad) the recording functions below
# record nothing and return the plain value.

cdef inline object record_unary(opcode_t op, Variable x, double value):
    check_live(x)
    if n_paused and recording_paused():
        return value
    return push_variable(<PyObject*>x.tape, op, <index_t>x.slot, 0, value)


cdef inline object record_binary(opcode_t op, Variable a, Variable b, double value):
    if n_paused and recording_paused():
        return value
    return push_variable(<PyObject*>a.tape, op, <index_t>a.slot, <index_t>b.slot, value)


cdef inline object record_vc(opcode_t op, Variable a, double c, double value):
    """a op c, c a constant: the constant goes to the pool, not to a slot."""
    cdef PyObject* t = <PyObject*>a.tape
    check_live(a)
    if n_paused and recording_paused():
        return value
    return push_variable(t, op, <index_t>a.slot, push_constant(<Tape>t, c), value)


cdef inline object record_cv(opcode_t op, double c, Variable b, double value):
    cdef PyObject* t = <PyObject*>b.tape
    check_live(b)
    if n_paused and recording_paused():
        return value
    return push_variable(t, op, push_constant(<Tape>t, c), <index_t>b.slot, value)


# one output's derivatives (one entry per leaf) in the structure of the differentiated
# arguments (floats, flat lists or tuples of them): grad's and jacobian's fast paths
cdef object row_like(list row, tuple args, argnums, bint single)
# grad's fast path for floats (cimported by the C-level gradient function)
cpdef object scalar_value_and_grad(fun, argnums, bint single, tuple args, dict kwargs)


cdef inline Variable promote_constant(Tape t, double c):
    """A constant as a slot of its own, for ops that have no constant variant."""
    return new_variable(t, push_node(t, OP_CONST, 0, 0, c))
