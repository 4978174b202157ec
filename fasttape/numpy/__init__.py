"""NumPy, differentiable: ``import fasttape.numpy as np`` in code written for NumPy
(or for ``autograd.numpy``) and ``fasttape.grad`` differentiates it.

Every name of NumPy is here. The functions below record one tape node per call when
given Variables; the rest are NumPy's own and raise ``TypeError`` naming themselves if
handed a Variable (through ``__array_function__``), never a silent float result. The
same implementations serve plain ``numpy`` calls on Variables (``np.sum(x)``), so both
spellings give identical gradients.
"""
import builtins as _builtins
import operator as _operator
from collections.abc import Callable as _Callable
from typing import Any as _Any

import numpy as _np
from numpy import *  # noqa: F401,F403  (constants, dtypes, array creation, ...)

from fasttape import _arrays, _elementary, _optable, _variable
from fasttape._arrays import ArrayVariable
from fasttape._containers import recorded_array
from fasttape._masks import ArrayMask
from fasttape._tape import MASK_OPS as _MASK_OPS, OP_TABLE as _OP_TABLE
from fasttape._variable import Variable
from fasttape.numpy import _gathers, _values_only
from fasttape.numpy._joiners import AxisJoiner as _AxisJoiner

_OP = {name: code for name, code, _ in _OP_TABLE}
_VARIABLES = (Variable, ArrayVariable)


def _is_variable(x):
    return type(x) is Variable or type(x) is ArrayVariable


def _holds_variables(x):
    """True if x is a Variable or a (nested) list or tuple holding one."""
    if type(x) is Variable or type(x) is ArrayVariable:
        return True
    if isinstance(x, (list, tuple)):
        return _builtins.any(_holds_variables(v) for v in x)
    return False


def _operand(x):
    """Lists and tuples holding Variables, and object arrays (plain NumPy's arrays of
    Variables), become recorded arrays; the rest stays."""
    if isinstance(x, (list, tuple)) and _holds_variables(x):
        return array(x)
    if type(x) is _np.ndarray and x.dtype == object:
        return recorded_array(x)
    return x


# -- elementwise functions ----------------------------------------------------------------

def _scipy_special(name):
    def forward(x):
        import scipy.special
        return getattr(scipy.special, name)(x)
    forward.__name__ = name
    return forward


def _unary(name, ufunc, scalar_function) -> _Callable[..., _Any]:
    op = _OP[name]

    def function(x):
        if type(x) is ArrayVariable:
            return _arrays.record_unary(op, x, ufunc)
        if type(x) is Variable:
            return scalar_function(x)
        if isinstance(x, (list, tuple)) and _holds_variables(x):
            return function(array(x))
        if type(x) is _np.ndarray and x.dtype == object:
            recorded = recorded_array(x)
            if recorded is not x:
                return function(recorded)
        return ufunc(x)
    function.__name__ = getattr(ufunc, "__name__", name.lower())
    function.__doc__ = (f"{function.__name__}(x), elementwise; differentiable "
                        f"(formula and conventions: fasttape.{scalar_function.__name__}).")
    return function


def _binary(name, ufunc, scalar_function) -> _Callable[..., _Any]:
    op = _OP[name]

    def function(a, b):
        a = _operand(a)
        b = _operand(b)
        if type(a) is ArrayVariable or type(b) is ArrayVariable or (
                (type(a) is Variable or type(b) is Variable)
                and (_np.ndim(a) > 0 if not _is_variable(a) else _np.ndim(b) > 0
                     if not _is_variable(b) else False)):
            return _arrays.record_binary(op, a, b, ufunc)
        if type(a) is Variable or type(b) is Variable:
            return scalar_function(a, b)
        return ufunc(a, b)
    function.__name__ = ufunc.__name__
    function.__doc__ = f"{ufunc.__name__}(a, b), elementwise with broadcasting; differentiable."
    return function


def _array_function(op):
    return getattr(_np, op.numpy[0]) if op.numpy else _scipy_special(op.scipy)


# The op table's elementwise functions, under NumPy's names (and fasttape's, and the
# scipy.special name of erf and sigmoid/expit): one node per call on arrays
_TABLE_UFUNCS, _TABLE_FUNCTIONS = {}, {}
for _op in _optable.OPS:
    if _op.kind == "unary":
        _function = _unary(_op.name, _array_function(_op),
                           getattr(_elementary, _op.function) if _op.function
                           else getattr(_operator, _op.name.lower()))
    elif _op.kind in ("arithmetic", "binary"):
        _function = _binary(_op.name + ("_VV" if _op.kind == "arithmetic" else ""),
                            _array_function(_op),
                            getattr(_elementary, _op.function) if _op.function
                            else getattr(_operator, _op.operator))
    else:
        continue
    for _name in {*_op.numpy, _op.function, _op.scipy} - {None}:
        globals()[_name] = _function
    for _name in _op.numpy:               # plain NumPy's function on fasttape's arrays
        _numpy_function = getattr(_np, _name)
        _table = _TABLE_UFUNCS if isinstance(_numpy_function, _np.ufunc) else _TABLE_FUNCTIONS
        _table[_numpy_function] = _function


def positive(x):
    return x if _is_variable(x) else _np.positive(x)


def _comparison(ufunc, comparison, reflected, mask_op):
    def function(a, b):
        if type(a) is Variable and _np.ndim(b) == 0 or type(b) is Variable and \
                _np.ndim(a) == 0 and type(a) is not ArrayVariable:
            return comparison(a, b)         # remembered on the tape
        if type(a) is ArrayVariable:        # a recorded mask when tracing
            return comparison(a, b)
        if type(b) is ArrayVariable:
            return reflected(b, a)
        if _traced(a) or _traced(b):        # a scalar Variable and an array, tracing
            return _arrays.record_mask(_MASK_OPS[mask_op], a, b)
        return ufunc(_value(a), _value(b))
    function.__name__ = ufunc.__name__
    return function


