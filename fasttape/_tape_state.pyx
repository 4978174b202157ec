"""Pickling tapes: the schema of a tape's pickled state, its writer (tape_state, which
Tape.__reduce__ calls through the hook fasttape._wiring fills) and its reader
(restore_tape, which the pickle names).

The state is one dict; every key is listed in STATE_FIELDS below, and the tables of
array nodes and of their operands have named columns (ANODE_COLUMNS,
OPERAND_COLUMNS; the C enums of _tape_state.pxd index them), so that the writer and
the reader share one description. The reader checks every reference, size, index
and geometry a sweep would follow (a corrupt file raises ValueError rather than
crashing a sweep), and records the nodes with Python rules again from their recipes
(OperandSlot marks where a recipe's operands go).
"""
cimport numpy as cnp
from libc.stdint cimport int32_t, int64_t, uint8_t
from libc.string cimport memset

import numpy as np

from fasttape._tape cimport *
from fasttape._arrays import make_array_leaf
from fasttape._variable import make_leaf

cnp.import_array()

# a pointer for the data of empty arrays (never read)
cdef double EMPTY_DATA = 0.0

# -- the schema -------------------------------------------------------------------------

# key -> what it holds. The first group is written for every tape; the second only for
# tapes with array nodes (the reader takes their absence for none).
STATE_FIELDS = {
    "ops": "uint8 per node: its op code",
    "arg0s": "int32 per node: first operand (slot, constants index, array node)",
    "arg1s": "int32 per node: second operand (slot, constants index, extras index)",
    "values": "float64 per slot (= node): the recorded values",
    "constants": "float64: the constants pool, in index order",
    "extras": "int32 pairs: operand slots of OP_SELECT nodes",
    "guard_ops": "uint8 per comparison: CMP_* | GUARD_CONST_RHS",
    "guard_arg0s": "int32 per comparison: its left slot",
    "guard_arg1s": "int32 per comparison: its right slot or constants index",
    "guard_nodes": "int32 per comparison: the node count when it was made",
    "guard_outcomes": "uint8 per comparison: 1 if it was true",
    "guard_locations": "list of 'file:line' per comparison (tapes that locate them)",
    # with array nodes:
    "array_nodes": "int64 table, a row per array node, columns ANODE_COLUMNS",
    "array_scales": "float64 per array node: its scalar parameter c",
    "operands": "int64 table, a row per array operand, columns OPERAND_COLUMNS",
    "geometry": "int64: the geometry pool (shapes, strides, axes)",
    "keepalive": "the NumPy arrays the nodes point into (None for Python rules)",
    "n_array_values": "number of array output values (the adjoint blocks' extent)",
    "array_guards": "(array node, outcome, 'file:line') per mask read as booleans",
    "replayable": "the tape was recorded for replay (trace)",
    "pyfunc_recipes": "array node -> (builder, template, kwargs, shapes): how its "
                      "Python rules are recorded again on load",
}
# the columns of the "array_nodes" table: ArrayNode's fields, by name (_tape_storage.pxd)
ANODE_COLUMNS = ("aop", "sop", "size", "adj", "out_slot", "operand0", "n_operands",
                 "geom", "node", "value_ref", "weights_ref", "index_ref")
# the columns of the "operands" table: Operand's fields (data and index as references)
OPERAND_COLUMNS = ("kind", "ref", "size", "data_ref", "index_ref")
assert len(ANODE_COLUMNS) == N_ANODE_COLUMNS and len(OPERAND_COLUMNS) == N_OPERAND_COLUMNS


# -- the writer -------------------------------------------------------------------------

def reduce_tape(Tape t):
    """What Tape.__reduce__ returns: (restore_tape, (state, max_size))."""
    return restore_tape, (tape_state(t), t.max_size)


