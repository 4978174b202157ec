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
from libc.stdint cimport INT32_MAX, int32_t, int64_t, uint8_t
from libc.string cimport memset

import hashlib

import numpy as np

from fasttape._tape cimport *
from fasttape._arrays import make_array_leaf
from fasttape._variable import make_leaf
from fasttape._tape_storage import decode_geometry
from fasttape._version import __version__
from fasttape import _optable

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
    "format": "the format of this state (FORMAT_VERSION)",
    "writer": "the fasttape version that wrote it (for the reader's messages)",
    "digest": "digest() of every other field and max_size",
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
# The format of the state (a reader refuses another), and the digest that makes a
# damaged file (a flipped byte, a cut) fail to load instead of loading as another
# computation; both are keys of the state beside STATE_FIELDS.
FORMAT_VERSION = 2

# the columns of the "array_nodes" table: ArrayNode's fields, by name (_tape_storage.pxd)
ANODE_COLUMNS = ("aop", "sop", "size", "adj", "out_slot", "operand0", "n_operands",
                 "geom", "node", "value_ref", "weights_ref", "index_ref")
# the columns of the "operands" table: Operand's fields (data and index as references)
OPERAND_COLUMNS = ("kind", "ref", "size", "data_ref", "index_ref")
assert len(ANODE_COLUMNS) == N_ANODE_COLUMNS and len(OPERAND_COLUMNS) == N_OPERAND_COLUMNS


# the scalar op codes an elementwise array node may take its formula from
UNARY_SOPS = frozenset(code for code, (_, op, _v) in enumerate(_optable.expanded())
                       if op.kind == "unary")
BINARY_SOPS = frozenset(code for code, (_, op, variant) in enumerate(_optable.expanded())
                        if op.kind == "binary" or op.kind == "arithmetic"
                        and variant == "VV")
MASK_SOPS = frozenset((CMP_LT, CMP_LE, CMP_GT, CMP_GE, CMP_EQ, CMP_NE, MASK_AND,
                       MASK_OR, MASK_XOR, MASK_NOT))
WEIGHTED_SOPS = frozenset((WEIGHTED_MAX, WEIGHTED_PROD, WEIGHTED_MIN))


# -- the writer -------------------------------------------------------------------------

def reduce_tape(Tape t):
    """What Tape.__reduce__ returns: (restore_tape, (state, max_size))."""
    state = tape_state(t)
    state["format"] = FORMAT_VERSION
    state["writer"] = __version__
    state["digest"] = digest(state, t.max_size)
    return restore_tape, (state, t.max_size)


def digest(state, *extra):
    """A digest of a pickled state's contents (every key but "digest"): arrays by
    dtype, shape and bytes, numbers by their repr, containers recursively, code (a
    Python-rule node's builder) by its qualified name."""
    h = hashlib.blake2b(digest_size=16)
    _feed(h, {k: v for k, v in state.items() if k != "digest"})
    _feed(h, extra)
    return h.hexdigest()


cdef _feed(h, obj):
    t = type(obj)
    if t is np.ndarray:
        h.update(f"a{obj.dtype.str}{obj.shape}".encode())
        h.update(np.ascontiguousarray(obj).tobytes())
    elif t is dict:
        h.update(f"d{len(obj)}".encode())
        for k, v in obj.items():
            _feed(h, k)
            _feed(h, v)
    elif t is list or t is tuple:
        h.update(f"l{len(obj)}".encode())
        for v in obj:
            _feed(h, v)
    elif obj is None or t is bool or t is int or t is float or t is str or \
            isinstance(obj, np.generic):
        h.update(f"{t.__name__}:{obj!r};".encode())
    elif t is type:
        h.update(f"type:{obj.__module__}.{obj.__qualname__};".encode())
    elif hasattr(obj, "__slots__") and not callable(obj):   # Structure, OperandSlot
        h.update(f"o:{t.__module__}.{t.__qualname__}".encode())
        for name in obj.__slots__:
            _feed(h, getattr(obj, name, None))
    else:                              # code: by name
        h.update(f"c:{getattr(obj, '__module__', '?')}."
                 f"{getattr(obj, '__qualname__', t.__qualname__)};".encode())