def _value(x):
    if _is_variable(x):
        return x.value
    if isinstance(x, (list, tuple)) and _holds_variables(x):
        return _np.array([_value(v) for v in x])
    return x


less = _comparison(_np.less, _operator.lt, _operator.gt, "lt")
less_equal = _comparison(_np.less_equal, _operator.le, _operator.ge, "le")
greater = _comparison(_np.greater, _operator.gt, _operator.lt, "gt")
greater_equal = _comparison(_np.greater_equal, _operator.ge, _operator.le, "ge")
equal = _comparison(_np.equal, _operator.eq, _operator.eq, "eq")
not_equal = _comparison(_np.not_equal, _operator.ne, _operator.ne, "ne")


def _traced(x):
    """True for a Variable recorded for replay, whose tests must be recorded (masks
    for arrays, guards for numbers)."""
    return type(x) in _VARIABLES and x.tape.replayable


def isnan(x):
    if _traced(x):
        return x != x
    return _np.isnan(_value(x))


def isinf(x):
    if _traced(x):
        return (x == _np.inf) | (x == -_np.inf)
    return _np.isinf(_value(x))


def isfinite(x):
    if _traced(x):
        if type(x) is Variable:
            return not ((x != x) | (x == _np.inf) | (x == -_np.inf))
        return ~((x != x) | (x == _np.inf) | (x == -_np.inf))
    return _np.isfinite(_value(x))


# -- building arrays from Variables ----------------------------------------------------------

def array(obj, dtype=None, copy=True, ndmin=0) -> _Any:
    """np.array, also of (nested) lists of Variables and ArrayVariables: one node."""
    if type(obj) is ArrayVariable:
        return _reshape_ndmin(obj, ndmin)
    if type(obj) is Variable:
        return _reshape_ndmin(obj, ndmin) if ndmin else obj
    if type(obj) is _np.ndarray and obj.dtype == object:
        recorded = recorded_array(obj)
        if recorded is not obj:
            return _reshape_ndmin(recorded, ndmin)
    if not _holds_variables(obj):
        return _np.array(obj, dtype=dtype, copy=copy, ndmin=ndmin)
    _check_float_dtype(dtype)
    if _builtins.any(isinstance(v, (list, tuple, ArrayVariable)) or
           isinstance(v, _np.ndarray) and v.ndim > 0 for v in obj):
        return _reshape_ndmin(stack([array(v) for v in obj]), ndmin)
    return _reshape_ndmin(_arrays.array_from_scalars(list(obj), (len(obj),)), ndmin)


def _check_float_dtype(dtype):
    if dtype is not None and _np.dtype(dtype) != _np.float64:
        raise TypeError(f"an array of Variables is float64; dtype={dtype} would drop "
                        f"the derivative")


def _reshape_ndmin(x, ndmin):
    shape = _np.shape(x.value) if _is_variable(x) else _np.shape(x)
    if len(shape) >= ndmin:
        return x
    return reshape(x, (1,) * (ndmin - len(shape)) + shape)


def asarray(a, dtype=None, order=None) -> _Any:
    if _is_variable(a) or _holds_variables(a):
        _check_float_dtype(dtype)
        return array(a)
    return _np.asarray(a, dtype=dtype, order=order)


asanyarray = asarray


def atleast_1d(*arrays):
    out = [reshape(a, (1,)) if _np.ndim(_value(a)) == 0 else asarray(a) for a in arrays]
    return out[0] if len(out) == 1 else out


def atleast_2d(*arrays):
    out = []
    for a in arrays:
        a = asarray(a)
        nd = _np.ndim(_value(a))
        out.append(reshape(a, (1, 1)) if nd == 0 else reshape(a, (1, -1)) if nd == 1
                   else a)
    return out[0] if len(out) == 1 else out


def atleast_3d(*arrays):
    out = []
    for a in arrays:
        a = asarray(a)
        shape = _np.shape(_value(a))
        out.append(reshape(a, (1, 1, 1)) if len(shape) == 0 else
                   reshape(a, (1, shape[0], 1)) if len(shape) == 1 else
                   reshape(a, shape + (1,)) if len(shape) == 2 else a)
    return out[0] if len(out) == 1 else out


# -- shape and selection ----------------------------------------------------------------------

def reshape(a, newshape=None, order="C", *, shape=None) -> _Any:
    if shape is not None:
        newshape = shape
    a = _operand(a)
    if _is_variable(a):
        return _arrays.reshape(a, newshape, order)
    return _np.reshape(a, newshape, order=order)


def ravel(a, order="C") -> _Any:
    return reshape(a, (-1,), order)


def _selection(numpy_function) -> _Callable[..., _Any]:
    """A NumPy function that selects or rearranges elements (transpose, flip, take,
    ...): one node. When NumPy returns a view, the node records its strides; otherwise
    a gather, its indices found by applying the function to the element positions."""
    def function(a, *args, **kwargs):
        a = _operand(a)
        if type(a) is Variable:
            a = reshape(a, (1,)) if numpy_function is not _np.transpose else a
            if type(a) is Variable:
                return a
        if type(a) is ArrayVariable:
            selected = _arrays.select(a, numpy_function(a.value, *args, **kwargs))
            if selected is not None:
                return selected
            return _arrays.gather(a, numpy_function(_arrays.positions(a), *args, **kwargs))
        return numpy_function(a, *args, **kwargs)
    function.__name__ = numpy_function.__name__
    function.__doc__ = (f"{numpy_function.__name__}, differentiable (one node: a strided "
                        f"view, or a gather of the selected elements).")
    return function