def tape_state(Tape t):
    """A tape's state, as STATE_FIELDS describes: op codes, operands, values,
    constants, comparisons, and for array nodes their fields, operands, geometry and
    the NumPy arrays they point into. Nodes whose rules are Python functions (linalg,
    einsum, custom primitives, checkpoint) are code, not data: each is written as its
    recipe (pyfunc_recipes: the function that records it, by reference, and its
    arguments) and recorded again on load (rebuild_python_rules)."""
    cdef Py_ssize_t r, j
    cdef ArrayNode* n
    cdef Operand* o
    cdef int64_t[:, ::1] nodes
    cdef int64_t[:, ::1] operands
    state = t.arrays()
    state["guard_locations"] = list(t.guard_locations)
    if not t.n_anodes:
        return state
    node_table = np.empty((t.n_anodes, N_ANODE_COLUMNS), dtype=np.int64)
    operand_table = np.empty((t.n_operands, N_OPERAND_COLUMNS), dtype=np.int64)
    nodes = node_table
    operands = operand_table
    scales = np.empty(t.n_anodes)
    for r in range(t.n_anodes):
        n = &t.anodes[r]
        if n.aop == AOP_PYFUNC and r not in t.pyfunc_recipes:
            raise TypeError(
                f"a tape with an operation whose rules are Python code "
                f"({getattr(t.keepalive[n.pyfunc], '__name__', 'unnamed')}: "
                f"checkpoint, or a custom rule without a recipe) cannot be pickled")
        nodes[r, A_AOP] = n.aop
        nodes[r, A_SOP] = n.sop
        nodes[r, A_SIZE] = n.size
        nodes[r, A_ADJ] = n.adj
        nodes[r, A_OUT_SLOT] = n.out_slot
        nodes[r, A_OPERAND0] = n.operand0
        nodes[r, A_N_OPERANDS] = n.n_operands
        nodes[r, A_GEOM] = n.geom
        nodes[r, A_NODE] = n.node
        nodes[r, A_VALUE_REF] = n.value_ref
        nodes[r, A_WEIGHTS_REF] = n.weights_ref
        nodes[r, A_INDEX_REF] = n.index_ref
        scales[r] = n.c
    for j in range(t.n_operands):
        o = &t.operands[j]
        operands[j, O_KIND] = o.kind
        operands[j, O_REF] = o.ref
        operands[j, O_SIZE] = o.size
        operands[j, O_DATA_REF] = o.data_ref
        operands[j, O_INDEX_REF] = o.index_ref
    kept = list(t.keepalive)
    for r in t.pyfunc_recipes:         # (code: rebuilt on load from the recipes)
        n = &t.anodes[r]
        for k in (n.pyfunc, n.pyfunc_jvp, n.pyfunc_eval):
            if k >= 0:
                kept[k] = None
    state.update(array_nodes=node_table, array_scales=scales, operands=operand_table,
                 geometry=_copy(t.geometry, t.n_geometry, np.int64),
                 keepalive=kept,
                 n_array_values=t.n_array_values,
                 array_guards=[(g[0], g[2], g[3]) for g in t.array_guards],
                 replayable=t.replayable,
                 pyfunc_recipes=dict(t.pyfunc_recipes))
    return state


# -- the reader -------------------------------------------------------------------------

