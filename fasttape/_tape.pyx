# The tape: storage, growth, reset and the reverse sweep. Knows nothing about
# Variables or the Python-level API; the field layout is documented in _tape.pxd.

cimport cython
from cpython.mem cimport PyMem_Free, PyMem_Realloc
from libc cimport math as cm
from libc.stdint cimport INT32_MAX, int32_t, int8_t, uint8_t
from libc.string cimport memset

import threading

import numpy as np

from fasttape._opmath cimport sign_c

# One row per op code, in enum order: (name, code, arity). The Python mirror of the
# enum in _tape.pxd; arity counts Variable operands (constants excluded).
OP_TABLE = (
    ("LEAF", OP_LEAF, 0),
    ("CONST", OP_CONST, 0),
    ("ADD_VV", OP_ADD_VV, 2),
    ("ADD_VC", OP_ADD_VC, 1),
    ("SUB_VV", OP_SUB_VV, 2),
    ("SUB_VC", OP_SUB_VC, 1),
    ("SUB_CV", OP_SUB_CV, 1),
    ("MUL_VV", OP_MUL_VV, 2),
    ("MUL_VC", OP_MUL_VC, 1),
    ("DIV_VV", OP_DIV_VV, 2),
    ("DIV_VC", OP_DIV_VC, 1),
    ("DIV_CV", OP_DIV_CV, 1),
    ("POW_VV", OP_POW_VV, 2),
    ("POW_VC", OP_POW_VC, 1),
    ("POW_CV", OP_POW_CV, 1),
    ("NEG", OP_NEG, 1),
    ("SQUARE", OP_SQUARE, 1),
    ("RECIPROCAL", OP_RECIPROCAL, 1),
    ("SQRT", OP_SQRT, 1),
    ("CBRT", OP_CBRT, 1),
    ("EXP", OP_EXP, 1),
    ("EXP2", OP_EXP2, 1),
    ("EXPM1", OP_EXPM1, 1),
    ("LOG", OP_LOG, 1),
    ("LOG2", OP_LOG2, 1),
    ("LOG10", OP_LOG10, 1),
    ("LOG1P", OP_LOG1P, 1),
    ("SIN", OP_SIN, 1),
    ("COS", OP_COS, 1),
    ("TAN", OP_TAN, 1),
    ("ARCSIN", OP_ARCSIN, 1),
    ("ARCCOS", OP_ARCCOS, 1),
    ("ARCTAN", OP_ARCTAN, 1),
    ("SINH", OP_SINH, 1),
    ("COSH", OP_COSH, 1),
    ("TANH", OP_TANH, 1),
    ("ARCSINH", OP_ARCSINH, 1),
    ("ARCCOSH", OP_ARCCOSH, 1),
    ("ARCTANH", OP_ARCTANH, 1),
    ("ABS", OP_ABS, 1),
    ("SIGN", OP_SIGN, 1),
    ("ERF", OP_ERF, 1),
    ("SIGMOID", OP_SIGMOID, 1),
    ("ARCTAN2", OP_ARCTAN2, 2),
    ("HYPOT", OP_HYPOT, 2),
    ("MAXIMUM", OP_MAXIMUM, 2),
    ("MINIMUM", OP_MINIMUM, 2),
    ("LOGADDEXP", OP_LOGADDEXP, 2),
)
N_OP_CODES = N_OPS

# The C arity table, in enum order, used by dump() and checked against OP_TABLE.
cdef int8_t OP_ARITY[N_OPS]
cdef list OP_NAMES = [None] * N_OPS
for _name, _code, _arity in OP_TABLE:
    OP_ARITY[_code] = _arity
    OP_NAMES[_code] = _name

# which operand of the *_VC / *_CV variants is a constant: 0 none, 1 first, 2 second
cdef uint8_t CONST_OPERAND[N_OPS]
memset(CONST_OPERAND, 0, sizeof(CONST_OPERAND))
for _code in (OP_ADD_VC, OP_SUB_VC, OP_MUL_VC, OP_DIV_VC, OP_POW_VC):
    CONST_OPERAND[_code] = 2
for _code in (OP_SUB_CV, OP_DIV_CV, OP_POW_CV):
    CONST_OPERAND[_code] = 1

COMPARISON_NAMES = ("<", "<=", ">", ">=", "==", "!=")


def op_arity(int code):
    """Arity of an op code as the C table has it (for the consistency test)."""
    if not 0 <= code < N_OPS:
        raise ValueError(f"no op code {code}")
    return OP_ARITY[code]