transpose = _selection(_np.transpose)
swapaxes = _selection(_np.swapaxes)
moveaxis = _selection(_np.moveaxis)
rollaxis = _selection(_np.rollaxis)
flip = _selection(_np.flip)
fliplr = _selection(_np.fliplr)
flipud = _selection(_np.flipud)
roll = _selection(_np.roll)
take = _selection(_np.take)
diagonal = _selection(_np.diagonal)
repeat = _selection(_np.repeat)
tile = _selection(_np.tile)
rot90 = _selection(_np.rot90)


def broadcast_to(array, shape) -> _Any:
    array = _operand(array)
    if _is_variable(array):
        return _arrays.broadcast_to(array, shape)
    return _np.broadcast_to(array, shape)


def expand_dims(a, axis) -> _Any:
    a = _operand(a)
    if _is_variable(a):
        return reshape(a, _np.expand_dims(_np.empty(_np.shape(_value(a)), bool),
                                          axis).shape)
    return _np.expand_dims(a, axis)


def squeeze(a, axis=None) -> _Any:
    a = _operand(a)
    if _is_variable(a):
        return reshape(a, _np.squeeze(_np.empty(_np.shape(_value(a)), bool), axis).shape)
    return _np.squeeze(a, axis)


def diag(v, k=0) -> _Any:
    v = _operand(v)
    if type(v) is ArrayVariable:
        if v.ndim == 2:
            return diagonal(v, k)
        value = _np.diag(v.value, k)
        rows, cols = _np.nonzero(_np.diag(_np.ones(v.shape[0], bool), k))
        return _arrays.concat_values([v], value, [rows * value.shape[1] + cols])
    return _np.diag(v, k)


def trace(a, offset=0, axis1=0, axis2=1) -> _Any:
    return sum(diagonal(a, offset, axis1, axis2), axis=-1)


def tril(m, k=0):
    m = _operand(m)
    if type(m) is ArrayVariable:
        return where(_np.tril(_np.ones(m.shape[-2:], bool), k), m, 0.0)
    return _np.tril(m, k)


def triu(m, k=0):
    m = _operand(m)
    if type(m) is ArrayVariable:
        return where(_np.triu(_np.ones(m.shape[-2:], bool), k), m, 0.0)
    return _np.triu(m, k)


def concatenate(arrays, axis=0) -> _Any:
    arrays = [_operand(a) for a in arrays]
    if not _builtins.any(_is_variable(a) for a in arrays) or _with_complex(arrays):
        return _np.concatenate(_complex_operands(arrays), axis)
    if axis is None:
        arrays = [ravel(a) for a in arrays]
        axis = 0
    values = [_value(a) for a in arrays]
    value = _np.concatenate(values, axis)
    axis = axis % value.ndim
    cuts = _np.cumsum([_np.shape(v)[axis] for v in values])[:-1]
    pos = _np.split(_np.arange(value.size).reshape(value.shape), cuts, axis)
    return _arrays.concat_values(arrays, value, pos)


def stack(arrays, axis=0) -> _Any:
    arrays = [_operand(a) for a in arrays]
    if not _builtins.any(_is_variable(a) for a in arrays) or _with_complex(arrays):
        return _np.stack(_complex_operands(arrays), axis)
    value = _np.stack([_value(a) for a in arrays], axis)
    pos = _np.moveaxis(_np.arange(value.size).reshape(value.shape), axis, 0)
    return _arrays.concat_values(arrays, value, list(pos))


def hstack(tup, *, dtype=None, casting="same_kind") -> _Any:
    if not _builtins.any(_holds_variables(a) for a in tup):
        return _np.hstack(tup, dtype=dtype, casting=casting)
    _check_float_dtype(dtype)
    arrays = [atleast_1d(a) for a in tup]
    return concatenate(arrays, 0 if _builtins.all(_np.ndim(_value(a)) == 1
                                                 for a in arrays) else 1)


def vstack(tup, *, dtype=None, casting="same_kind") -> _Any:
    if not _builtins.any(_holds_variables(a) for a in tup):
        return _np.vstack(tup, dtype=dtype, casting=casting)
    _check_float_dtype(dtype)
    return concatenate([atleast_2d(a) for a in tup], 0)


row_stack = vstack


def column_stack(tup):
    """1-d arrays (and numbers) as columns, beside the 2-d arrays."""
    arrays = [reshape(a, (-1, 1)) if _np.ndim(_value(a)) < 2 else a
              for a in (_operand(a) for a in tup)]
    return concatenate(arrays, 1)


def dstack(tup):
    return concatenate([atleast_3d(a) for a in tup], 2)


def split(ary, indices_or_sections, axis=0) -> _Any:
    ary = _operand(ary)
    if type(ary) is ArrayVariable:
        return [_arrays.gather(ary, p) for p in
                _np.split(_arrays.positions(ary), indices_or_sections, axis)]
    return _np.split(ary, indices_or_sections, axis)


def array_split(ary, indices_or_sections, axis=0):
    ary = _operand(ary)
    if type(ary) is ArrayVariable:
        return [_arrays.gather(ary, p) for p in
                _np.array_split(_arrays.positions(ary), indices_or_sections, axis)]
    return _np.array_split(ary, indices_or_sections, axis)


def hsplit(ary, indices_or_sections):
    return split(ary, indices_or_sections, 1 if _np.ndim(_value(ary)) > 1 else 0)