def restore_tape(dict state, Py_ssize_t max_size):
    """Rebuild a tape from its state (tape_state's dict; STATE_FIELDS)."""
    cdef Tape t = Tape(max_size)
    cdef Py_ssize_t k
    ops = np.ascontiguousarray(state["ops"], dtype=np.uint8)
    arg0s = np.ascontiguousarray(state["arg0s"], dtype=np.int32)
    arg1s = np.ascontiguousarray(state["arg1s"], dtype=np.int32)
    values = np.ascontiguousarray(state["values"], dtype=np.float64)
    constants = np.ascontiguousarray(state["constants"], dtype=np.float64)
    n = ops.shape[0]
    if values.shape[0] != n or arg0s.shape[0] != n or arg1s.shape[0] != n:
        raise ValueError("corrupt tape state: arrays of different lengths")
    array_nodes = state.get("array_nodes")
    extras_state = np.ascontiguousarray(state.get("extras", np.zeros(0)), dtype=np.int32)
    for k in range(n):
        if ops[k] >= N_OPS or ops[k] == OP_ARRAY and array_nodes is None:
            raise ValueError(f"corrupt tape state: op code {ops[k]}")
        check_scalar_operands(ops[k], arg0s[k], arg1s[k], k, constants.shape[0],
                              extras_state)
    for k in range(constants.shape[0]):
        append_constant(t, constants[k])       # same indices: no reuse of equal ones
    extras = np.ascontiguousarray(state.get("extras", np.zeros(0)), dtype=np.int32)
    for k in range(0, extras.shape[0], 2):
        if not (0 <= extras[k] < n and 0 <= extras[k + 1] < n):
            raise ValueError("corrupt tape state: extra operand out of range")
        push_extras(t, extras[k], extras[k + 1])
    if array_nodes is not None:
        t.keepalive = list(state["keepalive"])
        t.replayable = state["replayable"]
        t.push_geometry(np.ascontiguousarray(state["geometry"], dtype=np.int64))
        operands = np.ascontiguousarray(state["operands"], dtype=np.int64)
        array_nodes = np.ascontiguousarray(array_nodes, dtype=np.int64)
        if array_nodes.ndim != 2 or array_nodes.shape[1] != N_ANODE_COLUMNS or \
                operands.ndim != 2 or operands.shape[1] != N_OPERAND_COLUMNS or \
                np.shape(state["array_scales"]) != (array_nodes.shape[0],):
            raise ValueError("corrupt tape state: array node tables")
    for k in range(n):
        if ops[k] == OP_ARRAY:
            if arg0s[k] != t.n_anodes or arg0s[k] >= array_nodes.shape[0]:
                raise ValueError("corrupt tape state: array nodes out of order")
            restore_array_node(t, array_nodes[arg0s[k]], state["array_scales"][arg0s[k]],
                               operands, state.get("pyfunc_recipes", {}))
        push_node(t, ops[k], arg0s[k], arg1s[k], values[k])
    if array_nodes is not None:
        if t.n_anodes != array_nodes.shape[0]:
            raise ValueError("corrupt tape state: array nodes without tape nodes")
        if t.n_array_values != state["n_array_values"]:
            raise ValueError("corrupt tape state: array values")
        for r, recipe in state.get("pyfunc_recipes", {}).items():
            if not (0 <= r < t.n_anodes and t.anodes[r].aop == AOP_PYFUNC):
                raise ValueError("corrupt tape state: a Python-rule node")
            rebuild_python_rules(t, r, recipe)
        guards = []
        for r, outcome, where in state["array_guards"]:
            if not 0 <= r < t.n_anodes or t.anodes[r].aop != AOP_MASK or \
                    np.shape(outcome) != np.shape(t.keepalive[t.anodes[r].value_ref]):
                raise ValueError("corrupt tape state: a comparison of arrays")
            guards.append((r, t.keepalive[t.anodes[r].value_ref],
                           np.asarray(outcome, dtype=bool), str(where)))
        t.array_guards = guards
    for k in range(state["guard_ops"].shape[0]):
        push_guard(t, state["guard_ops"][k], state["guard_arg0s"][k],
                   state["guard_arg1s"][k], state["guard_outcomes"][k])
        t.guard_nodes[k] = state["guard_nodes"][k]
    t.guard_locations = list(state.get("guard_locations", []))
    return t


cdef int check_scalar_operands(opcode_t op, index_t a, index_t b, Py_ssize_t k,
                               Py_ssize_t n_constants, const int32_t[::1] extras) except -1:
    """Node k's operands are earlier slots, constants or (select) extras, as its op
    reads them."""
    bad = ValueError(f"corrupt tape state: an operand of node {k} out of range")
    if op == OP_ARRAY or op == OP_LEAF or op == OP_CONST:
        return 0                       # (array nodes: checked with their fields)
    if op == OP_SELECT:
        if not (0 <= a < k and 0 <= b and b % 2 == 0 and b + 1 < extras.shape[0]
                and 0 <= extras[b] < k and 0 <= extras[b + 1] < k):
            raise bad
        return 0
    if const_operand_c(op) == 1:
        ok = 0 <= a < n_constants and 0 <= b < k
    elif const_operand_c(op) == 2:
        ok = 0 <= a < k and 0 <= b < n_constants
    elif op_arity_c(op) == 2:
        ok = 0 <= a < k and 0 <= b < k
    else:
        ok = 0 <= a < k
    if not ok:
        raise bad
    return 0


cdef void* kept_data(Tape t, Py_ssize_t ref, Py_ssize_t size, object dtype) except NULL:
    """Data of keepalive[ref], checked to be a C-contiguous array of `size` items."""
    if not 0 <= ref < len(t.keepalive):
        raise ValueError("corrupt tape state: array reference out of range")
    arr = t.keepalive[ref]
    if type(arr) is not np.ndarray or arr.dtype != dtype or arr.size != size or \
            not arr.flags.c_contiguous:
        raise ValueError(f"corrupt tape state: kept array {ref} is not {size} {dtype}")
    if size == 0:
        return <void*>&EMPTY_DATA
    return cnp.PyArray_DATA(<cnp.ndarray>arr)


