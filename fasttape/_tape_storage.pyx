# The tape's storage: TapeStorage holds the buffers (laid out in _tape_storage.pxd),
# grows them, resets them, and shows them (inspection, dump()). The sweeps that read
# them live beside it, one module per concern (_reverse, _forward, _second_order,
# _batched, and the array steps in _array_reverse and _array_forward); Tape
# (fasttape._tape) is this class with the sweeps' entry points, the class the rest of
# fasttape uses. Knows nothing about Variables or the Python-level API.

from cpython.mem cimport PyMem_Free, PyMem_Realloc
from cpython.pyport cimport PY_SSIZE_T_MAX
cimport cython
from libc.stdint cimport INT32_MAX, int32_t, int64_t, int8_t, uint8_t
from libc.string cimport memcpy, memset

from collections import namedtuple

import numpy as np
cimport numpy as cnp

from fasttape._opmath cimport (binary_partials, binary_second, compiled_op_codes,
                               eval_binary, eval_unary, unary_partial, unary_second)

from fasttape import _optable

cnp.import_array()

cdef double EMPTY_DATA = 0.0

# One row per op code, in code order: (name, code, arity), arity counting Variable
# operands (constants excluded); from the op table, fasttape/_optable.py.
OP_TABLE = tuple((name, code, _optable.op_arity(op, variant))
                 for code, (name, op, variant) in enumerate(_optable.expanded()))
# the codes as the compiled C enum has them (tests compare the two)
COMPILED_OP_CODES = compiled_op_codes()

# The array ops, in enum order (see _tape_storage.pxd): (name, code)
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


# -- array-node geometry: the one reading of the geometry pool ------------------------
#
# An array node's geometry is a run of int64 values in the tape's geometry pool; its
# layout depends on the node's op. decode_geometry is the Python reading of every
# layout (for dump(), array_node(), the recording sweeps and the pickle reader's
# checks), with Python ints, so that a check computed from them cannot wrap.

# AOP_BINARY, AOP_MASK: the output's shape, and per operand its strides along it (0
# along broadcast axes)
BinaryGeometry = namedtuple("BinaryGeometry", "shape a_strides b_strides")
# AOP_SUM, AOP_WEIGHTED_SUM: the input's shape, and per input axis the output's
# stride (0 along reduced axes)
ReduceGeometry = namedtuple("ReduceGeometry", "shape out_strides")
# AOP_CUMSUM: the lanes are x[o, :, i], o < outer, i < inner, of n values
CumsumGeometry = namedtuple("CumsumGeometry", "outer n inner")
# AOP_MATMUL: batch products of (m, k) @ (k, n); an operand's batch stride is 0 when
# it is one matrix for every product
MatmulGeometry = namedtuple("MatmulGeometry", "batch m k n a_stride b_stride")
# AOP_STRIDED: the view's shape, its element strides in the operand, and the offset of
# its first element
StridedGeometry = namedtuple("StridedGeometry", "shape strides offset")


def geometry_width(int aop, Py_ssize_t ndim):
    """How many pool entries the geometry of an `aop` node of ndim dimensions takes
    (0: the op has no geometry; ndim is ignored for fixed layouts)."""
    if aop == AOP_BINARY or aop == AOP_MASK:
        return 1 + 3 * ndim
    if aop == AOP_SUM or aop == AOP_WEIGHTED_SUM:
        return 1 + 2 * ndim
    if aop == AOP_CUMSUM:
        return 3
    if aop == AOP_MATMUL:
        return 6
    if aop == AOP_STRIDED:
        return 2 + 2 * ndim
    return 0


def decode_geometry(int aop, pool, Py_ssize_t offset):
    """The geometry of an `aop` node at `offset` in `pool` (a sequence of ints) as
    one of the named tuples above, of Python ints; None for an op without geometry.
    ValueError when the run does not fit in the pool or its ndim is out of range."""
    cdef Py_ssize_t ndim = 0, width
    if geometry_width(aop, 0) == 0:
        return None
    if not 0 <= offset < len(pool):
        raise ValueError(f"geometry offset {offset} outside a pool of {len(pool)}")
    if aop not in (AOP_CUMSUM, AOP_MATMUL):
        if not 0 <= pool[offset] <= MAX_NDIM:
            raise ValueError(f"{pool[offset]} dimensions (at most {MAX_NDIM})")
        ndim = pool[offset]
    width = geometry_width(aop, ndim)
    if offset + width > len(pool):
        raise ValueError("a geometry run past the end of the pool")
    run = [int(v) for v in pool[offset:offset + width]]
    if aop == AOP_CUMSUM:
        return CumsumGeometry(*run)
    if aop == AOP_MATMUL:
        return MatmulGeometry(*run)
    shape = tuple(run[1:1 + ndim])
    if aop == AOP_BINARY or aop == AOP_MASK:
        return BinaryGeometry(shape, tuple(run[1 + ndim:1 + 2 * ndim]),
                              tuple(run[1 + 2 * ndim:1 + 3 * ndim]))
    if aop == AOP_STRIDED:
        return StridedGeometry(shape, tuple(run[1 + ndim:1 + 2 * ndim]),
                               run[1 + 2 * ndim])
    return ReduceGeometry(shape, tuple(run[1 + ndim:1 + 2 * ndim]))


