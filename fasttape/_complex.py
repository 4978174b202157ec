"""Complex numbers as pairs of real values: ``ComplexArray``.

A complex value on the tape is its two real parts, each an ordinary fasttape value (a
Variable, an ArrayVariable, or a plain float or float64 array for a constant part):
``ComplexArray(real, imag)``. Every complex operation is written as real operations
on the parts (a product is four real products and two sums, exp(x + iy) is
e^x (cos y + i sin y), |z| is hypot(x, y), ...), so reverse mode, forward mode, second
order and replay come from the real machinery unchanged, in C; nothing on the real
scalar and array paths knows about complex numbers beyond a hook taken when an
operand turns out to be complex (fasttape._arrays and fasttape._variable call
``operation`` below, as fasttape._wiring connects them).

A part that is exactly zero is carried as ``None`` inside the arithmetic helpers
(``x * 1j`` is one real product, not four), and a ComplexArray whose parts are both
constants is returned as a plain complex NumPy value, so that derivative rules
written with these functions compute plain numbers when the sweeps call them with
plain arrays.

NumPy's ufuncs and functions reach ComplexArray through ``__array_ufunc__`` and
``__array_function__`` (``np.exp(z)``, ``np.sum(z)``, ``fasttape.numpy.exp(z)``), and
the entry points of the differential operators (fasttape._complex_recording) turn
complex arguments into ComplexArrays of real leaves.
"""
import numbers

import numpy as np

import fasttape.numpy as fnp
from fasttape.numpy import _values_only
from fasttape._arrays import ArrayVariable
from fasttape._tape import OP_TABLE
from fasttape._variable import Variable
from fasttape.errors import ComplexInputError


def is_variable(x):
    return type(x) is Variable or type(x) is ArrayVariable


def is_complex_value(x):
    """True for a complex number or array (plain) or a ComplexArray."""
    if type(x) is ComplexArray:
        return True
    if isinstance(x, numbers.Complex) and not isinstance(x, numbers.Real):
        return True
    return isinstance(x, np.ndarray) and x.dtype.kind == "c"


def _value(x):
    return x.value if is_variable(x) else x


def _shape(x):
    return np.shape(_value(x)) if x is not None else ()


# -- parts ------------------------------------------------------------------------------------

def split(x):
    """(real part, imaginary part) of an operand: a ComplexArray's parts, a real value
    and None (an exact zero), or a complex constant's parts (None where all zero)."""
    if type(x) is ComplexArray:
        return x.real, x.imag
    if is_variable(x):
        return x, None
    if isinstance(x, (list, tuple)):
        if any(type(v) is ComplexArray for v in x):
            return split(stack(list(x)))
        x = fnp.array(x) if fnp._holds_variables(x) else np.asarray(x)
        if is_variable(x):
            return x, None
    if isinstance(x, numbers.Number):
        if isinstance(x, numbers.Real):
            return float(x), None
        c = complex(x)
        return (c.real if c.real != 0.0 else None), (c.imag if c.imag != 0.0 else None)
    a = np.asarray(x)
    if a.dtype.kind == "c":
        re = np.array(a.real, dtype=np.float64)     # (ascontiguousarray makes 0-d 1-d)
        im = np.array(a.imag, dtype=np.float64)
        return re, (im if np.any(im) else None)
    if a.dtype.kind not in "fiub":
        raise TypeError(f"cannot use an array of dtype {a.dtype} as a number")
    return a.astype(np.float64), None


def make(re, im):
    """The complex value re + i im (None: an exact zero): a ComplexArray if a part is a
    Variable, else a plain complex number or array."""
    if re is None and im is None:
        return 0j
    if not is_variable(re) and not is_variable(im):
        if re is None:
            return 1j * np.asarray(im) if np.ndim(im) else complex(0.0, float(im))
        if im is None:
            return np.asarray(re, dtype=complex) if np.ndim(re) else complex(float(re))
        re, im = np.asarray(re), np.asarray(im)
        value = np.empty(np.broadcast_shapes(re.shape, im.shape), dtype=complex)
        value.real = re          # (one pass over each part: no temporaries)
        value.imag = im
        return value if value.ndim else complex(value)
    if re is None:
        re = _zeros_like(im)
    elif im is None:
        im = _zeros_like(re)
    re_shape, im_shape = _shape(re), _shape(im)
    if re_shape != im_shape:
        # (a complex scalar plus a real array: both parts of the result's shape, so
        # that each part's derivative has the shape of the value)
        shape = np.broadcast_shapes(re_shape, im_shape)
        re, im = _broadcast(re, shape), _broadcast(im, shape)
    return ComplexArray(re, im)


