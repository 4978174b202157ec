# cython: language_level=3, boundscheck=False, wraparound=False
"""The reverse sweep that records its own operations (a derivative inside a derivative,
fasttape._recording_sweeps), in C for a region of scalar nodes; and grad's fast path
inside another differentiation (nested_value_and_grad), which records the function and
that sweep on the enclosing tape without building a Recording.

The adjoints are Variables (or plain floats, while they are constants) on the tape
being swept, and each step records its contributions there, so that the enclosing
computation can differentiate them again. The steps of the arithmetic ops and of the
common elementary functions are written out here; any other op takes its partials
from the op table's rules (fasttape._rules, handed in by the caller), called on
Variables as the Python sweep calls them. A contribution is the product of the
adjoint and the same partial expression as the Python sweep's, except that a constant
adjoint folds into a constant factor of the partial (one node fewer, a last-bit
difference at most).
"""
from types import MethodType

cimport cython

from libc cimport math as cm

from fasttape._tape cimport *
from fasttape._tape_pools cimport active_tape, n_paused, recording_paused
from fasttape._variable cimport (Variable, check_live, handle_at, new_variable,
                                 record_unary, record_vc, row_like,
                                 scalar_value_and_grad, value_of)

# What the layers above provide (fasttape._wiring): the op table's rules keyed by op
# code (unary, binary, constant-operand) and the Python recording sweep, for regions
# this one does not take (fasttape._recording_sweeps); FINISH_NESTED(fun, argnum,
# argnums, args, tape, leaves, result), the general ending of the nested fast path for
# an output that is not a Variable of the tape (fasttape._recording.finish_nested).
cdef dict UNARY_RULES = {}
cdef dict BINARY_RULES = {}
cdef dict CONSTANT_RULES = {}
cdef object PYTHON_SWEEP = None
cdef object FINISH_NESTED = None


def register_recording_rules(dict unary, dict binary, dict constant, python_sweep):
    global UNARY_RULES, BINARY_RULES, CONSTANT_RULES, PYTHON_SWEEP
    UNARY_RULES, BINARY_RULES, CONSTANT_RULES = unary, binary, constant
    PYTHON_SWEEP = python_sweep


def register_nested_finisher(finisher):
    global FINISH_NESTED
    FINISH_NESTED = finisher


cdef inline Variable at(Tape tape, Py_ssize_t slot):
    """A handle to scalar slot `slot` of the region (or an operand recorded before)."""
    return handle_at(tape, slot)


# The products and sums of the sweep recorded straight from slots (no handles for the
# operands, no trip through the number protocol), with the values the operators give.

cdef inline Variable emit_vc(Tape tape, opcode_t op, Py_ssize_t slot, double c,
                             double value):
    """A node op(slot, c), c a pooled constant."""
    return new_variable(tape, push_node(tape, op, <index_t>slot, push_constant(tape, c),
                                        value))


cdef inline Variable emit_vv(Tape tape, opcode_t op, Py_ssize_t a, Py_ssize_t b,
                             double value):
    return new_variable(tape, push_node(tape, op, <index_t>a, <index_t>b, value))


cdef inline object scaled(Tape tape, object g, Py_ssize_t slot):
    """g * (the value at slot), g a float or a Variable of tape."""
    cdef double x = tape.values[slot]
    if type(g) is float:
        return emit_vc(tape, OP_MUL_VC, slot, <double>g, x * <double>g)
    return emit_vv(tape, OP_MUL_VV, (<Variable>g).slot, slot,
                   tape.values[(<Variable>g).slot] * x)


cdef inline object power_partial(Tape tape, Py_ssize_t slot, double c):
    """x ** (c - 1) for x at slot, recorded as x ** p is (a square for p = 2)."""
    cdef double x = tape.values[slot], p = c - 1.0
    if p == 2.0:
        return new_variable(tape, push_node(tape, OP_SQUARE, <index_t>slot, 0, x * x))
    return emit_vc(tape, OP_POW_VC, slot, p, cm.pow(x, p))