# The writers of the runs decode_geometry reads (the recorders in _arrays.pyx push
# what these return; encode_geometry is their Python door, the inverse of
# decode_geometry). The C reading is the *_layout functions of _tape_storage.pxd.

cdef list binary_run(shape, a_strides, b_strides):
    return [len(shape), *shape, *a_strides, *b_strides]


cdef list reduce_run(shape, out_strides):
    return [len(shape), *shape, *out_strides]


cdef list cumsum_run(outer, n, inner):
    return [outer, n, inner]


cdef list matmul_run(batch, m, k, n, a_stride, b_stride):
    return [batch, m, k, n, a_stride, b_stride]


cdef list strided_run(shape, strides, offset):
    return [len(shape), *shape, *strides, offset]


def encode_geometry(int aop, layout):
    """The pool run of a geometry (one of the named tuples above) of an `aop` node."""
    if aop == AOP_BINARY or aop == AOP_MASK:
        return binary_run(layout.shape, layout.a_strides, layout.b_strides)
    if aop == AOP_SUM or aop == AOP_WEIGHTED_SUM:
        return reduce_run(layout.shape, layout.out_strides)
    if aop == AOP_CUMSUM:
        return cumsum_run(layout.outer, layout.n, layout.inner)
    if aop == AOP_MATMUL:
        return matmul_run(layout.batch, layout.m, layout.k, layout.n, layout.a_stride,
                          layout.b_stride)
    if aop == AOP_STRIDED:
        return strided_run(layout.shape, layout.strides, layout.offset)
    raise ValueError(f"array op {aop} has no geometry")

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


cdef extern from *:
    """
    #if defined(__linux__)
    #include <stdint.h>
    #include <sys/mman.h>
    #endif
    /* Ask for transparent huge pages on a large buffer (Linux; a hint, its result
       ignored): a fresh buffer of tens of megabytes then costs a few page faults
       instead of thousands. NumPy does the same for its large arrays. */
    static void fasttape_advise_huge_pages(void* p, size_t n) {
    #if defined(__linux__) && defined(MADV_HUGEPAGE)
        uintptr_t start = ((uintptr_t)p + 4095) & ~(uintptr_t)4095;
        uintptr_t end = ((uintptr_t)p + n) & ~(uintptr_t)4095;
        if (end > start) madvise((void*)start, end - start, MADV_HUGEPAGE);
    #else
        (void)p; (void)n;
    #endif
    }
    """
    void fasttape_advise_huge_pages(void* p, size_t n) nogil


cdef size_t HUGE_PAGE_BUFFER = 4 << 20     # bytes from which a buffer asks for them


cdef void* grow_buffer(void* buf, Py_ssize_t new_count, size_t item_size) except NULL:
    cdef size_t size = <size_t>new_count * item_size
    cdef void* p = PyMem_Realloc(buf, size)
    if p == NULL:
        raise MemoryError(f"fasttape: cannot grow a tape buffer to {new_count} entries")
    if size >= HUGE_PAGE_BUFFER:
        fasttape_advise_huge_pages(p, size)
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


