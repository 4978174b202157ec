# The tape: storage, growth, reset and the reverse sweep. Knows nothing about
# Variables or the Python-level API; the field layout is documented in _tape.pxd.

cimport cython
from cpython.mem cimport (PyMem_Free, PyMem_Malloc, PyMem_RawFree, PyMem_RawMalloc,
                          PyMem_Realloc)
from libc cimport math as cm
from libc.stdint cimport INT32_MAX, int32_t, int64_t, int8_t, uint8_t
from libc.string cimport memcpy, memset
from cpython.float cimport PyFloat_AS_DOUBLE, PyFloat_Check

import threading

import numpy as np
cimport numpy as cnp
from cpython.pyport cimport PY_SSIZE_T_MAX

cnp.import_array()

cdef double EMPTY_DATA = 0.0


from fasttape._opmath cimport (binary_partials, binary_second, compiled_op_codes,
                               eval_binary, eval_unary, replay_step, reverse_step,
                               second_order_step, tangent_step, unary_partial,
                               unary_reverse, unary_second)
from fasttape._opmath_helpers cimport curvature, put, sigmoid, times
from scipy.linalg.cython_blas cimport dgemm, dgemv

from fasttape import _optable

# One row per op code, in code order: (name, code, arity), arity counting Variable
# operands (constants excluded); from the op table, fasttape/_optable.py.
OP_TABLE = tuple((name, code, _optable.op_arity(op, variant))
                 for code, (name, op, variant) in enumerate(_optable.expanded()))
# the codes as the compiled C enum has them (tests compare the two)
COMPILED_OP_CODES = compiled_op_codes()

# The array ops, in enum order (see _tape.pxd): (name, code)
ARRAY_OP_TABLE = (
    ("LEAF", AOP_LEAF), ("UNARY", AOP_UNARY), ("BINARY", AOP_BINARY),
    ("SUM", AOP_SUM), ("WEIGHTED_SUM", AOP_WEIGHTED_SUM), ("CUMSUM", AOP_CUMSUM),
    ("MATMUL", AOP_MATMUL), ("RESHAPE", AOP_RESHAPE), ("GATHER", AOP_GATHER), ("STRIDED", AOP_STRIDED),
    ("CONCAT", AOP_CONCAT), ("WHERE", AOP_WHERE), ("PYFUNC", AOP_PYFUNC),
    ("SCATTER", AOP_SCATTER), ("MASK", AOP_MASK),
)
N_ARRAY_OP_CODES = N_AOPS
# sop codes of mask nodes (AOP_MASK)
MASK_OPS = {"lt": CMP_LT, "le": CMP_LE, "gt": CMP_GT, "ge": CMP_GE, "eq": CMP_EQ,
            "ne": CMP_NE, "and": MASK_AND, "or": MASK_OR, "xor": MASK_XOR, "not": MASK_NOT}
N_OP_CODES = N_OPS

# The C arity table, in enum order, used by dump() and checked against OP_TABLE.
cdef int8_t OP_ARITY[N_OPS]
cdef list OP_NAMES = [None] * N_OPS
for _name, _code, _arity in OP_TABLE:
    OP_ARITY[_code] = _arity
    OP_NAMES[_code] = _name

# which operand of the *_VC / *_CV variants is a constant: 0 none, 1 first, 2 second
cdef uint8_t CONST_OPERAND[N_OPS]
for _code, (_name, _op, _variant) in enumerate(_optable.expanded()):
    CONST_OPERAND[_code] = {"CV": 1, "VC": 2}.get(_variant, 0)

COMPARISON_NAMES = ("<", "<=", ">", ">=", "==", "!=")


cdef int op_arity_c(opcode_t op) noexcept:
    return OP_ARITY[op]


cdef int const_operand_c(opcode_t op) noexcept:
    return CONST_OPERAND[op]


def op_formulas(int code, double a, double b=0.0):
    """(y, first partials, second partials) of a unary op at a, or of an op of two
    variables at (a, b), by the C formulas of _opmath (the tests check the recorded
    Python rules and the table against these)."""
    cdef double y, da, db, daa, dab, dbb
    kind, variant = None, None
    if 0 <= code < N_OPS:
        _, op, variant = _optable.expanded()[code]
        kind = op.kind
    if kind == "unary":
        y = eval_unary(code, a)
        return y, (unary_partial(code, a, y),), (unary_second(code, a, y),)
    if kind == "binary" or kind == "arithmetic" and variant == "VV":
        y = eval_binary(code, a, b)
        binary_partials(code, a, b, y, &da, &db)
        binary_second(code, a, b, y, &daa, &dab, &dbb)
        return y, (da, db), (daa, dab, dbb)
    raise ValueError(f"op code {code} is not a unary op or an op of two variables")


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


cdef int ensure_doubles(double** buf, Py_ssize_t* capacity,
                        Py_ssize_t needed) except -1:
    """Grow a sweep buffer of doubles (and its recorded capacity) to `needed`."""
    if capacity[0] < needed:
        buf[0] = <double*>grow_buffer(buf[0], needed, sizeof(double))
        capacity[0] = needed
    return 0


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


# Pickling (Tape.__reduce__) is fasttape._tape_state's: one schema, its writer and its
# reader (which records Python-rule nodes again, with Variables, so it sits above this
# module); fasttape._wiring hands its writer in here.
cdef object TAPE_PICKLER = None