cdef int restore_array_node(Tape t, const int64_t[::1] f, double c,
                            const int64_t[:, ::1] operands,
                            dict state_recipes) except -1:
    """Append array node t.n_anodes from its row of the array_nodes table, checking
    every reference, size and index a sweep would follow (a corrupt file raises
    ValueError rather than crashing a sweep)."""
    cdef Py_ssize_t r = t.n_anodes, j, size = f[A_SIZE]
    cdef Py_ssize_t first = f[A_OPERAND0], count = f[A_N_OPERANDS]
    cdef ArrayNode* n
    cdef Operand* o
    cdef Operand* o0
    bad = ValueError(f"corrupt tape state: array node {r}")
    if not (0 <= f[A_AOP] < N_AOPS) or not 0 <= f[A_SOP] < 256 or \
            first != t.n_operands or not 0 <= count <= operands.shape[0] - first or \
            size < 0 or f[A_NODE] != t.n_nodes:
        raise bad
    if f[A_OUT_SLOT] >= 0:             # a scalar output: the node's own slot
        if f[A_OUT_SLOT] != f[A_NODE] or size != 1 or f[A_VALUE_REF] >= 0:
            raise bad
    elif f[A_ADJ] != t.n_array_values or f[A_VALUE_REF] < 0:   # array outputs, in order
        raise bad
    t.reserve_anode(count)
    n = &t.anodes[r]
    memset(n, 0, sizeof(ArrayNode))
    n.aop, n.sop, n.size = f[A_AOP], f[A_SOP], size
    n.adj, n.out_slot = f[A_ADJ], f[A_OUT_SLOT]
    n.operand0, n.n_operands, n.geom, n.node = first, count, f[A_GEOM], f[A_NODE]
    n.value_ref, n.weights_ref, n.index_ref = -1, -1, -1
    n.c = c
    n.pyfunc = n.pyfunc_jvp = n.pyfunc_eval = -1
    for j in range(count):
        o = &t.operands[first + j]
        memset(o, 0, sizeof(Operand))
        o.kind = operands[first + j, O_KIND]
        o.ref = operands[first + j, O_REF]
        o.size = operands[first + j, O_SIZE]
        o.data_ref, o.index_ref = -1, -1
        if o.kind == OPERAND_ARRAY:
            if not 0 <= o.ref < r or t.anodes[o.ref].size != o.size or \
                    t.anodes[o.ref].value == NULL:
                raise bad
            o.data = t.anodes[o.ref].value
        elif o.kind == OPERAND_SCALAR:
            if not 0 <= o.ref < t.n_nodes or o.size != 1:
                raise bad
        elif o.kind == OPERAND_POOLED:
            if not 0 <= o.ref < t.n_constants or o.size != 1:
                raise bad
        elif o.kind == OPERAND_CONST:
            o.data_ref = operands[first + j, O_DATA_REF]
            o.data = <double*>kept_data(t, o.data_ref, o.size, np.float64)
        else:
            raise bad
        if operands[first + j, O_INDEX_REF] >= 0:    # a join's output positions
            if n.aop != AOP_CONCAT:
                raise bad
            o.index_ref = operands[first + j, O_INDEX_REF]
            o.index = <int64_t*>kept_data(t, o.index_ref, o.size, np.int64)
            check_positions(t.keepalive[o.index_ref], size, bad)
        elif n.aop == AOP_CONCAT:
            raise bad
    o0 = &t.operands[first] if count else NULL
    if n.aop == AOP_PYFUNC and r not in state_recipes:
        raise bad
    expected_operands = {AOP_LEAF: 0, AOP_UNARY: 1, AOP_BINARY: 2, AOP_SUM: 1,
                         AOP_WEIGHTED_SUM: 1, AOP_CUMSUM: 1, AOP_MATMUL: 2,
                         AOP_RESHAPE: 1, AOP_GATHER: 1, AOP_STRIDED: 1, AOP_WHERE: 2,
                         AOP_SCATTER: 1}.get(n.aop)
    if n.aop == AOP_MASK:
        expected_operands = 1 if n.sop == MASK_NOT else 2
    if expected_operands is not None and count != expected_operands or \
            n.aop == AOP_CONCAT and count < 1:
        raise bad
    if n.aop in (AOP_UNARY, AOP_RESHAPE, AOP_CUMSUM) and o0.size != size:
        raise bad
    check_geometry(t, n, bad)
    if n.out_slot < 0:
        n.value_ref = f[A_VALUE_REF]
        if n.aop == AOP_RESHAPE:       # a view of its operand's values: again
            if o0.kind != OPERAND_ARRAY:
                raise bad
            source = t.keepalive[t.anodes[o0.ref].value_ref]
            t.keepalive[n.value_ref] = source.reshape(np.shape(t.keepalive[n.value_ref]))
        n.value = <double*>kept_data(t, n.value_ref, size, np.float64)
        t.n_array_values += size
    if f[A_WEIGHTS_REF] >= 0:          # weights: per input value of a weighted sum,
        n.weights_ref = f[A_WEIGHTS_REF]   # else per output value
        n.weights = <double*>kept_data(
            t, n.weights_ref, o0.size if n.aop == AOP_WEIGHTED_SUM else size, np.float64)
    elif n.aop == AOP_WEIGHTED_SUM or n.aop == AOP_WHERE:
        raise bad
    if f[A_INDEX_REF] >= 0:
        n.index_ref = f[A_INDEX_REF]
        if n.aop == AOP_GATHER:
            n.index = <int64_t*>kept_data(t, n.index_ref, size, np.int64)
            check_positions(t.keepalive[n.index_ref], o0.size, bad)
        elif n.aop == AOP_SCATTER:
            n.index = <int64_t*>kept_data(t, n.index_ref, o0.size, np.int64)
            check_positions(t.keepalive[n.index_ref], size, bad)
        elif n.aop == AOP_WEIGHTED_SUM:    # scratch counts
            n.index = <int64_t*>kept_data(t, n.index_ref, size, np.int64)
        else:
            raise bad
    elif n.aop in (AOP_GATHER, AOP_SCATTER, AOP_WEIGHTED_SUM):
        raise bad
    t.n_operands = first + count
    t.n_anodes = r + 1
    return 0