cdef class TapeStorage:
    """The buffers of a tape (see Tape, the class to use, for the parameters)."""

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
        self.borrowed_arrays = []

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
        PyMem_Free(self.lane_adjoints)
        PyMem_Free(self.array_adjoint_tangents)

    def forget_sweep_after_fork(self):
        """In a child process just forked: a sweep that another thread of the parent
        was running never ends here (only the forking thread lives on), so the tape
        is idle; its next replay writes every value again."""
        self.sweeping = False

    # -- growth (called from the inline push_* helpers in _tape_storage.pxd) -----

    cdef int check_not_sweeping(self) except -1:
        """Recording while a C sweep holds pointers into the buffers would move them."""
        if self.sweeping:
            raise RuntimeError(
                "fasttape: a derivative rule tried to record on the tape that is being "
                "swept (a custom rule that computes with Variables it closed over?)")
        return 0

    cdef int check_slot(self, Py_ssize_t slot) except -1:
        if not 0 <= slot < self.n_slots:
            raise IndexError(f"no value slot {slot} on a tape of {self.n_slots}")
        return 0

    cdef int check_anode(self, Py_ssize_t r) except -1:
        if not 0 <= r < self.n_anodes:
            raise IndexError(f"no array node {r} on a tape of {self.n_anodes}")
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
        # new containers (a pickled state may share the old ones), made only when the
        # old hold something: a small gradient's reset is most of its bookkeeping
        if self.array_guards:
            self.array_guards = []
        if self.pyfunc_recipes:
            self.pyfunc_recipes = {}
        if self.keepalive:
            self.keepalive = []
        if self.guard_locations:
            self.guard_locations = []
        if self.borrowed_arrays:
            for array in self.borrowed_arrays:
                array.flags.writeable = True
            self.borrowed_arrays = []
        self.epoch += 1

    @property
    def node_capacity(self):
        """Nodes the buffers hold without growing (reset() keeps them)."""
        return self.node_capacity

    def scalar_adjoint(self, Py_ssize_t slot):
        """The adjoint of slot `slot` from the last reverse sweep (0.0 for a slot the
        sweep did not reach, or when the tape has not been swept since recording)."""
        self.check_slot(slot)
        if self.swept_epoch != self.epoch or slot >= self.adjoint_capacity:
            return 0.0
        return self.adjoints[slot]

    def node(self, Py_ssize_t i):
        """(op code, arg0, arg1) of node i."""
        if not 0 <= i < self.n_nodes:
            raise IndexError(f"no node {i} on a tape of {self.n_nodes}")
        return self.ops[i], self.arg0s[i], self.arg1s[i]

    def constant(self, Py_ssize_t k):
        """Entry k of the constants pool."""
        if not 0 <= k < self.n_constants:
            raise IndexError(f"no constant {k} in a pool of {self.n_constants}")
        return self.constants[k]

    cdef index_t select_node(self, Py_ssize_t i) except -1:
        """The extras index of OP_SELECT node i (IndexError / ValueError otherwise)."""
        if not 0 <= i < self.n_nodes:
            raise IndexError(f"no node {i} on a tape of {self.n_nodes}")
        if self.ops[i] != OP_SELECT:
            raise ValueError(f"node {i} is not a select")
        return self.arg1s[i]

    def select_operands(self, Py_ssize_t i):
        """(condition slot, slot taken when it is > 0, slot taken otherwise) of an
        OP_SELECT node i."""
        cdef index_t b = self.select_node(i)
        return self.arg0s[i], self.extras[b], self.extras[b + 1]

    def selected(self, Py_ssize_t i):
        """The slot an OP_SELECT node i takes its value from, at the current values."""
        cdef index_t b = self.select_node(i)
        return self.extras[b if self.values[self.arg0s[i]] > 0.0 else b + 1]

    def array_node(self, Py_ssize_t r):
        """Array node r, read (an ArrayNodeInfo: typed fields, the geometry decoded
        when asked; for the recording sweeps, dump() and the pickle checks)."""
        self.check_anode(r)
        return ArrayNodeInfo.read(self, r)

    def geometry_of(self, Py_ssize_t r):
        """Array node r's geometry, decoded (decode_geometry), or None."""
        cdef Py_ssize_t start, width
        self.check_anode(r)
        start = self.anodes[r].geom
        if start < 0 or geometry_width(self.anodes[r].aop, 0) == 0:
            return None
        if start >= self.n_geometry:
            raise ValueError(f"array node {r}: geometry offset out of range")
        # (the run alone: ndim first, or the fixed widths' largest)
        width = min(geometry_width(self.anodes[r].aop,
                                   min(max(self.geometry[start], 0), MAX_NDIM)),
                    self.n_geometry - start)
        return decode_geometry(self.anodes[r].aop,
                               [self.geometry[start + k] for k in range(width)], 0)

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
        self.check_anode(anode)
        cdef ArrayNode* n = &self.anodes[anode]
        cdef const double[::1] v = np.ascontiguousarray(values, dtype=np.float64).reshape(-1)
        if n.aop != AOP_LEAF or n.value == NULL or n.adj < 0:
            raise ValueError("not an array input")
        if v.shape[0] != n.size:
            raise ValueError(f"an input of {n.size} values got {v.shape[0]}")
        if n.size:
            memcpy(n.value, &v[0], <size_t>n.size * sizeof(double))

    def value_at(self, Py_ssize_t slot):
        """The value in slot `slot`."""
        self.check_slot(slot)
        return self.values[slot]

    def array_adjoint(self, Py_ssize_t anode):
        """Copy of the adjoints of array node `anode` from the last sweep (flat)."""
        self.check_anode(anode)
        cdef ArrayNode* n = &self.anodes[anode]
        if n.adj < 0:                         # a one-value output in a scalar slot
            return np.array([self.scalar_adjoint(n.out_slot)])
        if self.swept_epoch != self.epoch or anode >= self.array_adjoint_live_capacity \
                or n.adj + n.size > self.array_adjoint_capacity \
                or not self.array_adjoint_live[anode]:
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
                    + self.adjoint_tangent_capacity + self.lane_adjoint_capacity
                    + self.constant_capacity
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

    def select(self, Py_ssize_t condition_slot, Py_ssize_t a_slot, Py_ssize_t b_slot,
               double value):
        """Record y = a if values[condition] > 0 else b; returns its node (= slot)."""
        self.check_slot(condition_slot)
        self.check_slot(a_slot)
        self.check_slot(b_slot)
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
        self.check_anode(r)
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
        if op < N_OPS and CONST_OPERAND[op] == position:
            return repr(self.constant(ref))
        return f"v{ref}"

    def __repr__(self):
        return (f"<fasttape.Tape: {self.n_nodes} nodes, {self.n_slots} slots, "
                f"{self.n_guards} comparisons, epoch {self.epoch}>")


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


