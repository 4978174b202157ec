"""np.r_ and np.c_ of Variables: the items (arrays, numbers, slices and a leading
axis string) made arrays of at least ndmin dimensions as NumPy does, then joined by
one concatenation.

Below fasttape.numpy, which hands in its concatenate and its conversion of operands.
"""
import numpy as np

from fasttape import _arrays
from fasttape._arrays import ArrayVariable


class AxisJoiner:
    """r_ (axis 0, ndmin 1) or c_ (last axis, ndmin 2, 1-d items as columns): NumPy's
    own for items without Variables."""

    def __init__(self, numpy_joiner, axis, ndmin, trans1d, concatenate, as_operand):
        self._numpy = numpy_joiner
        self._defaults = (axis, ndmin, trans1d)
        self._concatenate = concatenate
        self._as_operand = as_operand

    def __getitem__(self, key):
        items = list(key) if isinstance(key, tuple) else [key]
        if not any(_arrays.holds_variables(x) for x in items):
            return self._numpy[key]
        axis, ndmin, trans1d = self._defaults
        if items and isinstance(items[0], str):
            axis, ndmin, trans1d = _settings(items.pop(0))
        arrays = []
        for item in items:
            if isinstance(item, slice):
                item = np.r_[item]
            item = self._as_operand(item)
            if type(item) is not ArrayVariable:
                item = np.asarray(item, dtype=np.float64)
            shape = np.shape(item.value if type(item) is ArrayVariable else item)
            if len(shape) < ndmin:
                # NumPy's rule: new axes of length 1 in front, or the item's axes
                # starting at axis trans1d of the result
                new_shape = [1] * (ndmin - len(shape)) + list(shape)
                if trans1d != -1 and shape:
                    k = trans1d % ndmin
                    new_shape = [1] * ndmin
                    new_shape[k:k + len(shape)] = shape
                item = _arrays.reshape(item, tuple(new_shape)) if type(
                    item) is ArrayVariable else item.reshape(new_shape)
            arrays.append(item)
        return self._concatenate(arrays, axis)

    def __len__(self):
        return 0


def _settings(text):
    """(axis, ndmin, trans1d) of an axis string: 'axis' or 'axis,ndmin[,trans1d]'."""
    parts = text.split(",")
    if len(parts) > 3 or not all(p.strip().lstrip("-").isdigit() for p in parts):
        raise TypeError(f"fasttape's r_/c_ of Variables takes an axis string of "
                        f"integers, not {text!r}")
    numbers = [int(p) for p in parts]
    return (numbers[0], numbers[1] if len(numbers) > 1 else 1,
            numbers[2] if len(numbers) > 2 else -1)