cdef int rebuild_python_rules(Tape t, Py_ssize_t r, tuple recipe) except -1:
    """Give loaded Python-rule node r its rules again: run its builder on Variables
    of a scratch tape holding the node's operand values, and take the rules of the
    node that records."""
    cdef ArrayNode* n = &t.anodes[r]
    cdef Operand* o
    cdef Tape scratch = Tape()
    cdef Py_ssize_t j, last
    builder, template, kwargs, shapes = recipe
    if len(shapes) != n.n_operands:
        raise ValueError("corrupt tape state: a Python-rule node's recipe")
    operands = []
    for j in range(n.n_operands):
        o = &t.operands[n.operand0 + j]
        values = _copy_f64(t.values + o.ref if o.kind == OPERAND_SCALAR else
                           &t.constants[o.ref] if o.kind == OPERAND_POOLED else o.data,
                           o.size).reshape(shapes[j])
        if o.kind == OPERAND_ARRAY or o.kind == OPERAND_SCALAR:
            operands.append(make_leaf(scratch, float(values)) if shapes[j] == () else
                            make_array_leaf(scratch, values))
        else:
            operands.append(float(values) if shapes[j] == () else values)
    scratch.replayable = t.replayable
    out = builder(*[operands[x.position] if type(x) is OperandSlot else x
                    for x in template], **kwargs)
    last = -1                          # the node that records the builder's result
    for j in range(scratch.n_anodes):
        if scratch.anodes[j].node == getattr(out, "node", -1):
            last = j
    if last < 0 or scratch.anodes[last].aop != AOP_PYFUNC or \
            scratch.anodes[last].n_operands != n.n_operands or \
            scratch.anodes[last].size != n.size:
        raise ValueError("corrupt tape state: a Python-rule node's builder recorded "
                         "another operation")
    rules = [scratch.keepalive[scratch.anodes[last].pyfunc],
             scratch.keepalive[scratch.anodes[last].pyfunc_jvp]
             if scratch.anodes[last].pyfunc_jvp >= 0 else None,
             scratch.keepalive[scratch.anodes[last].pyfunc_eval]
             if scratch.anodes[last].pyfunc_eval >= 0 else None]
    n = &t.anodes[r]
    n.pyfunc = len(t.keepalive)
    t.keepalive.append(rules[0])
    if rules[1] is not None:
        n.pyfunc_jvp = len(t.keepalive)
        t.keepalive.append(rules[1])
    if rules[2] is not None:
        n.pyfunc_eval = len(t.keepalive)
        t.keepalive.append(rules[2])
    t.pyfunc_recipes[r] = recipe
    return 0