def _broadcast(part, shape):
    if _shape(part) == shape:
        return part
    if is_variable(part):
        return fnp.broadcast_to(part, shape)
    return np.ascontiguousarray(np.broadcast_to(part, shape), dtype=np.float64)


def _zeros_like(x):
    shape = _shape(x)
    return np.zeros(shape) if shape else 0.0


# the arithmetic of parts, None being an exact zero (so that it costs no node)

def _add(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return a + b


def _sub(a, b):
    if b is None:
        return a
    if a is None:
        return -b
    return a - b


def _mul(a, b):
    if a is None or b is None:
        return None
    return a * b


def _neg(a):
    return None if a is None else -a


def _or_zero(a, like):
    return a if a is not None else _zeros_like(like)


# -- the handle -------------------------------------------------------------------------------

class ComplexArray:
    """A differentiable complex number or array: ``real + 1j * imag``, each part a
    Variable, an ArrayVariable, or a constant float or float64 array, of one shape.

    Made by operations that meet complex numbers (``x * 1j``, ``np.exp(1j * x)``,
    ``x.astype(complex)``, ``np.fft.fft(x)``) and by the differential operators for
    complex arguments. Supports NumPy's operators, ufuncs and functions through its
    parts; ``.value`` is the plain complex value.
    """

    __slots__ = ("real", "imag")
    __array_priority__ = 200.0      # (above ArrayVariable's: its operators decline)

    def __init__(self, real, imag):
        self.real = real
        self.imag = imag

    # -- shape and value ---------------------------------------------------------------------

    @property
    def value(self):
        value = np.asarray(_value(self.real)) + 1j * np.asarray(_value(self.imag))
        return value if value.ndim else complex(value)

    @property
    def shape(self):
        return np.broadcast_shapes(_shape(self.real), _shape(self.imag))

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def size(self):
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def dtype(self):
        return np.dtype(np.complex128)

    @property
    def tape(self):
        return (self.real if is_variable(self.real) else self.imag).tape

    def __len__(self):
        shape = self.shape
        if not shape:
            raise TypeError("len() of unsized object")
        return shape[0]

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __repr__(self):
        return f"ComplexArray({self.value!r})"

    def __array__(self, dtype=None, copy=None):
        raise TypeError("converting a fasttape ComplexArray to a NumPy array would drop "
                        "its derivative; use .value for a plain complex value")

    def __float__(self):
        # (ComplexInputError: where a nested grad makes leaves of its arguments, it
        # hands a complex one over to fasttape._complex_recording)
        raise ComplexInputError("float() of a complex value; take np.real(z) or "
                                "np.abs(z)")

    def __complex__(self):
        raise TypeError("complex() of a fasttape ComplexArray would drop its "
                        "derivative; use .value for a plain number")

    def __bool__(self):
        return bool(self.value)

    def __hash__(self):
        return id(self) >> 4

    # -- operators ---------------------------------------------------------------------------

    def __add__(self, other):
        return add(self, other)

    def __radd__(self, other):
        return add(other, self)

    def __sub__(self, other):
        return subtract(self, other)

    def __rsub__(self, other):
        return subtract(other, self)

    def __mul__(self, other):
        return multiply(self, other)

    def __rmul__(self, other):
        return multiply(other, self)

    def __truediv__(self, other):
        return divide(self, other)

    def __rtruediv__(self, other):
        return divide(other, self)

    def __pow__(self, other):
        return power(self, other)

    def __rpow__(self, other):
        return power(other, self)

    def __matmul__(self, other):
        return matmul(self, other)

    def __rmatmul__(self, other):
        return matmul(other, self)

    def __neg__(self):
        return negative(self)

    def __pos__(self):
        return self

    def __abs__(self):
        return absolute(self)

    def __eq__(self, other):
        return np.equal(self.value, _plain(other))

    def __ne__(self, other):
        return np.not_equal(self.value, _plain(other))

    def __getitem__(self, key):
        return make(_part_index(self.real, key, self.shape),
                    _part_index(self.imag, key, self.shape))

    # -- methods -----------------------------------------------------------------------------

    def conj(self):
        return conjugate(self)

    conjugate = conj

    @property
    def T(self):
        return transpose(self)

    def transpose(self, *axes):
        if len(axes) == 1 and (axes[0] is None or isinstance(axes[0], (tuple, list))):
            axes = axes[0]
        return transpose(self, axes or None)

    def reshape(self, *shape, order="C"):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return reshape(self, shape, order)

    def ravel(self):
        return reshape(self, (-1,))

    flatten = ravel

    def sum(self, axis=None, keepdims=False):
        return sum(self, axis, keepdims)

    def mean(self, axis=None, keepdims=False):
        return mean(self, axis, keepdims)

    def dot(self, other):
        return dot(self, other)

    def swapaxes(self, a, b):
        return swapaxes(self, a, b)

    def squeeze(self, axis=None):
        return squeeze(self, axis)

    def astype(self, dtype):
        if np.dtype(dtype).kind == "c":
            return self
        raise TypeError(f"astype({dtype}) of a complex value would drop its imaginary "
                        f"part; take np.real(z) (or np.abs(z)) explicitly")

    def copy(self):
        return self

    # -- NumPy protocols ---------------------------------------------------------------------

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        implementation = UFUNCS.get(ufunc) if method == "__call__" else None
        if implementation is None or kwargs:
            raise TypeError(f"fasttape cannot differentiate numpy.{ufunc.__name__}"
                            f"{'' if method == '__call__' else '.' + method} of complex "
                            f"values{' with keyword arguments' if kwargs else ''}")
        return implementation(*inputs)

    def __array_function__(self, func, types, args, kwargs):
        implementation = FUNCTIONS.get(func)
        if implementation is None and func in _values_only.FUNCTIONS:
            # no derivative (np.iscomplex, np.allclose, ...): on the values
            return _values_only.FUNCTIONS[func](*[_parts_or_value(a) for a in args],
                                                **kwargs)
        if implementation is None:
            raise TypeError(f"fasttape cannot differentiate numpy.{func.__name__} of "
                            f"complex values (no rule for it in fasttape._complex)")
        return implementation(*args, **kwargs)


def _plain(x):
    if type(x) is ComplexArray:
        return x.value
    return _value(x)


def _part_index(part, key, shape):
    if np.ndim(_value(part)) == 0 and shape:      # a scalar part of an array: broadcast
        part = fnp.broadcast_to(part, shape) if is_variable(part) else \
            np.broadcast_to(part, shape)
    return part[key]


def as_complex(x):
    """x as a complex value: a ComplexArray (with a zero imaginary part for a real
    Variable) or a plain complex value (x.astype(complex))."""
    re, im = split(x)
    if is_variable(re) or is_variable(im):
        return ComplexArray(re, _or_zero(im, re))
    return make(re, im)


# -- arithmetic -------------------------------------------------------------------------------

def add(a, b):
    ar, ai = split(a)
    br, bi = split(b)
    return make(_add(ar, br), _add(ai, bi))


def subtract(a, b):
    ar, ai = split(a)
    br, bi = split(b)
    return make(_sub(ar, br), _sub(ai, bi))


def _times(ar, ai, br, bi):
    """(ar + i ai)(br + i bi) as parts: four real products and two sums at most."""
    return _sub(_mul(ar, br), _mul(ai, bi)), _add(_mul(ar, bi), _mul(ai, br))


def multiply(a, b):
    return make(*_times(*split(a), *split(b)))


def _reciprocal_parts(br, bi):
    """1 / (br + i bi) = (br - i bi) / (br^2 + bi^2)."""
    if bi is None:
        return 1.0 / br, None
    if br is None:
        return None, -1.0 / bi
    denominator = br * br + bi * bi
    return br / denominator, -bi / denominator


def divide(a, b):
    ar, ai = split(a)
    return make(*_times(ar, ai, *_reciprocal_parts(*split(b))))


def reciprocal(z):
    return make(*_reciprocal_parts(*split(z)))


def negative(z):
    re, im = split(z)
    return make(_neg(re), _neg(im))


def positive(z):
    return z


def conjugate(z):
    re, im = split(z)
    return make(re, _neg(im))


def square(z):
    re, im = split(z)
    return make(*_times(re, im, re, im))


def power(a, b):
    """a ** b: repeated products for a small integer exponent, else exp(b log a)
    (the principal branch)."""
    if not is_variable(b) and type(b) is not ComplexArray and np.ndim(b) == 0 and \
            not is_complex_value(b) and float(b) == int(b) and 0 <= int(b) <= 4:
        n = int(b)
        if n == 0:
            return multiply(a, 0.0) + 1.0
        result = a
        for _ in range(n - 1):
            result = multiply(result, a)
        return result
    return exp(multiply(b, log(a)))


# -- elementary functions ---------------------------------------------------------------------

def absolute(z):
    """|z| = hypot(x, y) (a real value); its derivative is nan at 0 (as autograd's)."""
    re, im = split(z)
    if im is None:
        return fnp.abs(re)
    if re is None:
        return fnp.abs(im)
    return fnp.hypot(re, im)     # (one node; sqrt(x^2 + y^2) would be four)


def angle(z, deg=False):
    """arctan2(y, x), in (-pi, pi]; real z: 0 or pi, a constant."""
    re, im = split(z)
    if im is None:
        value = np.where(np.asarray(_value(re)) < 0, np.pi, 0.0)
        result = value if value.ndim else float(value)
    else:
        result = fnp.arctan2(im, _or_zero(re, im))
    return result * (180.0 / np.pi) if deg else result


def real(z):
    re, im = split(z)
    return re


def imag(z):
    re, im = split(z)
    return _or_zero(im, re)


def exp(z):
    """e^x (cos y + i sin y)."""
    re, im = split(z)
    if im is None:
        return make(fnp.exp(re), None)
    scale = fnp.exp(re) if re is not None else 1.0
    return make(scale * fnp.cos(im), scale * fnp.sin(im))


def expm1(z):
    return exp(z) - 1.0


def exp2(z):
    return exp(multiply(z, np.log(2.0)))


def log(z):
    """log|z| + i angle(z), the principal branch (the cut along the negative reals)."""
    re, im = split(z)
    if im is None:
        re = _or_zero(re, im)
        return make(fnp.log(fnp.abs(re)), angle(re) if np.any(
            np.asarray(_value(re)) < 0) else None)
    re = _or_zero(re, im)
    return make(0.5 * fnp.log(re * re + im * im), fnp.arctan2(im, re))


def log10(z):
    return multiply(log(z), 1.0 / np.log(10.0))


def log2(z):
    return multiply(log(z), 1.0 / np.log(2.0))


def log1p(z):
    return log(add(z, 1.0))


def sqrt(z):
    """Principal square root: sqrt|z| (cos(a/2) + i sin(a/2)), a = angle(z)."""
    re, im = split(z)
    re = _or_zero(re, im)
    if im is None:
        im = _zeros_like(re)
    modulus = fnp.sqrt(fnp.sqrt(re * re + im * im))
    half = 0.5 * fnp.arctan2(im, re)
    return make(modulus * fnp.cos(half), modulus * fnp.sin(half))


def sin(z):
    """sin x cosh y + i cos x sinh y."""
    re, im = split(z)
    re = _or_zero(re, im)
    if im is None:
        return make(fnp.sin(re), None)
    return make(fnp.sin(re) * fnp.cosh(im), fnp.cos(re) * fnp.sinh(im))


def cos(z):
    """cos x cosh y - i sin x sinh y."""
    re, im = split(z)
    re = _or_zero(re, im)
    if im is None:
        return make(fnp.cos(re), None)
    return make(fnp.cos(re) * fnp.cosh(im), -(fnp.sin(re) * fnp.sinh(im)))


def tan(z):
    return divide(sin(z), cos(z))


def sinh(z):
    """sinh x cos y + i cosh x sin y."""
    re, im = split(z)
    re = _or_zero(re, im)
    if im is None:
        return make(fnp.sinh(re), None)
    return make(fnp.sinh(re) * fnp.cos(im), fnp.cosh(re) * fnp.sin(im))


def cosh(z):
    """cosh x cos y + i sinh x sin y."""
    re, im = split(z)
    re = _or_zero(re, im)
    if im is None:
        return make(fnp.cosh(re), None)
    return make(fnp.cosh(re) * fnp.cos(im), fnp.sinh(re) * fnp.sin(im))


def tanh(z):
    return divide(sinh(z), cosh(z))


def arcsin(z):
    """-i log(iz + sqrt(1 - z^2)) (principal values)."""
    return multiply(-1j, log(add(multiply(1j, z), sqrt(subtract(1.0, square(z))))))


def arccos(z):
    return subtract(np.pi / 2, arcsin(z))


def arctan(z):
    """(i/2) (log(1 - iz) - log(1 + iz))."""
    iz = multiply(1j, z)
    return multiply(0.5j, subtract(log(subtract(1.0, iz)), log(add(1.0, iz))))


def arcsinh(z):
    """log(z + sqrt(z^2 + 1))."""
    return log(add(z, sqrt(add(square(z), 1.0))))


def arccosh(z):
    """log(z + sqrt(z + 1) sqrt(z - 1))."""
    return log(add(z, multiply(sqrt(add(z, 1.0)), sqrt(subtract(z, 1.0)))))


def arctanh(z):
    """(log(1 + z) - log(1 - z)) / 2."""
    return multiply(0.5, subtract(log(add(1.0, z)), log(subtract(1.0, z))))


def isfinite(z):
    return np.isfinite(_plain(z))


def isnan(z):
    return np.isnan(_plain(z))


def isinf(z):
    return np.isinf(_plain(z))


def _comparison(ufunc):
    def function(a, b):
        return ufunc(_plain(a), _plain(b))
    return function


# -- shapes and selections: the same on both parts ------------------------------------------

def _on_parts(function):
    """A function of one array applied to both parts (a linear rearrangement)."""
    def on_parts(z, *args, **kwargs):
        re, im = split(z)
        return make(function(_or_zero(re, im), *args, **kwargs),
                    None if im is None else function(im, *args, **kwargs))
    on_parts.__name__ = function.__name__
    return on_parts


reshape = _on_parts(fnp.reshape)
ravel = _on_parts(fnp.ravel)
transpose = _on_parts(fnp.transpose)
swapaxes = _on_parts(fnp.swapaxes)
moveaxis = _on_parts(fnp.moveaxis)
expand_dims = _on_parts(fnp.expand_dims)
squeeze = _on_parts(fnp.squeeze)
flip = _on_parts(fnp.flip)
roll = _on_parts(fnp.roll)
broadcast_to = _on_parts(fnp.broadcast_to)
diagonal = _on_parts(fnp.diagonal)
diag = _on_parts(fnp.diag)
trace = _on_parts(fnp.trace)
tile = _on_parts(fnp.tile)
repeat = _on_parts(fnp.repeat)
take = _on_parts(fnp.take)
cumsum = _on_parts(fnp.cumsum)
tril = _on_parts(fnp.tril)
triu = _on_parts(fnp.triu)


def sum(a, axis=None, keepdims=False, **kwargs):
    re, im = split(a)
    return make(fnp.sum(_or_zero(re, im), axis=axis, keepdims=keepdims),
                None if im is None else fnp.sum(im, axis=axis, keepdims=keepdims))


def mean(a, axis=None, keepdims=False, **kwargs):
    re, im = split(a)
    return make(fnp.mean(_or_zero(re, im), axis=axis, keepdims=keepdims),
                None if im is None else fnp.mean(im, axis=axis, keepdims=keepdims))


def prod(a, axis=None, keepdims=False, **kwargs):
    """The product as a chain of complex products along the axis."""
    if axis is None:
        ndim = np.ndim(_plain(a))
        result = prod(reshape(a, (-1,)), 0)
        return reshape(result, (1,) * ndim) if keepdims else result
    shape = np.shape(_plain(a))
    result = take(a, 0, axis=axis)
    for i in range(1, shape[axis]):
        result = multiply(result, take(a, i, axis=axis))
    return expand_dims(result, axis) if keepdims else result


def _extremum(numpy_function):
    """max / min in NumPy's order of complex numbers (lexicographic): the elements
    equal to the extremum, averaged (autograd's split among ties)."""
    def function(a, axis=None, keepdims=False, **kwargs):
        value = np.asarray(_plain(a))
        kept = numpy_function(value, axis=axis, keepdims=True)
        hits = (value == kept)
        weights = hits / np.sum(hits, axis=axis, keepdims=True)
        return sum(multiply(a, weights), axis=axis, keepdims=keepdims)
    function.__name__ = numpy_function.__name__
    return function


max = _extremum(np.max)
min = _extremum(np.min)


def var(a, axis=None, ddof=0, keepdims=False, **kwargs):
    """mean |a - mean(a)|^2 (a real value), NumPy's variance of complex numbers."""
    centered = subtract(a, mean(a, axis=axis, keepdims=True))
    re, im = split(centered)
    squares = _add(_mul(re, re), _mul(im, im))
    shape = np.shape(_plain(a))
    axes = range(len(shape)) if axis is None else np.atleast_1d(axis)
    n = int(np.prod([shape[d] for d in axes]))
    return fnp.sum(squares, axis=axis, keepdims=keepdims) / (n - ddof)


def std(a, axis=None, ddof=0, keepdims=False, **kwargs):
    # (derivative 0 where the variance is 0, as for real values: fasttape.numpy.std)
    return fnp._sqrt_of_variance(var(a, axis=axis, ddof=ddof, keepdims=keepdims))


def real_if_close(a, tol=100):
    """The real part where NumPy's real_if_close would drop the imaginary part."""
    if np.isrealobj(np.real_if_close(_plain(a), tol)):
        return real(a)
    return a


def _joined(join):
    """concatenate / stack of complex and real arrays: joined part by part."""
    def function(arrays, *args, **kwargs):
        parts = [split(a) for a in arrays]
        res = [_or_zero(re, im) for re, im in parts]
        ims = [_or_zero(im, re) for re, im in parts]
        return make(join(res, *args, **kwargs), join(ims, *args, **kwargs))
    function.__name__ = join.__name__
    return function


concatenate = _joined(fnp.concatenate)
stack = _joined(fnp.stack)
hstack = _joined(fnp.hstack)
vstack = _joined(fnp.vstack)


def where(condition, x=None, y=None):
    if x is None and y is None:
        return np.where(_plain(condition))
    xr, xi = split(x)
    yr, yi = split(y)
    condition = _plain(condition)
    return make(fnp.where(condition, _or_zero(xr, xi), _or_zero(yr, yi)),
                fnp.where(condition, _or_zero(xi, xr), _or_zero(yi, yr)))


# -- products: bilinear, four real products ---------------------------------------------------

def _bilinear(product):
    def function(a, b, *args, **kwargs):
        ar, ai = split(a)
        br, bi = split(b)

        def times(u, v):
            return None if u is None or v is None else product(u, v, *args, **kwargs)
        return make(_sub(times(ar, br), times(ai, bi)),
                    _add(times(ar, bi), times(ai, br)))
    function.__name__ = product.__name__
    return function


matmul = _bilinear(fnp.matmul)
dot = _bilinear(fnp.dot)
inner = _bilinear(fnp.inner)
outer = _bilinear(fnp.outer)
tensordot = _bilinear(fnp.tensordot)


def vdot(a, b):
    return dot(ravel(conjugate(a)), ravel(b))


def einsum(subscripts, *operands, **kwargs):
    """einsum as a sum over the choices of part of each operand (2^k real einsums for
    k complex operands; two for the usual one)."""
    terms = [(1.0, False, [])]          # (sign, imaginary, operands so far)
    for x in operands:
        re, im = split(x)
        grown = []
        for sign, imaginary, chosen in terms:
            if re is not None:
                grown.append((sign, imaginary, chosen + [re]))
            if im is not None:
                # i * i = -1
                grown.append((-sign if imaginary else sign, not imaginary,
                              chosen + [im]))
        terms = grown
    real_part = imag_part = None
    for sign, imaginary, chosen in terms:
        term = fnp.einsum(subscripts, *chosen, **kwargs)
        term = term if sign > 0 else -term
        if imaginary:
            imag_part = _add(imag_part, term)
        else:
            real_part = _add(real_part, term)
    return make(real_part, imag_part)


# (numpy.linalg of complex values: fasttape._complex_linalg, which fasttape._wiring
# adds to FUNCTIONS below)


# -- the hook for real operations that meet a complex operand ---------------------------------

_OPCODE_UFUNCS = {code: getattr(np, name)
                  for name, code, _ in OP_TABLE
                  for name in [{"ADD_VV": "add", "SUB_VV": "subtract",
                                "MUL_VV": "multiply", "DIV_VV": "divide",
                                "POW_VV": "power"}.get(name)] if name}


def operation(op, a, b):
    """A binary operation of fasttape's real layers (fasttape._arrays, _variable) whose
    operand turned out to be complex: op is the NumPy ufunc (or np.matmul), or the op
    code of a scalar Variable's operator."""
    ufunc = _OPCODE_UFUNCS.get(op, op) if type(op) is int else op
    implementation = UFUNCS.get(ufunc)
    if implementation is None or ufunc not in _BINARY:
        raise TypeError(f"{getattr(ufunc, '__name__', ufunc)} is not defined for complex "
                        f"numbers in fasttape")
    return implementation(a, b)


# -- scipy.special's erf and erfc of complex values ---------------------------------------

def erf(z):
    """erf(x + iy) from SciPy's complex erf (Faddeeva), each part one node of (x, y)
    differentiated by the Cauchy-Riemann equations: erf'(z) = 2/sqrt(pi) exp(-z^2)."""
    return _holomorphic_special(z, "erf")


def erfc(z):
    """erfc(z) = 1 - erf(z), its values from SciPy's complex erfc (no cancellation)."""
    return _holomorphic_special(z, "erfc")


def _holomorphic_special(z, name):
    import fasttape.scipy.special as special
    re, im = split(z)
    if im is None:
        return make(getattr(special, name)(re), None)
    x = _or_zero(re, im)
    shape = np.broadcast(np.asarray(_value(x)), np.asarray(_value(im))).shape
    x, y = (fnp.broadcast_to(p, shape) if np.shape(_value(p)) != shape else p
            for p in (x, im))
    return make(_special_part(name, "real", x, y), _special_part(name, "imag", x, y))


def _special_part(name, part, x, y):
    """The real or imaginary part of scipy.special.<name>(x + iy) as one node. With
    f'(z) = p + iq (here 2/sqrt(pi) exp(-z^2) = c e^(y^2 - x^2) (cos 2xy - i sin 2xy),
    negated for erfc): d Re f = p dx - q dy, d Im f = q dx + p dy."""
    import scipy.special

    from fasttape._rule_nodes import rule_node
    from fasttape._tape_state import OperandSlot

    def evaluate(x, y):
        return getattr(getattr(scipy.special, name)(np.add(x, np.multiply(1j, y))), part)

    def derivative(x, y):
        scale = (2.0 if name == "erf" else -2.0) / np.sqrt(np.pi) * fnp.exp(y * y - x * x)
        return scale * fnp.cos(2.0 * x * y), -scale * fnp.sin(2.0 * x * y)

    def reverse(g, ans, x, y):
        p, q = derivative(x, y)
        return [g * p, -g * q] if part == "real" else [g * q, g * p]

    def forward(t, ans, x, y):
        p, q = derivative(x, y)
        a, b = (p, -q) if part == "real" else (q, p)
        terms = [c * tj for c, tj in zip((a, b), t) if tj is not None]
        return terms[0] if len(terms) == 1 else terms[0] + terms[1]

    value = evaluate(_value(x), _value(y))
    return rule_node([x, y], float(value) if np.ndim(value) == 0 else value, reverse,
                     forward, evaluate,
                     (_special_part, (name, part, OperandSlot(0), OperandSlot(1)), {}))


_BINARY = {np.add, np.subtract, np.multiply, np.divide, np.power, np.matmul}

UFUNCS = {
    np.add: add, np.subtract: subtract, np.multiply: multiply, np.divide: divide,
    np.power: power, np.negative: negative, np.positive: positive,
    np.conjugate: conjugate, np.absolute: absolute, np.reciprocal: reciprocal,
    np.square: square, np.exp: exp, np.expm1: expm1, np.exp2: exp2, np.log: log,
    np.log10: log10, np.log2: log2, np.log1p: log1p, np.sqrt: sqrt, np.sin: sin,
    np.cos: cos, np.tan: tan, np.sinh: sinh, np.cosh: cosh, np.tanh: tanh,
    np.arcsin: arcsin, np.arccos: arccos, np.arctan: arctan, np.arcsinh: arcsinh,
    np.arccosh: arccosh, np.arctanh: arctanh,
    np.matmul: matmul, np.isfinite: isfinite, np.isnan: isnan, np.isinf: isinf,
    np.equal: _comparison(np.equal), np.not_equal: _comparison(np.not_equal),
}
try:
    import scipy.special as _scipy_special
    UFUNCS.update({_scipy_special.erf: erf, _scipy_special.erfc: erfc})
except ImportError:        # (SciPy is a requirement; kept optional here)
    pass

FUNCTIONS = {
    np.real: real, np.imag: imag, np.angle: angle, np.conj: conjugate,
    np.sum: sum, np.mean: mean, np.prod: prod, np.max: max, np.min: min,
    np.amax: max, np.amin: min,
    np.var: var, np.std: std, np.reshape: reshape, np.ravel: ravel,
    np.transpose: transpose, np.swapaxes: swapaxes, np.moveaxis: moveaxis,
    np.expand_dims: expand_dims, np.squeeze: squeeze, np.flip: flip, np.roll: roll,
    np.broadcast_to: broadcast_to, np.diagonal: diagonal, np.diag: diag,
    np.trace: trace, np.tile: tile, np.repeat: repeat, np.take: take,
    np.cumsum: cumsum, np.tril: tril, np.triu: triu,
    np.concatenate: concatenate, np.stack: stack, np.hstack: hstack,
    np.vstack: vstack, np.where: where, np.dot: dot, np.vdot: vdot, np.inner: inner,
    np.outer: outer, np.tensordot: tensordot, np.einsum: einsum,
    np.shape: lambda a: a.shape, np.ndim: lambda a: a.ndim,
    np.size: lambda a, axis=None: a.size if axis is None else a.shape[axis],
    np.isfinite: isfinite, np.isnan: isnan, np.isinf: isinf,
    np.iscomplexobj: lambda x: True, np.isrealobj: lambda x: False,
    np.zeros_like: lambda a, dtype=None: np.zeros(a.shape, dtype or complex),
    np.ones_like: lambda a, dtype=None: np.ones(a.shape, dtype or complex),
    np.real_if_close: real_if_close,
}


def _parts_or_value(x):
    """A complex value as its parts when they are Variables (so that a traced tape's
    refusal of value-only functions applies), else its plain complex value."""
    if type(x) is not ComplexArray:
        return x
    for part in (x.real, x.imag):
        if type(part) is Variable or type(part) is ArrayVariable:
            if part.tape.replayable:
                return part
    return x.value