def vsplit(ary, indices_or_sections):
    if _np.ndim(_value(ary)) < 2:
        raise ValueError("vsplit only works on arrays of 2 or more dimensions")
    return split(ary, indices_or_sections, 0)


def dsplit(ary, indices_or_sections):
    if _np.ndim(_value(ary)) < 3:
        raise ValueError("dsplit only works on arrays of 3 or more dimensions")
    return split(ary, indices_or_sections, 2)


def append(arr, values, axis=None) -> _Any:
    """np.append: a concatenation (of the flattened operands when axis is None)."""
    arr = _operand(arr)
    values = _operand(values)
    if not (_is_variable(arr) or _is_variable(values)):
        return _np.append(arr, values, axis)
    if axis is None:
        return concatenate([ravel(arr), ravel(values)], 0)
    return concatenate([arr, values], axis)


# -- reductions ------------------------------------------------------------------------------

def any_set(kwargs):
    """True if a keyword argument asks for more than the default (a float64 dtype and
    nothing else is the default)."""
    return _builtins.any(not (k == "dtype" and v in (None, float, _np.float64))
                         and v is not None for k, v in kwargs.items()) or \
        _builtins.any(k in ("where", "initial", "out") for k in kwargs)


def _reduction(numpy_function, method) -> _Callable[..., _Any]:
    def function(a, axis=None, keepdims=False, **kwargs):
        a = _operand(a)
        if kwargs and _is_variable(a) and any_set(kwargs):
            raise TypeError(f"{numpy_function.__name__} of Variables supports axis "
                            f"and keepdims only, not {sorted(kwargs)}")
        if type(a) is ArrayVariable:
            return method(a, axis, keepdims)
        if type(a) is Variable:
            return a
        return numpy_function(a, axis=axis, keepdims=keepdims, **kwargs)
    function.__name__ = numpy_function.__name__
    function.__doc__ = f"{numpy_function.__name__}(a, axis=None, keepdims=False); differentiable."
    return function


sum = _reduction(_np.sum, _arrays.sum)
mean = _reduction(_np.mean, _arrays.mean)
prod = _reduction(_np.prod, _arrays.prod)
max = amax = _reduction(_np.max, lambda a, axis, keepdims:
                        _arrays.extremum(a, axis, keepdims, True))
min = amin = _reduction(_np.min, lambda a, axis, keepdims:
                        _arrays.extremum(a, axis, keepdims, False))


def cumsum(a, axis=None) -> _Any:
    a = _operand(a)
    if type(a) is Variable:
        a = reshape(a, (1,))
    if type(a) is ArrayVariable:
        return _arrays.cumsum(a, axis)
    return _np.cumsum(a, axis)


def var(a, axis=None, ddof=0, keepdims=False) -> _Any:
    a = _operand(a)
    if not _is_variable(a):
        return _np.var(a, axis=axis, ddof=ddof, keepdims=keepdims)
    centered = a - mean(a, axis=axis, keepdims=True)
    shape = _np.shape(_value(a))
    n = _np.prod([shape[d] for d in range(len(shape))] if axis is None else
                 [shape[d] for d in _np.atleast_1d(axis)])
    return sum(centered * centered, axis=axis, keepdims=keepdims) / (n - ddof)


def std(a, axis=None, ddof=0, keepdims=False) -> _Any:
    """sqrt(var); where the variance is 0 (a group of one element, or of equal ones)
    the derivative is 0, that of the constant 0 a group of one element has, rather
    than sqrt's infinite slope at 0 times a zero (nan)."""
    a = _operand(a)
    if not _is_variable(a):
        return _np.std(a, axis=axis, ddof=ddof, keepdims=keepdims)
    return _sqrt_of_variance(var(a, axis=axis, ddof=ddof, keepdims=keepdims))


def _sqrt_of_variance(v):
    """sqrt(v) of a variance v, with derivative 0 where v is 0 (see std)."""
    if type(v) is Variable:
        return sqrt(v) if v > 0.0 else v * 0.0
    if not _traced(v) and _np.all(v.value > 0.0):
        return sqrt(v)
    positive = v > 0.0            # (a recorded mask when tracing)
    return where(positive, sqrt(where(positive, v, 1.0)), 0.0)


# -- products --------------------------------------------------------------------------------

def matmul(a, b) -> _Any:
    a = _operand(a)
    b = _operand(b)
    if type(a) is ArrayVariable or type(b) is ArrayVariable:
        return _arrays.matmul(a, b)
    if _is_variable(a) or _is_variable(b):
        raise ValueError("matmul: Input operand does not have enough dimensions")
    return _np.matmul(a, b)


def dot(a, b) -> _Any:
    a = _operand(a)
    b = _operand(b)
    if not (_is_variable(a) or _is_variable(b)):
        return _np.dot(a, b)
    nda, ndb = _np.ndim(_value(a)), _np.ndim(_value(b))
    if nda == 0 or ndb == 0:
        return multiply(a, b)
    if nda <= 2 and ndb <= 2:
        return _with_numpy_errors(_np.dot, a, b, lambda: matmul(a, b))
    return _with_numpy_errors(_np.dot, a, b, lambda: tensordot(
        a, b, axes=([-1], [-2 if ndb > 1 else -1])))


def _with_numpy_errors(numpy_function, a, b, compute):
    """compute(), but a shape error carries the message NumPy gives for these operands
    (found by running numpy_function on their values, on the error path only)."""
    try:
        return compute()
    except ValueError:
        numpy_function(_value(a), _value(b))
        raise


