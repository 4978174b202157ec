# What every array step uses (declarations only, all inline): the multi-index walkers
# over the geometry pool, where an operand's values, adjoints and tangents are, and
# the flat copies a step with Python rules hands to them.

from libc.stdint cimport int64_t
from libc.string cimport memset

from fasttape._opcodes cimport OP_POW_VV, opcode_t
from fasttape._opmath cimport binary_partials
from fasttape._opmath_helpers cimport pow_dbase
from fasttape._tape_storage cimport (OPERAND_ARRAY, OPERAND_POOLED, OPERAND_SCALAR,
                                     ArrayNode, Operand, TapeStorage, _copy_f64)


# -- partials of an elementwise step whose second operand may be constant ---------------

cdef inline void step_partials(opcode_t sop, double a, double b, double y, double* da,
                               double* db, bint need_b) noexcept nogil:
    """binary_partials, but without d/db when b is a constant (need_b false) for pow:
    x**4 on arrays is a binary pow node whose exponent is a constant array, and
    d/dexponent (a log per value) was most of its derivatives' cost."""
    if sop == OP_POW_VV and not need_b:
        da[0] = pow_dbase(a, b)
        db[0] = 0.0
    else:
        binary_partials(sop, a, b, y, da, db)


# -- walking a shape in C order --------------------------------------------------------

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


# -- an operand's blocks ---------------------------------------------------------------

cdef inline double* operand_values(TapeStorage t, Operand* o) noexcept nogil:
    if o.kind == OPERAND_SCALAR:
        return &t.values[o.ref]
    if o.kind == OPERAND_POOLED:
        return &t.constants[o.ref]
    return o.data


cdef inline double* live_adjoints(TapeStorage t, Py_ssize_t r) noexcept nogil:
    """Array node r's adjoint block, zeroed on first use in this sweep."""
    cdef ArrayNode* n = &t.anodes[r]
    if not t.array_adjoint_live[r]:
        memset(&t.array_adjoints[n.adj], 0, <size_t>n.size * sizeof(double))
        t.array_adjoint_live[r] = 1
    return &t.array_adjoints[n.adj]


cdef inline double* operand_adjoints(TapeStorage t, Operand* o) noexcept nogil:
    """Where the operand's adjoints accumulate; NULL for constants."""
    if o.kind == OPERAND_ARRAY:
        return live_adjoints(t, o.ref)
    if o.kind == OPERAND_SCALAR:
        return &t.adjoints[o.ref]
    return NULL


cdef inline double* operand_block(TapeStorage t, Operand* o, double* per_slot,
                                  double* per_array_value) noexcept nogil:
    """The operand's entries in a pair of per-slot / per-array-value buffers (its
    tangents, adjoint tangents, ...); NULL for constants."""
    if o.kind == OPERAND_ARRAY:
        return &per_array_value[t.anodes[o.ref].adj]
    if o.kind == OPERAND_SCALAR:
        return &per_slot[o.ref]
    return NULL


cdef inline double* operand_tangents(TapeStorage t, Operand* o) noexcept nogil:
    """The operand's tangents; NULL for constants (tangent zero)."""
    return operand_block(t, o, t.tangents, t.array_tangents)


# -- Python rules: the values they are handed ------------------------------------------

cdef inline object pyfunc_inputs(TapeStorage t, ArrayNode* n):
    """Copies of a Python-rule node's operand values, flat (one value for a scalar)."""
    cdef Operand* x
    cdef Py_ssize_t j
    out = []
    for j in range(n.n_operands):
        x = &t.operands[n.operand0 + j]
        out.append(_copy_f64(operand_values(t, x), x.size))
    return out


cdef inline object pyfunc_output(TapeStorage t, ArrayNode* n):
    """A Python-rule node's output value: a float, or a flat copy of its array."""
    if n.out_slot >= 0:
        return t.values[n.out_slot]
    return _copy_f64(n.value, n.size)
