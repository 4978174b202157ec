# The Wengert tape's storage: its buffers, the array-node and operand structs, and
# the inline recording helpers (the contract of _tape_storage.pyx; every other
# tape module reads the buffers as laid out here).
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

from libc.stdint cimport int32_t, int64_t, uint8_t, uint64_t
from libc.string cimport memcpy

from fasttape._opcodes cimport *     # opcode_t, index_t and the OP_* codes

# The scalar op codes (OP_*) are generated from the op table, fasttape/_optable.py,
# into _opcodes.pxd, with OP_FIRST_<KIND> / OP_LAST_<KIND> markers for each kind.

# Array operations (ArrayNode.aop). Elementwise ones take their formula from the
# scalar op code in ArrayNode.sop, so each derivative is written once.
cdef enum:
    AOP_LEAF = 0       # an input array
    AOP_UNARY          # y[k] = sop(x[k])
    AOP_BINARY         # y = sop(a, b) with NumPy broadcasting (geometry: shape, strides)
    AOP_SUM            # y = c * sum of x over axes (geometry: in shape, out strides)
    AOP_WEIGHTED_SUM   # reduce whose derivative is weights[k] (max, min, prod)
    AOP_CUMSUM         # y = cumsum(x) along an axis (geometry: outer, n, inner)
    AOP_MATMUL         # y = a @ b, batched (geometry: batch, m, k, n, batch strides)
    AOP_RESHAPE        # y = x with another shape, same values in the same order
    AOP_GATHER         # y[k] = x[index[k]] (advanced indexing and other selections)
    AOP_STRIDED        # y = a strided view of x: basic slicing, transposes, broadcast_to
                       # (geometry: ndim, shape, element strides, offset)
    AOP_CONCAT         # y[operand_j.index[k]] = x_j[k] (concatenate, stack, array())
    AOP_WHERE          # y[k] = a[k] if weights[k] else b[k]
    AOP_PYFUNC         # reverse step by a Python callable (einsum, linalg, ...)
    AOP_SCATTER        # y = zeros; y[index[k]] += x[k] (the reverse of a gather)
    AOP_MASK           # y = 1.0 where sop(a, b) holds else 0.0 (comparisons of arrays and
                       # their logical combinations; no derivative), broadcast as BINARY
    N_AOPS

# The most dimensions an array node may have (the C walkers' multi-index counters)
cdef enum:
    MAX_NDIM = 32

# Operand kinds of array nodes
cdef enum:
    OPERAND_CONST = 0  # values at Operand.data (kept alive by the tape), no adjoint
    OPERAND_ARRAY = 1  # the output of array node Operand.ref
    OPERAND_SCALAR = 2 # scalar slot Operand.ref
    OPERAND_POOLED = 3 # a scalar constant: constants[Operand.ref], no adjoint

ctypedef struct Operand:
    uint8_t kind           # OPERAND_*
    Py_ssize_t ref         # array node index or scalar slot (unused for constants)
    double* data           # values of a constant or of an array node (arrays never move)
    Py_ssize_t size        # number of values
    int64_t* index         # AOP_CONCAT: output position of each value; else NULL
    Py_ssize_t data_ref    # keepalive index of a constant's data, or -1
    Py_ssize_t index_ref   # keepalive index of `index`, or -1

ctypedef struct ArrayNode:
    uint8_t aop            # AOP_* code
    uint8_t sop            # scalar op code giving the formula of elementwise ops
    Py_ssize_t size        # number of output values
    double* value          # output values, C order (NULL when the output is a scalar slot)
    Py_ssize_t adj         # offset of the output's adjoints in array_adjoints, or -1
    Py_ssize_t out_slot    # scalar slot of a one-value output, or -1
    Py_ssize_t operand0    # index of the first operand in the operands pool
    Py_ssize_t n_operands
    Py_ssize_t geom        # offset of this node's geometry in the geometry pool, or -1
    double c               # scalar parameter (scale of AOP_SUM)
    double* weights        # per-value weights/mask (AOP_WEIGHTED_SUM, AOP_WHERE), or NULL
    int64_t* index         # gather positions (AOP_GATHER, AOP_SCATTER); per-output
                           # counts for the replay of AOP_WEIGHTED_SUM; or NULL
    Py_ssize_t pyfunc      # AOP_PYFUNC: keepalive index of its reverse rule
    Py_ssize_t pyfunc_jvp  # AOP_PYFUNC: keepalive index of its forward rule, or -1
    Py_ssize_t pyfunc_eval # AOP_PYFUNC: keepalive index of its value function (replay)
    Py_ssize_t node        # the tape node that refers to this array node
    Py_ssize_t value_ref   # keepalive index of the output array, or -1 (scalar output)
    Py_ssize_t weights_ref # keepalive index of `weights`, or -1
    Py_ssize_t index_ref   # keepalive index of `index`, or -1

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