def check_digest(state, *extra):
    """ValueError unless state carries this format and the digest of its contents."""
    if type(state) is not dict:
        raise ValueError("corrupt state: not a dict")
    if state.get("format") != FORMAT_VERSION:
        raise ValueError(f"a state of format {state.get('format')!r} (written by "
                         f"fasttape {state.get('writer', 'before 0.1.0')}); this "
                         f"fasttape ({__version__}) reads format {FORMAT_VERSION} "
                         f"(load it with the fasttape that wrote it)")
    if state.get("digest") != digest(state, *extra):
        raise ValueError("corrupt state: its contents do not match their digest "
                         "(a damaged file)")
    return 0


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

def restore_tape(state, max_size):
    """Rebuild a tape from its state (tape_state's dict; STATE_FIELDS). A state that
    is not one a tape wrote raises ValueError."""
    check_digest(state, max_size)
    try:
        return restore_checked(state, max_size)
    except (KeyError, TypeError, IndexError, AttributeError, OverflowError) as e:
        raise ValueError(f"corrupt tape state: {type(e).__name__}: {e}") from None


cdef object int_array(object values, object dtype, Py_ssize_t low, Py_ssize_t high,
                      str what):
    """values as a C-contiguous array of dtype, every value checked to lie in
    [low, high] before the conversion (which would wrap)."""
    a = np.asarray(values)
    if a.ndim != 1 or a.dtype.kind not in "iub":
        raise ValueError(f"corrupt tape state: {what} is not a vector of integers")
    if a.size and (int(a.min()) < low or int(a.max()) > high):
        raise ValueError(f"corrupt tape state: {what} out of range")
    return np.ascontiguousarray(a, dtype=dtype)


cdef object float_vector(object values, str what):
    a = np.asarray(values)
    if a.ndim != 1 or a.dtype != np.float64:
        raise ValueError(f"corrupt tape state: {what} is not a float64 vector")
    return np.ascontiguousarray(a)


