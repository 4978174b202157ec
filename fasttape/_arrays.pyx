# ArrayVariable and the recording of array operations: each NumPy-level operation on
# ArrayVariables is ONE tape node (an ArrayNode) whose forward value NumPy computes and
# whose reverse step runs in C (_array_reverse.pyx: array_reverse_c).
#
# Every array value on a tape is a C-contiguous, read-only float64 ndarray kept alive by
# the tape until it is reset; nodes point at its data. A full reduction (or any array
# operation with one value and no shape, like x[3] or a 1-d dot product) yields a
# scalar Variable, so scalar code after it runs on the fast scalar path.

cimport cython
cimport numpy as cnp
from libc.stdint cimport INT32_MAX, int64_t

import numpy as np

from fasttape._tape_pools cimport recording_paused
from fasttape._opmath cimport eval_unary
from fasttape._tape cimport *
from fasttape._variable cimport (Variable, as_double, check_live, handle_at,
                                 new_variable, raise_mismatch, raise_stale, value_of)
from fasttape._variable import unsupported_ufunc
from fasttape.errors import ComplexInputError, StaleVariableError, TapeMismatchError

cnp.import_array()


# -- operands --------------------------------------------------------------------------

cdef inline int check_array_live(ArrayVariable v) except -1:
    if v.epoch != v.tape.epoch:
        raise_stale_array()
    return 0


cdef int raise_stale_array() except -1:
    raise StaleVariableError(
        "this ArrayVariable belongs to a tape that has been reset since it was "
        "recorded (grad() resets its tape when it returns); use .value to keep a "
        "plain array")


cdef object float_array(object x, str what):
    """x as a C-contiguous float64 ndarray; integer and bool data are converted,
    complex and object data rejected."""
    arr = np.asarray(x)
    kind = arr.dtype.kind
    if kind == "c":
        # (grad and its relatives catch this one and take complex arguments apart)
        raise ComplexInputError(f"{what}: a complex array where a real float64 array is "
                                f"expected")
    if kind not in "fiub":
        raise TypeError(f"{what}: cannot use an array of dtype {arr.dtype}")
    # (np.ascontiguousarray would turn a 0-d array into shape (1,)); asarray copies only
    # when it must, in NumPy 1 and 2 alike (np.array's copy=None is NumPy 2's spelling)
    return np.asarray(arr, dtype=np.float64, order="C")


cdef Tape tape_of(tuple args):
    """The one tape of the Variables among args (None if there are none: callers that
    record must check, see recording_tape)."""
    cdef Tape t = None, u
    for x in args:
        if type(x) is ArrayVariable:
            check_array_live(<ArrayVariable>x)
            u = (<ArrayVariable>x).tape
        elif type(x) is Variable:
            check_live(<Variable>x)
            u = (<Variable>x).tape
        elif type(x) is Tape:          # (a recorded mask's)
            u = <Tape>x
        else:
            continue
        if t is None:
            t = u
        elif u is not t:
            raise TapeMismatchError(
                f"cannot combine Variables recorded on two different tapes ({t!r} and "
                f"{u!r}); each grad() call records on its own tape")
    return t


cdef Tape recording_tape(tuple args):
    """The tape to record an operation of `args` on; TypeError if none is a Variable."""
    cdef Tape t = tape_of(args)
    if t is None:
        raise TypeError("fasttape internal error: an operation without Variables "
                        "reached the recorder")
    return t


cdef object value_or_array(object x, bint complex_to_none=False):
    """The NumPy-level value of an operand: an ndarray, a float, or x's float array.
    complex_to_none (binary operations, matmul): None for a complex operand, which
    the complex layer takes (see below), instead of ComplexInputError."""
    cdef double c
    if type(x) is ArrayVariable:
        return (<ArrayVariable>x).value
    if type(x) is Variable:
        return value_of(<Variable>x)
    if type(x) is float:
        return x
    if as_double(x, &c):
        return c
    if complex_to_none and COMPLEX_OPERATION is not None and (
            isinstance(x, complex) or isinstance(x, np.complexfloating) or
            getattr(x, "dtype", None) is not None and x.dtype.kind == "c" or
            isinstance(x, (list, tuple)) and np.iscomplexobj(x)):
        return None
    return float_array(x, "operand")


# -- complex operands ----------------------------------------------------------------------
#
# A complex number is two real values (fasttape._complex.ComplexArray, a layer above).
# A binary operation or matmul whose operand turns out to be complex (x * 1j, x @ C,
# x + z) hands itself to COMPLEX_OPERATION(ufunc, a, b); x.astype(complex) to
# AS_COMPLEX(x). Both are found only where a real operand would have failed to
# convert, so that real operations pay nothing for them. fasttape._wiring fills them.
cdef object COMPLEX_OPERATION = None
cdef object AS_COMPLEX = None
cdef object COMPLEX_CLASS = None      # (NumPy functions given one defer to it)


def register_complex_operations(operation, as_complex, complex_class):
    global COMPLEX_OPERATION, AS_COMPLEX, COMPLEX_CLASS
    COMPLEX_OPERATION = operation
    AS_COMPLEX = as_complex
    COMPLEX_CLASS = complex_class


cdef inline Tape pair_tape(object a, object b):
    """The tape of the Variables among a and b (at least one is a Variable)."""
    cdef Tape t = None, u = None
    if type(a) is ArrayVariable:
        check_array_live(<ArrayVariable>a)
        t = (<ArrayVariable>a).tape
    elif type(a) is Variable:
        check_live(<Variable>a)
        t = (<Variable>a).tape
    if type(b) is ArrayVariable:
        check_array_live(<ArrayVariable>b)
        u = (<ArrayVariable>b).tape
    elif type(b) is Variable:
        check_live(<Variable>b)
        u = (<Variable>b).tape
    if t is None:
        if u is None:
            raise TypeError("fasttape internal error: an operation without Variables "
                            "reached the recorder")
        return u
    if u is not None and u is not t:
        return tape_of((a, b))       # raises the mismatch error
    return t


cdef inline Py_ssize_t size_of(object value):
    """Number of values of a float or an ndarray operand value."""
    if type(value) is float:
        return 1
    return cnp.PyArray_SIZE(<cnp.ndarray>value)


cdef int set_operand(Tape t, Py_ssize_t r, Py_ssize_t j, object x,
                     object x_value) except -1:
    """Describe operand j of array node r: a Variable, an ArrayVariable, or a constant
    (x_value, a float or float64 array, is kept alive by the tape)."""
    cdef Operand* o = t.operand(r, j)
    cdef ArrayVariable av
    cdef double c
    if type(x) is ArrayVariable:
        av = <ArrayVariable>x
        o.kind = OPERAND_ARRAY
        o.ref = av.anode
        o.data = t.anodes[av.anode].value
        o.size = t.anodes[av.anode].size
        if o.data == NULL:     # the leaf of a scalar-output node (never an ArrayVariable)
            raise RuntimeError("fasttape internal error: array operand without data")
    elif type(x) is Variable:
        o.kind = OPERAND_SCALAR
        o.ref = (<Variable>x).slot
        o.size = 1
    elif type(x_value) is float:
        o.kind = OPERAND_POOLED
        o.ref = push_constant(t, <double>x_value)
        o.size = 1
    else:
        arr = snapshot(np.ascontiguousarray(x_value, dtype=np.float64), t)
        o.kind = OPERAND_CONST
        o.data = <double*>t.keep(arr)
        o.data_ref = len(t.keepalive) - 1
        o.size = arr.size
    return 0