cdef inline bint compare_c(int cmp, double x, double y) noexcept nogil:
    """x CMP y for a comparison code (CMP_LT ... CMP_NE); nan compares as in C."""
    if cmp == CMP_LT:
        return x < y
    elif cmp == CMP_LE:
        return x <= y
    elif cmp == CMP_GT:
        return x > y
    elif cmp == CMP_GE:
        return x >= y
    elif cmp == CMP_EQ:
        return x == y
    return x != y

# AOP_MASK's sop: a CMP_* code compares values; these combine masks
cdef enum:
    MASK_AND = 16
    MASK_OR
    MASK_XOR
    MASK_NOT           # one operand

# AOP_WEIGHTED_SUM's sop: which reduction (its forward formula and weights)
cdef enum:
    WEIGHTED_MAX = 0
    WEIGHTED_PROD = 1
    WEIGHTED_MIN = 2


cdef class TapeStorage:
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
    # constants pool, and a small direct-mapped cache of recent constants (by their
    # bits) so that a loop's `x * 0.5` reuses one entry instead of adding one per pass
    cdef double* constants
    cdef Py_ssize_t n_constants
    cdef Py_ssize_t constant_capacity
    cdef uint64_t constant_cache_bits[16]
    cdef index_t constant_cache_index[16]
    # extras: operand slots of nodes with more than two (OP_SELECT's a and b)
    cdef index_t* extras
    cdef Py_ssize_t n_extras
    cdef Py_ssize_t extra_capacity
    # guards: one entry per recorded comparison
    cdef opcode_t* guard_ops        # CMP_* | GUARD_CONST_RHS
    cdef index_t* guard_arg0s       # left operand slot
    cdef index_t* guard_arg1s       # right operand slot, or constants index
    cdef index_t* guard_nodes       # n_nodes when the comparison was made
    cdef uint8_t* guard_outcomes    # 1 if the comparison was true
    cdef Py_ssize_t n_guards
    cdef Py_ssize_t guard_capacity

    # array nodes (capacity anode_capacity), their operands, and the geometry pool
    # (shapes, strides and axes as int64 runs that array nodes point into)
    cdef ArrayNode* anodes
    cdef Py_ssize_t n_anodes
    cdef Py_ssize_t anode_capacity
    cdef Operand* operands
    cdef Py_ssize_t n_operands
    cdef Py_ssize_t operand_capacity
    cdef int64_t* geometry
    cdef Py_ssize_t n_geometry
    cdef Py_ssize_t geometry_capacity
    cdef double* array_adjoints       # adjoints of array outputs, n_array_values of them
    cdef Py_ssize_t n_array_values
    cdef Py_ssize_t array_adjoint_capacity
    # during a sweep, per array node: 0 while its adjoint block has not been touched
    # (unzeroed: the node is skipped, a matrix product writes it instead of adding),
    # 1 once it holds adjoints
    cdef uint8_t* array_adjoint_live
    cdef Py_ssize_t array_adjoint_live_capacity
    # forward mode: tangents of the slots and of the array values (like the adjoints)
    cdef double* tangents
    cdef Py_ssize_t tangent_capacity
    cdef double* array_tangents
    cdef Py_ssize_t array_tangent_capacity
    cdef double* adjoint_tangents     # forward-over-reverse: tangents of the adjoints
    cdef Py_ssize_t adjoint_tangent_capacity
    cdef double* array_adjoint_tangents   # ... of the array values' adjoints
    cdef Py_ssize_t array_adjoint_tangent_capacity
    cdef list keepalive               # NumPy arrays and callables the nodes point into
    cdef public bint pooled           # lent by the thread's pool for one call (grad)
    cdef public list borrowed_arrays  # callers' large arrays made read-only while a
                                      # pooled tape reads them (see _arrays.snapshot);
                                      # reset() makes them writeable again
    cdef object sweep_error           # exception raised by a Python step of a sweep
    cdef bint sweeping                # a C sweep is running: buffers must not move
    cdef public bint locate_guards    # remember where each comparison was made (trace)
    cdef public bint replayable       # recorded for replay (trace): comparisons of
                                      # arrays are recorded as masks
    cdef public list guard_locations  # "file:line" of each guard when locate_guards
    cdef public dict pyfunc_recipes   # array node -> how to rebuild its Python rules
                                      # after pickling: (builder, args, kwargs, shapes)
    cdef public list array_guards     # masks used as plain booleans: (array node,
                                      # its live values, outcome, "file:line"),
                                      # re-checked on replay

    cdef readonly Py_ssize_t epoch  # bumped by reset(); Variables remember theirs
    cdef Py_ssize_t max_size        # limit on nodes and slots (2**31 - 1 unless testing)
    # the last reverse sweep: adjoints[0:swept_slot_end] are valid while
    # swept_epoch == epoch
    cdef Py_ssize_t swept_epoch
    cdef Py_ssize_t swept_slot_end
    # Jacobians' lanes of adjoints and their bookkeeping (_variable.scalar_jacobian,
    # see _reverse_lanes), kept from call to call as a pooled tape's other buffers are
    cdef double* lane_adjoints
    cdef Py_ssize_t lane_adjoint_capacity
    cdef object __weakref__

    cdef int check_not_sweeping(self) except -1
    # the checks of the Python door: IndexError unless slot / array node r is on
    # this tape (the C sweeps behind them index the buffers unchecked)
    cdef int check_slot(self, Py_ssize_t slot) except -1
    cdef int check_anode(self, Py_ssize_t r) except -1
    cdef index_t select_node(self, Py_ssize_t i) except -1
    cdef int grow_nodes(self) except -1
    cdef int grow_slots(self, Py_ssize_t needed) except -1
    cdef int grow_constants(self) except -1
    cdef int grow_guards(self) except -1
    cdef int grow_extras(self) except -1
    cdef Py_ssize_t push_anode(self, uint8_t aop, uint8_t sop, Py_ssize_t size,
                               Py_ssize_t n_operands, object value) except -1
    cdef int reserve_anode(self, Py_ssize_t n_operands) except -1
    cdef Operand* operand(self, Py_ssize_t anode, Py_ssize_t j) noexcept
    cdef Py_ssize_t push_geometry(self, object values) except -1
    cdef void* keep(self, object array) except NULL
    cpdef reset(self)