def vdot(a, b) -> _Any:
    return _with_numpy_errors(_np.vdot, a, b, lambda: dot(ravel(a), ravel(b)))


def inner(a, b) -> _Any:
    a = _operand(a)
    b = _operand(b)
    if not (_is_variable(a) or _is_variable(b)):
        return _np.inner(a, b)
    if _np.ndim(_value(a)) == 0 or _np.ndim(_value(b)) == 0:
        return multiply(a, b)
    return _with_numpy_errors(_np.inner, a, b,
                              lambda: tensordot(a, b, axes=([-1], [-1])))


def outer(a, b) -> _Any:
    a = _operand(a)
    b = _operand(b)
    if not (_is_variable(a) or _is_variable(b)):
        return _np.outer(a, b)
    return multiply(reshape(a, (-1, 1)), reshape(b, (1, -1)))


def tensordot(a, b, axes=2) -> _Any:
    """Contraction over the given axes, as transposes, reshapes and one matmul."""
    a = _operand(a)
    b = _operand(b)
    if not (_is_variable(a) or _is_variable(b)):
        return _np.tensordot(a, b, axes)
    shape_a = _np.shape(_value(a))
    shape_b = _np.shape(_value(b))
    if isinstance(axes, int):
        axes_a = list(range(len(shape_a) - axes, len(shape_a)))
        axes_b = list(range(axes))
    else:
        axes_a, axes_b = axes
        axes_a = [axes_a] if isinstance(axes_a, int) else list(axes_a)
        axes_b = [axes_b] if isinstance(axes_b, int) else list(axes_b)
    axes_a = [ax % len(shape_a) for ax in axes_a]
    axes_b = [ax % len(shape_b) for ax in axes_b]
    if [shape_a[i] for i in axes_a] != [shape_b[i] for i in axes_b]:
        raise ValueError("shape-mismatch for sum")
    free_a = [d for d in range(len(shape_a)) if d not in axes_a]
    free_b = [d for d in range(len(shape_b)) if d not in axes_b]
    k = int(_np.prod([shape_a[d] for d in axes_a]))
    a2 = reshape(transpose(a, free_a + axes_a), (-1, k))
    b2 = reshape(transpose(b, axes_b + free_b), (k, -1))
    out_shape = tuple(shape_a[d] for d in free_a) + tuple(shape_b[d] for d in free_b)
    return reshape(matmul(a2, b2), out_shape)


def einsum(*operands, **kwargs) -> _Any:
    """einsum of Variables and arrays: subscripts with explicit or implicit output,
    '...', repeated indices within one operand (diagonals), or NumPy's interleaved
    form einsum(x, [0, 1], y, [1, 2], [0, 2]); one node whose reverse step is an
    einsum per operand."""
    from fasttape.numpy._einsum import einsum as variable_einsum, from_sublists
    if operands and isinstance(operands[0], str):
        subscripts, operands = operands[0], operands[1:]
    else:
        subscripts, operands = from_sublists(operands)
    operands = [_operand(x) for x in operands]
    if not _builtins.any(_is_variable(x) for x in operands) or _with_complex(operands):
        return _np.einsum(subscripts, *_complex_operands(operands), **kwargs)
    return variable_einsum(subscripts, operands, **kwargs)


# -- selection by condition ------------------------------------------------------------------

def where(condition, x=None, y=None) -> _Any:
    if x is None and y is None:
        return _np.where(_value(condition))
    x = _operand(x)
    y = _operand(y)
    if _with_complex([x, y]) and (_is_variable(x) or _is_variable(y)):
        x, y = _complex_operands([x, y])
        return _np.where(_value(condition), x, y)
    if type(condition) is ArrayMask:       # a recorded comparison (tracing)
        return _arrays.where(condition, x, y)
    if not (_is_variable(x) or _is_variable(y)):
        return _np.where(_value(condition), x, y)
    if _np.ndim(_value(condition)) == 0 and _np.ndim(_value(x)) == 0 and \
            _np.ndim(_value(y)) == 0:
        return x if bool(_value(condition)) else y
    return _arrays.where(condition, x, y)


def clip(a, a_min=None, a_max=None) -> _Any:
    """Values limited to [a_min, a_max]; the gradient is 1 strictly inside the interval
    and 0 at and beyond its ends (autograd's convention)."""
    a = _operand(a)
    if type(a) is Variable:
        a = reshape(a, (1,))
        return reshape(clip(a, a_min, a_max), ())
    if type(a) is not ArrayVariable:
        return _np.clip(a, a_min, a_max)
    lo = _value(a_min)
    hi = _value(a_max)
    value = _np.clip(a.value, lo, hi)            # NumPy's own shape errors first
    if _is_variable(a_min) or _is_variable(a_max):
        raise TypeError("clip of Variables takes constant bounds; for Variable bounds "
                        "write minimum(maximum(a, a_min), a_max)")
    if value.shape != a.shape:
        a = broadcast_to(a, value.shape)
    # minimum(maximum(a, lo), hi) as choices by recorded masks, so that a replay
    # recomputes them; <= and >= give the ends gradient 0
    for bound, op in ((lo, "le"), (hi, "ge")):
        if bound is None:
            continue
        take_bound = _arrays.record_mask(_MASK_OPS[op], a, bound)
        if _np.any(_np.isnan(bound)):              # a nan bound wins, as in NumPy
            take_bound = take_bound | _np.broadcast_to(_np.isnan(bound), a.shape)
        a = _arrays.where(take_bound, bound, a)
    return a


# -- rearranging, padding, differences (gathers and joins of the nodes above) ----------------