# Constants of at most this many elements are copied when they can change; larger
# ones that a pooled tape reads (a grad call) are borrowed instead (see snapshot)
SNAPSHOT_COPY_LIMIT = 1 << 16


cdef object snapshot(cnp.ndarray arr, Tape t=None):
    """arr as a constant whose values stay as they are now, as long as tape t reads
    them: what a sweep reads of a constant must be its values as of the recording,
    even if the caller refills the array afterwards (a scratch buffer reused in a
    loop).

    - Arrays nothing can write into (read-only, with read-only bases: fasttape's own
      results, or data the caller marked read-only) are kept as they are.
    - On a tape lent for one call (t.pooled: grad and its relatives), a large array
      that owns its memory (data, typically, used every call) is borrowed, not
      copied: it is made read-only until the call ends (a copy of megabytes of data
      each call, with its page faults, cost more than the gradient); writing into it
      meanwhile raises NumPy's "assignment destination is read-only".
    - Anything else that can change is copied."""
    cdef object a = arr
    while isinstance(a, np.ndarray):
        if a.flags.writeable:
            break
        a = a.base
        if a is None:
            return arr                      # nothing can write into it
    else:
        if type(a) is bytes:                # (np.frombuffer of immutable bytes)
            return arr
        return arr.copy()
    if t is not None and t.pooled and a is arr and (<object>arr).base is None \
            and cnp.PyArray_SIZE(arr) > SNAPSHOT_COPY_LIMIT:
        arr.flags.writeable = False
        t.borrowed_arrays.append(arr)
        return arr
    return arr.copy()


def frozen(x):
    """x with its NumPy arrays (also inside lists, tuples and dicts) replaced by
    snapshots (see snapshot): for the plain arguments that a node's Python rules
    read later (custom primitives, checkpoint)."""
    if isinstance(x, np.ndarray):
        return snapshot(<cnp.ndarray>x)
    if type(x) is list or type(x) is tuple:
        return type(x)(frozen(v) for v in x)
    if type(x) is dict:
        return {k: frozen(v) for k, v in x.items()}
    return x


cdef object wrap_output(Tape t, Py_ssize_t r, object value):
    """The Variable (scalar output) or ArrayVariable for array node r; inside a
    no_grad() block, the plain value (the node stays on the tape, unreferenced)."""
    cdef ArrayVariable out
    if recording_paused():
        return value
    if type(value) is float:
        return new_variable(t, t.n_nodes - 1)
    out = ArrayVariable.__new__(ArrayVariable)
    out.tape = t
    out.node = t.n_nodes - 1
    out.anode = r
    out.epoch = t.epoch
    out.value = value
    return out


cdef object readonly_result(object value):
    """A fresh NumPy result as the value of a node: float64, C order, read-only."""
    cdef cnp.ndarray arr
    if type(value) is not np.ndarray or (<cnp.ndarray>value).descr.type_num != cnp.NPY_DOUBLE \
            or not cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>value):
        if np.iscomplexobj(value):       # (never a silent drop of an imaginary part)
            raise ComplexInputError(
                "a real array operation met a complex value; make its real operands "
                "complex first (x.astype(complex)), or call NumPy's own function "
                "(np.concatenate, np.einsum, ...), which complex values handle")
        value = np.array(value, dtype=np.float64, order="C")    # keeps 0-d arrays 0-d
    arr = <cnp.ndarray>value
    if cnp.PyArray_NDIM(arr) > MAX_NDIM:
        raise ValueError(f"fasttape differentiates arrays of up to {MAX_NDIM} dimensions, "
                         f"not {cnp.PyArray_NDIM(arr)}")
    cnp.PyArray_CLEARFLAGS(arr, cnp.NPY_ARRAY_WRITEABLE)
    return arr


cdef object node_value(object result):
    """Output of an operation: a float for a 0-d result, else a read-only array."""
    if type(result) is float:
        return result
    if isinstance(result, np.ndarray) and (<cnp.ndarray>result).ndim == 0 or \
            isinstance(result, np.generic):
        return float(result)
    return readonly_result(result)


# -- recording -------------------------------------------------------------------------

def make_array_leaf(Tape tape, x):
    """Record an array input on `tape`.

    A float64 C-contiguous input is not copied: the tape holds a read-only view of it,
    so the caller must not modify the array while the tape is in use (grad and its
    relatives finish with it before they return).
    """
    arr = float_array(x, "differentiating")
    value = readonly_result(arr.view() if arr is x else arr)
    r = tape.push_anode(AOP_LEAF, 0, value.size, 0, value)
    return wrap_output(tape, r, value)


cpdef object record_unary(opcode_t sop, object x, object ufunc):
    """y = sop(x) elementwise; ufunc computes the forward values."""
    cdef ArrayVariable av = <ArrayVariable?>x
    cdef Tape t = av.tape
    check_array_live(av)
    value = readonly_result(ufunc(av.value))
    r = t.push_anode(AOP_UNARY, sop, value.size, 1, value)
    set_operand(t, r, 0, av, None)
    return wrap_output(t, r, value)


cpdef object record_binary(opcode_t sop, object a, object b, object ufunc):
    """y = sop(a, b) elementwise with broadcasting; one of a, b is an ArrayVariable
    (the other may be a Variable, a number or an array)."""
    cdef Tape t = pair_tape(a, b)
    va = value_or_array(a, True)
    vb = value_or_array(b, True)
    if va is None or vb is None:
        return COMPLEX_OPERATION(ufunc, a, b)
    value = readonly_result(ufunc(va, vb))      # NumPy raises its own shape errors
    cdef Py_ssize_t n = cnp.PyArray_SIZE(<cnp.ndarray>value)
    cdef Py_ssize_t na = size_of(va), nb = size_of(vb)
    geom = None
    if not (na == n or na == 1) or not (nb == n or nb == 1):
        shape = value.shape
        geom = binary_run(shape, broadcast_strides(np.shape(va), shape),
                          broadcast_strides(np.shape(vb), shape))
    r = t.push_anode(AOP_BINARY, sop, n, 2, value)
    if geom is not None:
        t.anodes[r].geom = t.push_geometry(geom)
    set_operand(t, r, 0, a, va)
    set_operand(t, r, 1, b, vb)
    if sop == OP_LOGADDEXP and n >= 64 and geom is None:     # (flat operands only)
        # its partials, sigmoid(b - a) and 1 - that, by NumPy's vectorised exp now
        # rather than one libm exp per element in the sweep (measured: the logistic
        # regression's reverse sweep 15% faster); replays recompute them
        w = logaddexp_weights(va, vb, value)
        t.anodes[r].weights = <double*>t.keep(w)
        t.anodes[r].weights_ref = len(t.keepalive) - 1
    return wrap_output(t, r, value)