cdef Py_ssize_t DEFAULT_CAPACITY = 256


cdef void* grow_buffer(void* buf, Py_ssize_t new_count, size_t item_size) except NULL:
    cdef void* p = PyMem_Realloc(buf, <size_t>new_count * item_size)
    if p == NULL:
        raise MemoryError(f"fasttape: cannot grow a tape buffer to {new_count} entries")
    return p


cdef Py_ssize_t next_capacity(Py_ssize_t current, Py_ssize_t needed,
                              Py_ssize_t limit, str what) except -1:
    """Doubling growth, capped at limit; OverflowError past it."""
    cdef Py_ssize_t cap
    if needed > limit:
        raise OverflowError(
            f"fasttape: a tape holds at most {limit} {what}; this computation needs "
            f"more. Split it, or differentiate it in pieces with smaller tapes.")
    cap = current * 2 if current > 0 else DEFAULT_CAPACITY
    while cap < needed:
        cap *= 2
    return cap if cap < limit else limit


@cython.final
cdef class Tape:
    """A Wengert tape: the record of one computation, in typed arrays.

    Variables created inside ``with Tape() as tape:`` are recorded on ``tape``.
    Without an explicit tape, ``Variable(x)`` records on the thread's default tape,
    and ``grad`` records on a pooled tape that it resets after each call.

    Parameters
    ----------
    max_size : int, optional
        Most nodes (and value slots) the tape may hold; recording past it raises
        OverflowError. The default, 2**31 - 1, is the limit of the int32 indices.
    """

    def __cinit__(self, Py_ssize_t max_size=INT32_MAX):
        if not 0 < max_size <= INT32_MAX:
            raise ValueError(f"max_size must be in 1..{INT32_MAX}, got {max_size}")
        self.max_size = max_size
        self.swept_epoch = -1

    def __dealloc__(self):
        PyMem_Free(self.ops)
        PyMem_Free(self.arg0s)
        PyMem_Free(self.arg1s)
        PyMem_Free(self.values)
        PyMem_Free(self.adjoints)
        PyMem_Free(self.constants)
        PyMem_Free(self.guard_ops)
        PyMem_Free(self.guard_arg0s)
        PyMem_Free(self.guard_arg1s)
        PyMem_Free(self.guard_nodes)
        PyMem_Free(self.guard_outcomes)

    # -- growth (called from the inline push_* helpers in _tape.pxd) -------------

    cdef int grow_nodes(self) except -1:
        cdef Py_ssize_t cap = next_capacity(self.node_capacity, self.n_nodes + 1,
                                            self.max_size, "nodes")
        self.ops = <opcode_t*>grow_buffer(self.ops, cap, sizeof(opcode_t))
        self.arg0s = <index_t*>grow_buffer(self.arg0s, cap, sizeof(index_t))
        self.arg1s = <index_t*>grow_buffer(self.arg1s, cap, sizeof(index_t))
        self.node_capacity = cap
        return 0

    cdef int grow_slots(self, Py_ssize_t needed) except -1:
        cdef Py_ssize_t cap = next_capacity(self.slot_capacity, self.n_slots + needed,
                                            self.max_size, "value slots")
        self.values = <double*>grow_buffer(self.values, cap, sizeof(double))
        self.slot_capacity = cap
        return 0

    cdef int grow_constants(self) except -1:
        cdef Py_ssize_t cap = next_capacity(self.constant_capacity,
                                            self.n_constants + 1, INT32_MAX,
                                            "constants")
        self.constants = <double*>grow_buffer(self.constants, cap, sizeof(double))
        self.constant_capacity = cap
        return 0

    cdef int grow_guards(self) except -1:
        cdef Py_ssize_t cap = next_capacity(self.guard_capacity, self.n_guards + 1,
                                            INT32_MAX, "comparisons")
        self.guard_ops = <opcode_t*>grow_buffer(self.guard_ops, cap, sizeof(opcode_t))
        self.guard_arg0s = <index_t*>grow_buffer(self.guard_arg0s, cap, sizeof(index_t))
        self.guard_arg1s = <index_t*>grow_buffer(self.guard_arg1s, cap, sizeof(index_t))
        self.guard_nodes = <index_t*>grow_buffer(self.guard_nodes, cap, sizeof(index_t))
        self.guard_outcomes = <uint8_t*>grow_buffer(self.guard_outcomes, cap,
                                                    sizeof(uint8_t))
        self.guard_capacity = cap
        return 0

    # -- lifecycle ----------------------------------------------------------------

    cpdef reset(self):
        """Forget every node, keeping the memory for the next recording.

        Variables recorded before the reset become invalid: using them raises
        ``StaleVariableError``.
        """
        self.n_nodes = 0
        self.n_slots = 0
        self.n_constants = 0
        self.n_guards = 0
        self.epoch += 1

    def __enter__(self):
        push_active(self)
        return self

    def __exit__(self, *exc):
        pop_active(self)
        return False

    # -- reverse sweep --------------------------------------------------------------

    cdef int reverse_c(self, Py_ssize_t node, Py_ssize_t slot, double seed) except -1:
        """Seed adjoints[slot] and sweep nodes node, node-1, ..., 0.

        ``slot`` must be the output slot of ``node``. Afterwards adjoints[0:slot+1]
        hold d(seed * output)/d(slot value).
        """
        cdef Py_ssize_t slot_end = slot + 1
        cdef double* p
        if self.adjoint_capacity < self.slot_capacity:
            p = <double*>grow_buffer(self.adjoints, self.slot_capacity, sizeof(double))
            self.adjoints = p
            self.adjoint_capacity = self.slot_capacity
        # Releasing the GIL costs ~0.1 us: only worth it for tapes that take longer.
        if node > 2048:
            with nogil:
                seeded_sweep_c(self, node, slot_end, seed)
        else:
            seeded_sweep_c(self, node, slot_end, seed)
        self.swept_epoch = self.epoch
        self.swept_slot_end = slot_end
        return 0

    # -- inspection -----------------------------------------------------------------

    @property
    def n_nodes(self):
        """Number of nodes recorded since the last reset."""
        return self.n_nodes

    @property
    def n_slots(self):
        """Number of value slots (scalars) written since the last reset."""
        return self.n_slots

    @property
    def n_constants(self):
        return self.n_constants

    @property
    def n_guards(self):
        """Number of comparisons remembered since the last reset."""
        return self.n_guards

    @property
    def nbytes(self):
        """Bytes the tape's buffers hold now (allocated capacity, not just used)."""
        return (self.node_capacity * (sizeof(opcode_t) + 2 * sizeof(index_t))
                + self.slot_capacity * sizeof(double)
                + self.adjoint_capacity * sizeof(double)
                + self.constant_capacity * sizeof(double)
                + self.guard_capacity * (2 * sizeof(opcode_t) + 3 * sizeof(index_t)))

    @property
    def bytes_per_node(self):
        """Bytes one scalar node occupies: op code, two operands, value, adjoint."""
        return sizeof(opcode_t) + 2 * sizeof(index_t) + 2 * sizeof(double)

    def arrays(self):
        """Copies of the used part of the buffers, as a dict of NumPy arrays.

        Keys: ops, arg0s, arg1s (per node), values (per slot), constants, and
        guard_ops, guard_arg0s, guard_arg1s, guard_nodes, guard_outcomes.
        """
        return {
            "ops": _copy_u8(self.ops, self.n_nodes),
            "arg0s": _copy_i32(self.arg0s, self.n_nodes),
            "arg1s": _copy_i32(self.arg1s, self.n_nodes),
            "values": _copy_f64(self.values, self.n_slots),
            "constants": _copy_f64(self.constants, self.n_constants),
            "guard_ops": _copy_u8(self.guard_ops, self.n_guards),
            "guard_arg0s": _copy_i32(self.guard_arg0s, self.n_guards),
            "guard_arg1s": _copy_i32(self.guard_arg1s, self.n_guards),
            "guard_nodes": _copy_i32(self.guard_nodes, self.n_guards),
            "guard_outcomes": _copy_u8(self.guard_outcomes, self.n_guards),
        }

    def guards(self):
        """The remembered comparisons as (left, op, right, outcome) strings/values.

        ``left`` and ``right`` are ``"v<slot>"`` for Variables or the constant.
        """
        out = []
        cdef Py_ssize_t k
        cdef opcode_t g
        for k in range(self.n_guards):
            g = self.guard_ops[k]
            rhs = (self.constants[self.guard_arg1s[k]] if g & GUARD_CONST_RHS
                   else f"v{self.guard_arg1s[k]}")
            out.append((f"v{self.guard_arg0s[k]}", COMPARISON_NAMES[g & 7], rhs,
                        bool(self.guard_outcomes[k])))
        return out

    def dump(self, file=None):
        """Print one line per node: index, op, operands, value (and adjoint if swept)."""
        lines = []
        cdef Py_ssize_t i, slot = 0
        cdef opcode_t op
        swept = self.swept_epoch == self.epoch
        for i in range(self.n_nodes):
            op = self.ops[i]
            operands = []
            if OP_ARITY[op] + (CONST_OPERAND[op] != 0) >= 1:
                operands.append(self._operand(op, 1, self.arg0s[i]))
            if OP_ARITY[op] + (CONST_OPERAND[op] != 0) >= 2:
                operands.append(self._operand(op, 2, self.arg1s[i]))
            line = (f"{i:6d}  v{slot:<6d} = {OP_NAMES[op]:<11s} "
                    f"{' '.join(operands):<22s} value={self.values[slot]!r}")
            if swept and slot < self.swept_slot_end:
                line += f"  adjoint={self.adjoints[slot]!r}"
            lines.append(line)
            slot += 1
        text = "\n".join(lines)
        if file is None:
            print(text)
        else:
            print(text, file=file)

    def _operand(self, opcode_t op, int position, index_t ref):
        if CONST_OPERAND[op] == position:
            return repr(self.constants[ref])
        return f"v{ref}"

    def __repr__(self):
        return (f"<fasttape.Tape: {self.n_nodes} nodes, {self.n_slots} slots, "
                f"{self.n_guards} comparisons, epoch {self.epoch}>")