@cython.no_gc             # (it refers to its list and tape only: never in a cycle)
@cython.freelist(8)
cdef class Adjoints:
    """The adjoint of each node from the first input to the last output (None: no
    contribution yet). Nodes between the inputs that are not inputs may receive
    contributions, which are never read: the sweep stops after the last input."""
    cdef list at_node         # node lo + k -> adjoint
    cdef Py_ssize_t lo
    cdef Tape tape

    cdef inline int add(self, Py_ssize_t node, object contribution) except -1:
        cdef object previous
        if node < self.lo or (type(contribution) is float and
                              <double>contribution == 0.0):
            return 0
        previous = self.at_node[node - self.lo]
        if previous is None:
            self.at_node[node - self.lo] = contribution
        else:
            self.at_node[node - self.lo] = summed(self.tape, previous, contribution)
        return 0


cdef inline object summed(Tape tape, object p, object q):
    """p + q (floats or Variables of tape), recorded as the operators record it."""
    cdef Variable u, v
    if type(p) is float and type(q) is float:
        return <double>p + <double>q
    if type(p) is float:                     # q.__radd__(p)
        v = <Variable>q
        return emit_vc(tape, OP_ADD_VC, v.slot, <double>p,
                       tape.values[v.slot] + <double>p)
    u = <Variable>p
    if type(q) is float:
        return emit_vc(tape, OP_ADD_VC, u.slot, <double>q,
                       tape.values[u.slot] + <double>q)
    v = <Variable>q
    return emit_vv(tape, OP_ADD_VV, u.slot, v.slot,
                   tape.values[u.slot] + tape.values[v.slot])


cdef inline object times(object g, object partial):
    """g * partial, dropping an exactly zero constant partial (no node)."""
    if type(partial) is float and <double>partial == 0.0:
        return 0.0
    return g * partial


cdef bint scalar_handles_of(list items, Tape tape):
    """Every item a Variable of tape holding a scalar node's value."""
    for o in items:
        if type(o) is not Variable or (<Variable>o).tape is not tape or \
                (<Variable>o).node != (<Variable>o).slot:
            return False
    return True