cdef object logaddexp_weights(object va, object vb, object value):
    """sigmoid(b - a) = 1 / (1 + exp(a - b)), 0.5 where a == b (also where both are
    the same infinity), as a new C-contiguous array of value's shape."""
    cdef double c
    w = np.empty(value.shape)
    with np.errstate(over="ignore", invalid="ignore"):
        np.subtract(va, vb, out=w)       # in place in w: no temporaries
        np.exp(w, out=w)
        np.add(w, 1.0, out=w)
        np.divide(1.0, w, out=w)
    # 1 / (1 + exp(0)) is 0.5 already: only equal infinities (a - b = nan) need
    # fixing, and a finite number never equals another operand's infinity
    if type(va) is float or type(vb) is float:
        c = va if type(va) is float else vb
        if c - c == 0.0:                 # finite
            return w
    np.copyto(w, 0.5, where=np.equal(va, vb))
    return w


cdef list broadcast_strides(tuple shape, tuple out_shape):
    """Element strides of a C-contiguous array of `shape` broadcast to `out_shape`
    (0 along broadcast axes)."""
    cdef int nd = len(out_shape), pad = nd - len(shape), d
    cdef list strides = [0] * nd
    cdef Py_ssize_t stride = 1
    for d in range(nd - 1, pad - 1, -1):
        if shape[d - pad] != 1:
            strides[d] = stride
        stride *= shape[d - pad]
    return strides


cdef tuple normalize_axes(object axis, int ndim):
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (tuple, list)):
        axes = tuple(axis)
    else:
        axes = (axis,)
    out = []
    for ax in axes:
        ax = int(ax)
        if not -ndim <= ax < ndim:
            raise np.exceptions.AxisError(ax, ndim)
        out.append(ax % ndim)
    if len(set(out)) != len(out):
        raise ValueError("duplicate value in 'axis'")
    return tuple(sorted(out))


cdef object record_reduce(object x, object axis, bint keepdims, object value,
                          double scale, object weights, int kind=0):
    """A reduction of x over axis whose derivative is scale (* weights) broadcast back:
    sum and mean (no weights), max, min and prod (weights)."""
    cdef ArrayVariable av = <ArrayVariable>x
    cdef Tape t = av.tape
    shape = av.value.shape
    axes = normalize_axes(axis, len(shape))
    kept_shape = tuple(1 if d in axes else shape[d] for d in range(len(shape)))
    out_strides = broadcast_strides(kept_shape, shape)
    value = node_value(value)
    # kind tells weighted sums apart (WEIGHTED_MAX, WEIGHTED_MIN, WEIGHTED_PROD)
    r = t.push_anode(AOP_SUM if weights is None else AOP_WEIGHTED_SUM, kind,
                     1 if type(value) is float else value.size, 1, value)
    cdef ArrayNode* n = &t.anodes[r]
    n.c = scale
    if weights is not None:
        n.weights = <double*>t.keep(np.array(weights, dtype=np.float64, order="C"))
        n.weights_ref = len(t.keepalive) - 1
        n = &t.anodes[r]
        # per-output counts (ties of max/min, zeros of prod) for a replay to work in
        n.index = <int64_t*>t.keep(np.zeros(n.size, dtype=np.int64))
        n.index_ref = len(t.keepalive) - 1
    n = &t.anodes[r]
    n.geom = t.push_geometry(reduce_run(shape, out_strides))
    set_operand(t, r, 0, av, None)
    return wrap_output(t, r, value)


def sum(x, axis=None, keepdims=False):
    cdef ArrayVariable av = <ArrayVariable?>x
    check_array_live(av)
    if axis is None and not keepdims:
        return record_full_sum(av, 1.0)
    return record_reduce(av, axis, keepdims,
                         np.sum(av.value, axis=axis, keepdims=keepdims), 1.0, None)


cdef object record_full_sum(ArrayVariable av, double scale):
    """scale * the sum of all of x's values: a scalar Variable."""
    cdef Tape t = av.tape
    value = float(ADD_REDUCE(av.value, None)) * scale
    r = t.push_anode(AOP_SUM, 0, 1, 1, value)
    t.anodes[r].c = scale
    t.anodes[r].geom = t.push_geometry(
        reduce_run((cnp.PyArray_SIZE(<cnp.ndarray>av.value),), (0,)))
    set_operand(t, r, 0, av, None)
    return wrap_output(t, r, value)


cdef object ADD_REDUCE = np.add.reduce


def mean(x, axis=None, keepdims=False):
    cdef ArrayVariable av = <ArrayVariable?>x
    check_array_live(av)
    if axis is None and not keepdims and av.value.size:
        return record_full_sum(av, 1.0 / av.value.size)
    value = np.mean(av.value, axis=axis, keepdims=keepdims)
    axes = normalize_axes(axis, av.value.ndim)
    count = 1
    for d in axes:
        count *= av.value.shape[d]
    return record_reduce(av, axis, keepdims, value, 1.0 / count if count else np.nan,
                         None)


def extremum(x, axis, keepdims, bint is_max):
    """max or min: the gradient goes to the elements equal to the extremum, split
    evenly among ties (autograd's convention)."""
    cdef ArrayVariable av = <ArrayVariable?>x
    check_array_live(av)
    v = av.value
    kept = (np.max if is_max else np.min)(v, axis=axis, keepdims=True)
    hits = (v == kept)
    weights = hits / np.sum(hits, axis=axis, keepdims=True)
    value = kept if keepdims else (np.max if is_max else np.min)(v, axis=axis)
    return record_reduce(av, axis, keepdims, value, 1.0, weights,
                         WEIGHTED_MAX if is_max else WEIGHTED_MIN)