cdef object _copy_u8(uint8_t* p, Py_ssize_t n):
    out = np.empty(n, dtype=np.uint8)
    cdef uint8_t[::1] view = out
    cdef Py_ssize_t i
    for i in range(n):
        view[i] = p[i]
    return out


cdef object _copy_i32(int32_t* p, Py_ssize_t n):
    out = np.empty(n, dtype=np.int32)
    cdef int32_t[::1] view = out
    cdef Py_ssize_t i
    for i in range(n):
        view[i] = p[i]
    return out


cdef object _copy_f64(double* p, Py_ssize_t n):
    out = np.empty(n, dtype=np.float64)
    cdef double[::1] view = out
    cdef Py_ssize_t i
    for i in range(n):
        view[i] = p[i]
    return out


cdef inline void seeded_sweep_c(Tape t, Py_ssize_t node, Py_ssize_t slot_end,
                                double seed) noexcept nogil:
    memset(t.adjoints, 0, <size_t>slot_end * sizeof(double))
    t.adjoints[slot_end - 1] = seed
    reverse_sweep_c(t.ops, t.arg0s, t.arg1s, t.values, t.constants, t.adjoints,
                    0, node + 1, slot_end)


# -- the reverse sweep ---------------------------------------------------------------
#
# Zero-adjoint rule: a node whose output adjoint is exactly 0.0 is skipped. Nodes off
# the path to the output then cost one compare, and a zero adjoint never meets an
# infinite partial (0 * inf would be nan): d/dx of 0 * log(x) at x = 0 is 0, not nan.
# A nan adjoint is not zero, so nan still propagates. tests/test_tape.py pins this.