cdef inline int check_idle(TapeStorage t) except -1:
    """Refuse to prepare or start a sweep of a tape that is being swept (by another
    thread, or by a rule of its own sweep): it would zero or overwrite the buffers
    that sweep is using. Called under the GIL, as is begin_sweep, so that two threads
    cannot both pass."""
    if t.sweeping:
        raise RuntimeError(
            "fasttape: this tape is already being swept, by another thread or by a "
            "rule of its own sweep; a tape serves one sweep at a time (grad and "
            "friends record on per-thread tapes: share functions, not tapes)")
    return 0


cdef inline int begin_sweep(TapeStorage t) except -1:
    """Mark t as being swept: its buffers must not move, nor serve another sweep."""
    check_idle(t)
    t.sweeping = True
    return 0


cdef inline Py_ssize_t push_node(TapeStorage t, opcode_t op, index_t a, index_t b,
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


cdef inline index_t push_constant(TapeStorage t, double c) except -1:
    """The index of c in the constants pool: a recent equal constant's (same bits), or
    a new entry."""
    cdef uint64_t bits
    memcpy(&bits, &c, sizeof(double))
    cdef int h = <int>((bits * <uint64_t>0x9E3779B97F4A7C15) >> 60)
    if t.constant_cache_index[h] >= 0 and t.constant_cache_bits[h] == bits:
        return t.constant_cache_index[h]
    cdef index_t k = append_constant(t, c)
    t.constant_cache_bits[h] = bits
    t.constant_cache_index[h] = k
    return k


cdef inline index_t append_constant(TapeStorage t, double c) except -1:
    """Append c to the constants pool; returns its index."""
    cdef Py_ssize_t k = t.n_constants
    if k >= t.constant_capacity:
        t.grow_constants()
    t.constants[k] = c
    t.n_constants = k + 1
    return <index_t>k


cdef inline index_t push_extras(TapeStorage t, index_t a, index_t b) except -1:
    """Append the pair (a, b) to the extras pool; returns the index of a."""
    cdef Py_ssize_t k = t.n_extras
    if k + 2 > t.extra_capacity:
        t.grow_extras()
    t.extras[k] = a
    t.extras[k + 1] = b
    t.n_extras = k + 2
    return <index_t>k


cdef inline int push_guard(TapeStorage t, opcode_t cmp, index_t a, index_t b,
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


# buffers of the sweeps (grown to `needed` entries) and copies out of them
cdef void* grow_buffer(void* buf, Py_ssize_t new_count, size_t item_size) except NULL
cdef int ensure_doubles(double** buf, Py_ssize_t* capacity, Py_ssize_t needed) except -1
cdef object _copy(void* p, Py_ssize_t n, object dtype)   # a NumPy array of n items at p
cdef object _copy_f64(double* p, Py_ssize_t n)

# the op table's arity and constant-operand position of an op code
cdef int op_arity_c(opcode_t op) noexcept
cdef int const_operand_c(opcode_t op) noexcept


# -- array-node geometry, written (the runs the layouts below read) --------------------

cdef list binary_run(shape, a_strides, b_strides)
cdef list reduce_run(shape, out_strides)
cdef list cumsum_run(outer, n, inner)
cdef list matmul_run(batch, m, k, n, a_stride, b_stride)
cdef list strided_run(shape, strides, offset)


# -- array-node geometry, typed -------------------------------------------------------
#
# The C reading of an array node's geometry run (the Python reading is decode_geometry
# in _tape_storage.pyx; the writers are the *_geometry functions there). The kernels
# take these structs, so that the layout of a run is spelled out here alone.

ctypedef struct BinaryLayout:      # AOP_BINARY, AOP_MASK: [ndim, shape, a_strides, b_strides]
    int ndim
    const int64_t* shape           # the output's shape
    const int64_t* a_strides       # first operand's element strides along it (0: broadcast)
    const int64_t* b_strides       # second operand's

ctypedef struct ReduceLayout:      # AOP_SUM, AOP_WEIGHTED_SUM: [ndim, shape, out_strides]
    int ndim
    const int64_t* shape           # the input's shape
    const int64_t* out_strides     # the output's stride per input axis (0: reduced)

ctypedef struct CumsumLayout:      # AOP_CUMSUM: [outer, n, inner]: lanes x[o, :, i]
    Py_ssize_t outer
    Py_ssize_t n
    Py_ssize_t inner

ctypedef struct MatmulLayout:      # AOP_MATMUL: [batch, m, k, n, a_stride, b_stride]
    int batch                      # products of (m, k) @ (k, n)
    int m
    int k
    int n
    Py_ssize_t a_stride            # an operand's batch stride, 0 when it is one matrix
    Py_ssize_t b_stride

ctypedef struct StridedLayout:     # AOP_STRIDED: [ndim, shape, strides, offset]
    int ndim
    const int64_t* shape           # the view's shape
    const int64_t* strides         # its element strides in the operand
    Py_ssize_t offset              # the operand position of its first element


cdef inline const int64_t* geometry_run(TapeStorage t, const ArrayNode* n) noexcept nogil:
    return &t.geometry[n.geom]


cdef inline BinaryLayout binary_layout(TapeStorage t, const ArrayNode* n) noexcept nogil:
    cdef const int64_t* g = geometry_run(t, n)
    cdef BinaryLayout out
    out.ndim = <int>g[0]
    out.shape = g + 1
    out.a_strides = g + 1 + out.ndim
    out.b_strides = g + 1 + 2 * out.ndim
    return out


cdef inline ReduceLayout reduce_layout(TapeStorage t, const ArrayNode* n) noexcept nogil:
    cdef const int64_t* g = geometry_run(t, n)
    cdef ReduceLayout out
    out.ndim = <int>g[0]
    out.shape = g + 1
    out.out_strides = g + 1 + out.ndim
    return out


cdef inline CumsumLayout cumsum_layout(TapeStorage t, const ArrayNode* n) noexcept nogil:
    cdef const int64_t* g = geometry_run(t, n)
    cdef CumsumLayout out
    out.outer = g[0]
    out.n = g[1]
    out.inner = g[2]
    return out


cdef inline MatmulLayout matmul_layout(TapeStorage t, const ArrayNode* n) noexcept nogil:
    cdef const int64_t* g = geometry_run(t, n)
    cdef MatmulLayout out
    out.batch = <int>g[0]
    out.m = <int>g[1]
    out.k = <int>g[2]
    out.n = <int>g[3]
    out.a_stride = g[4]
    out.b_stride = g[5]
    return out


cdef inline StridedLayout strided_layout(TapeStorage t, const ArrayNode* n) noexcept nogil:
    cdef const int64_t* g = geometry_run(t, n)
    cdef StridedLayout out
    out.ndim = <int>g[0]
    out.shape = g + 1
    out.strides = g + 1 + out.ndim
    out.offset = g[1 + 2 * out.ndim]
    return out