def register_tape_pickler(pickler):
    """pickler(tape) -> (loader, arguments), what Tape.__reduce__ returns."""
    global TAPE_PICKLER
    TAPE_PICKLER = pickler


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
        memset(self.constant_cache_index, 0xff, sizeof(self.constant_cache_index))
        self.keepalive = []
        self.guard_locations = []
        self.array_guards = []
        self.pyfunc_recipes = {}

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
        PyMem_Free(self.extras)
        PyMem_Free(self.anodes)
        PyMem_Free(self.operands)
        PyMem_Free(self.geometry)
        PyMem_Free(self.array_adjoints)
        PyMem_Free(self.array_adjoint_live)
        PyMem_Free(self.tangents)
        PyMem_Free(self.array_tangents)
        PyMem_Free(self.adjoint_tangents)
        PyMem_Free(self.array_adjoint_tangents)

    # -- growth (called from the inline push_* helpers in _tape.pxd) -------------

    cdef int check_not_sweeping(self) except -1:
        """Recording while a C sweep holds pointers into the buffers would move them."""
        if self.sweeping:
            raise RuntimeError(
                "fasttape: a derivative rule tried to record on the tape that is being "
                "swept (a custom rule that computes with Variables it closed over?)")
        return 0

    cdef int grow_nodes(self) except -1:
        self.check_not_sweeping()
        cdef Py_ssize_t cap = next_capacity(self.node_capacity, self.n_nodes + 1,
                                            self.max_size, "nodes")
        self.ops = <opcode_t*>grow_buffer(self.ops, cap, sizeof(opcode_t))
        self.arg0s = <index_t*>grow_buffer(self.arg0s, cap, sizeof(index_t))
        self.arg1s = <index_t*>grow_buffer(self.arg1s, cap, sizeof(index_t))
        self.node_capacity = cap
        return 0

    cdef int grow_slots(self, Py_ssize_t needed) except -1:
        self.check_not_sweeping()
        cdef Py_ssize_t cap = next_capacity(self.slot_capacity, self.n_slots + needed,
                                            self.max_size, "value slots")
        self.values = <double*>grow_buffer(self.values, cap, sizeof(double))
        self.slot_capacity = cap
        return 0

    cdef int grow_constants(self) except -1:
        self.check_not_sweeping()
        cdef Py_ssize_t cap = next_capacity(self.constant_capacity,
                                            self.n_constants + 1, INT32_MAX,
                                            "constants")
        self.constants = <double*>grow_buffer(self.constants, cap, sizeof(double))
        self.constant_capacity = cap
        return 0

    cdef int grow_extras(self) except -1:
        self.check_not_sweeping()
        cdef Py_ssize_t cap = next_capacity(self.extra_capacity, self.n_extras + 2,
                                            INT32_MAX, "extra operands")
        self.extras = <index_t*>grow_buffer(self.extras, cap, sizeof(index_t))
        self.extra_capacity = cap
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

    # -- array nodes ------------------------------------------------------------------

    cdef Py_ssize_t push_anode(self, uint8_t aop, uint8_t sop, Py_ssize_t size,
                               Py_ssize_t n_operands, object value) except -1:
        """Append an array node and the tape node that refers to it.

        `value` is the output: a C-contiguous float64 array of `size` values (kept
        alive until reset), or a Python float, which makes the output the scalar slot
        written by the tape node. Operands are zeroed for the caller to fill. Returns
        the array node's index.
        """
        cdef Py_ssize_t r = self.n_anodes, k
        cdef ArrayNode* n
        cdef bint scalar_output = type(value) is float
        cdef double* data = NULL
        self.check_not_sweeping()
        if not scalar_output:
            data = <double*>self.keep(value)
        self.reserve_anode(n_operands)
        push_node(self, OP_ARRAY, <index_t>r, 0, value if scalar_output else 0.0)
        n = &self.anodes[r]
        memset(n, 0, sizeof(ArrayNode))
        n.aop = aop
        n.sop = sop
        n.size = size
        n.value = data
        n.operand0 = self.n_operands
        n.n_operands = n_operands
        n.geom = -1
        n.pyfunc_jvp = -1
        n.pyfunc_eval = -1
        n.node = self.n_nodes - 1
        n.value_ref = -1 if scalar_output else len(self.keepalive) - 1
        n.weights_ref = -1
        n.index_ref = -1
        if scalar_output:
            n.adj = -1
            n.out_slot = self.n_slots - 1
        else:
            n.adj = self.n_array_values
            n.out_slot = -1
            self.n_array_values += size
        memset(&self.operands[self.n_operands], 0, n_operands * sizeof(Operand))
        for k in range(self.n_operands, self.n_operands + n_operands):
            self.operands[k].data_ref = -1
            self.operands[k].index_ref = -1
        self.n_operands += n_operands
        self.n_anodes = r + 1
        return r

    cdef int reserve_anode(self, Py_ssize_t n_operands) except -1:
        """Room for one more array node and n_operands more operands."""
        cdef Py_ssize_t cap
        if self.n_anodes >= self.anode_capacity:
            cap = next_capacity(self.anode_capacity, self.n_anodes + 1, INT32_MAX,
                                "array nodes")
            self.anodes = <ArrayNode*>grow_buffer(self.anodes, cap, sizeof(ArrayNode))
            self.anode_capacity = cap
        if self.n_operands + n_operands > self.operand_capacity:
            cap = next_capacity(self.operand_capacity, self.n_operands + n_operands,
                                PY_SSIZE_T_MAX, "array operands")
            self.operands = <Operand*>grow_buffer(self.operands, cap, sizeof(Operand))
            self.operand_capacity = cap
        return 0

    cdef Operand* operand(self, Py_ssize_t anode, Py_ssize_t j) noexcept:
        return &self.operands[self.anodes[anode].operand0 + j]

    cdef Py_ssize_t push_geometry(self, object values) except -1:
        """Append a run of int64 values to the geometry pool; returns its offset."""
        cdef Py_ssize_t start = self.n_geometry, n = len(values), cap, k
        if start + n > self.geometry_capacity:
            cap = next_capacity(self.geometry_capacity, start + n, PY_SSIZE_T_MAX,
                                "geometry entries")
            self.geometry = <int64_t*>grow_buffer(self.geometry, cap, sizeof(int64_t))
            self.geometry_capacity = cap
        for k in range(n):
            self.geometry[start + k] = values[k]
        self.n_geometry = start + n
        return start

    cdef void* keep(self, object array) except NULL:
        """Keep a C-contiguous NumPy array alive until reset; returns its data pointer
        (a pointer to one dummy byte for empty arrays)."""
        cdef cnp.ndarray arr = <cnp.ndarray?>array
        if not cnp.PyArray_IS_C_CONTIGUOUS(arr):
            raise ValueError("fasttape internal error: kept array is not contiguous")
        self.keepalive.append(arr)
        if arr.size == 0:
            return <void*>&EMPTY_DATA
        return cnp.PyArray_DATA(arr)

    @property
    def n_array_nodes(self):
        """Number of array operations recorded since the last reset."""
        return self.n_anodes

    # -- lifecycle ----------------------------------------------------------------

    cpdef reset(self):
        """Forget every node, keeping the memory for the next recording.

        Variables recorded before the reset become invalid: using them raises
        ``StaleVariableError``.
        """
        self.n_nodes = 0
        self.n_slots = 0
        self.n_constants = 0
        memset(self.constant_cache_index, 0xff, sizeof(self.constant_cache_index))
        self.n_guards = 0
        self.n_extras = 0
        self.n_anodes = 0
        self.n_operands = 0
        self.n_geometry = 0
        self.n_array_values = 0
        self.array_guards = []
        self.pyfunc_recipes = {}
        self.keepalive = []
        self.guard_locations = []
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
        (and the array adjoints) hold d(seed * output)/d(value).
        """
        self.prepare_sweep()
        self.adjoints[slot] = seed
        return self.sweep_c(node, slot + 1)

    cdef int reverse_array_c(self, Py_ssize_t node, Py_ssize_t anode,
                             object seed) except -1:
        """Sweep from array node `anode` (tape node `node`) with output adjoint `seed`
        (an array of its size)."""
        cdef const double[::1] s = np.ascontiguousarray(seed, dtype=np.float64).reshape(-1)
        cdef ArrayNode* n = &self.anodes[anode]
        cdef Py_ssize_t k
        if s.shape[0] != n.size:
            raise ValueError(f"seed has {s.shape[0]} values for an output of {n.size}")
        self.prepare_sweep()
        live_adjoints(self, anode)
        for k in range(n.size):
            self.array_adjoints[n.adj + k] = s[k]
        return self.sweep_c(node, self.n_slots)

    def seed_and_sweep(self, list slots, list anodes, list seeds):
        """Reverse sweep from several outputs at once: scalar slots (anode -1) or array
        nodes, each seeded with its cotangent (a float, or values of its size)."""
        cdef Py_ssize_t j, k, last = -1, node
        cdef ArrayNode* n
        cdef const double[::1] v
        self.prepare_sweep()
        for j in range(len(slots)):
            if anodes[j] < 0:
                node = slots[j]
                self.adjoints[node] += seeds[j]
            else:
                n = &self.anodes[<Py_ssize_t>anodes[j]]
                node = slots[j]
                v = np.ascontiguousarray(seeds[j], dtype=np.float64).reshape(-1)
                if v.shape[0] != n.size:
                    raise ValueError(f"cotangent of {v.shape[0]} values for an output "
                                     f"of {n.size}")
                live_adjoints(self, <Py_ssize_t>anodes[j])
                for k in range(n.size):
                    self.array_adjoints[n.adj + k] += v[k]
            if node > last:
                last = node
        if last >= 0:
            self.sweep_c(last, last + 1)

    def scalar_adjoint(self, Py_ssize_t slot):
        return self.adjoints[slot]

    def node(self, Py_ssize_t i):
        """(op code, arg0, arg1) of node i."""
        if not 0 <= i < self.n_nodes:
            raise IndexError(f"no node {i} on a tape of {self.n_nodes}")
        return self.ops[i], self.arg0s[i], self.arg1s[i]

    def constant(self, Py_ssize_t k):
        return self.constants[k]

    def select_operands(self, Py_ssize_t i):
        """(condition slot, slot taken when it is > 0, slot taken otherwise) of an
        OP_SELECT node i."""
        cdef index_t b = self.arg1s[i]
        return self.arg0s[i], self.extras[b], self.extras[b + 1]

    def selected(self, Py_ssize_t i):
        """The slot an OP_SELECT node i takes its value from, at the current values."""
        cdef index_t b = self.arg1s[i]
        return self.extras[b if self.values[self.arg0s[i]] > 0.0 else b + 1]

    def array_node(self, Py_ssize_t r):
        """Everything about array node r, as a dict (for the recording sweeps)."""
        cdef ArrayNode* n
        cdef Operand* o
        if not 0 <= r < self.n_anodes:
            raise IndexError(f"no array node {r} on this tape")
        n = &self.anodes[r]
        cdef Py_ssize_t j, glen = 0
        operands = []
        for j in range(n.n_operands):
            o = &self.operands[n.operand0 + j]
            operands.append({
                "kind": o.kind, "ref": o.ref, "size": o.size,
                "node": self.anodes[o.ref].node if o.kind == OPERAND_ARRAY else o.ref,
                "data": (self.keepalive[o.data_ref] if o.data_ref >= 0 else
                         self.constants[o.ref] if o.kind == OPERAND_POOLED else None),
                "index": self.keepalive[o.index_ref] if o.index_ref >= 0 else None})
        if n.geom >= 0:
            ndim = self.geometry[n.geom]
            glen = {AOP_BINARY: 1 + 3 * ndim, AOP_MASK: 1 + 3 * ndim, AOP_SUM: 1 + 2 * ndim,
                    AOP_WEIGHTED_SUM: 1 + 2 * ndim, AOP_CUMSUM: 3, AOP_MATMUL: 6,
                    AOP_STRIDED: 2 + 2 * ndim}.get(n.aop, 0)
        return {
            "aop": n.aop, "sop": n.sop, "size": n.size, "out_slot": n.out_slot,
            "node": n.node, "c": n.c, "operands": operands,
            "value": self.keepalive[n.value_ref] if n.value_ref >= 0 else None,
            "weights": self.keepalive[n.weights_ref] if n.weights_ref >= 0 else None,
            # the array node whose values are the weights (a WHERE's recorded mask;
            # looked for on tapes recorded for replay, the only ones with such masks)
            "weights_node": self._node_with_value(n.weights_ref) if n.aop == AOP_WHERE
            and n.weights_ref >= 0 and self.replayable else -1,
            "index": self.keepalive[n.index_ref] if n.index_ref >= 0 else None,
            "geometry": [self.geometry[n.geom + k] for k in range(glen)],
            "pyfunc": self.keepalive[n.pyfunc] if n.aop == AOP_PYFUNC else None,
            "pyfunc_jvp": self.keepalive[n.pyfunc_jvp] if n.pyfunc_jvp >= 0 else None,
        }

    def forward_sweep(self):
        """Run the tangent sweep (after prepare and seeding via seed_tangent)."""
        self.tangent_sweep()

    def clear_tangents(self):
        self.prepare_tangents()

    cdef int prepare_sweep(self) except -1:
        """Adjoint buffers sized for the tape and zeroed: every slot, also those after
        the output, whose adjoints (zero) are read for inputs recorded after it."""
        ensure_doubles(&self.adjoints, &self.adjoint_capacity, self.slot_capacity)
        ensure_doubles(&self.array_adjoints, &self.array_adjoint_capacity,
                       self.n_array_values)
        memset(self.adjoints, 0, <size_t>self.n_slots * sizeof(double))
        # array adjoint blocks are zeroed lazily, when the sweep first reaches them
        if self.array_adjoint_live_capacity < self.n_anodes:
            self.array_adjoint_live = <uint8_t*>grow_buffer(
                self.array_adjoint_live, self.n_anodes, sizeof(uint8_t))
            self.array_adjoint_live_capacity = self.n_anodes
        if self.n_anodes:
            memset(self.array_adjoint_live, 0, <size_t>self.n_anodes)
        return 0

    cdef int prepare_adjoint_tangents(self) except -1:
        """Forward over reverse: buffers for the tangents of the adjoints (slots and
        array values), as large as the adjoints' (the array steps swap the two) and
        zeroed."""
        ensure_doubles(&self.adjoint_tangents, &self.adjoint_tangent_capacity,
                       self.adjoint_capacity)
        ensure_doubles(&self.array_adjoint_tangents, &self.array_adjoint_tangent_capacity,
                       self.array_adjoint_capacity)
        memset(self.adjoint_tangents, 0, <size_t>self.n_slots * sizeof(double))
        if self.n_array_values:
            memset(self.array_adjoint_tangents, 0,
                   <size_t>self.n_array_values * sizeof(double))
        return 0

    cdef int sweep_c(self, Py_ssize_t node, Py_ssize_t slot_end) except -1:
        """Run the reverse sweep from `node` (whose slot ends at slot_end) to 0."""
        cdef int status
        self.sweeping = True
        # Releasing the GIL costs ~0.1 us: only worth it for tapes that take longer.
        try:
            if node > 2048 or self.n_array_values > 2048:
                with nogil:
                    status = reverse_sweep_c(self, 0, node + 1, slot_end)
            else:
                status = reverse_sweep_c(self, 0, node + 1, slot_end)
        finally:
            self.sweeping = False
        self.swept_epoch = self.epoch
        self.swept_slot_end = slot_end       # .grad of later Variables is None
        if status < 0:
            error, self.sweep_error = self.sweep_error, None
            raise error
        return 0

    # -- forward mode ---------------------------------------------------------------

    cdef int prepare_tangents(self) except -1:
        """Tangent buffers sized for the tape and zeroed (then seed the leaves)."""
        ensure_doubles(&self.tangents, &self.tangent_capacity, self.slot_capacity)
        ensure_doubles(&self.array_tangents, &self.array_tangent_capacity,
                       self.n_array_values)
        memset(self.tangents, 0, <size_t>self.n_slots * sizeof(double))
        if self.n_array_values:
            memset(self.array_tangents, 0, <size_t>self.n_array_values * sizeof(double))
        return 0

    cdef int tangent_sweep(self) except -1:
        """Propagate the seeded leaf tangents forward through every node."""
        cdef int status
        self.sweeping = True
        try:
            if self.n_nodes > 2048 or self.n_array_values > 2048:
                with nogil:
                    status = tangent_sweep_c(self, 0, self.n_nodes)
            else:
                status = tangent_sweep_c(self, 0, self.n_nodes)
        finally:
            self.sweeping = False
        if status < 0:
            error, self.sweep_error = self.sweep_error, None
            raise error
        return 0

    def seed_tangent(self, Py_ssize_t slot, Py_ssize_t anode, value):
        """Set the tangent of a scalar leaf (anode < 0) or of array leaf `anode`."""
        cdef const double[::1] v
        cdef ArrayNode* n
        cdef Py_ssize_t k
        if anode < 0:
            self.tangents[slot] = value
            return
        n = &self.anodes[anode]
        v = np.ascontiguousarray(value, dtype=np.float64).reshape(-1)
        if v.shape[0] != n.size:
            raise ValueError(f"tangent of {v.shape[0]} values for an input of {n.size}")
        for k in range(n.size):
            self.array_tangents[n.adj + k] = v[k]

    def tangent_of(self, Py_ssize_t slot, Py_ssize_t anode):
        """The tangent of a scalar slot (anode < 0) or of array node `anode` (flat)."""
        cdef ArrayNode* n
        if anode < 0:
            return self.tangents[slot]
        n = &self.anodes[anode]
        return _copy_f64(&self.array_tangents[n.adj], n.size)

    def hessian_vector_c(self, Py_ssize_t node, list leaf_slots, direction):
        """Forward over reverse in C, recording nothing: seed the leaves' tangents with
        `direction`, sweep forward, then sweep in reverse carrying each adjoint and its
        tangent; returns (gradient, Hessian times direction) at the leaves. Scalar tapes
        only (returns None when the tape holds array nodes)."""
        cdef Py_ssize_t k, n = len(leaf_slots)
        if self.n_anodes:
            return None
        self.prepare_tangents()
        for k in range(n):
            self.tangents[<Py_ssize_t>leaf_slots[k]] = direction[k]
        self.tangent_sweep()
        self.prepare_sweep()
        self.prepare_adjoint_tangents()
        self.adjoints[node] = 1.0
        if node > 2048:
            with nogil:
                second_order_sweep_c(self, node)     # (no array nodes: cannot fail)
        else:
            second_order_sweep_c(self, node)
        self.swept_epoch = self.epoch
        self.swept_slot_end = node + 1
        return ([self.adjoints[<Py_ssize_t>s] for s in leaf_slots],
                [self.adjoint_tangents[<Py_ssize_t>s] for s in leaf_slots])

    def _node_with_value(self, Py_ssize_t ref):
        """The array node whose output is keepalive[ref], or -1."""
        cdef Py_ssize_t r
        for r in range(self.n_anodes):
            if self.anodes[r].value_ref == ref:
                return r
        return -1

    def check_leaves_and_output(self, list leaves, Py_ssize_t output,
                                Py_ssize_t output_anode):
        """Raise ValueError unless leaves are (is_array, index) of this tape's leaves
        and the output a slot (output_anode -1) or an array node of one value."""
        for is_array, index in leaves:
            if is_array:
                if not (0 <= index < self.n_anodes and
                        self.anodes[<Py_ssize_t>index].aop == AOP_LEAF):
                    raise ValueError(f"array node {index} is not an input of this tape")
            elif not (0 <= index < self.n_slots and self.ops[<Py_ssize_t>index] == OP_LEAF):
                raise ValueError(f"slot {index} is not an input of this tape")
        if output_anode >= 0:
            if not (output_anode < self.n_anodes and self.anodes[output_anode].size == 1
                    and self.anodes[output_anode].out_slot < 0):
                raise ValueError("the output must be an array node of one value")
        elif not 0 <= output < self.n_slots:
            raise ValueError(f"slot {output} is not on this tape")
        return 0

    def has_python_rules(self):
        """True if a node's rules are Python functions (AOP_PYFUNC)."""
        cdef Py_ssize_t r
        for r in range(self.n_anodes):
            if self.anodes[r].aop == AOP_PYFUNC:
                return True
        return False

    def hessian_vector_arrays(self, Py_ssize_t output, list leaves, direction,
                              Py_ssize_t output_anode=-1):
        """hessian_vector_c for tapes with array nodes, from scalar slot `output` (or
        from array node output_anode, of one value). leaves: (is_array, index) per
        leaf, index a slot or an array node; direction: their values' tangents, flat,
        in order. Returns (gradient, Hessian times direction), flat, in the same order.
        NotImplementedError for Python-rule nodes (no second derivatives in C)."""
        cdef Py_ssize_t r, k, at = 0, size
        cdef int status
        cdef ArrayNode* n
        cdef const double[::1] d = np.ascontiguousarray(direction, dtype=np.float64)
        self.check_leaves_and_output(leaves, output, output_anode)
        for r in range(self.n_anodes):
            if self.anodes[r].aop == AOP_PYFUNC:
                raise NotImplementedError(
                    f"Hessian-vector products of traced code with an operation whose "
                    f"rules are Python ("
                    f"{getattr(self.keepalive[self.anodes[r].pyfunc], '__name__', '?')})"
                    f" are not computed in C; use fasttape.hvp")
        self.prepare_tangents()
        for is_array, index in leaves:
            size = self.anodes[index].size if is_array else 1
            if at + size > d.shape[0]:
                raise ValueError("the direction has fewer values than the leaves")
            if is_array and size:
                memcpy(&self.array_tangents[self.anodes[index].adj], &d[at],
                       <size_t>size * sizeof(double))
            elif not is_array:
                self.tangents[<Py_ssize_t>index] = d[at]
            at += size
        if at != d.shape[0]:
            raise ValueError("the direction has more values than the leaves")
        self.tangent_sweep()
        self.prepare_sweep()
        if self.n_array_values:        # every block live and zeroed: both passes add
            memset(self.array_adjoints, 0, <size_t>self.n_array_values * sizeof(double))
        if self.n_anodes:
            memset(self.array_adjoint_live, 1, <size_t>self.n_anodes)
        self.prepare_adjoint_tangents()
        if output_anode >= 0:          # (checked by check_leaves_and_output)
            self.array_adjoints[self.anodes[output_anode].adj] = 1.0
            output = self.anodes[output_anode].node
        else:
            self.adjoints[output] = 1.0
        self.sweeping = True
        try:
            if output > 2048 or self.n_array_values > 2048:
                with nogil:
                    status = second_order_sweep_c(self, output)
            else:
                status = second_order_sweep_c(self, output)
        finally:
            self.sweeping = False
        self.swept_epoch = self.epoch
        self.swept_slot_end = output + 1
        if status < 0:
            error, self.sweep_error = self.sweep_error, None
            raise error
        gradient, product = [], []
        for is_array, index in leaves:
            if is_array:
                n = &self.anodes[<Py_ssize_t>index]
                gradient.append(_copy_f64(&self.array_adjoints[n.adj], n.size))
                product.append(_copy_f64(&self.array_adjoint_tangents[n.adj], n.size))
            else:
                gradient.append(np.array([self.adjoints[<Py_ssize_t>index]]))
                product.append(np.array([self.adjoint_tangents[<Py_ssize_t>index]]))
        return np.concatenate(gradient), np.concatenate(product)

    def replay_array_gradients(self, Py_ssize_t output_node, Py_ssize_t output_anode,
                               list leaves, inputs, gradients):
        """Replay this tape (which has array nodes) at each row of `inputs` and sweep it
        in reverse from its one-value output, writing the gradient of the leaves (a
        row of `gradients`, the leaves' values flat in order) — all rows in C, without
        the GIL (nodes with Python rules take it for their step). leaves: (is_array,
        index) as for hessian_vector_arrays; output_anode: the output's array node, or
        -1 when the output is scalar slot output_node. The recorded comparisons (and
        masks read as booleans) are checked at each row: returns the number of rows
        done, which is less than all at a row whose branch changed."""
        cdef const double[:, ::1] x = np.ascontiguousarray(inputs, dtype=np.float64)
        cdef double[:, ::1] out = gradients
        cdef Py_ssize_t n_leaves = len(leaves), n_guards = len(self.array_guards)
        self.check_leaves_and_output(leaves, output_node if output_anode < 0 else 0,
                                     output_anode)
        if output_anode >= 0 and self.anodes[output_anode].node != output_node:
            raise ValueError("the output node and array node disagree")
        cdef Py_ssize_t k, width = 0, done, slot_end
        cdef int64_t[::1] kinds = np.empty(n_leaves, dtype=np.int64)
        cdef int64_t[::1] refs = np.empty(n_leaves, dtype=np.int64)
        cdef int64_t[::1] mask_nodes = np.empty(n_guards, dtype=np.int64)
        kept = [np.ascontiguousarray(g[2], dtype=np.uint8).reshape(-1)
                for g in self.array_guards]
        cdef uint8_t** outcomes = <uint8_t**>PyMem_Malloc((n_guards + 1) * sizeof(uint8_t*))
        if outcomes == NULL:
            raise MemoryError()
        try:
            for k in range(n_leaves):
                kinds[k] = 1 if leaves[k][0] else 0
                refs[k] = leaves[k][1]
                width += self.anodes[refs[k]].size if kinds[k] else 1
            for k in range(n_guards):
                mask_nodes[k] = self.array_guards[k][0]
                outcomes[k] = <uint8_t*>cnp.PyArray_DATA(<cnp.ndarray>kept[k])
            if x.shape[1] != width or out.shape[1] != width or out.shape[0] < x.shape[0]:
                raise ValueError(f"rows of {width} values expected")
            self.prepare_sweep()           # buffers sized (the loop zeroes per row)
            slot_end = output_node + 1
            self.sweeping = True
            try:
                with nogil:
                    done = replay_array_rows_c(self, &x[0, 0] if x.shape[0] else NULL,
                                               x.shape[0], width, &kinds[0] if n_leaves
                                               else NULL, &refs[0] if n_leaves else NULL,
                                               n_leaves, output_node, output_anode,
                                               slot_end, &out[0, 0] if x.shape[0] else
                                               NULL, &mask_nodes[0] if n_guards else
                                               NULL, outcomes, n_guards)
            finally:
                self.sweeping = False
        finally:
            PyMem_Free(outcomes)
        self.swept_epoch = -1
        if done < 0:
            error, self.sweep_error = self.sweep_error, None
            raise error
        return done

    def replay_gradients(self, Py_ssize_t output, leaf_slots, inputs, Py_ssize_t n_threads=1):
        """Replay the (scalar) tape at each row of `inputs` (rows of len(leaf_slots)
        values) and sweep it in reverse from slot `output`, on `n_threads` threads
        that run without the GIL, each with its own value and adjoint buffers.

        Returns (outputs, gradients, changed) where changed is (row, guard index) of
        the first row whose recorded comparisons came out differently, or None.
        """
        cdef double[:, ::1] x = np.ascontiguousarray(inputs, dtype=np.float64)
        cdef Py_ssize_t n_rows = x.shape[0], n_leaves = len(leaf_slots)
        if self.n_anodes:
            raise NotImplementedError("these buffers replay scalar tapes only; array "
                                      "tapes replay in place (Tape.replay)")
        if x.shape[1] != n_leaves:
            raise ValueError(f"each input row needs {n_leaves} values, got {x.shape[1]}")
        gradients = np.empty((n_rows, n_leaves))
        outputs = np.empty(n_rows)
        slots = np.asarray(leaf_slots, dtype=np.intp)
        n_threads = max(1, min(n_threads, n_rows))
        if n_threads == 1:
            changed = self._replay_chunk(output, slots, x, 0, n_rows, gradients, outputs)
            return outputs, gradients, changed
        chunks = [n_rows * j // n_threads for j in range(n_threads + 1)]
        results = [None] * n_threads

        def work(int j):
            results[j] = self._replay_chunk(output, slots, x, chunks[j], chunks[j + 1],
                                            gradients, outputs)
        threads = [threading.Thread(target=work, args=(j,)) for j in range(n_threads)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        changed = None
        for j in range(n_threads):
            if results[j] is not None and (changed is None or results[j][0] < changed[0]):
                changed = results[j]
        return outputs, gradients, changed

    def replay_gradient_of_list(self, Py_ssize_t output, Py_ssize_t[::1] slots,
                                list values, Py_ssize_t first, Py_ssize_t count,
                                double[::1] scratch_values, double[::1] scratch_adjoints):
        """The fast path of a traced gradient for one point given as a flat list of
        floats: write them into this caller's scratch value buffer (which keeps the
        constants from its first use), replay, sweep, and return (output value, list of
        the adjoints of leaves first .. first + count), or (None, changed guard)."""
        cdef Py_ssize_t k, n = slots.shape[0], changed
        cdef double* v = &scratch_values[0]
        cdef double* adj = &scratch_adjoints[0]
        cdef object item
        if self.n_anodes:
            raise NotImplementedError("these buffers replay scalar tapes only; array "
                                      "tapes replay in place (Tape.replay)")
        if len(values) != n:
            raise ValueError(f"expected {n} numbers, got {len(values)}")
        for k in range(n):
            item = values[k]
            if PyFloat_Check(item):        # float, np.float64
                v[slots[k]] = PyFloat_AS_DOUBLE(item)
            else:
                v[slots[k]] = number_or_error(item, k)
        with nogil:
            forward_replay_c(self, v)
            changed = first_changed_guard_c(self, v)
            if changed < 0:
                # all slots: inputs recorded after the output read a zero adjoint
                memset(adj, 0, <size_t>self.n_slots * sizeof(double))
                adj[output] = 1.0
                reverse_sweep_into_c(self, v, adj, 0, output + 1, output + 1)
        if changed >= 0:
            return None, changed
        return v[output], [adj[slots[k]] for k in range(first, first + count)]

    def scratch_buffers(self):
        """(values, adjoints) arrays for replay_gradient_of_list: a copy of the tape's
        values (constants included) and room for the adjoints."""
        return _copy_f64(self.values, self.n_slots), np.empty(self.n_slots)

    def _replay_chunk(self, Py_ssize_t output, Py_ssize_t[::1] slots,
                      const double[:, ::1] x, Py_ssize_t begin, Py_ssize_t end,
                      double[:, ::1] gradients, double[::1] outputs):
        cdef Py_ssize_t n = end - begin, done, changed = -1
        if n <= 0:
            return None
        cdef double* values = <double*>PyMem_Malloc(self.n_slots * sizeof(double))
        cdef double* adjoints = <double*>PyMem_Malloc(self.n_slots * sizeof(double))
        if values == NULL or adjoints == NULL:
            PyMem_Free(values)
            PyMem_Free(adjoints)
            raise MemoryError()
        memcpy(values, self.values, self.n_slots * sizeof(double))
        try:
            with nogil:
                done = replay_gradients_c(self, values, adjoints, &x[begin, 0], n,
                                          &slots[0], slots.shape[0], output,
                                          &gradients[begin, 0], &outputs[begin],
                                          &changed)
        finally:
            PyMem_Free(values)
            PyMem_Free(adjoints)
        if done < n:
            return (begin + done, changed)
        return None

    def replay_support(self):
        """None if every node can be re-evaluated by a replay, else the reason."""
        cdef Py_ssize_t r
        cdef ArrayNode* n
        for r in range(self.n_anodes):
            n = &self.anodes[r]
            if n.aop == AOP_PYFUNC and n.pyfunc_eval < 0:
                return ("it uses an operation with Python rules and no value function "
                        f"({getattr(self.keepalive[n.pyfunc], '__name__', 'unnamed')})")
        return None

    def write_array_input(self, Py_ssize_t anode, values):
        """Overwrite array leaf `anode`'s values (for an in-place replay)."""
        cdef ArrayNode* n = &self.anodes[anode]
        cdef const double[::1] v = np.ascontiguousarray(values, dtype=np.float64).reshape(-1)
        if n.aop != AOP_LEAF:
            raise ValueError("not an array input")
        if v.shape[0] != n.size:
            raise ValueError(f"an input of {n.size} values got {v.shape[0]}")
        if n.size:
            memcpy(n.value, &v[0], <size_t>n.size * sizeof(double))

    def replay(self, leaf_slots, inputs):
        """Replay the tape in place with new scalar input values (array inputs are
        written before with write_array_input); returns the index of the first
        comparison whose outcome changed, or -1."""
        cdef Py_ssize_t k
        cdef int failed
        cdef const Py_ssize_t[::1] slots = np.ascontiguousarray(leaf_slots, dtype=np.intp)
        cdef const double[::1] x = np.ascontiguousarray(inputs, dtype=np.float64)
        if x.shape[0] != slots.shape[0]:
            raise ValueError(f"{slots.shape[0]} inputs expected, got {x.shape[0]}")
        for k in range(slots.shape[0]):
            self.values[slots[k]] = x[k]
        self.swept_epoch = -1
        if self.n_nodes > 2048 or self.n_array_values > 2048:
            with nogil:
                failed = forward_replay_c(self, self.values)
        else:
            failed = forward_replay_c(self, self.values)
        if failed:                     # a value function in Python raised
            error, self.sweep_error = self.sweep_error, None
            raise error
        return first_changed_guard_c(self, self.values)

    def value_at(self, Py_ssize_t slot):
        return self.values[slot]

    def array_adjoint(self, Py_ssize_t anode):
        """Copy of the adjoints of array node `anode` from the last sweep (flat)."""
        cdef ArrayNode* n = &self.anodes[anode]
        if self.swept_epoch != self.epoch or not self.array_adjoint_live[anode]:
            return np.zeros(n.size)           # not reached by the last sweep
        return _copy_f64(&self.array_adjoints[n.adj], n.size)

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
        """Bytes the tape's buffers hold now (allocated capacity, not just used), the
        NumPy arrays its array nodes keep alive included."""
        cdef Py_ssize_t total
        total = (self.node_capacity * (sizeof(opcode_t) + 2 * sizeof(index_t))
                 + (self.slot_capacity + self.adjoint_capacity + self.tangent_capacity
                    + self.adjoint_tangent_capacity + self.constant_capacity
                    + self.array_adjoint_tangent_capacity
                    + self.array_adjoint_capacity + self.array_tangent_capacity)
                 * sizeof(double)
                 + self.guard_capacity * (2 * sizeof(opcode_t) + 3 * sizeof(index_t))
                 + self.extra_capacity * sizeof(index_t)
                 + self.anode_capacity * sizeof(ArrayNode)
                 + self.operand_capacity * sizeof(Operand)
                 + self.geometry_capacity * sizeof(int64_t)
                 + self.array_adjoint_live_capacity)
        for kept in self.keepalive:
            if isinstance(kept, np.ndarray) and kept.base is None:   # owned, not views
                total += kept.nbytes
        return total

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
            "extras": _copy_i32(self.extras, self.n_extras),
        }

    def __reduce__(self):
        """A tape pickles as its arrays (fasttape._tape_state: the state's schema, its
        writer and its reader, which checks everything it loads)."""
        if TAPE_PICKLER is None:
            raise TypeError("fasttape: import fasttape before pickling a tape")
        return TAPE_PICKLER(self)

    def select(self, Py_ssize_t condition_slot, Py_ssize_t a_slot, Py_ssize_t b_slot,
               double value):
        """Record y = a if values[condition] > 0 else b; returns its node (= slot)."""
        cdef index_t k = push_extras(self, <index_t>a_slot, <index_t>b_slot)
        return push_node(self, OP_SELECT, <index_t>condition_slot, k, value)

    def last_guard(self):
        """(comparison code, left slot, right slot or constant index, right is a
        constant, outcome) of the most recent comparison, or None."""
        if self.n_guards == 0:
            return None
        k = self.n_guards - 1
        g = self.guard_ops[k]
        return (g & 7, self.guard_arg0s[k], self.guard_arg1s[k],
                bool(g & GUARD_CONST_RHS), bool(self.guard_outcomes[k]))

    def forget_last_guard(self):
        """Drop the most recent comparison (fasttape.where turned it into a select)."""
        if self.n_guards:
            self.n_guards -= 1
            if len(self.guard_locations) > self.n_guards:
                self.guard_locations.pop()

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
            if op == OP_ARRAY:
                lines.append(f"{i:6d}  v{slot:<6d} = {self._describe_array_node(self.arg0s[i])}")
                slot += 1
                continue
            if OP_ARITY[op] + (CONST_OPERAND[op] != 0) >= 1:
                operands.append(self._operand(op, 1, self.arg0s[i]))
            if op == OP_SELECT:
                operands.append(f"? v{self.extras[self.arg1s[i]]} : "
                                f"v{self.extras[self.arg1s[i] + 1]}")
            elif OP_ARITY[op] + (CONST_OPERAND[op] != 0) >= 2:
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

    def _describe_array_node(self, Py_ssize_t r):
        """One line for array node r: its op (and formula), operands, output."""
        cdef ArrayNode* n = &self.anodes[r]
        cdef Operand* o
        cdef Py_ssize_t j
        name = ARRAY_OP_TABLE[n.aop][0]
        if n.aop == AOP_UNARY or n.aop == AOP_BINARY:
            name += f"({OP_NAMES[n.sop]})"
        elif n.aop == AOP_MASK:
            name += f"({ {v: k for k, v in MASK_OPS.items()}[n.sop]})"
        elif n.aop == AOP_WEIGHTED_SUM:
            name += f"({ {WEIGHTED_MAX: 'max', WEIGHTED_MIN: 'min', WEIGHTED_PROD: 'prod'}[n.sop]})"
        elif n.aop == AOP_PYFUNC:
            name += f"({getattr(self.keepalive[n.pyfunc], '__name__', '?')})"
        operands = []
        for j in range(n.n_operands):
            o = &self.operands[n.operand0 + j]
            if o.kind == OPERAND_ARRAY:
                operands.append(f"v{self.anodes[o.ref].node}")
            elif o.kind == OPERAND_SCALAR:
                operands.append(f"v{o.ref}")
            elif o.kind == OPERAND_POOLED:
                operands.append(repr(self.constants[o.ref]))
            else:
                operands.append(f"const[{o.size}]")
        if n.out_slot >= 0:
            out = f"value={self.values[n.out_slot]!r}"
        else:
            out = f"array{tuple(self.keepalive[n.value_ref].shape)}"
        return f"{name:<11s} {' '.join(operands):<22s} {out}"

    def _operand(self, opcode_t op, int position, index_t ref):
        if CONST_OPERAND[op] == position:
            return repr(self.constants[ref])
        return f"v{ref}"

    def __repr__(self):
        return (f"<fasttape.Tape: {self.n_nodes} nodes, {self.n_slots} slots, "
                f"{self.n_guards} comparisons, epoch {self.epoch}>")


cdef double number_or_error(object item, Py_ssize_t k) except? -1:
    try:
        return float(item)
    except (TypeError, ValueError):
        raise ValueError(f"element {k} of the argument is a {type(item).__name__}, "
                         f"where a number was traced") from None


cdef object _copy_u8(uint8_t* p, Py_ssize_t n):
    return _copy(p, n, np.uint8)


cdef object _copy_i32(int32_t* p, Py_ssize_t n):
    return _copy(p, n, np.int32)


cdef object _copy(void* p, Py_ssize_t n, object dtype):
    """A NumPy array holding a copy of n items of `dtype` at p."""
    cdef cnp.ndarray out = np.empty(n, dtype=dtype)
    if n:
        memcpy(cnp.PyArray_DATA(out), p, <size_t>n * out.itemsize)
    return out


cdef object _copy_f64(double* p, Py_ssize_t n):
    return _copy(p, n, np.float64)


cdef inline void next_index2(int ndim, const int64_t* shape, int64_t* counter,
                             Py_ssize_t* ka, const int64_t* sa, Py_ssize_t* kb,
                             const int64_t* sb) noexcept nogil:
    """Advance a C-order multi-index (counter) over `shape`, and two element offsets
    with their strides."""
    cdef int d = ndim - 1
    while d >= 0:
        counter[d] += 1
        ka[0] += sa[d]
        kb[0] += sb[d]
        if counter[d] < shape[d]:
            return
        ka[0] -= sa[d] * shape[d]
        kb[0] -= sb[d] * shape[d]
        counter[d] = 0
        d -= 1


cdef inline bint next_index1(int ndim, const int64_t* shape, int64_t* counter,
                             Py_ssize_t* k, const int64_t* strides) noexcept nogil:
    """next_index2 for one offset; False once the multi-index has wrapped around."""
    cdef int d = ndim - 1
    while d >= 0:
        counter[d] += 1
        k[0] += strides[d]
        if counter[d] < shape[d]:
            return True
        k[0] -= strides[d] * shape[d]
        counter[d] = 0
        d -= 1
    return False


# -- the reverse sweep ---------------------------------------------------------------
#
# Zero-adjoint rule: a node whose output adjoint is exactly 0.0 is skipped (for
# elementwise array ops: each element whose adjoint is 0.0). Nodes off the path to the
# output then cost one compare, and a zero adjoint never meets an infinite partial
# (0 * inf would be nan): d/dx of 0 * log(x) at x = 0 is 0, not nan. A nan adjoint is
# not zero, so nan still propagates. tests/test_tape.py pins this.

cdef int reverse_sweep_c(Tape t, Py_ssize_t node_begin, Py_ssize_t node_end,
                         Py_ssize_t slot_end) noexcept nogil:
    """Propagate adjoints from nodes [node_begin, node_end) back to their operands.

    slot_end is the slot just past node_end - 1's output. Returns 0, or -1 when a
    Python step (AOP_PYFUNC) raised; the exception is then in t.sweep_error.
    """
    return reverse_sweep_into_c(t, t.values, t.adjoints, node_begin, node_end, slot_end)


cdef int reverse_sweep_into_c(Tape t, const double* values, double* adjoints,
                              Py_ssize_t node_begin, Py_ssize_t node_end,
                              Py_ssize_t slot_end) noexcept nogil:
    """The reverse sweep over the tape's nodes with the value and adjoint buffers given
    (the tape's own, or a replaying thread's: array nodes use the tape's own)."""
    cdef Py_ssize_t i = node_end - 1
    while i >= node_begin:
        # scalar runs in a loop with no calls out (measured: a call in the loop costs
        # the scalar nodes ~10-40%); array nodes between runs
        i = scalar_reverse_run_c(t, values, adjoints, node_begin, i)
        if i >= node_begin:
            if array_reverse_step(t, t.arg0s[i]) < 0:
                return -1
            i -= 1
    return 0


cdef Py_ssize_t scalar_reverse_run_c(Tape t, const double* values, double* adjoints,
                                     Py_ssize_t node_begin,
                                     Py_ssize_t last) noexcept nogil:
    """Sweep scalar nodes last, last-1, ... down to node_begin or to the first array
    node met; returns that array node's index (or node_begin - 1). Node i writes
    slot i (an array node a dummy one)."""
    cdef const opcode_t* ops = t.ops
    cdef const index_t* arg0s = t.arg0s
    cdef const index_t* arg1s = t.arg1s
    cdef const double* constants = t.constants
    cdef const index_t* extras = t.extras
    cdef Py_ssize_t i
    cdef double g
    cdef opcode_t op
    for i in range(last, node_begin - 1, -1):
        op = ops[i]
        if op == OP_ARRAY:
            return i
        g = adjoints[i]
        if g == 0.0:
            continue
        if op > OP_CONST:              # leaves and constants: nothing to propagate
            # the op's formula, from the op table (_opmath.reverse_step: one switch that
            # gcc inlines here; a call out of this loop would cost ~10-40%)
            reverse_step(op, arg0s[i], arg1s[i], g, values[i], values, constants,
                         extras, adjoints)
    return node_begin - 1


# -- array nodes -------------------------------------------------------------------------

cdef inline double* operand_values(Tape t, Operand* o) noexcept nogil:
    if o.kind == OPERAND_SCALAR:
        return &t.values[o.ref]
    if o.kind == OPERAND_POOLED:
        return &t.constants[o.ref]
    return o.data


cdef inline double* live_adjoints(Tape t, Py_ssize_t r) noexcept nogil:
    """Array node r's adjoint block, zeroed on first use in this sweep."""
    cdef ArrayNode* n = &t.anodes[r]
    if not t.array_adjoint_live[r]:
        memset(&t.array_adjoints[n.adj], 0, <size_t>n.size * sizeof(double))
        t.array_adjoint_live[r] = 1
    return &t.array_adjoints[n.adj]


cdef inline double* operand_adjoints(Tape t, Operand* o) noexcept nogil:
    """Where the operand's adjoints accumulate; NULL for constants."""
    if o.kind == OPERAND_ARRAY:
        return live_adjoints(t, o.ref)
    if o.kind == OPERAND_SCALAR:
        return &t.adjoints[o.ref]
    return NULL


cdef inline double* fresh_adjoints(Tape t, Operand* o, double* beta) noexcept nogil:
    """For a kernel that can write instead of add (BLAS's beta): the operand's block,
    with beta 0 if nothing is there yet (and no zeroing done), else 1."""
    if o.kind == OPERAND_ARRAY and not t.array_adjoint_live[o.ref]:
        t.array_adjoint_live[o.ref] = 1
        beta[0] = 0.0
        return &t.array_adjoints[t.anodes[o.ref].adj]
    beta[0] = 1.0
    return operand_adjoints(t, o)


cdef int array_reverse_c(Tape t, Py_ssize_t r) noexcept nogil:
    """The reverse step of array node r (see the AOP_* list in _tape.pxd)."""
    cdef ArrayNode* n = &t.anodes[r]
    cdef const double* g
    cdef const double* y
    cdef Py_ssize_t k, size = n.size
    cdef Operand* x
    cdef Operand* x1
    cdef double* gx
    cdef double* gx1
    cdef const int64_t* geom
    cdef double beta_a, beta_b
    if n.out_slot >= 0:
        g = &t.adjoints[n.out_slot]
        y = &t.values[n.out_slot]
    elif not t.array_adjoint_live[r]:  # never reached: no adjoint to pass on
        return 0
    else:
        g = &t.array_adjoints[n.adj]
        y = n.value
    for k in range(size):              # skip the node if its adjoint is all zeros
        if g[k] != 0.0:
            break
    else:
        return 0
    if n.aop == AOP_LEAF:
        return 0
    x = &t.operands[n.operand0]
    beta_a = 1.0
    if n.aop == AOP_UNARY or n.aop == AOP_SUM or n.aop == AOP_WEIGHTED_SUM:
        gx = fresh_adjoints(t, x, &beta_a)      # these write every value of x's block
    elif n.aop == AOP_MATMUL or n.aop == AOP_BINARY or n.aop == AOP_STRIDED:
        gx = NULL                                # (decided below)
    else:
        gx = operand_adjoints(t, x)
    if n.aop == AOP_UNARY:             # y[k] = sop(x[k])
        if gx != NULL:
            unary_reverse(n.sop, size, operand_values(t, x), y, g, gx, beta_a == 0.0)
    elif n.aop == AOP_BINARY:          # y = sop(a, b), broadcast
        x1 = &t.operands[n.operand0 + 1]
        if (x.size == size or x.size == 1) and (x1.size == size or x1.size == 1):
            # flat: a full-size operand's fresh block is written, not zeroed and added
            if x.size == size and size > 1:
                gx = fresh_adjoints(t, x, &beta_a)
            else:
                gx = operand_adjoints(t, x)
                beta_a = 1.0
            if x1.size == size and size > 1:
                gx1 = fresh_adjoints(t, x1, &beta_b)
            else:
                gx1 = operand_adjoints(t, x1)
                beta_b = 1.0
            if n.weights != NULL:        # logaddexp with its partials precomputed
                weighted_pair_reverse(size, n.weights, g, gx, 1 if x.size == size else 0,
                                      beta_a == 0.0, gx1, 1 if x1.size == size else 0,
                                      beta_b == 0.0)
            else:
                binary_flat_reverse(n.sop, size, operand_values(t, x),
                                    1 if x.size == size else 0, gx, beta_a == 0.0,
                                    operand_values(t, x1), 1 if x1.size == size else 0,
                                    gx1, beta_b == 0.0, y, g)
        else:
            gx = operand_adjoints(t, x)
            binary_reverse(n.sop, size, operand_values(t, x), x.size, gx,
                           operand_values(t, x1), x1.size, operand_adjoints(t, x1), y,
                           g, &t.geometry[n.geom])
    elif n.aop == AOP_SUM or n.aop == AOP_WEIGHTED_SUM:
        # y = reduce(x) over axes; x's adjoint gets g broadcast back (times weights)
        if gx != NULL:
            reduce_reverse(x.size, gx, g, n.c, n.weights, &t.geometry[n.geom],
                           beta_a == 0.0)
    elif n.aop == AOP_CUMSUM:          # y = cumsum(x) along an axis: reversed cumsum
        if gx != NULL:
            cumsum_reverse(gx, g, &t.geometry[n.geom])
    elif n.aop == AOP_MATMUL:          # y = a @ b
        x1 = &t.operands[n.operand0 + 1]
        # a fresh adjoint block is written by BLAS directly (beta 0: no zeroing pass)
        gx = fresh_adjoints(t, x, &beta_a)
        gx1 = fresh_adjoints(t, x1, &beta_b)
        matmul_reverse(operand_values(t, x), gx, beta_a, operand_values(t, x1), gx1,
                       beta_b, g, &t.geometry[n.geom])
    elif n.aop == AOP_RESHAPE:         # y = x, reshaped
        if gx != NULL:
            for k in range(size):
                gx[k] += g[k]
    elif n.aop == AOP_GATHER:          # y[k] = x[index[k]]: scatter-add back
        if gx != NULL:
            for k in range(size):
                gx[n.index[k]] += g[k]
    elif n.aop == AOP_SCATTER:         # y[index[k]] += x[k]: gather back
        if gx != NULL:
            gather_add(gx, g, n.index, x.size)
    elif n.aop == AOP_STRIDED:         # y = view of x: scatter-add through the strides
        geom = &t.geometry[n.geom]
        if x.kind == OPERAND_ARRAY and not t.array_adjoint_live[x.ref] and \
                is_one_run(<int>geom[0], geom + 1, geom + 1 + geom[0]):
            # a fresh block that the view covers in one run (x[1:], x[:-1], x[2:5]
            # of a matrix): g is copied into the run and only the rest is zeroed
            gx = fresh_adjoints(t, x, &beta_a)
            k = geom[1 + 2 * geom[0]]
            memset(gx, 0, <size_t>k * sizeof(double))
            memcpy(gx + k, g, <size_t>size * sizeof(double))
            memset(gx + k + size, 0, <size_t>(x.size - k - size) * sizeof(double))
        else:
            gx = operand_adjoints(t, x)
            if gx != NULL:
                strided_scatter_add(gx, g, 1.0, <int>geom[0], geom + 1,
                                    geom + 1 + geom[0], geom[1 + 2 * geom[0]])
    elif n.aop == AOP_CONCAT:          # y[x_j.index[k]] = x_j[k]
        for k in range(n.n_operands):
            x = &t.operands[n.operand0 + k]
            gx = operand_adjoints(t, x)
            if gx != NULL:
                gather_add(gx, g, x.index, x.size)
    elif n.aop == AOP_WHERE:           # y[k] = a[k] if mask[k] else b[k]
        x1 = &t.operands[n.operand0 + 1]
        where_reverse(size, n.weights, g, gx, x.size, operand_adjoints(t, x1), x1.size)
    elif n.aop == AOP_PYFUNC:
        return pyfunc_reverse(t, r)
    # AOP_MASK: no derivative (and never reached: masks are not differentiable operands)
    return 0


cdef inline bint is_one_run(int ndim, const int64_t* shape,
                            const int64_t* strides) noexcept nogil:
    """True if a view of this shape and these (element) strides covers consecutive
    positions in C order (a C-contiguous block, from its offset on)."""
    cdef int64_t step = 1
    cdef int d
    for d in range(ndim - 1, -1, -1):
        if shape[d] != 1 and strides[d] != step:
            return False
        step *= shape[d]
    return True


cdef inline void gather_add(double* gx, const double* g, const int64_t* index,
                            Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t k
    for k in range(n):
        gx[k] += g[index[k]]


# Elementwise loops. The generic loops call the formulas of _opmath per element; the
# hot ops have their own loops, with the same formulas spelled out, that the compiler
# vectorises (measured on the vectorised Rosenbrock sweep: 3x faster than the generic
# loop, which gcc does not specialise by inlining). The zero-adjoint rule is applied per
# element as a select (d if g != 0 else 0), which keeps the loops branch-free.

cdef void binary_flat_reverse(opcode_t sop, Py_ssize_t n,
                              const double* a, Py_ssize_t sa, double* ga, bint assign_a,
                              const double* b, Py_ssize_t sb, double* gb, bint assign_b,
                              const double* y, const double* g) noexcept nogil:
    """Operands of y's size (stride 1) or of one value (stride 0); assign_a / assign_b:
    the operand's block is fresh (stride 1 only) and is written, not added to."""
    cdef Py_ssize_t k
    cdef double da, db, gk, d
    if sop == OP_ADD_VV or sop == OP_SUB_VV:       # (1, +-1)
        if ga != NULL:
            flat_add(ga, sa, g, 1.0, n, assign_a)
        if gb != NULL:
            flat_add(gb, sb, g, 1.0 if sop == OP_ADD_VV else -1.0, n, assign_b)
    elif sop == OP_MUL_VV:                          # (b, a)
        if ga != NULL:
            product_add(ga, sa, g, b, sb, n, assign_a)
        if gb != NULL:
            product_add(gb, sb, g, a, sa, n, assign_b)
    elif sop == OP_LOGADDEXP and sa == 0 and ga == NULL:
        # logaddexp(c, b), the usual softplus form: d/db = sigmoid(b - c)
        for k in range(n):
            d = g[k] * sigmoid(b[k] - a[0]) if a[0] != b[k] else 0.5 * g[k]
            put(gb, k * sb, d if g[k] != 0.0 else 0.0, assign_b)
    else:
        for k in range(n):
            gk = g[k]
            binary_partials(sop, a[k * sa], b[k * sb], y[k], &da, &db)
            if ga != NULL:
                put(ga, k * sa, gk * da if gk != 0.0 else 0.0, assign_a)
            if gb != NULL:
                put(gb, k * sb, gk * db if gk != 0.0 else 0.0, assign_b)


cdef void weighted_pair_reverse(Py_ssize_t n, const double* w, const double* g,
                                double* ga, Py_ssize_t sa, bint assign_a,
                                double* gb, Py_ssize_t sb, bint assign_b) noexcept nogil:
    """ga += g (1 - w), gb += g w: a binary op whose partials (1 - w, w) were stored at
    recording (logaddexp). Strides 1 or 0 as in binary_flat_reverse."""
    cdef Py_ssize_t k
    cdef double d, total = 0.0
    if ga != NULL:
        if sa == 1:
            for k in range(n):
                d = g[k] * (1.0 - w[k])
                put(ga, k, d if g[k] != 0.0 else 0.0, assign_a)
        else:
            for k in range(n):
                d = g[k] * (1.0 - w[k])
                total += d if g[k] != 0.0 else 0.0
            ga[0] += total
    total = 0.0
    if gb != NULL:
        if sb == 1:
            for k in range(n):
                d = g[k] * w[k]
                put(gb, k, d if g[k] != 0.0 else 0.0, assign_b)
        else:
            for k in range(n):
                d = g[k] * w[k]
                total += d if g[k] != 0.0 else 0.0
            gb[0] += total


cdef inline void product_add(double* gx, Py_ssize_t sx, const double* g,
                             const double* other, Py_ssize_t so,
                             Py_ssize_t n, bint assign) noexcept nogil:
    """gx += g * other (the adjoint of one factor of a product), each of stride 1 or
    0; a stride-0 gx receives the sum. `assign`: write a fresh stride-1 block."""
    cdef Py_ssize_t k
    cdef double d, c, total = 0.0
    if sx == 1 and so == 1:
        for k in range(n):
            d = g[k] * other[k]
            put(gx, k, d if g[k] != 0.0 else 0.0, assign)
    elif sx == 1:
        c = other[0]
        for k in range(n):
            d = g[k] * c
            put(gx, k, d if g[k] != 0.0 else 0.0, assign)
    else:
        for k in range(n):
            d = g[k] * other[k * so]
            total += d if g[k] != 0.0 else 0.0
        gx[0] += total


cdef inline void flat_add(double* gx, Py_ssize_t stride, const double* g, double scale,
                          Py_ssize_t n, bint assign) noexcept nogil:
    cdef Py_ssize_t k
    cdef double total = 0.0
    if stride == 1 and assign and scale == 1.0:
        memcpy(gx, g, <size_t>n * sizeof(double))   # (libc's copy uses the widest vectors)
    elif stride == 1:
        for k in range(n):
            put(gx, k, scale * g[k], assign)
    else:
        for k in range(n):
            total += g[k]
        gx[0] += scale * total


cdef void binary_reverse(opcode_t sop, Py_ssize_t n,
                         const double* a, Py_ssize_t na, double* ga,
                         const double* b, Py_ssize_t nb, double* gb,
                         const double* y, const double* g,
                         const int64_t* geom) noexcept nogil:
    """Adjoints of y = sop(a, b) where a and b broadcast to y's n values.

    Operands of n values or of one value take flat loops; any other broadcast walks
    the output's shape with per-operand strides (0 along broadcast axes), from geom:
    [ndim, shape[ndim], a_strides[ndim], b_strides[ndim]].
    """
    cdef Py_ssize_t sa = 1 if na == n else 0, sb = 1 if nb == n else 0
    cdef int ndim
    if (na == n or na == 1) and (nb == n or nb == 1):
        binary_flat_reverse(sop, n, a, sa, ga, False, b, sb, gb, False, y, g)
        return
    ndim = <int>geom[0]
    if sop == OP_ADD_VV or sop == OP_SUB_VV:
        # the partials are constants: each operand's adjoint is a strided sum of g
        if ga != NULL:
            strided_scatter_add(ga, g, 1.0, ndim, geom + 1, geom + 1 + ndim, 0)
        if gb != NULL:
            strided_scatter_add(gb, g, 1.0 if sop == OP_ADD_VV else -1.0, ndim,
                                geom + 1, geom + 1 + 2 * ndim, 0)
        return
    binary_walk(sop, n, a, ga, b, gb, y, g, ndim, geom + 1, geom + 1 + ndim,
                geom + 1 + 2 * ndim)


cdef void binary_walk(opcode_t sop, Py_ssize_t n, const double* a, double* ga,
                      const double* b, double* gb, const double* y, const double* g,
                      int ndim, const int64_t* shape, const int64_t* sa,
                      const int64_t* sb) noexcept nogil:
    """The general broadcast case: walk y's shape in C order, operands by strides."""
    cdef Py_ssize_t k, ka = 0, kb = 0
    cdef double da, db
    cdef int d
    cdef int64_t counter[MAX_NDIM]
    for d in range(ndim):
        counter[d] = 0
    for k in range(n):
        if g[k] != 0.0:
            binary_partials(sop, a[ka], b[kb], y[k], &da, &db)
            if ga != NULL:
                ga[ka] += g[k] * da
            if gb != NULL:
                gb[kb] += g[k] * db
        next_index2(ndim, shape, counter, &ka, sa, &kb, sb)


cdef void strided_scatter_add(double* gx, const double* g, double scale, int ndim,
                              const int64_t* shape, const int64_t* strides,
                              Py_ssize_t offset) noexcept nogil:
    """gx[offset + sum_d i_d strides[d]] += scale * g[k] for every multi-index i of
    `shape` in C order (k = 0, 1, ...): the reverse of a strided view (slices,
    transposes, broadcast_to), and of broadcasting in sums. The last axis is the
    inner loop."""
    cdef Py_ssize_t k = 0, j, inner, s_inner, base = offset, total = 1
    cdef int d
    cdef int64_t counter[MAX_NDIM]
    if ndim == 0:
        gx[offset] += scale * g[0]
        return
    for d in range(ndim):
        counter[d] = 0
        total *= shape[d]
    if total == 0:
        return
    inner = shape[ndim - 1]
    s_inner = strides[ndim - 1]
    while True:
        if s_inner == 1:
            for j in range(inner):
                gx[base + j] += scale * g[k + j]
        elif s_inner == 0:
            for j in range(inner):
                gx[base] += scale * g[k + j]
        else:
            for j in range(inner):
                gx[base + j * s_inner] += scale * g[k + j]
        k += inner
        # next row: advance the multi-index of the outer axes
        if not next_index1(ndim - 1, shape, counter, &base, strides):
            return


cdef void reduce_reverse(Py_ssize_t n, double* gx, const double* g, double scale,
                         const double* weights, const int64_t* geom,
                         bint assign) noexcept nogil:
    """gx[k] += scale * g[out(k)] (* weights[k]) over x's n values, where out(k) is the
    output position x[k] was reduced into; geom: [ndim, x_shape[ndim],
    out_strides[ndim]] with out_strides 0 along the reduced axes."""
    cdef int ndim = <int>geom[0], d
    cdef const int64_t* shape = geom + 1
    cdef const int64_t* so = shape + ndim
    cdef Py_ssize_t k = 0, j, inner, s_inner, ko = 0
    cdef double gk
    cdef int64_t counter[MAX_NDIM]
    if n == 0:
        return
    if ndim == 0:
        put(gx, 0, scale * g[0] * (weights[0] if weights != NULL else 1.0), assign)
        return
    for d in range(ndim):
        counter[d] = 0
    inner = shape[ndim - 1]
    s_inner = so[ndim - 1]
    while True:
        if s_inner == 0:               # reduced along the last axis: one g per row
            gk = scale * g[ko]
            if weights != NULL:
                for j in range(inner):
                    put(gx, k + j, gk * weights[k + j], assign)
            else:
                for j in range(inner):
                    put(gx, k + j, gk, assign)
        else:
            if weights != NULL:
                for j in range(inner):
                    put(gx, k + j, scale * g[ko + j * s_inner] * weights[k + j], assign)
            else:
                for j in range(inner):
                    put(gx, k + j, scale * g[ko + j * s_inner], assign)
        k += inner
        if not next_index1(ndim - 1, shape, counter, &ko, so):
            return


cdef void cumsum_reverse(double* gx, const double* g, const int64_t* geom) noexcept nogil:
    """x's adjoint along each lane is the reversed cumulative sum of g;
    geom: [outer, n, inner] (the lanes are x[o, :, i])."""
    cdef Py_ssize_t outer = geom[0], n = geom[1], inner = geom[2]
    cdef Py_ssize_t o, j, i, base
    cdef double acc
    for o in range(outer):
        for i in range(inner):
            base = o * n * inner + i
            acc = 0.0
            for j in range(n - 1, -1, -1):
                acc += g[base + j * inner]
                gx[base + j * inner] += acc


cdef void matmul_reverse(const double* a, double* ga, double beta_a, const double* b,
                         double* gb, double beta_b, const double* g,
                         const int64_t* geom) noexcept nogil:
    """y[i] = a[i] @ b[i] for each of `batch` (m, k) @ (k, n) products, row-major;
    geom: [batch, m, k, n, a_batch_stride, b_batch_stride] (stride 0: broadcast).
    ga = beta_a ga + g b^T and gb = beta_b gb + a^T g, by BLAS (column-major: row-major
    X is X^T); a broadcast operand's block accumulates over the batch."""
    cdef int batch = <int>geom[0], m = <int>geom[1], k = <int>geom[2], n = <int>geom[3]
    cdef Py_ssize_t sa = geom[4], sb = geom[5], sy = <Py_ssize_t>m * n
    cdef double one = 1.0, beta
    cdef int i, inc = 1
    cdef char trans = b'T', notrans = b'N'
    if m == 0 or n == 0 or k == 0:
        if ga != NULL and beta_a == 0.0:
            memset(ga, 0, <size_t>(sa * batch if sa else m * k) * sizeof(double))
        if gb != NULL and beta_b == 0.0:
            memset(gb, 0, <size_t>(sb * batch if sb else k * n) * sizeof(double))
        return
    for i in range(batch):
        if ga != NULL:
            beta = beta_a if sa != 0 or i == 0 else 1.0
            if m == 1:   # a vector times a matrix: ga (k) = beta ga + b (k x n) . g (n)
                dgemv(&trans, &n, &k, &one, <double*>b + i * sb, &n,
                      <double*>g + i * sy, &inc, &beta, ga + i * sa, &inc)
            else:        # ga^T (k x m) = beta ga^T + b (k x n) . g^T (n x m)
                dgemm(&trans, &notrans, &k, &m, &n, &one, <double*>b + i * sb, &n,
                      <double*>g + i * sy, &n, &beta, ga + i * sa, &k)
        if gb != NULL:
            beta = beta_b if sb != 0 or i == 0 else 1.0
            if n == 1:   # a matrix times a vector: gb (k) = beta gb + a^T (k x m) . g (m)
                dgemv(&notrans, &k, &m, &one, <double*>a + i * sa, &k,
                      <double*>g + i * sy, &inc, &beta, gb + i * sb, &inc)
            else:        # gb^T (n x k) = beta gb^T + g^T (n x m) . a (m x k)
                dgemm(&notrans, &trans, &n, &k, &m, &one, <double*>g + i * sy, &n,
                      <double*>a + i * sa, &k, &beta, gb + i * sb, &n)


cdef void where_reverse(Py_ssize_t n, const double* mask, const double* g,
                        double* ga, Py_ssize_t na, double* gb,
                        Py_ssize_t nb) noexcept nogil:
    cdef Py_ssize_t k
    for k in range(n):
        if mask[k] != 0.0:
            if ga != NULL:
                ga[k if na == n else 0] += g[k]
        elif gb != NULL:
            gb[k if nb == n else 0] += g[k]


cdef int pyfunc_reverse(Tape t, Py_ssize_t r) noexcept nogil:
    """Reverse step written in Python: keepalive[pyfunc](g) returns one cotangent
    array (or None) per operand, each of the operand's size."""
    cdef ArrayNode* n = &t.anodes[r]
    cdef Operand* x
    cdef double* gx
    cdef const double[::1] cot
    cdef Py_ssize_t j, k
    with gil:
        try:
            if n.out_slot >= 0:
                g = np.array([t.adjoints[n.out_slot]])
            else:
                g = _copy_f64(&t.array_adjoints[n.adj], n.size)
            cotangents = t.keepalive[n.pyfunc](g, pyfunc_output(t, n),
                                               pyfunc_inputs(t, n))
            for j in range(n.n_operands):
                x = &t.operands[n.operand0 + j]
                gx = operand_adjoints(t, x)
                if gx == NULL or cotangents[j] is None:
                    continue
                cot = np.ascontiguousarray(cotangents[j], dtype=np.float64).reshape(-1)
                if cot.shape[0] != x.size:
                    raise ValueError(f"a reverse step returned {cot.shape[0]} values "
                                     f"for an operand of {x.size}")
                for k in range(x.size):
                    gx[k] += cot[k]
        except BaseException as e:
            t.sweep_error = e
            return -1
    return 0


# -- forward replay: re-evaluate a recorded tape at new inputs -------------------------
#
# Each node's value from its operands' (the forward formulas of _opmath), in recording
# order, into a value buffer whose leaf slots hold the new inputs. Then the recorded
# comparisons are re-evaluated: the index of the first whose outcome differs from the
# recording is returned (the replay followed a branch the function would not take),
# or -1. Array nodes re-evaluate in their own arrays (array_forward_c): the buffers
# given are for scalar slots, so a tape with array nodes replays in its own buffers.

cdef int forward_replay_c(Tape t, double* values) noexcept nogil:
    """Returns 0, or -1 when a value function in Python (AOP_PYFUNC) raised: the
    exception is then in t.sweep_error."""
    cdef Py_ssize_t i = 0
    while i < t.n_nodes:
        # scalar runs in a loop with no calls out (a call in the loop costs the scalar
        # nodes ~40%: measured 3.3 -> 5.5 ns per node); array nodes between runs
        i = scalar_replay_run_c(t, values, i)
        if i < t.n_nodes:
            if array_forward_step(t, t.arg0s[i]) < 0:
                return -1
            i += 1
    return 0


cdef Py_ssize_t scalar_replay_run_c(Tape t, double* values,
                                    Py_ssize_t begin) noexcept nogil:
    """Replay scalar nodes from `begin` up to the next array node; returns its index
    (or n_nodes)."""
    cdef const opcode_t* ops = t.ops
    cdef const index_t* arg0s = t.arg0s
    cdef const index_t* arg1s = t.arg1s
    cdef const double* constants = t.constants
    cdef const index_t* extras = t.extras
    cdef Py_ssize_t i
    cdef opcode_t op
    for i in range(begin, t.n_nodes):
        op = ops[i]
        if op <= OP_CONST:             # inputs and constants keep their values
            continue
        elif op == OP_ARRAY:
            return i
        values[i] = replay_step(op, arg0s[i], arg1s[i], values, constants, extras)
    return t.n_nodes


cdef int array_forward_c(Tape t, Py_ssize_t r) noexcept nogil:
    """Re-evaluate array node r from its operands, in place (its value array and the
    tape's own value buffer). The ops replay_support() accepts."""
    cdef ArrayNode* n = &t.anodes[r]
    cdef double* y = &t.values[n.out_slot] if n.out_slot >= 0 else n.value
    cdef Operand* x
    cdef Operand* x1
    cdef const double* xv
    cdef const double* bv
    cdef const int64_t* geom
    cdef Py_ssize_t k, size = n.size, ka, kb
    cdef int batch, m, kk, nn, i
    cdef Py_ssize_t sa, sb
    cdef double one = 1.0, zero = 0.0
    cdef char notrans = b'N'
    if n.aop == AOP_LEAF or n.aop == AOP_RESHAPE:   # inputs; reshapes are views
        return 0
    if n.aop == AOP_PYFUNC:
        return pyfunc_evaluate(t, r)
    x = &t.operands[n.operand0]
    xv = operand_values(t, x)
    if n.aop == AOP_UNARY:
        if n.sop == OP_SQUARE:         # (the cheap ones as loops that vectorise)
            for k in range(size):
                y[k] = xv[k] * xv[k]
        elif n.sop == OP_NEG:
            for k in range(size):
                y[k] = -xv[k]
        elif n.sop == OP_SQRT:
            for k in range(size):
                y[k] = cm.sqrt(xv[k])
        else:
            for k in range(size):
                y[k] = eval_unary(n.sop, xv[k])
    elif n.aop == AOP_BINARY:
        x1 = &t.operands[n.operand0 + 1]
        bv = operand_values(t, x1)
        if (x.size == size or x.size == 1) and (x1.size == size or x1.size == 1):
            # the strides as constants, for loops the compiler vectorises
            if x.size == size and x1.size == size:
                binary_kernel(n.sop, size, xv, 1, bv, 1, y)
            elif x.size == size:
                binary_kernel(n.sop, size, xv, 1, bv, 0, y)
            else:
                binary_kernel(n.sop, size, xv, 0, bv, 1 if x1.size == size else 0, y)
            if n.weights != NULL:        # logaddexp's stored partial, sigmoid(b - a)
                for k in range(size):
                    ka = k if x.size == size else 0
                    kb = k if x1.size == size else 0
                    n.weights[k] = 0.5 if xv[ka] == bv[kb] else sigmoid(bv[kb] - xv[ka])
        else:
            binary_forward_walk(n.sop, size, xv, bv, y, &t.geometry[n.geom])
    elif n.aop == AOP_SUM:
        memset(y, 0, <size_t>size * sizeof(double))
        reduce_tangent(x.size, xv, y, n.c, NULL, &t.geometry[n.geom])
    elif n.aop == AOP_CUMSUM:
        geom = &t.geometry[n.geom]
        cumsum_forward(xv, y, geom[0], geom[1], geom[2])
    elif n.aop == AOP_MATMUL:          # y^T (n x m) = b^T (n x k) a^T (k x m)
        x1 = &t.operands[n.operand0 + 1]
        bv = operand_values(t, x1)
        geom = &t.geometry[n.geom]
        batch = <int>geom[0]
        m = <int>geom[1]
        kk = <int>geom[2]
        nn = <int>geom[3]
        sa = geom[4]
        sb = geom[5]
        if kk == 0:
            memset(y, 0, <size_t>size * sizeof(double))
        elif m and nn:
            for i in range(batch):
                dgemm(&notrans, &notrans, &nn, &m, &kk, &one, <double*>bv + i * sb, &nn,
                      <double*>xv + i * sa, &kk, &zero, y + i * m * nn, &nn)
    elif n.aop == AOP_GATHER:
        for k in range(size):
            y[k] = xv[n.index[k]]
    elif n.aop == AOP_SCATTER:
        memset(y, 0, <size_t>size * sizeof(double))
        for k in range(x.size):
            y[n.index[k]] += xv[k]
    elif n.aop == AOP_STRIDED:
        geom = &t.geometry[n.geom]
        strided_gather(y, xv, <int>geom[0], geom + 1, geom + 1 + geom[0],
                       geom[1 + 2 * geom[0]])
    elif n.aop == AOP_CONCAT:
        for k in range(n.n_operands):
            x = &t.operands[n.operand0 + k]
            scatter_set(y, operand_values(t, x), x.index, x.size)
    elif n.aop == AOP_WHERE:           # (a recorded mask was replayed before: weights
        x1 = &t.operands[n.operand0 + 1]   # point into its values)
        bv = operand_values(t, x1)
        for k in range(size):
            y[k] = xv[k if x.size == size else 0] if n.weights[k] != 0.0 else \
                bv[k if x1.size == size else 0]
    elif n.aop == AOP_MASK:
        if n.sop == MASK_NOT:
            for k in range(size):
                y[k] = 1.0 if xv[k] == 0.0 else 0.0
        else:
            x1 = &t.operands[n.operand0 + 1]
            mask_forward(n.sop, size, xv, x.size, operand_values(t, x1), x1.size, y,
                         &t.geometry[n.geom] if n.geom >= 0 else NULL)
    elif n.aop == AOP_WEIGHTED_SUM:
        if n.sop == WEIGHTED_PROD:
            prod_forward(x.size, xv, size, y, n.weights, n.index, &t.geometry[n.geom])
        else:
            extremum_forward(n.sop == WEIGHTED_MAX, x.size, xv, size, y, n.weights,
                             n.index, &t.geometry[n.geom])
    return 0


cdef inline double mask_of(int sop, double a, double b) noexcept nogil:
    if sop == MASK_AND:
        return 1.0 if a != 0.0 and b != 0.0 else 0.0
    if sop == MASK_OR:
        return 1.0 if a != 0.0 or b != 0.0 else 0.0
    if sop == MASK_XOR:
        return 1.0 if (a != 0.0) != (b != 0.0) else 0.0
    return 1.0 if compare_c(sop, a, b) else 0.0


cdef void mask_forward(int sop, Py_ssize_t size, const double* a, Py_ssize_t na,
                       const double* b, Py_ssize_t nb, double* y,
                       const int64_t* geom) noexcept nogil:
    """y = mask_of(sop, a, b), broadcast flat (sizes size or 1) or by geom (as the
    binary nodes')."""
    cdef Py_ssize_t k, ka = 0, kb = 0
    cdef int ndim, d
    cdef int64_t counter[MAX_NDIM]
    if geom == NULL:
        for k in range(size):
            y[k] = mask_of(sop, a[k if na == size else 0], b[k if nb == size else 0])
        return
    ndim = <int>geom[0]
    for d in range(ndim):
        counter[d] = 0
    for k in range(size):
        y[k] = mask_of(sop, a[ka], b[kb])
        next_index2(ndim, geom + 1, counter, &ka, geom + 1 + ndim, &kb, geom + 1 + 2 * ndim)


cdef void extremum_forward(bint is_max, Py_ssize_t n, const double* x, Py_ssize_t n_out,
                           double* y, double* weights, int64_t* hits,
                           const int64_t* geom) noexcept nogil:
    """max or min of x over the reduced axes (nan wins, as in NumPy), and the weights
    of its derivative: 1/(number of ties) at the elements equal to it, else 0."""
    cdef int ndim = <int>geom[0], d
    cdef const int64_t* shape = geom + 1
    cdef const int64_t* so = shape + ndim
    cdef Py_ssize_t k, ko
    cdef int64_t counter[MAX_NDIM]
    for k in range(n_out):
        y[k] = -cm.INFINITY if is_max else cm.INFINITY
        hits[k] = 0
    if n_out == 1:                     # over everything: plain loops
        for k in range(n):
            if (x[k] > y[0] if is_max else x[k] < y[0]) or x[k] != x[k]:
                if y[0] == y[0]:
                    y[0] = x[k]
        for k in range(n):
            hits[0] += x[k] == y[0]
        for k in range(n):
            weights[k] = (1.0 if x[k] == y[0] else 0.0) / <double>hits[0]
        return
    for d in range(ndim):
        counter[d] = 0
    ko = 0
    for k in range(n):
        if (x[k] > y[ko] if is_max else x[k] < y[ko]) or x[k] != x[k]:
            if y[ko] == y[ko]:         # once nan, stays nan
                y[ko] = x[k]
        next_index1(ndim, shape, counter, &ko, so)
    ko = 0
    for k in range(n):
        hits[ko] += x[k] == y[ko]
        next_index1(ndim, shape, counter, &ko, so)
    ko = 0
    for k in range(n):
        weights[k] = (1.0 if x[k] == y[ko] else 0.0) / <double>hits[ko]
        next_index1(ndim, shape, counter, &ko, so)


cdef void prod_forward(Py_ssize_t n, const double* x, Py_ssize_t n_out, double* y,
                       double* weights, int64_t* zeros, const int64_t* geom) noexcept nogil:
    """Product of x over the reduced axes, and its partials: the product of the other
    elements, exact with zeros (the product of the nonzero ones at a single zero)."""
    cdef int ndim = <int>geom[0], d
    cdef const int64_t* shape = geom + 1
    cdef const int64_t* so = shape + ndim
    cdef Py_ssize_t k, ko
    cdef int64_t counter[MAX_NDIM]
    for k in range(n_out):
        y[k] = 1.0                     # first the product of the nonzero elements
        zeros[k] = 0
    for d in range(ndim):
        counter[d] = 0
    ko = 0
    for k in range(n):
        if x[k] == 0.0:
            zeros[ko] += 1
        else:
            y[ko] *= x[k]
        next_index1(ndim, shape, counter, &ko, so)
    ko = 0
    for k in range(n):
        if zeros[ko] == 0:
            weights[k] = y[ko] / x[k]
        elif zeros[ko] == 1 and x[k] == 0.0:
            weights[k] = y[ko]
        else:
            weights[k] = 0.0
        next_index1(ndim, shape, counter, &ko, so)
    for k in range(n_out):
        if zeros[k]:
            y[k] *= 0.0                # (nan or inf among the others gives nan)


cdef inline void binary_kernel(opcode_t sop, Py_ssize_t n, const double* a,
                               Py_ssize_t sa, const double* b, Py_ssize_t sb,
                               double* y) noexcept nogil:
    """y[k] = sop(a[k * sa], b[k * sb]); called with constant strides (0 or 1), so
    that the common operations become vector loops once inlined."""
    cdef Py_ssize_t k
    if sop == OP_ADD_VV:
        for k in range(n):
            y[k] = a[k * sa] + b[k * sb]
    elif sop == OP_SUB_VV:
        for k in range(n):
            y[k] = a[k * sa] - b[k * sb]
    elif sop == OP_MUL_VV:
        for k in range(n):
            y[k] = a[k * sa] * b[k * sb]
    elif sop == OP_DIV_VV:
        for k in range(n):
            y[k] = a[k * sa] / b[k * sb]
    elif sop == OP_POW_VV and sb == 0 and b[0] == 2.0:
        for k in range(n):
            y[k] = a[k * sa] * a[k * sa]
    else:
        for k in range(n):
            y[k] = eval_binary(sop, a[k * sa], b[k * sb])


cdef void binary_forward_walk(opcode_t sop, Py_ssize_t n, const double* a,
                              const double* b, double* y,
                              const int64_t* geom) noexcept nogil:
    """y = sop(a, b) over y's shape with broadcast strides (geom as binary_reverse)."""
    cdef int ndim = <int>geom[0], d
    cdef const int64_t* shape = geom + 1
    cdef const int64_t* sa = shape + ndim
    cdef const int64_t* sb = sa + ndim
    cdef Py_ssize_t k, ka = 0, kb = 0
    cdef int64_t counter[MAX_NDIM]
    for d in range(ndim):
        counter[d] = 0
    for k in range(n):
        y[k] = eval_binary(sop, a[ka], b[kb])
        next_index2(ndim, shape, counter, &ka, sa, &kb, sb)


cdef Py_ssize_t first_changed_guard_c(Tape t, const double* values) noexcept nogil:
    cdef Py_ssize_t k
    cdef double x, y
    cdef opcode_t g
    for k in range(t.n_guards):
        g = t.guard_ops[k]
        x = values[t.guard_arg0s[k]]
        y = t.constants[t.guard_arg1s[k]] if g & GUARD_CONST_RHS else values[t.guard_arg1s[k]]
        if compare_c(g & 7, x, y) != t.guard_outcomes[k]:
            return k
    return -1


cdef Py_ssize_t replay_array_rows_c(Tape t, const double* inputs, Py_ssize_t n_rows,
                                    Py_ssize_t width, const int64_t* kinds,
                                    const int64_t* refs, Py_ssize_t n_leaves,
                                    Py_ssize_t output_node, Py_ssize_t output_anode,
                                    Py_ssize_t slot_end, double* gradients,
                                    const int64_t* mask_nodes, uint8_t** outcomes,
                                    Py_ssize_t n_mask_guards) noexcept nogil:
    """Tape.replay_array_gradients' loop: per row, write the leaves, replay, check the
    guards, sweep in reverse, read the leaves' adjoints. Returns the rows done (fewer
    at a branch change), or -1 with the error in t.sweep_error."""
    cdef Py_ssize_t row, k, j, at, size
    cdef const double* x
    cdef double* g
    cdef ArrayNode* n
    for row in range(n_rows):
        x = inputs + row * width
        at = 0
        for k in range(n_leaves):
            if kinds[k]:
                n = &t.anodes[refs[k]]
                memcpy(n.value, x + at, <size_t>n.size * sizeof(double))
                at += n.size
            else:
                t.values[refs[k]] = x[at]
                at += 1
        if forward_replay_c(t, t.values) < 0:
            return -1
        if first_changed_guard_c(t, t.values) >= 0:
            return row
        for k in range(n_mask_guards):
            n = &t.anodes[mask_nodes[k]]
            for j in range(n.size):
                if (n.value[j] != 0.0) != (outcomes[k][j] != 0):
                    return row
        memset(t.adjoints, 0, <size_t>t.n_slots * sizeof(double))
        if t.n_anodes:
            memset(t.array_adjoint_live, 0, <size_t>t.n_anodes)
        if output_anode >= 0:
            live_adjoints(t, output_anode)[0] = 1.0
        else:
            t.adjoints[output_node] = 1.0
        if reverse_sweep_c(t, 0, output_node + 1, slot_end) < 0:
            return -1
        g = gradients + row * width
        at = 0
        for k in range(n_leaves):
            if kinds[k]:
                n = &t.anodes[refs[k]]
                size = n.size
                if t.array_adjoint_live[refs[k]]:
                    memcpy(g + at, &t.array_adjoints[n.adj], <size_t>size * sizeof(double))
                else:
                    memset(g + at, 0, <size_t>size * sizeof(double))
                at += size
            else:
                g[at] = t.adjoints[refs[k]]
                at += 1
    return n_rows


cdef Py_ssize_t replay_gradients_c(Tape t, double* values, double* adjoints,
                                   const double* inputs, Py_ssize_t n_rows,
                                   const Py_ssize_t* leaf_slots, Py_ssize_t n_leaves,
                                   Py_ssize_t output, double* gradients,
                                   double* outputs, Py_ssize_t* changed_guard) noexcept nogil:
    """For each row of `inputs` (n_leaves values): replay, check the guards, sweep in
    reverse from slot `output`, and write the output value and the leaves' adjoints.
    values and adjoints are this caller's own buffers (values starts as a copy of the
    tape's). Returns the number of rows done; stops early at a row whose branch
    changed, setting changed_guard."""
    cdef Py_ssize_t row, k
    for row in range(n_rows):
        for k in range(n_leaves):
            values[leaf_slots[k]] = inputs[row * n_leaves + k]
        forward_replay_c(t, values)
        changed_guard[0] = first_changed_guard_c(t, values)
        if changed_guard[0] >= 0:
            return row
        # all slots: inputs recorded after the output read a zero adjoint
        memset(adjoints, 0, <size_t>t.n_slots * sizeof(double))
        adjoints[output] = 1.0
        reverse_sweep_into_c(t, values, adjoints, 0, output + 1, output + 1)
        outputs[row] = values[output]
        for k in range(n_leaves):
            gradients[row * n_leaves + k] = adjoints[leaf_slots[k]]
    return n_rows


# -- forward over reverse: the second-order sweep ------------------------------------
#
# With tangents t (d value / d eps along a direction) from the tangent sweep, carry each
# adjoint a and its tangent a' = d a / d eps backwards. For y = f(x):
#     a_x += a_y f'(x)          a'_x += a'_y f'(x) + a_y f''(x) t_x
# and for y = f(u, v) the same with the 2x2 second partials. The result a' at the
# inputs is the Hessian times the direction. Scalar ops only.

cdef int second_order_sweep_c(Tape t, Py_ssize_t node) noexcept nogil:
    """Forward over reverse from `node` (tangents swept and adjoint[node] seeded
    before): every slot's adjoint and the adjoint's tangent. Returns 0, or -1 with the
    error in t.sweep_error."""
    cdef const opcode_t* ops = t.ops
    cdef const index_t* arg0s = t.arg0s
    cdef const index_t* arg1s = t.arg1s
    cdef const double* values = t.values
    cdef const double* constants = t.constants
    cdef const double* tangents = t.tangents
    cdef double* adj = t.adjoints
    cdef double* adj_t = t.adjoint_tangents
    cdef Py_ssize_t i
    cdef double g, gt
    cdef opcode_t op
    for i in range(node, -1, -1):
        op = ops[i]
        if op == OP_ARRAY:
            if array_second_order_c(t, arg0s[i]) < 0:
                return -1
            continue
        g = adj[i]
        gt = adj_t[i]
        if g == 0.0 and gt == 0.0:
            continue
        if op > OP_CONST:
            second_order_step(op, arg0s[i], arg1s[i], g, gt, values[i], values,
                              constants, t.extras, tangents, adj, adj_t)
    return 0


# -- forward over reverse for array nodes ---------------------------------------------
#
# The adjoint tangent of an operand is  gt * (first partial)  +  g * (second partials)
# * (tangents). The first term is the node's ordinary reverse step applied to the
# adjoint tangents: array_reverse_c with the adjoint buffers swapped for theirs. The
# second is zero for the linear nodes (sums, views, gathers, joins, where, max/min at
# fixed weights) and added below for the others.

cdef inline void swap_adjoint_buffers(Tape t) noexcept nogil:
    cdef double* p = t.adjoints
    t.adjoints = t.adjoint_tangents
    t.adjoint_tangents = p
    p = t.array_adjoints
    t.array_adjoints = t.array_adjoint_tangents
    t.array_adjoint_tangents = p


cdef inline double* operand_adjoint_tangents(Tape t, Operand* o) noexcept nogil:
    return operand_block(t, o, t.adjoint_tangents, t.array_adjoint_tangents)


cdef int array_second_order_c(Tape t, Py_ssize_t r) noexcept nogil:
    cdef ArrayNode* n = &t.anodes[r]
    cdef const double* g
    cdef const double* y
    cdef Operand* x
    cdef Operand* x1
    cdef const double* tx
    cdef const double* tx1
    cdef double* gtx
    cdef Py_ssize_t k
    cdef double q
    cdef int status
    if n.aop == AOP_LEAF or n.aop == AOP_MASK:
        return 0
    if array_reverse_c(t, r) < 0:
        return -1
    swap_adjoint_buffers(t)
    status = array_reverse_c(t, r)
    swap_adjoint_buffers(t)
    if status < 0:
        return -1
    if n.out_slot >= 0:
        g = &t.adjoints[n.out_slot]
        y = &t.values[n.out_slot]
    else:
        g = &t.array_adjoints[n.adj]
        y = n.value
    x = &t.operands[n.operand0]
    tx = operand_tangents(t, x)
    if n.aop == AOP_UNARY:             # g y''(x) tx
        gtx = operand_adjoint_tangents(t, x)
        if tx != NULL and gtx != NULL:
            xv = operand_values(t, x)
            for k in range(n.size):
                if g[k] != 0.0 and tx[k] != 0.0:
                    q = unary_second(n.sop, xv[k], y[k])
                    if q != 0.0:
                        gtx[k] += g[k] * q * tx[k]
    elif n.aop == AOP_BINARY:
        x1 = &t.operands[n.operand0 + 1]
        tx1 = operand_tangents(t, x1)
        if tx != NULL or tx1 != NULL:
            binary_second_term(n.sop, n.size, operand_values(t, x), x.size, tx,
                               operand_adjoint_tangents(t, x), operand_values(t, x1),
                               x1.size, tx1, operand_adjoint_tangents(t, x1), y, g,
                               &t.geometry[n.geom] if n.geom >= 0 else NULL)
    elif n.aop == AOP_MATMUL:          # d(a @ b): ga += g tb^T, gb += ta^T g
        x1 = &t.operands[n.operand0 + 1]
        tx1 = operand_tangents(t, x1)
        matmul_reverse(tx if tx != NULL else operand_values(t, x),
                       operand_adjoint_tangents(t, x) if tx1 != NULL else NULL, 1.0,
                       tx1 if tx1 != NULL else operand_values(t, x1),
                       operand_adjoint_tangents(t, x1) if tx != NULL else NULL, 1.0,
                       g, &t.geometry[n.geom])
    elif n.aop == AOP_WEIGHTED_SUM and n.sop == WEIGHTED_PROD:
        gtx = operand_adjoint_tangents(t, x)
        if tx != NULL and gtx != NULL:
            if prod_second_term(x.size, operand_values(t, x), tx, gtx, n.size, g,
                                &t.geometry[n.geom]) < 0:
                with gil:
                    t.sweep_error = MemoryError("no memory for a Hessian-vector product")
                return -1
    return 0


cdef void binary_second_term(opcode_t sop, Py_ssize_t n, const double* a,
                             Py_ssize_t na, const double* ta, double* gta,
                             const double* b, Py_ssize_t nb, const double* tb,
                             double* gtb, const double* y, const double* g,
                             const int64_t* geom) noexcept nogil:
    """gta += g (d2y/da2 ta + d2y/dadb tb), gtb += g (d2y/dadb ta + d2y/db2 tb),
    broadcast flat (sizes n or 1) or by geom (as binary_reverse)."""
    cdef Py_ssize_t k, ka = 0, kb = 0
    cdef int ndim = 0, d
    cdef int64_t counter[MAX_NDIM]
    cdef double daa, dab, dbb, sa, sb
    if geom != NULL:
        ndim = <int>geom[0]
        for d in range(ndim):
            counter[d] = 0
    for k in range(n):
        if geom == NULL:
            ka = k if na == n else 0
            kb = k if nb == n else 0
        if g[k] != 0.0:
            binary_second(sop, a[ka], b[kb], y[k], &daa, &dab, &dbb)
            sa = ta[ka] if ta != NULL else 0.0
            sb = tb[kb] if tb != NULL else 0.0
            if gta != NULL:
                gta[ka] += g[k] * (curvature(daa, sa) + curvature(dab, sb))
            if gtb != NULL:
                gtb[kb] += g[k] * (curvature(dab, sa) + curvature(dbb, sb))
        if geom != NULL:
            next_index2(ndim, geom + 1, counter, &ka, geom + 1 + ndim, &kb,
                        geom + 1 + 2 * ndim)


cdef int prod_second_term(Py_ssize_t n, const double* x, const double* tx, double* gtx,
                          Py_ssize_t n_out, const double* g,
                          const int64_t* geom) noexcept nogil:
    """gtx_i += g sum_{j != i} d2P/dx_i dx_j tx_j for P the product over the reduced
    axes, exact with zeros: with P' the product of the nonzero elements, S the sum of
    tx_j / x_j over them and T the sum of tx_j over the zeros, the sum is
    P'/x_i (S - tx_i/x_i) without zeros; with one zero P'/x_i T at a nonzero x_i and
    P' S at the zero; with two, P' (T - tx_i) at each zero; with more, 0."""
    cdef int ndim = <int>geom[0], d
    cdef const int64_t* shape = geom + 1
    cdef const int64_t* so = shape + ndim
    cdef Py_ssize_t k, ko = 0
    cdef int64_t counter[MAX_NDIM]
    cdef double term
    cdef double* scratch = <double*>PyMem_RawMalloc(<size_t>(4 * n_out + 1) * sizeof(double))
    if scratch == NULL:
        return -1
    cdef double* zeros = scratch
    cdef double* p = scratch + n_out
    cdef double* s = scratch + 2 * n_out
    cdef double* tz = scratch + 3 * n_out
    for k in range(n_out):
        zeros[k] = 0.0
        p[k] = 1.0
        s[k] = 0.0
        tz[k] = 0.0
    for d in range(ndim):
        counter[d] = 0
    for k in range(n):
        if x[k] == 0.0:
            zeros[ko] += 1.0
            tz[ko] += tx[k]
        else:
            p[ko] *= x[k]
            s[ko] += tx[k] / x[k]
        next_index1(ndim, shape, counter, &ko, so)
    ko = 0
    for k in range(n):
        if g[ko] != 0.0:
            if zeros[ko] == 0.0:
                term = p[ko] / x[k] * (s[ko] - tx[k] / x[k])
            elif zeros[ko] == 1.0:
                term = p[ko] * s[ko] if x[k] == 0.0 else p[ko] / x[k] * tz[ko]
            elif zeros[ko] == 2.0:
                term = p[ko] * (tz[ko] - tx[k]) if x[k] == 0.0 else 0.0
            else:
                term = 0.0
            gtx[k] += g[ko] * term
        next_index1(ndim, shape, counter, &ko, so)
    PyMem_RawFree(scratch)
    return 0


# -- the tangent (forward-mode) sweep -----------------------------------------------------
#
# tangent[y] = sum over operands of d y / d operand * tangent[operand], node by node in
# recording order, with the partials of _opmath (the same formulas as the reverse
# sweep). Zero-tangent rule, the mirror of the reverse one: a term whose operand
# tangent is exactly 0.0 contributes nothing (no 0 * inf = nan).

cdef int tangent_sweep_c(Tape t, Py_ssize_t node_begin, Py_ssize_t node_end) noexcept nogil:
    """Returns 0, or -1 when a Python forward rule (AOP_PYFUNC) raised."""
    cdef const opcode_t* ops = t.ops
    cdef const index_t* arg0s = t.arg0s
    cdef const index_t* arg1s = t.arg1s
    cdef const double* values = t.values
    cdef const double* constants = t.constants
    cdef double* tangents = t.tangents
    cdef Py_ssize_t i
    cdef opcode_t op
    for i in range(node_begin, node_end):      # node i writes slot i
        op = ops[i]
        if op == OP_ARRAY:
            if array_tangent_step(t, arg0s[i]) < 0:
                return -1
        elif op == OP_LEAF:                    # seeded by the caller
            pass
        else:                                  # the op's formula (_opmath)
            tangents[i] = tangent_step(op, arg0s[i], arg1s[i], values[i], values,
                                       constants, t.extras, tangents)
    return 0


cdef inline double* operand_block(Tape t, Operand* o, double* per_slot,
                                  double* per_array_value) noexcept nogil:
    """The operand's entries in a pair of per-slot / per-array-value buffers (its
    tangents, adjoint tangents, ...); NULL for constants."""
    if o.kind == OPERAND_ARRAY:
        return &per_array_value[t.anodes[o.ref].adj]
    if o.kind == OPERAND_SCALAR:
        return &per_slot[o.ref]
    return NULL


cdef inline double* operand_tangents(Tape t, Operand* o) noexcept nogil:
    """The operand's tangents; NULL for constants (tangent zero)."""
    return operand_block(t, o, t.tangents, t.array_tangents)


cdef int array_tangent_c(Tape t, Py_ssize_t r) noexcept nogil:
    """The forward-mode step of array node r: its output tangent from its operands'."""
    cdef ArrayNode* n = &t.anodes[r]
    cdef double* ty
    cdef const double* y
    cdef Py_ssize_t k, size = n.size
    cdef Operand* x
    cdef Operand* x1
    cdef double* tx
    cdef double* tx1
    cdef const int64_t* geom
    cdef double da, db
    if n.aop == AOP_LEAF:
        return 0
    if n.out_slot >= 0:
        ty = &t.tangents[n.out_slot]
        y = &t.values[n.out_slot]
    else:
        ty = &t.array_tangents[n.adj]
        y = n.value
    memset(ty, 0, <size_t>size * sizeof(double))
    x = &t.operands[n.operand0]
    tx = operand_tangents(t, x)
    if n.aop == AOP_PYFUNC:
        return pyfunc_tangent(t, r)
    if n.aop == AOP_CONCAT:            # y[x_j.index[k]] = x_j[k]
        for k in range(n.n_operands):
            x = &t.operands[n.operand0 + k]
            tx = operand_tangents(t, x)
            if tx != NULL:
                scatter_set(ty, tx, x.index, x.size)
        return 0
    if n.aop == AOP_BINARY:            # y = sop(a, b): da ta + db tb, broadcast
        x1 = &t.operands[n.operand0 + 1]
        tx1 = operand_tangents(t, x1)
        binary_tangent(n.sop, size, operand_values(t, x), x.size, tx,
                       operand_values(t, x1), x1.size, tx1, y, ty,
                       &t.geometry[n.geom] if n.geom >= 0 else NULL)
        return 0
    if n.aop == AOP_MATMUL:            # y = a @ b: ta @ b + a @ tb
        x1 = &t.operands[n.operand0 + 1]
        matmul_tangent(operand_values(t, x), tx, operand_values(t, x1),
                       operand_tangents(t, x1), ty, &t.geometry[n.geom])
        return 0
    if n.aop == AOP_WHERE:             # y[k] = a[k] if mask[k] else b[k]
        x1 = &t.operands[n.operand0 + 1]
        tx1 = operand_tangents(t, x1)
        for k in range(size):
            if n.weights[k] != 0.0:
                ty[k] = tx[k if x.size == size else 0] if tx != NULL else 0.0
            else:
                ty[k] = tx1[k if x1.size == size else 0] if tx1 != NULL else 0.0
        return 0
    if tx == NULL or n.aop == AOP_MASK:   # a constant operand, or a mask: tangent zero
        return 0
    if n.aop == AOP_UNARY:             # y[k] = sop(x[k])
        xv = operand_values(t, x)
        for k in range(size):
            ty[k] = times(unary_partial(n.sop, xv[k], y[k]), tx[k])
    elif n.aop == AOP_SUM or n.aop == AOP_WEIGHTED_SUM:
        reduce_tangent(x.size, tx, ty, n.c, n.weights, &t.geometry[n.geom])
    elif n.aop == AOP_CUMSUM:          # cumulative sum of the tangent along the axis
        geom = &t.geometry[n.geom]
        cumsum_forward(tx, ty, geom[0], geom[1], geom[2])
    elif n.aop == AOP_RESHAPE:
        memcpy(ty, tx, <size_t>size * sizeof(double))
    elif n.aop == AOP_GATHER:          # y[k] = x[index[k]]
        for k in range(size):
            ty[k] = tx[n.index[k]]
    elif n.aop == AOP_SCATTER:         # y[index[k]] += x[k]
        for k in range(x.size):
            ty[n.index[k]] += tx[k]
    elif n.aop == AOP_STRIDED:         # y = view of x
        geom = &t.geometry[n.geom]
        strided_gather(ty, tx, <int>geom[0], geom + 1, geom + 1 + geom[0],
                       geom[1 + 2 * geom[0]])
    return 0


cdef inline void scatter_set(double* ty, const double* tx, const int64_t* index,
                             Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t k
    for k in range(n):
        ty[index[k]] = tx[k]


cdef void binary_tangent(opcode_t sop, Py_ssize_t n,
                         const double* a, Py_ssize_t na, const double* ta,
                         const double* b, Py_ssize_t nb, const double* tb,
                         const double* y, double* ty, const int64_t* geom) noexcept nogil:
    """ty = da ta + db tb for y = sop(a, b) broadcast to n values (geom as in
    binary_reverse)."""
    cdef Py_ssize_t k, ka = 0, kb = 0
    cdef double da, db
    cdef int ndim, d
    cdef const int64_t* shape
    cdef const int64_t* sa
    cdef const int64_t* sb
    cdef int64_t counter[MAX_NDIM]
    if (na == n or na == 1) and (nb == n or nb == 1):
        for k in range(n):
            ka = k if na == n else 0
            kb = k if nb == n else 0
            binary_partials(sop, a[ka], b[kb], y[k], &da, &db)
            ty[k] = (times(da, ta[ka]) if ta != NULL else 0.0) + (
                times(db, tb[kb]) if tb != NULL else 0.0)
        return
    ndim = <int>geom[0]
    shape = geom + 1
    sa = shape + ndim
    sb = sa + ndim
    for d in range(ndim):
        counter[d] = 0
    for k in range(n):
        binary_partials(sop, a[ka], b[kb], y[k], &da, &db)
        ty[k] = (times(da, ta[ka]) if ta != NULL else 0.0) + (
            times(db, tb[kb]) if tb != NULL else 0.0)
        next_index2(ndim, shape, counter, &ka, sa, &kb, sb)


cdef void reduce_tangent(Py_ssize_t n, const double* tx, double* ty, double scale,
                         const double* weights, const int64_t* geom) noexcept nogil:
    """ty[out(k)] += scale * tx[k] (* weights[k]): the mirror of reduce_reverse."""
    cdef int ndim = <int>geom[0], d
    cdef const int64_t* shape = geom + 1
    cdef const int64_t* so = shape + ndim
    cdef Py_ssize_t k, ko = 0
    cdef int64_t counter[MAX_NDIM]
    cdef double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0
    for d in range(ndim):
        counter[d] = 0
        if so[d] != 0:
            break
    else:                              # a sum of everything: four running sums
        if weights == NULL:
            k = 0
            while k + 4 <= n:
                s0 += tx[k]
                s1 += tx[k + 1]
                s2 += tx[k + 2]
                s3 += tx[k + 3]
                k += 4
            while k < n:
                s0 += tx[k]
                k += 1
            ty[0] += scale * ((s0 + s1) + (s2 + s3))
            return
    for d in range(ndim):
        counter[d] = 0
    for k in range(n):
        ty[ko] += scale * tx[k] * (weights[k] if weights != NULL else 1.0)
        next_index1(ndim, shape, counter, &ko, so)


cdef void cumsum_forward(const double* tx, double* ty, Py_ssize_t outer, Py_ssize_t n,
                         Py_ssize_t inner) noexcept nogil:
    cdef Py_ssize_t o, j, i, base
    cdef double acc
    for o in range(outer):
        for i in range(inner):
            base = o * n * inner + i
            acc = 0.0
            for j in range(n):
                acc += tx[base + j * inner]
                ty[base + j * inner] = acc


cdef void strided_gather(double* ty, const double* tx, int ndim, const int64_t* shape,
                         const int64_t* strides, Py_ssize_t offset) noexcept nogil:
    """ty[k] = tx[offset + sum_d i_d strides[d]] over the multi-indices of shape."""
    cdef Py_ssize_t k = 0, j, total = 1, base = offset, inner, step
    cdef int d
    cdef int64_t counter[MAX_NDIM]
    for d in range(ndim):
        counter[d] = 0
        total *= shape[d]
    if total == 0:
        return
    if ndim == 0:
        ty[0] = tx[base]
        return
    inner = shape[ndim - 1]            # rows along the last axis, then the next row
    step = strides[ndim - 1]
    while True:
        if step == 1:
            memcpy(ty + k, tx + base, <size_t>inner * sizeof(double))
        else:
            for j in range(inner):
                ty[k + j] = tx[base + j * step]
        k += inner
        if k >= total or not next_index1(ndim - 1, shape, counter, &base, strides):
            return


cdef void matmul_tangent(const double* a, const double* ta, const double* b,
                         const double* tb, double* ty, const int64_t* geom) noexcept nogil:
    """ty = ta @ b + a @ tb per batch item (geom as in matmul_reverse); column-major
    view: ty^T = b^T ta^T + tb^T a^T."""
    cdef int batch = <int>geom[0], m = <int>geom[1], k = <int>geom[2], n = <int>geom[3]
    cdef Py_ssize_t sa = geom[4], sb = geom[5], sy = <Py_ssize_t>m * n
    cdef double one = 1.0
    cdef int i
    cdef char notrans = b'N'
    if m == 0 or n == 0 or k == 0:
        return
    for i in range(batch):
        if ta != NULL:   # ty^T (n x m) += b^T (n x k) . ta^T (k x m)
            dgemm(&notrans, &notrans, &n, &m, &k, &one, <double*>b + i * sb, &n,
                  <double*>ta + i * sa, &k, &one, ty + i * sy, &n)
        if tb != NULL:   # ty^T += tb^T (n x k) . a^T (k x m)
            dgemm(&notrans, &notrans, &n, &m, &k, &one, <double*>tb + i * sb, &n,
                  <double*>a + i * sa, &k, &one, ty + i * sy, &n)


cdef object pyfunc_inputs(Tape t, ArrayNode* n):
    """Copies of a Python-rule node's operand values, flat (one value for a scalar)."""
    cdef Operand* x
    cdef Py_ssize_t j
    out = []
    for j in range(n.n_operands):
        x = &t.operands[n.operand0 + j]
        out.append(_copy_f64(operand_values(t, x), x.size))
    return out


cdef object pyfunc_output(Tape t, ArrayNode* n):
    """A Python-rule node's output value: a float, or a flat copy of its array."""
    if n.out_slot >= 0:
        return t.values[n.out_slot]
    return _copy_f64(n.value, n.size)


cdef int pyfunc_evaluate(Tape t, Py_ssize_t r) noexcept nogil:
    """Replay of a Python-rule node: keepalive[pyfunc_eval](inputs) gives its value
    from its operands' (flat copies, as for its rules)."""
    cdef ArrayNode* n = &t.anodes[r]
    cdef const double[::1] out
    cdef double* y
    cdef Py_ssize_t k
    with gil:
        try:
            if n.pyfunc_eval < 0:
                raise TypeError("fasttape internal error: a Python-rule node without a "
                                "value function was replayed")
            out = np.ascontiguousarray(t.keepalive[n.pyfunc_eval](pyfunc_inputs(t, n)),
                                       dtype=np.float64).reshape(-1)
            if out.shape[0] != n.size:
                raise ValueError(f"a value function returned {out.shape[0]} values for "
                                 f"an output of {n.size}")
            y = &t.values[n.out_slot] if n.out_slot >= 0 else n.value
            for k in range(n.size):
                y[k] = out[k]
        except BaseException as e:
            t.sweep_error = e
            return -1
    return 0


cdef int pyfunc_tangent(Tape t, Py_ssize_t r) noexcept nogil:
    """Forward rule written in Python: keepalive[pyfunc_jvp](tangents) with one tangent
    array (or None for a constant) per operand returns the output tangent."""
    cdef ArrayNode* n = &t.anodes[r]
    cdef Operand* x
    cdef double* tx
    cdef double* ty
    cdef const double[::1] out
    cdef Py_ssize_t j, k
    with gil:
        try:
            if n.pyfunc_jvp < 0:
                raise TypeError("forward mode reached an operation that has no forward "
                                "(jvp) rule; use reverse mode (grad, vjp) for it")
            tangents = []
            for j in range(n.n_operands):
                x = &t.operands[n.operand0 + j]
                tx = operand_tangents(t, x)
                tangents.append(None if tx == NULL else _copy_f64(tx, x.size))
            out = np.ascontiguousarray(
                t.keepalive[n.pyfunc_jvp](tangents, pyfunc_output(t, n),
                                          pyfunc_inputs(t, n)),
                dtype=np.float64).reshape(-1)
            if out.shape[0] != n.size:
                raise ValueError(f"a forward rule returned {out.shape[0]} values for an "
                                 f"output of {n.size}")
            ty = &t.tangents[n.out_slot] if n.out_slot >= 0 else &t.array_tangents[n.adj]
            for k in range(n.size):
                ty[k] = out[k]
        except BaseException as e:
            t.sweep_error = e
            return -1
    return 0


# The array steps are called through pointers, which keeps the compiler from inlining
# them into the scalar loops: inlined, they made the scalar reverse sweep and the
# replay ~30% slower (measured: 2.6 -> 3.3 ns per node on Rosenbrock).
ctypedef int (*array_step_t)(Tape, Py_ssize_t) noexcept nogil
ctypedef int (*array_forward_t)(Tape, Py_ssize_t) noexcept nogil
cdef array_step_t array_reverse_step = array_reverse_c
cdef array_step_t array_tangent_step = array_tangent_c
cdef array_forward_t array_forward_step = array_forward_c


# -- which tape records: the thread's stack of active tapes ---------------------------
#
# Each thread has a stack of active tapes: grad() calls and `with Tape()` blocks push
# one, and the innermost records new Variables. The thread's other tapes (its default
# tape, the pool grad() takes tapes from) are _tape_pools'; the same thread-local
# object holds both.

cdef object _state = threading.local()


cdef object tape_thread_local():
    """The thread-local object: .active (the stack), .pool and .default (_tape_pools')."""
    return _state


cdef list active_tapes():
    """This thread's stack of active tapes (the thread's state made on first use)."""
    try:
        return _state.active
    except AttributeError:
        _state.active = []
        _state.pool = []
        _state.default = None
        return _state.active


cpdef push_active(Tape tape):
    active_tapes().append(tape)


cpdef pop_active(Tape tape):
    cdef list active = active_tapes()
    if not active or active[-1] is not tape:
        raise RuntimeError("fasttape: tapes were entered and exited out of order")
    active.pop()