cpdef object scalar_region_adjoints(Tape tape, list outputs, list seeds, list inputs):
    """The adjoints of `inputs` (scalar Variables recorded before every node that
    depends on them) for the scalar Variables `outputs` seeded with `seeds`, recorded
    on `tape`. Returns None,
    having recorded nothing, when the region between the inputs and the outputs holds
    a node this sweep does not take (array nodes, selects)."""
    cdef Py_ssize_t i, stop = -1, last = -1, lo = -1, a, b
    cdef opcode_t op
    cdef Variable v, x, y
    cdef Adjoints adj
    cdef double c
    cdef Py_ssize_t k, n_seeded = min(len(outputs), len(seeds))
    if not inputs or not scalar_handles_of(inputs, tape) or \
            not scalar_handles_of(outputs, tape):
        return None
    for k in range(n_seeded):
        if type(seeds[k]) is not float and type(seeds[k]) is not Variable:
            return None
    for v in inputs:
        stop = max(stop, v.node)
        lo = v.node if lo < 0 else min(lo, v.node)
    for v in outputs:
        last = max(last, v.node)
    for i in range(stop + 1, last + 1):
        op = tape.ops[i]
        if op == OP_SELECT or op == OP_ARRAY:
            return None
    adj = Adjoints.__new__(Adjoints)
    adj.lo = lo
    adj.tape = tape
    adj.at_node = [None] * (max(last, stop) - lo + 1)
    for k in range(n_seeded):
        adj.add((<Variable>outputs[k]).node, seeds[k])
    for i in range(last, stop, -1):
        g = adj.at_node[i - lo]
        if g is None:
            continue
        adj.at_node[i - lo] = None
        op = tape.ops[i]
        a = tape.arg0s[i]
        b = tape.arg1s[i]
        if op == OP_LEAF or op == OP_CONST:
            continue
        elif op == OP_ADD_VV:
            adj.add(a, g)
            adj.add(b, g)
        elif op == OP_ADD_VC or op == OP_SUB_VC:
            adj.add(a, g)
        elif op == OP_SUB_VV:
            adj.add(a, g)
            adj.add(b, -g)
        elif op == OP_SUB_CV:
            adj.add(b, -g)
        elif op == OP_NEG:
            adj.add(a, -g)
        elif op == OP_MUL_VV:
            adj.add(a, scaled(tape, g, b))
            adj.add(b, scaled(tape, g, a))
        elif op == OP_MUL_VC:
            adj.add(a, times(g, tape.constants[b]))
        elif op == OP_DIV_VV:
            x = at(tape, b)
            adj.add(a, g * (1.0 / x))
            adj.add(b, g * -(at(tape, i) / x))
        elif op == OP_DIV_VC:
            adj.add(a, g * (1.0 / tape.constants[b]))
        elif op == OP_DIV_CV:
            adj.add(b, g * -(at(tape, i) / at(tape, b)))
        elif op == OP_POW_VC:
            c = tape.constants[b]
            if c != 0.0:            # (a constant adjoint folds into the constant factor)
                y = power_partial(tape, a, c)
                adj.add(a, scaled(tape, <double>g * c, y.slot) if type(g) is float
                        else scaled(tape, g, emit_vc(tape, OP_MUL_VC, y.slot, c,
                                                     value_of(y) * c).slot))
        elif op == OP_SQUARE:
            adj.add(a, (g * 2.0) * at(tape, a) if type(g) is float
                    else g * (2.0 * at(tape, a)))
        elif op == OP_EXP:
            adj.add(a, scaled(tape, g, i))
        elif op == OP_LOG:
            adj.add(a, g * (1.0 / at(tape, a)))
        elif op == OP_SQRT:
            adj.add(a, g * (0.5 / at(tape, i)))
        elif op == OP_SIN:
            x = at(tape, a)
            adj.add(a, g * record_unary(OP_COS, x, cm.cos(value_of(x))))
        elif op == OP_COS:
            x = at(tape, a)
            adj.add(a, g * -record_unary(OP_SIN, x, cm.sin(value_of(x))))
        elif op == OP_TANH:
            y = at(tape, i)
            adj.add(a, g * (1.0 - y * y))
        elif op in UNARY_RULES:
            partial = UNARY_RULES[op](at(tape, a), at(tape, i))
            if not (type(partial) is float and <double>partial == 0.0):
                adj.add(a, g * partial)
        elif op in CONSTANT_RULES:
            variable_first, rule = CONSTANT_RULES[op]
            if variable_first:
                x, c = at(tape, a), tape.constants[b]
                adj.add(a, g * rule(x, c, at(tape, i)))
            else:
                x, c = at(tape, b), tape.constants[a]
                adj.add(b, g * rule(x, c, at(tape, i)))
        elif op in BINARY_RULES:
            d0, d1 = BINARY_RULES[op](at(tape, a), at(tape, b), at(tape, i))
            adj.add(a, times(g, d0))
            adj.add(b, times(g, d1))
        else:
            raise RuntimeError(f"fasttape: no recorded reverse step for op {op}")
    return [0.0 if adj.at_node[v.node - lo] is None else adj.at_node[v.node - lo]
            for v in inputs]


cdef object copies_like(Tape tape, object x, list leaves):
    """The inner differentiation's own inputs for argument x (a Variable of tape, a
    float, or a flat list or tuple of them), in x's container: a Variable's copy x +
    0.0 (a node the inner sweep stops at), a float's leaf; each appended to leaves."""
    cdef list items
    if type(x) is list or type(x) is tuple:
        items = [copies_like(tape, v, leaves) for v in x]
        return items if type(x) is list else tuple(items)
    if type(x) is Variable:
        check_live(<Variable>x)
        copy = record_vc(OP_ADD_VC, <Variable>x, 0.0, value_of(<Variable>x))
    else:
        copy = new_variable(tape, push_node(tape, OP_LEAF, 0, 0, <double>x))
    leaves.append(copy)
    return copy