cdef void reverse_sweep_c(const opcode_t* ops, const index_t* arg0s,
                          const index_t* arg1s, const double* values,
                          const double* constants, double* adjoints,
                          Py_ssize_t node_begin, Py_ssize_t node_end,
                          Py_ssize_t slot_end) noexcept nogil:
    """Propagate adjoints from nodes [node_begin, node_end) back to their operands.

    slot_end is the slot just past node_end - 1's output. Never fails.
    """
    cdef Py_ssize_t i, a, b, slot = slot_end
    cdef double g, x, y, d
    cdef opcode_t op
    for i in range(node_end - 1, node_begin - 1, -1):
        slot -= 1                      # every node so far writes one slot
        g = adjoints[slot]
        if g == 0.0:
            continue
        a = arg0s[i]
        b = arg1s[i]
        y = values[slot]
        op = ops[i]
        if op == OP_LEAF or op == OP_CONST:
            pass
        # -- arithmetic ---------------------------------------------------------------
        elif op == OP_ADD_VV:          # y = a + b
            adjoints[a] += g
            adjoints[b] += g
        elif op == OP_ADD_VC:          # y = a + c
            adjoints[a] += g
        elif op == OP_SUB_VV:          # y = a - b
            adjoints[a] += g
            adjoints[b] -= g
        elif op == OP_SUB_VC:          # y = a - c
            adjoints[a] += g
        elif op == OP_SUB_CV:          # y = c - b
            adjoints[b] -= g
        elif op == OP_MUL_VV:          # y = a * b
            adjoints[a] += g * values[b]
            adjoints[b] += g * values[a]
        elif op == OP_MUL_VC:          # y = a * c
            adjoints[a] += g * constants[b]
        elif op == OP_DIV_VV:          # y = a / b;  dy/db = -y / b
            d = g / values[b]
            adjoints[a] += d
            adjoints[b] -= d * y
        elif op == OP_DIV_VC:          # y = a / c
            adjoints[a] += g / constants[b]
        elif op == OP_DIV_CV:          # y = c / b
            adjoints[b] -= g * y / values[b]
        elif op == OP_POW_VV:          # y = a ** b
            adjoints[a] += g * pow_dbase(values[a], values[b])
            adjoints[b] += g * pow_dexponent(values[a], y)
        elif op == OP_POW_VC:          # y = a ** c
            adjoints[a] += g * pow_dbase(values[a], constants[b])
        elif op == OP_POW_CV:          # y = c ** b
            adjoints[b] += g * pow_dexponent(constants[a], y)
        # -- unary: x is the operand, y the stored result --------------------------------
        elif op == OP_NEG:             # y = -x
            adjoints[a] -= g
        elif op == OP_SQUARE:          # y = x * x
            adjoints[a] += 2.0 * g * values[a]
        elif op == OP_RECIPROCAL:      # y = 1 / x;  dy/dx = -y^2
            adjoints[a] -= g * y * y
        elif op == OP_SQRT:            # y = sqrt(x);  0.5 / y, inf at 0
            adjoints[a] += 0.5 * g / y
        elif op == OP_CBRT:            # y = cbrt(x);  1 / (3 y^2), inf at 0
            adjoints[a] += g / (3.0 * y * y)
        elif op == OP_EXP:             # y = exp(x)
            adjoints[a] += g * y
        elif op == OP_EXP2:            # y = 2^x
            adjoints[a] += g * y * cm.M_LN2
        elif op == OP_EXPM1:           # y = exp(x) - 1
            adjoints[a] += g * (y + 1.0)
        elif op == OP_LOG:             # y = log(x)
            adjoints[a] += g / values[a]
        elif op == OP_LOG2:
            adjoints[a] += g / (values[a] * cm.M_LN2)
        elif op == OP_LOG10:
            adjoints[a] += g / (values[a] * cm.M_LN10)
        elif op == OP_LOG1P:           # y = log(1 + x)
            adjoints[a] += g / (1.0 + values[a])
        elif op == OP_SIN:
            adjoints[a] += g * cm.cos(values[a])
        elif op == OP_COS:
            adjoints[a] -= g * cm.sin(values[a])
        elif op == OP_TAN:             # 1 + tan^2
            adjoints[a] += g * (1.0 + y * y)
        elif op == OP_ARCSIN:          # 1 / sqrt(1 - x^2)
            x = values[a]
            adjoints[a] += g / cm.sqrt(1.0 - x * x)
        elif op == OP_ARCCOS:
            x = values[a]
            adjoints[a] -= g / cm.sqrt(1.0 - x * x)
        elif op == OP_ARCTAN:          # 1 / (1 + x^2)
            x = values[a]
            adjoints[a] += g / (1.0 + x * x)
        elif op == OP_SINH:
            adjoints[a] += g * cm.cosh(values[a])
        elif op == OP_COSH:
            adjoints[a] += g * cm.sinh(values[a])
        elif op == OP_TANH:            # 1 - tanh^2
            adjoints[a] += g * (1.0 - y * y)
        elif op == OP_ARCSINH:         # 1 / sqrt(x^2 + 1)
            x = values[a]
            adjoints[a] += g / cm.sqrt(x * x + 1.0)
        elif op == OP_ARCCOSH:         # 1 / sqrt(x^2 - 1)
            x = values[a]
            adjoints[a] += g / cm.sqrt(x * x - 1.0)
        elif op == OP_ARCTANH:         # 1 / (1 - x^2)
            x = values[a]
            adjoints[a] += g / (1.0 - x * x)
        elif op == OP_ABS:             # sign(x); 0 at x = 0 (autograd's convention)
            adjoints[a] += g * sign_c(values[a])
        elif op == OP_SIGN:            # zero almost everywhere
            pass
        elif op == OP_ERF:             # 2/sqrt(pi) exp(-x^2)
            x = values[a]
            adjoints[a] += g * M_2_SQRTPI * cm.exp(-x * x)
        elif op == OP_SIGMOID:         # y (1 - y)
            adjoints[a] += g * y * (1.0 - y)
        # -- binary functions ----------------------------------------------------------
        elif op == OP_ARCTAN2:         # y = atan2(a, b): (b, -a) / (a^2 + b^2)
            x = values[a]
            d = values[b]
            d = g / (x * x + d * d)
            adjoints[a] += d * values[b]
            adjoints[b] -= d * x
        elif op == OP_HYPOT:           # (a, b) / y; nan at the origin, as autograd
            adjoints[a] += g * values[a] / y
            adjoints[b] += g * values[b] / y
        elif op == OP_MAXIMUM or op == OP_MINIMUM:
            select_adjoint(values[a], values[b], y, g, adjoints, a, b)
        elif op == OP_LOGADDEXP:       # softmax weights exp(a - y), exp(b - y)
            adjoints[a] += g * cm.exp(values[a] - y)
            adjoints[b] += g * cm.exp(values[b] - y)


