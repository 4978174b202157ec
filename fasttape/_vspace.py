"""``vspace(value)``: the vector space a value lives in, as autograd's rules ask for it
(``vspace(x).zeros()``, ``.ones()``, ``.shape``, ``.size``, ``.randn()``, ``.add``,
``.scalar_mul``, ``.inner_prod``, ``.standard_basis()``, ...).

Two kinds: the space of a number or array (``ArrayVSpace``), and the product space of
a tuple, list, namedtuple or dict of such values (``ContainerVSpace``, whose ``shape``
is the container of its parts' spaces). A Variable's space is its value's. The
vector operations are written with operators and NumPy calls that fasttape records,
so a rule built on them is differentiated too.
"""
import numbers

import numpy as np

from fasttape._arrays import ArrayVariable
from fasttape._variable import Variable

_VARIABLE_TYPES = (Variable, ArrayVariable)


def vspace(value):
    """The vector space of ``value``: a number, an array, a Variable, or a (nested)
    tuple, list, namedtuple or dict of them."""
    if type(value) in _VARIABLE_TYPES:
        value = value.value
    if isinstance(value, (tuple, list, dict)):
        return ContainerVSpace(value)
    if isinstance(value, (numbers.Number, np.ndarray, np.generic)) and \
            not isinstance(value, bool):
        return ArrayVSpace(value)
    raise TypeError(f"vspace: no vector space for a value of type {type(value).__name__} "
                    f"(numbers, arrays, and tuples, lists and dicts of them have one)")


class VSpace:
    """What every vector space offers; ``vspace(value)`` makes the right one."""

    iscomplex = False

    def add(self, x, y):
        return x + y

    def mut_add(self, x_prev, x_new):
        """x_prev + x_new, x_prev None standing for zero (without mutating either)."""
        return x_new if x_prev is None else self.add(x_prev, x_new)

    def scalar_mul(self, x, a):
        return x * a

    def covector(self, x):
        """The covector of x (x itself for real spaces, its conjugate for complex)."""
        return x

    def __ne__(self, other):
        return not self == other


class ArrayVSpace(VSpace):
    """The space of arrays of one shape and dtype (numbers: shape ())."""

    def __init__(self, value):
        # Python numbers (and integer arrays) live in a float64 space: fasttape
        # differentiates integers as floats
        array = np.asarray(value)
        self.scalar = not isinstance(value, np.ndarray)
        self.shape = array.shape
        kind = array.dtype.kind
        self.dtype = array.dtype if kind in "fc" else np.dtype(np.float64)
        self.iscomplex = kind == "c"

    @property
    def size(self):
        """The dimension over the reals (a complex number counts two)."""
        n = int(np.prod(self.shape, dtype=np.int64))
        return 2 * n if self.iscomplex else n

    @property
    def ndim(self):
        return len(self.shape)

    def _make(self, array):
        if self.scalar:
            return complex(array) if self.iscomplex else float(array)
        return array

    def zeros(self):
        return self._make(np.zeros(self.shape, dtype=self.dtype))

    def ones(self):
        ones = np.ones(self.shape, dtype=self.dtype)
        return self._make(ones + 1j * ones if self.iscomplex else ones)

    def randn(self):
        x = np.random.randn(*self.shape)
        if self.iscomplex:
            x = x + 1j * np.random.randn(*self.shape)
        return self._make(np.asarray(x).astype(self.dtype))

    def standard_basis(self):
        """The unit vectors, one per real dimension (1 and 1j for a complex entry)."""
        units = (1.0, 1j) if self.iscomplex else (1.0,)
        for index in np.ndindex(*self.shape):
            for unit in units:
                e = np.zeros(self.shape, dtype=self.dtype)
                e[index] = unit
                yield self._make(e)

    def inner_prod(self, x, y):
        if self.iscomplex:
            return np.real(np.sum(np.conj(x) * y))
        product = x * y
        return product if not self.shape else np.sum(product)

    def covector(self, x):
        return np.conj(x) if self.iscomplex else x

    def __eq__(self, other):
        return type(other) is ArrayVSpace and self.shape == other.shape and \
            self.dtype == other.dtype

    __hash__ = None

    def __repr__(self):
        return f"ArrayVSpace(shape={self.shape}, dtype={self.dtype})"


class ContainerVSpace(VSpace):
    """The product space of a tuple, list, namedtuple or dict of values: ``shape`` is
    the same container holding each part's space."""

    def __init__(self, value):
        self.kind = type(value)
        if isinstance(value, dict):
            self.keys = list(value.keys())
            parts = [vspace(value[k]) for k in self.keys]
        else:
            self.keys = list(range(len(value)))
            parts = [vspace(v) for v in value]
        self.parts = parts
        self.shape = self._build(parts)
        self.iscomplex = any(p.iscomplex for p in parts)

    def _build(self, items):
        """The container of this space's kind holding items (one per part)."""
        if issubclass(self.kind, dict):
            return dict(zip(self.keys, items))
        if hasattr(self.kind, "_fields"):                  # a namedtuple
            return self.kind(*items)
        return self.kind(items) if self.kind in (list, tuple) else \
            (tuple(items) if issubclass(self.kind, tuple) else list(items))

    def _items(self, x):
        return [x[k] for k in self.keys]

    def _map(self, f, *xs):
        columns = [self._items(x) for x in xs]
        return self._build([f(part, *row) for part, *row in zip(self.parts, *columns)]
                           if columns else [f(part) for part in self.parts])

    @property
    def size(self):
        return sum(p.size for p in self.parts)

    def zeros(self):
        return self._map(lambda p: p.zeros())

    def ones(self):
        return self._map(lambda p: p.ones())

    def randn(self):
        return self._map(lambda p: p.randn())

    def standard_basis(self):
        for i, part in enumerate(self.parts):
            for e in part.standard_basis():
                items = [e if j == i else p.zeros() for j, p in enumerate(self.parts)]
                yield self._build(items)

    def add(self, x, y):
        return self._map(lambda p, a, b: p.add(a, b), x, y)

    def scalar_mul(self, x, a):
        return self._map(lambda p, v: p.scalar_mul(v, a), x)

    def inner_prod(self, x, y):
        total = 0.0
        for p, a, b in zip(self.parts, self._items(x), self._items(y)):
            total = total + p.inner_prod(a, b)
        return total

    def covector(self, x):
        return self._map(lambda p, v: p.covector(v), x)

    def __eq__(self, other):
        return type(other) is ContainerVSpace and self.kind is other.kind and \
            self.shape == other.shape

    __hash__ = None

    def __repr__(self):
        return f"ContainerVSpace({self.shape!r})"