cdef bint is_number_of(object x, Tape tape):
    return type(x) is float or (type(x) is Variable and (<Variable>x).tape is tape)


cdef bint all_numbers_of(object items, Tape tape):
    for v in items:
        if not is_number_of(v, tape):
            return False
    return True


cpdef object nested_value_and_grad(fun, argnum, argnums, bint single, tuple args,
                                  dict kwargs):
    """grad's fast path inside another differentiation: every differentiated argument a
    Variable of the active tape or a float (or a flat list or tuple of them). The
    function and its recording reverse sweep land on that tape, so that the result can
    be differentiated again. Returns (output, gradient) as the general path's
    Recording.value_and_grad does, or NotImplemented (having run nothing)."""
    cdef Py_ssize_t n = len(args), i
    cdef Tape tape
    cdef list call_args, leaves, flat
    if argnums is None:
        return NotImplemented
    enclosing = active_tape()
    if enclosing is None or (n_paused and recording_paused()):
        return NotImplemented
    tape = <Tape>enclosing
    for i in argnums:
        if not -n <= i < n:
            return NotImplemented
        x = args[i]
        if type(x) is list or type(x) is tuple:
            if len(x) == 0 or not all_numbers_of(x, tape):
                return NotImplemented
        elif not is_number_of(x, tape):
            return NotImplemented
    leaves = []
    if n == 1 and single:          # (the common case, without the list)
        if kwargs:
            result = fun(copies_like(tape, args[0], leaves), **kwargs)
        else:
            result = fun(copies_like(tape, args[0], leaves))
    else:
        call_args = list(args)
        for i in argnums:
            call_args[i] = copies_like(tape, args[i], leaves)
        result = fun(*call_args, **kwargs)
    if type(result) is not Variable or (<Variable>result).tape is not tape:
        return FINISH_NESTED(fun, argnum, argnums, args, tape, leaves, result)
    check_live(<Variable>result)
    flat = scalar_region_adjoints(tape, [result], [1.0], leaves)
    if flat is None:
        flat = PYTHON_SWEEP(tape, [result], [1.0], leaves)
    if single and type(args[argnums[0]]) is not list and \
            type(args[argnums[0]]) is not tuple:
        return result, flat[0]
    return result, row_like(flat, args, argnums, single)


cdef class GradientFunction:
    """What ``grad(fun)`` (and ``value_and_grad(fun)``, with_value) returns: its fast
    paths (floats; Variables of an enclosing differentiation) tried from C, without a
    Python frame per call, which is most of the cost of a small gradient called inside
    a loop; other arguments go to `general(args, kwargs)`, which returns what the call
    does. Carries fun's name and docstring (functools.update_wrapper) and binds as a
    method does."""
    cdef object fun, argnum, argnums, general
    cdef bint single, with_value
    cdef dict __dict__

    def __init__(self, fun, argnum, argnums, bint single, general, bint with_value):
        self.fun, self.argnum, self.argnums = fun, argnum, argnums
        self.single, self.with_value = single, with_value
        self.general = general

    def __call__(self, *args, **kwargs):
        result = scalar_value_and_grad(self.fun, self.argnums, self.single, args, kwargs)
        if result is NotImplemented:
            result = nested_value_and_grad(self.fun, self.argnum, self.argnums,
                                           self.single, args, kwargs)
            if result is NotImplemented:
                return self.general(args, kwargs)
        return result if self.with_value else result[1]

    def __get__(self, instance, owner):
        return self if instance is None else MethodType(self, instance)

    def __repr__(self):
        what = "value and gradient" if self.with_value else "gradient"
        return f"<{what} of {getattr(self.fun, '__qualname__', self.fun)!r}>"