def _array_operand(a):
    """A Variable or a list holding them as an ArrayVariable (a scalar as 0-d)."""
    a = _operand(a)
    return _arrays.array_from_scalars([a], ()) if type(a) is Variable else a


def sort(a, axis=-1, kind=None, order=None) -> _Any:
    """Sorted copy; the derivative follows each element to its place (ties keep
    their order, as a stable sort). One gather."""
    a = _array_operand(a)
    if type(a) is not ArrayVariable:
        return _np.sort(a, axis=axis, kind=kind, order=order)
    return _gathers.sort(a, axis)


def partition(a, kth, axis=-1, kind="introselect", order=None):
    """np.partition; the derivative follows each element to its place. One gather."""
    a = _array_operand(a)
    if type(a) is not ArrayVariable:
        return _np.partition(a, kth, axis=axis, kind=kind, order=order)
    return _gathers.partition(a, kth, axis)


def pad(array, pad_width, mode="constant", **kwargs):
    """np.pad; the padding values (constant_values, ...) are constants. The modes that
    copy elements (constant, edge, reflect, symmetric, wrap) are one gather or join;
    the statistic and linear_ramp modes are refused."""
    array = _array_operand(array)
    if type(array) is not ArrayVariable:
        return _np.pad(array, pad_width, mode, **kwargs)
    return _gathers.pad(array, pad_width, mode, kwargs)


def make_diagonal(D, offset=0, axis1=0, axis2=1):
    """The array whose diagonal (np.diagonal(out, offset, axis1, axis2)) is D's last
    axis, zero elsewhere (autograd's complement of np.diagonal); axis1 and axis2 name
    axes of the output. One join."""
    D = _operand(D)
    return _gathers.make_diagonal(_array_operand(D) if _is_variable(D) else
                                  _np.asarray(D, dtype=_np.float64),
                                  offset, axis1, axis2)


def select(condlist, choicelist, default=0):
    """np.select: the first choice whose condition holds, else default (conditions
    are not differentiated)."""
    choicelist = [_operand(c) for c in choicelist]
    default = _operand(default)
    if not (_builtins.any(_is_variable(c) for c in choicelist) or _is_variable(default)):
        return _np.select([_value(c) for c in condlist], choicelist, default)
    if len(condlist) != len(choicelist):
        raise ValueError("list of cases must be same length as list of conditions")
    # NumPy's value (and errors) first: its shape is the broadcast of all of them
    value = _np.select([_value(c) for c in condlist], [_value(c) for c in choicelist],
                       _value(default))
    result = broadcast_to(default, value.shape) if _is_variable(default) else \
        _np.broadcast_to(_np.asarray(default, dtype=_np.float64), value.shape)
    for condition, choice in _builtins.reversed(list(zip(condlist, choicelist))):
        condition = _np.broadcast_to(_np.asarray(_value(condition), dtype=bool),
                                     value.shape)
        result = _arrays.where(condition, choice, result)
    return result


def kron(a, b) -> _Any:
    """Kronecker product: a product of broadcast axes, reshaped."""
    a = _operand(a)
    b = _operand(b)
    if not (_is_variable(a) or _is_variable(b)):
        return _np.kron(a, b)
    nd = _builtins.max(_np.ndim(_value(a)), _np.ndim(_value(b)))
    sa = (1,) * (nd - _np.ndim(_value(a))) + _np.shape(_value(a))
    sb = (1,) * (nd - _np.ndim(_value(b))) + _np.shape(_value(b))
    # a[i, None, j, None] * b[None, k, None, l] -> shape (i*k, j*l)
    a2 = reshape(a, tuple(x for d in sa for x in (d, 1)))
    b2 = reshape(b, tuple(x for d in sb for x in (1, d)))
    return reshape(multiply(a2, b2), tuple(p * q for p, q in zip(sa, sb)))


def diff(a, n=1, axis=-1, prepend=_np._NoValue, append=_np._NoValue):
    """n-th differences along axis: differences of slices, n times."""
    a = _operand(a)
    if not (_is_variable(a) or _is_variable(prepend) or _is_variable(append)):
        kwargs = {k: v for k, v in (("prepend", prepend), ("append", append))
                  if v is not _np._NoValue}
        return _np.diff(a, n=n, axis=axis, **kwargs)
    if n < 0:
        raise ValueError(f"order must be non-negative but got {n}")
    a = _array_operand(a)
    ndim = _np.ndim(_value(a))
    if ndim == 0:
        raise ValueError("diff requires input that is at least one dimensional")
    axis = axis % ndim
    parts = []
    for extra in (prepend, append):
        if extra is _np._NoValue:
            parts.append(None)
            continue
        extra = _array_operand(extra)
        if _np.ndim(_value(extra)) == 0:
            shape = list(_np.shape(_value(a)))
            shape[axis] = 1
            extra = broadcast_to(extra, tuple(shape)) if _is_variable(extra) else \
                _np.broadcast_to(extra, shape)
        parts.append(extra)
    if parts[0] is not None or parts[1] is not None:
        a = concatenate([p for p in (parts[0], a, parts[1]) if p is not None], axis)
    for _ in range(n):
        length = _np.shape(_value(a))[axis]
        upper = (slice(None),) * axis + (slice(1, None),)
        lower = (slice(None),) * axis + (slice(None, length - 1),)
        a = a[upper] - a[lower]
    return a