@cython.auto_pickle(False)
cdef class OperandInfo:
    """One operand of an array node, read from the tape (see Operand)."""
    cdef readonly int kind             # OPERAND_*
    cdef readonly Py_ssize_t ref       # array node or slot
    cdef readonly Py_ssize_t size
    cdef readonly Py_ssize_t node      # the tape node of an array or scalar operand
    cdef readonly object data          # a constant's values (array or pooled number)
    cdef readonly object index         # AOP_CONCAT: the output positions of its values


@cython.auto_pickle(False)
cdef class ArrayNodeInfo:
    """Array node r of a tape, read once into typed fields: what the recording sweeps
    (higher order) use in place of the C structs. `layout` (the geometry, decoded)
    and `weights_node` are computed when asked."""
    cdef readonly int aop, sop
    cdef readonly Py_ssize_t size, out_slot, node, r
    cdef readonly double c
    cdef readonly tuple operands       # OperandInfo each
    cdef readonly object value, weights, index, pyfunc, pyfunc_jvp
    cdef TapeStorage tape

    @staticmethod
    cdef ArrayNodeInfo read(TapeStorage t, Py_ssize_t r):
        cdef ArrayNode* n = &t.anodes[r]
        cdef Operand* o
        cdef OperandInfo oi
        cdef Py_ssize_t j
        cdef ArrayNodeInfo info = ArrayNodeInfo.__new__(ArrayNodeInfo)
        info.tape, info.r = t, r
        info.aop, info.sop, info.size = n.aop, n.sop, n.size
        info.out_slot, info.node, info.c = n.out_slot, n.node, n.c
        operands = []
        for j in range(n.n_operands):
            o = &t.operands[n.operand0 + j]
            oi = OperandInfo.__new__(OperandInfo)
            oi.kind, oi.ref, oi.size = o.kind, o.ref, o.size
            oi.node = t.anodes[o.ref].node if o.kind == OPERAND_ARRAY else o.ref
            oi.data = (t.keepalive[o.data_ref] if o.data_ref >= 0 else
                       t.constants[o.ref] if o.kind == OPERAND_POOLED else None)
            oi.index = t.keepalive[o.index_ref] if o.index_ref >= 0 else None
            operands.append(oi)
        info.operands = tuple(operands)
        info.value = t.keepalive[n.value_ref] if n.value_ref >= 0 else None
        info.weights = t.keepalive[n.weights_ref] if n.weights_ref >= 0 else None
        info.index = t.keepalive[n.index_ref] if n.index_ref >= 0 else None
        info.pyfunc = t.keepalive[n.pyfunc] if n.aop == AOP_PYFUNC else None
        info.pyfunc_jvp = t.keepalive[n.pyfunc_jvp] if n.pyfunc_jvp >= 0 else None
        return info

    @property
    def layout(self):
        """The node's geometry, decoded (decode_geometry), or None."""
        return self.tape.geometry_of(self.r)

    @property
    def weights_node(self):
        """The array node whose values are the weights (a WHERE's recorded mask, on
        tapes recorded for replay, the only ones with such masks), or -1."""
        cdef ArrayNode* n = &self.tape.anodes[self.r]
        if n.aop != AOP_WHERE or n.weights_ref < 0 or not self.tape.replayable:
            return -1
        return self.tape._node_with_value(n.weights_ref)
