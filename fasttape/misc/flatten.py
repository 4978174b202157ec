"""``flatten(value) -> (vector, unflatten)``: the numbers of a nested tuple, list or
dict of numbers and arrays as one 1-D array, and the function that puts a vector
back into that structure (autograd.misc.flatten's meaning: dicts in the order of
their sorted keys). Both directions are differentiable: a value holding Variables
flattens to an ArrayVariable, and unflatten of an ArrayVariable gives Variables.
"""
import numpy as np

import fasttape.numpy as fnp
from fasttape._arrays import ArrayVariable, holds_variables
from fasttape._variable import Variable

_VARIABLE_TYPES = (Variable, ArrayVariable)


def flatten(value):
    """(1-D array of every number of value, unflatten). ``value`` is a number, an
    array, or nested tuples, lists (namedtuples) and dicts of them (dict keys
    sortable); ``unflatten(vector)`` rebuilds that structure from a vector of the same
    length. Mixed number types are not kept (the vector has one dtype)."""
    leaves = []
    layout = _layout(value, leaves)
    if not leaves:
        vector = np.zeros(0)
    elif holds_variables(leaves):
        vector = fnp.concatenate([fnp.ravel(leaf) for leaf in leaves])
    else:
        vector = np.concatenate([np.ravel(leaf) for leaf in leaves])
    size = sum(_size(leaf) for leaf in leaves)

    def unflatten(vector):
        if np.shape(vector) != (size,):
            raise ValueError(f"unflatten: expected a vector of {size} numbers, got "
                             f"shape {np.shape(vector)}")
        rebuilt, _ = _rebuild(layout, vector, 0)
        return rebuilt
    return vector, unflatten


def flatten_func(func, example):
    """For ``func(value, *args)`` with values structured as ``example``: (the same
    function of the flat vector, returning a flat vector; unflatten; example
    flattened)."""
    flat_example, unflatten = flatten(example)

    def flat_func(vector, *args):
        return flatten(func(unflatten(vector), *args))[0]
    return flat_func, unflatten, flat_example


# a layout is ("leaf", shape, is_array) or (kind, keys, child layouts); kind is list,
# tuple, a namedtuple class or dict (keys: the insertion order; children: sorted order)

def _layout(value, leaves):
    if isinstance(value, dict):
        keys = list(value)
        return (dict, keys, [_layout(value[k], leaves) for k in sorted(keys)])
    if isinstance(value, (list, tuple)):
        kind = type(value) if hasattr(value, "_fields") else \
            (tuple if isinstance(value, tuple) else list)
        return (kind, None, [_layout(v, leaves) for v in value])
    if not (isinstance(value, (int, float, complex, np.ndarray, np.generic)) or
            type(value) in _VARIABLE_TYPES):
        raise TypeError(f"flatten: cannot flatten a {type(value).__name__} (numbers, "
                        f"arrays, and tuples, lists and dicts of them)")
    leaves.append(value)
    is_array = type(value) is ArrayVariable or isinstance(value, np.ndarray)
    return ("leaf", np.shape(value.value if type(value) in _VARIABLE_TYPES else value),
            is_array)


def _size(leaf):
    return int(np.prod(np.shape(leaf.value if type(leaf) in _VARIABLE_TYPES else leaf),
                       dtype=np.int64))


def _rebuild(layout, vector, at):
    """(the value of this layout read from vector at position at, the next position)."""
    kind, info, children = layout
    if kind == "leaf":
        shape, is_array = info, children
        n = int(np.prod(shape, dtype=np.int64))
        if not is_array:
            piece = vector[at]
            return (piece.item() if isinstance(piece, np.generic) else piece), at + n
        piece = vector[at:at + n]
        if type(piece) is ArrayVariable:
            return fnp.reshape(piece, shape), at + n
        return np.array(piece).reshape(shape), at + n
    parts = []
    for child in children:
        part, at = _rebuild(child, vector, at)
        parts.append(part)
    if kind is dict:
        by_key = dict(zip(sorted(info), parts))
        return {k: by_key[k] for k in info}, at
    if kind is list or kind is tuple:
        return kind(parts), at
    return kind(*parts), at                                  # a namedtuple