def prod(x, axis=None, keepdims=False):
    """Product; d/dx_i is the product of the other elements (exact with zeros)."""
    cdef ArrayVariable av = <ArrayVariable?>x
    check_array_live(av)
    v = av.value
    zeros = v == 0
    n_zeros = np.sum(zeros, axis=axis, keepdims=True)
    nonzero_prod = np.prod(np.where(zeros, 1.0, v), axis=axis, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        weights = np.where(n_zeros == 0, nonzero_prod / np.where(zeros, 1.0, v),
                           np.where((n_zeros == 1) & zeros, nonzero_prod, 0.0))
    return record_reduce(av, axis, keepdims,
                         np.prod(v, axis=axis, keepdims=keepdims), 1.0, weights,
                         WEIGHTED_PROD)


def cumsum(x, axis=None):
    cdef ArrayVariable av = <ArrayVariable?>x
    check_array_live(av)
    if axis is None:
        av = reshape(av, (-1,))
        axis = 0
    shape = av.value.shape
    ax = normalize_axes(axis, len(shape))[0]
    value = readonly_result(np.cumsum(av.value, axis=ax))
    outer = int(np.prod(shape[:ax], dtype=np.int64))
    inner = int(np.prod(shape[ax + 1:], dtype=np.int64))
    cdef Tape t = av.tape
    r = t.push_anode(AOP_CUMSUM, 0, value.size, 1, value)
    t.anodes[r].geom = t.push_geometry(cumsum_run(outer, shape[ax], inner))
    set_operand(t, r, 0, av, None)
    return wrap_output(t, r, value)


def reshape(x, shape, order="C"):
    """Same values, another shape (C order only)."""
    if order != "C":
        raise NotImplementedError("fasttape reshapes in C order only")
    cdef ArrayVariable av
    if type(x) is Variable:
        return array_from_scalars([x], ()).reshape(shape) if shape != () else x
    av = <ArrayVariable?>x
    check_array_live(av)
    value = av.value.reshape(shape)          # a view: same data, NumPy checks the shape
    cdef Tape t = av.tape
    if value.ndim == 0:
        return gather(av, np.zeros((), dtype=np.int64))
    r = t.push_anode(AOP_RESHAPE, 0, value.size, 1, value)
    set_operand(t, r, 0, av, None)
    return wrap_output(t, r, value)


def gather(x, index):
    """y = x.ravel()[index] for an integer array `index` of y's shape: indexing,
    transposes, broadcast_to and every other selection of elements."""
    cdef ArrayVariable av = <ArrayVariable?>x
    check_array_live(av)
    index = np.asarray(index, dtype=np.int64)   # (ascontiguousarray would make 0-d 1-d)
    value = node_value(av.value.reshape(-1)[index])
    cdef Tape t = av.tape
    r = t.push_anode(AOP_GATHER, 0, 1 if type(value) is float else value.size, 1, value)
    t.anodes[r].index = <int64_t*>t.keep(np.ascontiguousarray(index.reshape(-1)))
    t.anodes[r].index_ref = len(t.keepalive) - 1
    set_operand(t, r, 0, av, None)
    return wrap_output(t, r, value)


def view_of(x, view):
    """Record y = `view`, a NumPy view into x's values (basic indexing, transposes,
    broadcast_to, ...): one strided node, no index arrays."""
    cdef ArrayVariable av = <ArrayVariable?>x
    check_array_live(av)
    cdef cnp.ndarray base = <cnp.ndarray>av.value
    cdef cnp.ndarray v = <cnp.ndarray?>view
    offset = (<char*>cnp.PyArray_DATA(v) - <char*>cnp.PyArray_DATA(base)) // 8
    strides = [s // 8 for s in view.strides]
    shape = list(view.shape)
    value = node_value(view[()] if v.ndim == 0 else view)
    cdef Tape t = av.tape
    r = t.push_anode(AOP_STRIDED, 0, 1 if type(value) is float else value.size, 1,
                     value)
    t.anodes[r].geom = t.push_geometry(strided_run(shape, strides, offset))
    set_operand(t, r, 0, av, None)
    return wrap_output(t, r, value)


def select(x, result_of_numpy_function):
    """Record the result of a NumPy selection applied to x's values: a strided node if
    it is a view of them, else None (the caller gathers by positions)."""
    cdef ArrayVariable av = <ArrayVariable>x
    r = result_of_numpy_function
    owner = av.value.base if av.value.base is not None else av.value
    if type(r) is np.ndarray and r.base is not None and (
            r.base is owner or np.may_share_memory(r, av.value)):
        return view_of(av, r)
    return None


def scatter(x, index, Py_ssize_t size):
    """y = zeros(size); y[index[k]] += x[k]: the transpose of a gather (its reverse
    step is one), recorded when a reverse sweep is differentiated again."""
    cdef Tape t
    index = np.ascontiguousarray(index, dtype=np.int64).reshape(-1)
    if type(x) is Variable:
        x = reshape(x, (1,))
    cdef ArrayVariable av = <ArrayVariable?>x
    check_array_live(av)
    t = av.tape
    value = readonly_result(np.bincount(index, weights=av.value.reshape(-1),
                                        minlength=size).astype(np.float64))
    r = t.push_anode(AOP_SCATTER, 0, size, 1, value)
    t.anodes[r].index = <int64_t*>t.keep(index)
    t.anodes[r].index_ref = len(t.keepalive) - 1
    set_operand(t, r, 0, av, None)
    return wrap_output(t, r, value)


def input_spec(list leaves):
    """(is_array, array node or slot) per leaf: how the C sweeps name inputs."""
    return [(True, (<ArrayVariable>leaf).anode) if type(leaf) is ArrayVariable else
            (False, (<Variable?>leaf).slot) for leaf in leaves]


def input_spec_arrays(list variables):
    """input_spec as the batched C sweeps take it: (index, is_array), an int64 array
    of array nodes or slots and a uint8 array of flags."""
    spec = input_spec(variables)
    return (np.array([i for _, i in spec], dtype=np.int64),
            np.array([a for a, _ in spec], dtype=np.uint8))


def variable_at(Tape tape, Py_ssize_t slot):
    """A handle to scalar slot `slot` (= its node) of `tape`."""
    if not 0 <= slot < tape.n_slots:
        raise IndexError(f"no slot {slot} on this tape")
    return handle_at(tape, slot)


def array_variable_at(Tape tape, Py_ssize_t r, Py_ssize_t node, value):
    """A handle to array node r (tape node `node`) whose values are `value`."""
    cdef ArrayVariable out = ArrayVariable.__new__(ArrayVariable)
    out.tape = tape
    out.node = node
    out.anode = r
    out.epoch = tape.epoch
    out.value = value
    return out


def positions(x):
    """Flat positions of x's elements, in x's shape (to index with, then gather)."""
    return np.arange((<ArrayVariable?>x).value.size, dtype=np.int64).reshape(
        (<ArrayVariable>x).value.shape)


def concat_values(list parts, object value, list part_positions):
    """y with y.ravel()[part_positions[j]] = parts[j] (ArrayVariables, Variables or
    constants): concatenate, stack and array() of Variables."""
    cdef Tape t = recording_tape(tuple(parts))
    value = readonly_result(value)
    r = t.push_anode(AOP_CONCAT, 0, value.size, len(parts), value)
    cdef Py_ssize_t j
    cdef Operand* o
    for j in range(len(parts)):
        part = parts[j]
        set_operand(t, r, j, part, None if type(part) in (Variable, ArrayVariable)
                    else float_array(part, "an operand of a real array operation"))
        pos = np.ascontiguousarray(part_positions[j], dtype=np.int64).reshape(-1)
        o = t.operand(r, j)
        if pos.size != o.size:
            raise ValueError("fasttape internal error: positions do not match operand")
        o.index = <int64_t*>t.keep(pos)
        o.index_ref = len(t.keepalive) - 1
    return wrap_output(t, r, value)


def array_from_scalars(list items, tuple shape):
    """An array of the given shape from a flat list of Variables and numbers."""
    value = np.array([value_of(v) if type(v) is Variable else float(v) for v in items],
                     dtype=np.float64).reshape(shape)
    parts = []
    pos = []
    for k, v in enumerate(items):
        if type(v) is Variable:
            parts.append(v)
            pos.append(np.array([k], dtype=np.int64))
    if not parts:
        return value
    return concat_values(parts, value, pos)


def matmul(a, b):
    """a @ b with NumPy's rules for 1-d operands and broadcast batch dimensions; the
    reverse step calls BLAS dgemm."""
    cdef Tape t = recording_tape((a, b))
    shapes = [(<ArrayVariable>x).value.shape if type(x) is ArrayVariable else np.shape(x)
              for x in (a, b)]          # (checked before an operand is copied)
    if max(shapes[0][-2:] + shapes[1][-2:], default=0) > INT32_MAX:
        raise ValueError(f"matmul of shapes {shapes[0]} and {shapes[1]}: the "
                         f"product's kernels (BLAS) take dimensions below 2**31")
    va = value_or_array(a, True)
    vb = value_or_array(b, True)
    if va is None or vb is None:
        return COMPLEX_OPERATION(np.matmul, a, b)
    if type(va) is float or type(vb) is float:
        np.matmul(va, vb)            # raises NumPy's own message
        raise ValueError("matmul: Input operand does not have enough dimensions")
    value = np.matmul(va, vb)                # NumPy raises its own shape errors
    a2 = va.reshape((1,) + va.shape) if va.ndim == 1 else va
    b2 = vb.reshape(vb.shape + (1,)) if vb.ndim == 1 else vb
    m, k = a2.shape[-2:]
    n = b2.shape[-1]
    batch_a = a2.shape[:-2]
    batch_b = b2.shape[:-2]
    if not batch_a and not batch_b:
        # matrices and vectors: one product (and none of the NumPy helpers below,
        # ~10 us per call)
        batch = 1
        stride_a = stride_b = 0
    else:
        batch_shape = np.broadcast_shapes(batch_a, batch_b)
        batch = int(np.prod(batch_shape, dtype=np.int64))
        # an operand whose batch dimensions broadcast (other than all-or-nothing) is
        # expanded, so that the reverse step can walk both with plain batch strides
        if batch_a not in (batch_shape, ()) and int(np.prod(batch_a, dtype=np.int64)) != 1:
            if type(a) is ArrayVariable:
                a = broadcast_to(a, batch_shape + (m, k))
            else:
                a = np.ascontiguousarray(np.broadcast_to(va, batch_shape + (m, k)))
            va = value_or_array(a)
            batch_a = batch_shape
        if batch_b not in (batch_shape, ()) and int(np.prod(batch_b, dtype=np.int64)) != 1:
            if type(b) is ArrayVariable:
                b = broadcast_to(b, batch_shape + (k, n))
            else:
                b = np.ascontiguousarray(np.broadcast_to(vb, batch_shape + (k, n)))
            vb = value_or_array(b)
            batch_b = batch_shape
        stride_a = m * k if int(np.prod(batch_a, dtype=np.int64)) == batch and batch > 1 \
            else 0
        stride_b = k * n if int(np.prod(batch_b, dtype=np.int64)) == batch and batch > 1 \
            else 0
    if batch > INT32_MAX:
        raise ValueError(f"matmul of shapes {va.shape} and {vb.shape}: more than "
                         f"2**31 - 1 products in the batch")
    value = node_value(value)
    r = t.push_anode(AOP_MATMUL, 0, 1 if type(value) is float else value.size, 2, value)
    t.anodes[r].geom = t.push_geometry(matmul_run(batch, m, k, n, stride_a, stride_b))
    set_operand(t, r, 0, a, va)
    set_operand(t, r, 1, b, vb)
    return wrap_output(t, r, value)


def broadcast_to(x, shape):
    cdef ArrayVariable av
    shape = tuple(shape) if isinstance(shape, (tuple, list)) else (shape,)
    if type(x) is Variable:
        if shape == ():
            return x
        x = reshape(x, (1,))
    av = <ArrayVariable?>x
    if av.value.shape == shape:
        return av
    return view_of(av, np.broadcast_to(av.value, shape))


def where(condition, a, b):
    """a where condition else b; the condition is not differentiated. A recorded mask
    (a comparison of arrays on a tape recorded for replay) as the condition makes the
    choice follow the mask's values on replay; any other condition is a constant."""
    mask = condition if type(condition) is MASK_CLASS else None
    if mask is not None:
        check_mask_live(mask)
        cond = mask.node_value
    else:
        cond = value_or_array(condition) if type(condition) in (Variable, ArrayVariable) \
            else np.asarray(condition)
    cdef Tape t = tape_of((a, b, mask.tape) if mask is not None else (a, b))
    if t is None:
        return np.where(cond, a, b)
    va = value_or_array(a)
    vb = value_or_array(b)
    value = np.where(cond, va, vb)
    shape = value.shape
    if len(shape) == 0 and mask is None:
        return a if bool(cond) else b
    size = value.size
    if np.size(va) not in (1, size):
        a = broadcast_to(a, shape) if type(a) in (Variable, ArrayVariable) else \
            np.ascontiguousarray(np.broadcast_to(va, shape))
        va = value_or_array(a)
    if np.size(vb) not in (1, size):
        b = broadcast_to(b, shape) if type(b) in (Variable, ArrayVariable) else \
            np.ascontiguousarray(np.broadcast_to(vb, shape))
        vb = value_or_array(b)
    if mask is not None:
        # the weights are the mask node's values (broadcast by a strided node if need
        # be), which a replay recomputes before this node
        mask_node = array_variable_at(t, mask.anode, t.anodes[mask.anode].node,
                                      mask.node_value)
        if np.shape(cond) != shape:
            mask_node = broadcast_to(mask_node, shape)
        mask_anode = (<ArrayVariable>mask_node).anode
    else:
        mask_array = snapshot(np.ascontiguousarray(np.broadcast_to(cond, shape),
                                                   dtype=np.float64), t)
    value = readonly_result(value)
    r = t.push_anode(AOP_WHERE, 0, size, 2, value)
    if mask is not None:
        t.anodes[r].weights = t.anodes[mask_anode].value
        t.anodes[r].weights_ref = t.anodes[mask_anode].value_ref
    else:
        t.anodes[r].weights = <double*>t.keep(mask_array)
        t.anodes[r].weights_ref = len(t.keepalive) - 1
    set_operand(t, r, 0, a, va)
    set_operand(t, r, 1, b, vb)
    return wrap_output(t, r, value)


# -- recorded masks ---------------------------------------------------------------------
#
# On a tape recorded for replay (trace), a comparison of arrays returns an ArrayMask:
# a handle to a mask node (1.0 where the comparison holds), which a replay
# re-evaluates. where() reads it as its condition; any other use reads its booleans
# and turns it into a guard (see fasttape._masks).

# The class of those handles, fasttape._masks.ArrayMask (a layer above this one,
# which records its combinations here): handed in by fasttape._wiring.
cdef object MASK_CLASS = None


def register_mask_class(cls):
    global MASK_CLASS
    MASK_CLASS = cls


cdef int check_mask_live(object mask) except -1:
    if mask.epoch != (<Tape>mask.tape).epoch:
        raise_stale_array()
    return 0


cdef tuple COMPARISON_UFUNCS = (np.less, np.less_equal, np.greater, np.greater_equal,
                                np.equal, np.not_equal)


cdef object compare_arrays(int cmp, ArrayVariable a, object b):
    check_array_live(a)
    if a.tape.replayable:
        return record_mask(cmp, a, b)
    return COMPARISON_UFUNCS[cmp](a.value, value_or_array(b))


cdef object mask_operand_value(object x):
    if type(x) is MASK_CLASS:
        check_mask_live(x)
        return x.node_value
    if type(x) in (Variable, ArrayVariable):
        return value_or_array(x)
    if np.ndim(x) == 0:
        return float(x)                        # a number (or bool): a pooled constant
    return np.asarray(x, dtype=np.float64)     # an array of booleans or numbers


def record_mask(int sop, a, b=None):
    """Record a mask node and return its ArrayMask: sop is a CMP_* code comparing a
    and b (arrays, numbers, Variables), or MASK_AND/OR/XOR/NOT combining masks and
    boolean constants (b unused for MASK_NOT)."""
    cls = MASK_CLASS
    operands = (a,) if sop == MASK_NOT else (a, b)
    cdef Tape t = tape_of(tuple(x.tape if type(x) is cls else x for x in operands))
    if t is None:
        raise TypeError("fasttape internal error: a mask without a tape")
    values = [mask_operand_value(x) for x in operands]
    if sop == MASK_NOT:
        result = np.equal(values[0], 0.0)
    elif sop < MASK_AND:
        result = COMPARISON_UFUNCS[sop](values[0], values[1])
    else:
        combine = {MASK_AND: np.logical_and, MASK_OR: np.logical_or,
                   MASK_XOR: np.logical_xor}[sop]
        result = combine(np.not_equal(values[0], 0.0), np.not_equal(values[1], 0.0))
    value = readonly_result(np.asarray(result, dtype=np.float64))
    cdef Py_ssize_t n = value.size
    geom = None
    if any(np.size(v) not in (n, 1) for v in values):
        shape = value.shape
        geom = binary_run(shape, broadcast_strides(np.shape(values[0]), shape),
                          broadcast_strides(np.shape(values[-1]), shape))
    r = t.push_anode(AOP_MASK, sop, n, len(operands), value)
    if geom is not None:
        t.anodes[r].geom = t.push_geometry(geom)
    cdef Operand* o
    for j, (x, v) in enumerate(zip(operands, values)):
        if type(x) is cls:
            o = t.operand(r, j)
            o.kind = OPERAND_ARRAY
            o.ref = x.anode
            o.data = t.anodes[o.ref].value
            o.size = t.anodes[o.ref].size
        else:
            set_operand(t, r, j, x, v if type(x) not in (Variable, ArrayVariable) else
                        value_or_array(x))
    return cls(t, r, value)


def pyfunc(list operands, object value, object reverse, object forward=None,
           object evaluate=None, object recipe=None):
    """A node whose rules are Python. Each receives the node's current output value
    (a float, or a flat array) and its operands' current values (a list of flat
    arrays, one value for a scalar), so that they hold after a replay:
    reverse(g, ans, xs) returns one cotangent per operand (or None), g being the output
    adjoint as a flat array; forward(tangents, ans, xs), given one tangent array (or
    None) per operand, returns the output tangent; evaluate(xs) returns the value, for
    a replay (without it the tape cannot be replayed). recipe = (builder, args,
    kwargs) records the node again from its operands (args holds OperandSlot(j) for
    operand j), which is how a pickled tape gets its rules back."""
    cdef Tape t = recording_tape(tuple(operands))
    value = node_value(value)
    r = t.push_anode(AOP_PYFUNC, 0, 1 if type(value) is float else value.size,
                     len(operands), value)
    t.anodes[r].pyfunc = len(t.keepalive)
    t.keepalive.append(reverse)
    if forward is not None:
        t.anodes[r].pyfunc_jvp = len(t.keepalive)
        t.keepalive.append(forward)
    if evaluate is not None:
        t.anodes[r].pyfunc_eval = len(t.keepalive)
        t.keepalive.append(evaluate)
    for j, x in enumerate(operands):
        set_operand(t, r, j, x, None if type(x) in (Variable, ArrayVariable)
                    else float_array(x, "an operand of a Python-rule node"))
    if recipe is not None:
        builder, args, kwargs = recipe
        t.pyfunc_recipes[r] = (builder, tuple(args), dict(kwargs), [
            np.shape(value_or_array(x) if type(x) in (Variable, ArrayVariable) else x)
            for x in operands])
    return wrap_output(t, r, value)


# -- the handle ------------------------------------------------------------------------

# The dispatch tables: fasttape's implementation of each NumPy function and ufunc it
# differentiates, for __array_function__ and __array_ufunc__ (and the methods below
# that are NumPy functions). The implementations are fasttape.numpy's, a layer above
# this one: fasttape._wiring registers them, once, when fasttape is imported.
cdef dict ARRAY_FUNCTIONS = {}
cdef dict ARRAY_UFUNCS = {}


def register_array_function(numpy_function, implementation):
    ARRAY_FUNCTIONS[numpy_function] = implementation


def register_array_ufunc(ufunc, implementation):
    ARRAY_UFUNCS[ufunc] = implementation


def array_function_implementation(numpy_function):
    """fasttape's implementation of a NumPy function, or None."""
    return ARRAY_FUNCTIONS.get(numpy_function)


cdef object implementation_of(object numpy_function):
    implementation = ARRAY_FUNCTIONS.get(numpy_function)
    if implementation is None:
        raise TypeError(f"fasttape internal error: no implementation of "
                        f"numpy.{numpy_function.__name__} registered (is fasttape "
                        f"imported?)")
    return implementation


def array_ufunc(ufunc, method, tuple inputs, dict kwargs):
    """NumPy ufunc applied to Variables and arrays, dispatched to fasttape.numpy."""
    implementation = ARRAY_UFUNCS.get(ufunc) if method == "__call__" else None
    if implementation is None or kwargs:
        raise unsupported_ufunc(ufunc, method, kwargs)
    return implementation(*inputs)


def array_function(func, tuple args, dict kwargs):
    """NumPy function applied to Variables and arrays (__array_function__ of both
    kinds), dispatched to fasttape.numpy, or a TypeError naming it."""
    implementation = ARRAY_FUNCTIONS.get(func)
    if implementation is None:
        raise TypeError(f"fasttape cannot differentiate numpy.{func.__name__}: it "
                        f"has no derivative rule in fasttape (fasttape.numpy lists "
                        f"the supported functions)")
    return implementation(*args, **kwargs)


@cython.freelist(256)
@cython.final
cdef class ArrayVariable:
    """A differentiable float64 array: a handle to one array node on a tape.

    Created by ``grad`` and friends for array arguments, and by operations on other
    ArrayVariables. Supports NumPy's operators and methods (``+ - * / ** @``, indexing,
    ``.T``, ``.sum()``, ...), NumPy's ufuncs and functions (``np.sin(x)``,
    ``np.sum(x)``) and ``fasttape.numpy``. Comparisons give plain boolean arrays
    (recorded masks, fasttape._masks.ArrayMask, on a tape recorded by trace).
    """

    cdef readonly Tape tape
    cdef readonly Py_ssize_t node     # tape node index
    cdef readonly Py_ssize_t anode    # array node index
    cdef Py_ssize_t epoch
    cdef readonly object value        # read-only C-contiguous float64 ndarray

    __array_priority__ = 100.0

    def __init__(self, *args, **kwargs):
        raise TypeError("ArrayVariables are created by grad() and by operations on "
                        "other ArrayVariables, not directly")

    # -- shape --------------------------------------------------------------------------

    @property
    def shape(self):
        return self.value.shape

    @property
    def ndim(self):
        return self.value.ndim

    @property
    def size(self):
        return self.value.size

    @property
    def dtype(self):
        return self.value.dtype

    @property
    def real(self):
        return self

    @property
    def imag(self):
        """Zero: a real array's imaginary part (a constant)."""
        return np.zeros(self.value.shape)

    def conj(self):
        return self

    conjugate = conj

    def __len__(self):
        if self.value.ndim == 0:
            raise TypeError("len() of unsized object")
        return self.value.shape[0]

    def __iter__(self):
        if self.value.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        for i in range(self.value.shape[0]):
            yield self[i]

    @property
    def grad(self):
        """Adjoint from the last backward() on this tape, as an array, or None."""
        check_array_live(self)
        check_idle(self.tape)       # (another thread's backward() is filling them)
        if self.tape.swept_epoch != self.tape.epoch:
            return None
        return self.tape.array_adjoint(self.anode).reshape(self.value.shape)

    def backward(self, seed=None):
        """Reverse sweep from this array with output adjoint `seed` (same shape; may be
        omitted for a one-element array)."""
        check_array_live(self)
        if seed is None:
            if self.value.size != 1:
                raise ValueError("backward() of an array with more than one element "
                                 "needs a seed of the same shape")
            seed = np.ones(1)
        elif np.shape(seed) != self.value.shape:
            raise ValueError(f"seed of shape {np.shape(seed)} for an array of shape "
                             f"{self.value.shape}")
        self.tape.reverse_array_c(self.node, self.anode, seed)

    # -- operators ----------------------------------------------------------------------

    def __add__(self, other):
        return record_binary(OP_ADD_VV, self, other, np.add)

    def __radd__(self, other):
        return record_binary(OP_ADD_VV, other, self, np.add)

    def __sub__(self, other):
        return record_binary(OP_SUB_VV, self, other, np.subtract)

    def __rsub__(self, other):
        return record_binary(OP_SUB_VV, other, self, np.subtract)

    def __mul__(self, other):
        return record_binary(OP_MUL_VV, self, other, np.multiply)

    def __rmul__(self, other):
        return record_binary(OP_MUL_VV, other, self, np.multiply)

    def __truediv__(self, other):
        return record_binary(OP_DIV_VV, self, other, np.true_divide)

    def __rtruediv__(self, other):
        return record_binary(OP_DIV_VV, other, self, np.true_divide)

    def __mod__(self, other):
        return record_binary(OP_REMAINDER, self, other, np.remainder)

    def __rmod__(self, other):
        return record_binary(OP_REMAINDER, other, self, np.remainder)

    def __pow__(self, other, mod):
        if mod is not None:
            raise TypeError("pow() with a modulus is not differentiable")
        # (x ** 2 with a literal 2 is the common case: no np.ndim call for a number)
        if (type(other) is int or type(other) is float) and other == 2 or \
                type(other) is not Variable and type(other) is not ArrayVariable and \
                np.ndim(other) == 0 and other == 2:
            return record_unary(OP_SQUARE, self, np.square)
        return record_binary(OP_POW_VV, self, other, np.power)

    def __rpow__(self, other, mod):
        if mod is not None:
            raise TypeError("pow() with a modulus is not differentiable")
        return record_binary(OP_POW_VV, other, self, np.power)

    def __matmul__(self, other):
        return matmul(self, other)

    def __rmatmul__(self, other):
        return matmul(other, self)

    def __neg__(self):
        return record_unary(OP_NEG, self, np.negative)

    def __pos__(self):
        return self

    def __abs__(self):
        return record_unary(OP_ABS, self, np.abs)

    def __getitem__(self, key):
        if isinstance(key, (Variable, ArrayVariable)) or isinstance(key, tuple) and any(
                isinstance(k, (Variable, ArrayVariable)) for k in key):
            raise TypeError("cannot index with a Variable (indices are not "
                            "differentiable); use .value")
        check_array_live(self)
        view = self.value[key]
        if type(view) is np.float64:         # integers only: one element
            return gather(self, positions(self)[key])
        selected = select(self, view)
        return selected if selected is not None else gather(self, positions(self)[key])

    # comparisons: plain boolean arrays of the values; recorded masks on a tape
    # recorded for replay, so that a replay can recompute them
    def __lt__(self, other):
        return compare_arrays(CMP_LT, self, other)

    def __le__(self, other):
        return compare_arrays(CMP_LE, self, other)

    def __gt__(self, other):
        return compare_arrays(CMP_GT, self, other)

    def __ge__(self, other):
        return compare_arrays(CMP_GE, self, other)

    def __eq__(self, other):
        if not isinstance(other, (Variable, ArrayVariable, np.ndarray, float, int)):
            return NotImplemented
        return compare_arrays(CMP_EQ, self, other)

    def __ne__(self, other):
        if not isinstance(other, (Variable, ArrayVariable, np.ndarray, float, int)):
            return NotImplemented
        return compare_arrays(CMP_NE, self, other)

    def __hash__(self):
        return id(self) >> 4

    def __bool__(self):
        if self.value.size != 1:
            raise ValueError("The truth value of an array with more than one element "
                             "is ambiguous. Use a.any() or a.all()")
        if self.tape.replayable:       # a branch on the value: guarded
            return bool(compare_arrays(CMP_NE, self, 0.0))
        return bool(self.value)

    def __float__(self):
        raise TypeError("float() of a fasttape ArrayVariable would drop its derivative; "
                        "index it (x[0]) or use .value for a plain number")

    def __int__(self):
        raise TypeError("int() of a fasttape ArrayVariable would drop its derivative")

    def __index__(self):
        raise TypeError("an ArrayVariable cannot be used as an index")

    def __reduce__(self):
        raise TypeError("an ArrayVariable cannot be pickled (it is a handle into a "
                        "live tape); pickle .value instead")

    def __repr__(self):
        if self.epoch != self.tape.epoch:
            return "ArrayVariable(<stale: its tape was reset>)"
        return "ArrayVariable(" + repr(self.value)[6:-1] + ")"

    # -- NumPy protocols ----------------------------------------------------------------

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        return array_ufunc(ufunc, method, inputs, kwargs)

    def __array__(self, dtype=None, copy=None):
        # np.asarray(x) would otherwise make an object array of element Variables
        # (what a plain-NumPy or plain-SciPy function does first with its argument)
        raise TypeError("converting a fasttape ArrayVariable to a NumPy array would drop "
                        "its derivative: call the fasttape.numpy (or fasttape.scipy) "
                        "version of the function, or use .value for the plain value")

    def __array_function__(self, func, types, args, kwargs):
        if COMPLEX_CLASS is not None and COMPLEX_CLASS in types:
            return NotImplemented        # (np.concatenate([x, z]): the complex layer's)
        return array_function(func, args, kwargs)

    # -- NumPy methods ------------------------------------------------------------------

    @property
    def T(self):
        return implementation_of(np.transpose)(self)

    def sum(self, axis=None, keepdims=False):
        return sum(self, axis, keepdims)

    def mean(self, axis=None, keepdims=False):
        return mean(self, axis, keepdims)

    def max(self, axis=None, keepdims=False):
        return extremum(self, axis, keepdims, True)

    def min(self, axis=None, keepdims=False):
        return extremum(self, axis, keepdims, False)

    def prod(self, axis=None, keepdims=False):
        return prod(self, axis, keepdims)

    def cumsum(self, axis=None):
        return cumsum(self, axis)

    def var(self, axis=None, ddof=0, keepdims=False):
        return implementation_of(np.var)(self, axis=axis, ddof=ddof, keepdims=keepdims)

    def std(self, axis=None, ddof=0, keepdims=False):
        return implementation_of(np.std)(self, axis=axis, ddof=ddof, keepdims=keepdims)

    def reshape(self, *shape, order="C"):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return reshape(self, shape, order)

    def ravel(self):
        return reshape(self, (-1,))

    def flatten(self):
        return reshape(self, (-1,))

    def squeeze(self, axis=None):
        return implementation_of(np.squeeze)(self, axis)

    def transpose(self, *axes):
        if len(axes) == 1 and (axes[0] is None or isinstance(axes[0], (tuple, list))):
            axes = axes[0]
        return implementation_of(np.transpose)(self, axes or None)

    def swapaxes(self, a, b):
        return implementation_of(np.swapaxes)(self, a, b)

    def dot(self, other):
        return implementation_of(np.dot)(self, other)

    def clip(self, a_min=None, a_max=None):
        return implementation_of(np.clip)(self, a_min, a_max)

    def astype(self, dtype):
        if np.dtype(dtype).kind == "c" and AS_COMPLEX is not None:
            return AS_COMPLEX(self)
        if np.dtype(dtype) != np.float64:
            raise TypeError(f"an ArrayVariable is float64; astype({dtype}) would drop "
                            f"its derivative")
        return self

    def copy(self):
        return self


# -- reading gradients -------------------------------------------------------------------

def sweep_gradients(Tape tape, object output, list leaves, object seed=None):
    """Reverse sweep from `output` (seeded with `seed`, default 1) and return
    (output value, [gradient of each leaf]): floats for Variable leaves, arrays of the
    leaf's shape for ArrayVariable leaves."""
    cdef Variable v
    cdef ArrayVariable av
    if type(output) is Variable:
        v = <Variable>output
        check_live(v)
        if v.tape is not tape:
            raise_foreign_output()
        tape.reverse_c(v.node, v.slot, 1.0 if seed is None else float(seed))
        value = value_of(v)
    elif type(output) is ArrayVariable:
        av = <ArrayVariable>output
        check_array_live(av)
        if av.tape is not tape:
            raise_foreign_output()
        if seed is None:
            seed = np.ones(av.value.size)
        tape.reverse_array_c(av.node, av.anode, seed)
        value = av.value
    else:
        raise TypeError(f"cannot differentiate a {type(output).__name__}")
    grads = []
    for leaf in leaves:
        if type(leaf) is Variable:
            grads.append(tape.adjoints[(<Variable>leaf).slot])
        else:
            av = <ArrayVariable>leaf
            grads.append(tape.array_adjoint(av.anode).reshape(av.value.shape))
    return value, grads


cdef int raise_foreign_output() except -1:
    raise TapeMismatchError(
        "the function returned a Variable recorded on another tape than its inputs "
        "(was it computed from a Variable created outside the function?)")


# -- several outputs, forward mode ------------------------------------------------------

def output_refs(list outputs):
    """(node/slot, array node or -1) of each output Variable or ArrayVariable."""
    slots = []
    anodes = []
    for out in outputs:
        if type(out) is Variable:
            check_live(<Variable>out)
            slots.append((<Variable>out).slot)
            anodes.append(-1)
        else:
            check_array_live(<ArrayVariable?>out)
            slots.append((<ArrayVariable>out).node)
            anodes.append((<ArrayVariable>out).anode)
    return slots, anodes


def leaf_gradients(Tape tape, list leaves):
    """Adjoints of the leaves after a sweep: floats, or arrays of the leaves' shapes."""
    cdef ArrayVariable av
    grads = []
    for leaf in leaves:
        if type(leaf) is Variable:
            grads.append(tape.adjoints[(<Variable>leaf).slot])   # (swept: no check)
        else:
            av = <ArrayVariable>leaf
            grads.append(tape.array_adjoint(av.anode).reshape(av.value.shape))
    return grads


def tangents_of(Tape tape, list leaves, list tangents, list outputs):
    """Forward mode: seed the leaves with `tangents`, sweep, return the outputs'
    tangents (floats, or arrays of the outputs' shapes)."""
    cdef ArrayVariable av
    tape.clear_tangents()
    for leaf, v in zip(leaves, tangents):
        if type(leaf) is Variable:
            tape.seed_tangent((<Variable>leaf).slot, -1, float(v))
        else:
            av = <ArrayVariable>leaf
            if np.shape(v) != av.value.shape:
                raise ValueError(f"tangent of shape {np.shape(v)} for an input of shape "
                                 f"{av.value.shape}")
            tape.seed_tangent(av.node, av.anode, v)
    tape.forward_sweep()
    result = []
    for out in outputs:
        if type(out) is Variable:
            result.append(tape.tangent_of((<Variable>out).slot, -1))
        else:
            av = <ArrayVariable>out
            result.append(tape.tangent_of(av.node, av.anode).reshape(av.value.shape))
    return result


# HOLDS_VARIABLES_IN_TREE(x): holds_variables for the containers this module does not
# know (dataclasses, registered types): fasttape._containers.holds_variables_in_tree
cdef object HOLDS_VARIABLES_IN_TREE = None


def register_tree_search(search):
    global HOLDS_VARIABLES_IN_TREE
    HOLDS_VARIABLES_IN_TREE = search


def holds_variables(x):
    """True if x is, or (nested in tuples, lists, dicts and other containers) holds, a
    Variable or an ArrayVariable. Loops in C: about a nanosecond per element of a list
    of floats."""
    cdef object v
    if type(x) is Variable or type(x) is ArrayVariable:
        return True
    if type(x) is list or type(x) is tuple:
        for v in x:
            if type(v) is float:
                continue
            if type(v) is Variable or type(v) is ArrayVariable:
                return True
            if holds_variables(v):
                return True
        return False
    if isinstance(x, dict):
        for v in x.values():
            if holds_variables(v):
                return True
        return False
    if isinstance(x, (list, tuple)):     # namedtuples and other subclasses
        for v in x:
            if holds_variables(v):
                return True
        return False
    if x is None or isinstance(x, (float, int, complex, np.ndarray, np.generic, str)) \
            or HOLDS_VARIABLES_IN_TREE is None:
        return False
    return HOLDS_VARIABLES_IN_TREE(x)