class OperandSlot:
    """In a Python-rule node's recipe: where its operand `position` goes."""
    __slots__ = ("position",)

    def __init__(self, position):
        self.position = position

    def __reduce__(self):
        return (OperandSlot, (self.position,))

    def __repr__(self):
        return f"OperandSlot({self.position})"


cdef int check_positions(object index, Py_ssize_t bound, object bad) except -1:
    if np.size(index) and not (np.min(index) >= 0 and np.max(index) < bound):
        raise bad
    return 0


cdef int check_geometry(Tape t, ArrayNode* n, object bad) except -1:
    """The node's geometry is in the pool, and every position it makes a sweep read or
    write lies inside the arrays."""
    cdef Operand* x = &t.operands[n.operand0] if n.n_operands else NULL
    needs = n.aop in (AOP_SUM, AOP_WEIGHTED_SUM, AOP_CUMSUM, AOP_MATMUL, AOP_STRIDED)
    if n.geom < 0:
        if needs:
            raise bad
        if n.aop in (AOP_BINARY, AOP_MASK, AOP_WHERE):    # flat: sizes n or 1
            for j in range(n.n_operands):
                if t.operands[n.operand0 + j].size not in (1, n.size):
                    raise bad
        return 0
    if not (needs or n.aop in (AOP_BINARY, AOP_MASK)) or n.geom >= t.n_geometry:
        raise bad
    pool = np.asarray(<int64_t[:t.n_geometry]>t.geometry)[n.geom:]
    if n.aop == AOP_CUMSUM:
        if len(pool) < 3 or pool[0] * pool[1] * pool[2] != n.size or min(pool[:3]) < 0:
            raise bad
        return 0
    if n.aop == AOP_MATMUL:
        if len(pool) < 6 or min(pool[:6]) < 0:
            raise bad
        batch, m, k, cols, sa, sb = (int(v) for v in pool[:6])
        x1 = &t.operands[n.operand0 + 1]
        if batch * m * cols != n.size or (batch - 1) * sa + m * k > x.size or \
                (batch - 1) * sb + k * cols > x1.size:
            raise bad
        return 0
    ndim = int(pool[0])
    if not 0 <= ndim <= MAX_NDIM:
        raise bad
    width = {AOP_BINARY: 1 + 3 * ndim, AOP_MASK: 1 + 3 * ndim, AOP_SUM: 1 + 2 * ndim,
             AOP_WEIGHTED_SUM: 1 + 2 * ndim, AOP_STRIDED: 2 + 2 * ndim}[n.aop]
    if len(pool) < width:
        raise bad
    shape = pool[1:1 + ndim]
    if np.any(shape < 0):
        raise bad
    count = int(np.prod(shape)) if ndim else 1

    def reach(strides):               # the largest position reached (-1: none)
        return int(np.sum((shape - 1) * strides)) if count else -1

    if n.aop in (AOP_BINARY, AOP_MASK):
        if n.n_operands != 2:
            raise bad
        for j in range(2):
            strides = pool[1 + (j + 1) * ndim:1 + (j + 2) * ndim]
            if count != n.size or np.any(strides < 0) or \
                    reach(strides) >= t.operands[n.operand0 + j].size:
                raise bad
    elif n.aop == AOP_SUM or n.aop == AOP_WEIGHTED_SUM:
        strides = pool[1 + ndim:1 + 2 * ndim]
        if count != x.size or np.any(strides < 0) or reach(strides) >= n.size:
            raise bad
    else:                              # AOP_STRIDED: shape, strides, offset
        strides = pool[1 + ndim:1 + 2 * ndim]
        offset = int(pool[1 + 2 * ndim])
        low = offset + int(np.sum((shape - 1) * np.minimum(strides, 0))) if count else 0
        high = offset + int(np.sum((shape - 1) * np.maximum(strides, 0))) if count else -1
        if count != n.size or low < 0 or high >= x.size:
            raise bad
    return 0