cdef double M_2_SQRTPI = 1.1283791670955126   # 2 / sqrt(pi)


cdef inline double pow_dbase(double x, double p) noexcept nogil:
    # d(x^p)/dx = p x^(p-1). At p == 0 it is 0 for every x (autograd writes
    # x^where(p, p-1, 1) so that 0^-1 never appears).
    if p == 0.0:
        return 0.0
    return p * cm.pow(x, p - 1.0)


cdef inline double pow_dexponent(double x, double y) noexcept nogil:
    # d(x^p)/dp = log(x) x^p = log(x) y; at x == 0 it is 0 (log(0) * 0 would be nan;
    # autograd replaces x == 0 by 1 inside the log)
    if x == 0.0:
        return 0.0
    return cm.log(x) * y


cdef inline void select_adjoint(double a_value, double b_value, double y, double g,
                                double* adjoints, Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    # maximum/minimum: the adjoint goes to the operand equal to the result; on a tie
    # it is split evenly (autograd's balanced_eq); a nan operand gets a nan adjoint.
    cdef bint to_a = a_value == y
    cdef bint to_b = b_value == y
    if to_a and to_b:
        adjoints[a] += 0.5 * g
        adjoints[b] += 0.5 * g
    elif to_a:
        adjoints[a] += g
    elif to_b:
        adjoints[b] += g
    else:
        adjoints[a] += cm.NAN
        adjoints[b] += cm.NAN


# -- which tape records: thread-local state --------------------------------------------
#
# Each thread has a stack of active tapes (grad() calls and `with Tape()` blocks; the
# innermost records new Variables) and a default tape for Variables created outside
# any of them. The default tape is replaced by a fresh one once backward() has been
# called on it, so PyTorch-style rounds (new Variables, backward, read .grad) never
# grow one tape without bound; old tapes are freed with their last Variable.
# grad() takes its tapes from a small per-thread pool and resets them after use.

cdef object _state = threading.local()
cdef Py_ssize_t POOL_SIZE = 4


cdef inline object thread_state():
    try:
        return _state.active
    except AttributeError:
        _state.active = []
        _state.pool = []
        _state.default = None
        return _state.active


cpdef Tape current_tape():
    """The tape new Variables are recorded on in this thread."""
    cdef list active = thread_state()
    cdef Tape t
    if active:
        return active[-1]
    t = _state.default
    if t is None or t.swept_epoch == t.epoch:
        t = Tape()
        _state.default = t
    return t


cpdef push_active(Tape tape):
    (<list>thread_state()).append(tape)


cpdef pop_active(Tape tape):
    cdef list active = thread_state()
    if not active or active[-1] is not tape:
        raise RuntimeError("fasttape: tapes were entered and exited out of order")
    active.pop()


cpdef Tape acquire_tape():
    """A clean tape from this thread's pool, made the active tape."""
    cdef list active = thread_state()
    cdef list pool = _state.pool
    cdef Tape t = pool.pop() if pool else Tape()
    active.append(t)
    return t


cpdef release_tape(Tape tape):
    """Deactivate a tape from acquire_tape(), reset it and return it to the pool."""
    cdef list active = _state.active
    cdef list pool = _state.pool
    if active and active[-1] is tape:
        active.pop()
    else:
        active.remove(tape)
    tape.reset()
    if len(pool) < POOL_SIZE:
        pool.append(tape)