cdef object restore_checked(dict state, Py_ssize_t max_size):
    cdef Tape t = Tape(max_size)
    cdef Py_ssize_t k, n, n_guards
    ops = int_array(state["ops"], np.uint8, 0, N_OPS - 1, "ops")
    n = ops.shape[0]
    arg0s = int_array(state["arg0s"], np.int32, -2**31, 2**31 - 1, "arg0s")
    arg1s = int_array(state["arg1s"], np.int32, -2**31, 2**31 - 1, "arg1s")
    values = float_vector(state["values"], "values")
    constants = float_vector(state["constants"], "constants")
    if values.shape[0] != n or arg0s.shape[0] != n or arg1s.shape[0] != n:
        raise ValueError("corrupt tape state: arrays of different lengths")
    array_nodes = state.get("array_nodes")
    extras = int_array(state.get("extras", np.zeros(0, dtype=np.int32)), np.int32,
                       0, n - 1, "extras")
    if extras.shape[0] % 2:
        raise ValueError("corrupt tape state: extras come in pairs")
    for k in range(n):
        if ops[k] == OP_ARRAY and array_nodes is None:
            raise ValueError(f"corrupt tape state: op code {ops[k]}")
        check_scalar_operands(ops[k], arg0s[k], arg1s[k], k, constants.shape[0],
                              extras)
    for k in range(constants.shape[0]):
        append_constant(t, constants[k])       # same indices: no reuse of equal ones
    for k in range(0, extras.shape[0], 2):
        push_extras(t, extras[k], extras[k + 1])
    if array_nodes is not None:
        # arrays a replay writes into are the tape's own: a read-only array of the
        # pickle (its memory may be a bytes object, or a read-only mapping) is copied
        kept = list(state["keepalive"])
        for k in range(len(kept)):
            if type(kept[k]) is np.ndarray and not kept[k].flags.writeable:
                kept[k] = np.array(kept[k], copy=True)
                kept[k].setflags(write=False)
        t.keepalive = kept
        t.replayable = bool(state["replayable"])
        t.push_geometry(int_array(state["geometry"], np.int64, -2**63, 2**63 - 1,
                                  "geometry"))
        operands = np.asarray(state["operands"])
        array_nodes = np.asarray(array_nodes)
        if array_nodes.ndim != 2 or array_nodes.shape[1] != N_ANODE_COLUMNS or \
                array_nodes.dtype != np.int64 or operands.dtype != np.int64 or \
                operands.ndim != 2 or operands.shape[1] != N_OPERAND_COLUMNS or \
                np.shape(state["array_scales"]) != (array_nodes.shape[0],):
            raise ValueError("corrupt tape state: array node tables")
        operands = np.ascontiguousarray(operands)
        array_nodes = np.ascontiguousarray(array_nodes)
        scales = np.asarray(state["array_scales"], dtype=np.float64)
        recipes = state.get("pyfunc_recipes", {})
        if type(recipes) is not dict:
            raise ValueError("corrupt tape state: recipes")
    for k in range(n):
        if ops[k] == OP_ARRAY:
            if arg0s[k] != t.n_anodes or arg0s[k] >= array_nodes.shape[0]:
                raise ValueError("corrupt tape state: array nodes out of order")
            restore_array_node(t, array_nodes[arg0s[k]], scales[arg0s[k]], operands,
                               recipes)
        push_node(t, ops[k], arg0s[k], arg1s[k], values[k])
    if array_nodes is not None:
        if t.n_anodes != array_nodes.shape[0]:
            raise ValueError("corrupt tape state: array nodes without tape nodes")
        if t.n_array_values != state["n_array_values"]:
            raise ValueError("corrupt tape state: array values")
        for r, recipe in recipes.items():
            if not (type(r) is int and 0 <= r < t.n_anodes and
                    t.anodes[<Py_ssize_t>r].aop == AOP_PYFUNC and type(recipe) is tuple
                    and len(recipe) == 4):
                raise ValueError("corrupt tape state: a Python-rule node")
            rebuild_python_rules(t, r, recipe)
        guards = []
        for r, outcome, where in state["array_guards"]:
            if not (type(r) is int and 0 <= r < t.n_anodes) or \
                    t.anodes[<Py_ssize_t>r].aop != AOP_MASK or \
                    t.anodes[<Py_ssize_t>r].value_ref < 0 or \
                    np.shape(outcome) != np.shape(t.keepalive[t.anodes[<Py_ssize_t>r].value_ref]):
                raise ValueError("corrupt tape state: a comparison of arrays")
            guards.append((r, t.keepalive[t.anodes[<Py_ssize_t>r].value_ref],
                           np.asarray(outcome, dtype=bool), str(where)))
        t.array_guards = guards
    restore_guards(t, state, n)
    locations = state.get("guard_locations", [])
    if type(locations) is not list or len(locations) > t.n_guards or \
            any(type(w) is not str for w in locations):
        raise ValueError("corrupt tape state: guard locations")
    t.guard_locations = list(locations)
    return t