def gradient(f, *varargs, axis=None, edge_order=1):
    """np.gradient of a Variable: along each axis, a linear map of the values (NumPy's
    own, found by applying np.gradient to the identity), as one tensordot per axis."""
    f = _array_operand(f)
    if type(f) is not ArrayVariable:
        return _np.gradient(f, *varargs, axis=axis, edge_order=edge_order)
    if _builtins.any(_is_variable(v) for v in varargs):
        raise TypeError("gradient of Variables takes constant spacings")
    shape = f.shape
    value = _np.gradient(f.value, *varargs, axis=axis, edge_order=edge_order)
    axes = list(range(len(shape))) if axis is None else \
        [ax % len(shape) for ax in _np.atleast_1d(axis)]
    if len(varargs) == 0:
        spacings = [1.0] * len(axes)
    elif len(varargs) == 1 and _np.ndim(varargs[0]) == 0:
        spacings = list(varargs) * len(axes)
    else:
        spacings = list(varargs)
    out = []
    for ax, spacing in zip(axes, spacings):
        # column j of `linear` is the gradient of the j-th unit vector
        linear = _np.gradient(_np.eye(shape[ax]), spacing, axis=0, edge_order=edge_order)
        out.append(moveaxis(tensordot(linear, f, axes=([1], [ax])), 0, ax))
    return out[0] if not isinstance(value, (list, tuple)) else out


def cross(a, b, axisa=-1, axisb=-1, axisc=-1, axis=None):
    """Cross product of 3-vectors (or 2-vectors, as NumPy), with broadcasting."""
    a = _operand(a)
    b = _operand(b)
    if not (_is_variable(a) or _is_variable(b)):
        return _np.cross(a, b, axisa, axisb, axisc, axis)
    if axis is not None:
        axisa = axisb = axisc = axis
    value = _np.cross(_value(a), _value(b), axisa, axisb, axisc)   # NumPy's checks
    a = moveaxis(_array_operand(a), axisa, -1) if _is_variable(a) else \
        _np.moveaxis(a, axisa, -1)
    b = moveaxis(_array_operand(b), axisb, -1) if _is_variable(b) else \
        _np.moveaxis(b, axisb, -1)

    def components(x):
        c = [x[..., i] for i in range(_np.shape(_value(x))[-1])]
        return c + [0.0] * (3 - len(c))
    a0, a1, a2 = components(a)
    b0, b1, b2 = components(b)
    z = a0 * b1 - a1 * b0
    if _np.shape(_value(a))[-1] == 2 and _np.shape(_value(b))[-1] == 2:
        return z if _is_variable(z) else _np.asarray(z)
    c = stack([broadcast_to(_array_operand(c), z_shape) if _is_variable(c) else
               _np.broadcast_to(c, z_shape)
               for c, z_shape in ((a1 * b2 - a2 * b1, _np.shape(_value(z))),
                                  (a2 * b0 - a0 * b2, _np.shape(_value(z))),
                                  (z, _np.shape(_value(z))))], -1)
    return moveaxis(c, -1, axisc) if value.ndim > 1 else c


def nan_to_num(x, copy=True, nan=0.0, posinf=None, neginf=None):
    """x with nan and infinities replaced by numbers (constants: derivative 0 there,
    1 elsewhere)."""
    x = _operand(x)
    if not _is_variable(x):
        return _np.nan_to_num(x, copy=copy, nan=nan, posinf=posinf, neginf=neginf)
    value = _np.nan_to_num(_value(x), nan=nan, posinf=posinf, neginf=neginf)
    if type(x) is Variable:
        return x if _np.isfinite(x.value) else float(value)
    return where(isfinite(x), x, value)


def linspace(start, stop, num=50, endpoint=True, retstep=False, dtype=None, axis=0) -> _Any:
    """np.linspace with Variable ends: start + (stop - start) * t along axis."""
    start = _operand(start)
    stop = _operand(stop)
    if not (_is_variable(start) or _is_variable(stop)):
        return _np.linspace(start, stop, num, endpoint, retstep, dtype, axis)
    _check_float_dtype(dtype)
    t = _np.linspace(0.0, 1.0, num, endpoint)
    shape = _np.broadcast_shapes(_np.shape(_value(start)), _np.shape(_value(stop)))
    t = t.reshape((num,) + (1,) * len(shape))
    out = (1.0 - t) * start + t * stop if num else \
        _np.zeros((0,) + shape)
    if num and not endpoint or num == 1:
        out = start + (stop - start) * t
    if num and axis != 0:
        out = moveaxis(out, 0, axis)
    if retstep:
        div = (num - 1) if endpoint else num
        return out, (stop - start) / div if div > 0 else _np.nan
    return out


# -- complex parts and dtype (of real Variables) ---------------------------------------------

def real(val):
    """The real part: a real Variable itself."""
    val = _operand(val)
    return val if _is_variable(val) else _np.real(val)


def imag(val):
    """The imaginary part of a real Variable: zeros (a constant)."""
    val = _operand(val)
    if _is_variable(val):
        return _np.zeros(_np.shape(val.value)) if type(val) is ArrayVariable else 0.0
    return _np.imag(val)


def conjugate(x):
    x = _operand(x)
    return x if _is_variable(x) else _np.conjugate(x)


conj = conjugate
_variable.register_ufunc(_np.conjugate, conjugate)     # np.conj of a scalar Variable


def angle(z, deg=False):
    """The angle of a real Variable: 0 or pi (180 with deg), a constant."""
    z = _operand(z)
    return _np.angle(_value(z), deg) if _is_variable(z) else _np.angle(z, deg)


def real_if_close(a, tol=100):
    a = _operand(a)
    return a if _is_variable(a) else _np.real_if_close(a, tol)


def full(shape, fill_value, dtype=None, order="C") -> _Any:
    """An array of shape filled with fill_value (a Variable: broadcast)."""
    fill_value = _operand(fill_value)
    if not _is_variable(fill_value):
        return _np.full(shape, fill_value, dtype, order)
    _check_float_dtype(dtype)
    shape = (shape,) if _np.ndim(shape) == 0 else tuple(shape)
    return broadcast_to(fill_value, shape)