cdef int restore_guards(Tape t, dict state, Py_ssize_t n) except -1:
    """The comparisons: each reads slots recorded before it (or a constant) and was
    made at a node count the tape reaches."""
    cdef Py_ssize_t k, m
    guard_ops = int_array(state["guard_ops"], np.uint8, 0, GUARD_CONST_RHS | 7,
                          "guard_ops")
    m = guard_ops.shape[0]
    arg0s = int_array(state["guard_arg0s"], np.int32, 0, n - 1, "guard_arg0s")
    arg1s = int_array(state["guard_arg1s"], np.int32, 0, 2**31 - 1, "guard_arg1s")
    nodes = int_array(state["guard_nodes"], np.int32, 0, n, "guard_nodes")
    outcomes = int_array(state["guard_outcomes"], np.uint8, 0, 1, "guard_outcomes")
    if not arg0s.shape[0] == arg1s.shape[0] == nodes.shape[0] == outcomes.shape[0] == m:
        raise ValueError("corrupt tape state: comparison arrays of different lengths")
    for k in range(m):
        if guard_ops[k] & 7 > CMP_NE or \
                not arg1s[k] < (t.n_constants if guard_ops[k] & GUARD_CONST_RHS else n):
            raise ValueError(f"corrupt tape state: comparison {k}")
        push_guard(t, guard_ops[k], arg0s[k], arg1s[k], outcomes[k])
        t.guard_nodes[k] = nodes[k]
    return 0


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
        if f[A_OUT_SLOT] != f[A_NODE] or size != 1 or f[A_VALUE_REF] >= 0 or \
                f[A_ADJ] != -1 or f[A_AOP] == AOP_LEAF:
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
    if n.aop == AOP_UNARY and n.sop not in UNARY_SOPS or \
            n.aop == AOP_BINARY and n.sop not in BINARY_SOPS or \
            n.aop == AOP_MASK and n.sop not in MASK_SOPS or \
            n.aop == AOP_WEIGHTED_SUM and n.sop not in WEIGHTED_SOPS:
        raise bad
    if expected_operands is not None and count != expected_operands or \
            n.aop == AOP_CONCAT and count < 1:
        raise bad
    if (n.aop in (AOP_UNARY, AOP_RESHAPE, AOP_CUMSUM) or
            n.aop == AOP_MASK and n.sop == MASK_NOT) and o0.size != size:
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
    write lies inside the arrays (decoded as Python ints: no product or sum wraps)."""
    cdef Py_ssize_t j
    sizes = [t.operands[n.operand0 + j].size for j in range(n.n_operands)]
    needs = n.aop in (AOP_SUM, AOP_WEIGHTED_SUM, AOP_CUMSUM, AOP_MATMUL, AOP_STRIDED)
    if n.geom < 0:
        if needs:
            raise bad
        if n.aop in (AOP_BINARY, AOP_MASK, AOP_WHERE):    # flat: sizes n or 1
            for size in sizes:
                if size not in (1, n.size):
                    raise bad
        return 0
    if not (needs or n.aop in (AOP_BINARY, AOP_MASK)) or \
            n.aop == AOP_MASK and n.sop == MASK_NOT:
        raise bad
    try:
        g = decode_geometry(n.aop, np.asarray(<int64_t[:t.n_geometry]>t.geometry),
                            n.geom)
    except ValueError:
        raise bad from None
    if n.aop == AOP_CUMSUM:
        if min(g) < 0 or g.outer * g.n * g.inner != n.size:
            raise bad
        return 0
    if n.aop == AOP_MATMUL:
        # the recorder's layout exactly: a is batch (or one) (m, k) matrices, b
        # (k, n) ones, batch strides m * k and k * n (or 0); the kernels pass the
        # dimensions to BLAS as int
        if min(g[:4]) < 0 or max(g[:4]) > INT32_MAX or \
                g.a_stride not in (0, g.m * g.k) or g.b_stride not in (0, g.k * g.n) or \
                g.batch * g.m * g.n != n.size or \
                sizes[0] != (g.batch if g.a_stride else 1) * g.m * g.k or \
                sizes[1] != (g.batch if g.b_stride else 1) * g.k * g.n or \
                (g.a_stride or g.b_stride) and g.batch < 2:
            raise bad
        return 0
    if any(d < 0 for d in g.shape):
        raise bad
    count = 1
    for d in g.shape:
        count *= d

    def reach(strides):               # the largest position reached (-1: none)
        return sum((d - 1) * s for d, s in zip(g.shape, strides)) if count else -1

    if n.aop in (AOP_BINARY, AOP_MASK):
        if count != n.size:
            raise bad
        for strides, size in zip((g.a_strides, g.b_strides), sizes):
            if any(s < 0 for s in strides) or reach(strides) >= size:
                raise bad
    elif n.aop == AOP_SUM or n.aop == AOP_WEIGHTED_SUM:
        if count != sizes[0] or any(s < 0 for s in g.out_strides) or \
                reach(g.out_strides) >= n.size:
            raise bad
    else:                              # AOP_STRIDED: shape, strides, offset
        if count != n.size:
            raise bad
        if count:
            low = g.offset + sum((d - 1) * min(s, 0) for d, s in zip(g.shape, g.strides))
            high = g.offset + sum((d - 1) * max(s, 0) for d, s in zip(g.shape, g.strides))
            if low < 0 or high >= sizes[0]:
                raise bad
    return 0