def full_like(a, fill_value, dtype=None, order="K", subok=True, shape=None):
    value = _np.full_like(_value(_operand(a)), 0.0, dtype, order, subok, shape)
    if _is_variable(_operand(fill_value)):
        return full(value.shape, fill_value, dtype)
    return _np.full_like(value, _value(fill_value), dtype)


def zeros_like(a, dtype=None, order="K", subok=True, shape=None) -> _Any:
    """Zeros of a's shape (a constant, also of a Variable)."""
    return _np.zeros_like(_value(_operand(a)), dtype, order, subok, shape)


def ones_like(a, dtype=None, order="K", subok=True, shape=None) -> _Any:
    return _np.ones_like(_value(_operand(a)), dtype, order, subok, shape)


def empty_like(a, dtype=None, order="K", subok=True, shape=None):
    return _np.empty_like(_value(_operand(a)), dtype, order, subok, shape)


# np.r_ and np.c_ (Variables among the items: one concatenation)
r_ = _AxisJoiner(_np.r_, 0, 1, -1, concatenate, _array_operand)
c_ = _AxisJoiner(_np.c_, -1, 2, 0, concatenate, _array_operand)


# -- the dispatch tables for plain NumPy calls on Variables ----------------------------------
# (registered with fasttape._arrays, for __array_ufunc__ / __array_function__, by
# fasttape._wiring)

_UFUNCS = {
    **_TABLE_UFUNCS,             # the op table's (sin, add, maximum, ...)
    _np.positive: positive, _np.matmul: matmul, _np.conjugate: conjugate, _np.less: less,
    _np.less_equal: less_equal, _np.greater: greater, _np.greater_equal: greater_equal,
    _np.equal: equal, _np.not_equal: not_equal, _np.isnan: isnan, _np.isinf: isinf,
    _np.isfinite: isfinite,
}

_FUNCTIONS = {
    **_TABLE_FUNCTIONS,          # the op table's that are not ufuncs (sinc)
    _np.sum: sum, _np.mean: mean, _np.prod: prod, _np.max: max, _np.amax: max,
    _np.min: min, _np.amin: min, _np.cumsum: cumsum, _np.var: var, _np.std: std,
    _np.dot: dot, _np.vdot: vdot, _np.inner: inner, _np.outer: outer,
    _np.tensordot: tensordot, _np.einsum: einsum, _np.reshape: reshape,
    _np.ravel: ravel, _np.transpose: transpose, _np.swapaxes: swapaxes,
    _np.moveaxis: moveaxis, _np.rollaxis: rollaxis, _np.expand_dims: expand_dims,
    _np.squeeze: squeeze, _np.broadcast_to: broadcast_to,
    _np.concatenate: concatenate, _np.stack: stack, _np.hstack: hstack,
    _np.vstack: vstack, _np.column_stack: column_stack, _np.split: split,
    _np.array_split: array_split, _np.hsplit: hsplit, _np.vsplit: vsplit,
    _np.where: where, _np.clip: clip, _np.flip: flip, _np.fliplr: fliplr,
    _np.flipud: flipud, _np.roll: roll, _np.take: take, _np.diagonal: diagonal,
    _np.diag: diag, _np.trace: trace, _np.tril: tril, _np.triu: triu,
    _np.repeat: repeat, _np.tile: tile, _np.rot90: rot90,
    _np.atleast_1d: atleast_1d, _np.atleast_2d: atleast_2d,
    _np.shape: lambda a: _np.shape(_value(a)), _np.ndim: lambda a: _np.ndim(_value(a)),
    _np.size: lambda a, axis=None: _np.size(_value(a), axis),
    _np.isnan: isnan, _np.isinf: isinf, _np.isfinite: isfinite,
    _np.asarray: asarray, _np.asanyarray: asarray, _np.array: array,
    _np.zeros_like: zeros_like, _np.ones_like: ones_like, _np.empty_like: empty_like,
    _np.full_like: full_like, _np.full: full, _np.atleast_3d: atleast_3d,
    _np.dstack: dstack, _np.dsplit: dsplit, _np.append: append, _np.select: select,
    _np.sort: sort, _np.partition: partition, _np.pad: pad, _np.kron: kron,
    _np.diff: diff, _np.gradient: gradient, _np.cross: cross,
    _np.nan_to_num: nan_to_num, _np.linspace: linspace, _np.real: real,
    _np.imag: imag, _np.angle: angle, _np.real_if_close: real_if_close,
}

# argmax, allclose, nonzero, ...: plain results, computed on the values
for _numpy_function, _function in _values_only.FUNCTIONS.items():
    globals()[_numpy_function.__name__] = _function
    _FUNCTIONS[_numpy_function] = _function


def _with_complex(values):
    """True if a complex value (a constant, or a fasttape._complex.ComplexArray) is
    among values."""
    return _builtins.any(_np.iscomplexobj(v) for v in values if not _is_variable(v))


def _complex_operands(values):
    """Real Variables made complex (x + 0j: fasttape._complex.ComplexArray) when a
    complex value is among values, so that NumPy's function dispatches to the
    complex layer."""
    if not _with_complex(values):
        return values
    return [v + 0j if _is_variable(v) else v for v in values]

# fasttape.numpy.linalg is a layer above this module (its rules are written with these
# functions): importing fasttape imports it (fasttape._wiring), which makes it this
# package's `linalg` in place of NumPy's, star-imported above.
