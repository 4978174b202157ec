"""``flatten(value) -> (vector, unflatten)``: the numbers of a container of numbers
and arrays as one 1-D array, and the function that puts a vector back into that
structure (autograd.misc.flatten's meaning: dicts in the order of their sorted keys,
as fasttape's containers flatten them). Both directions are differentiable: a value
holding Variables flattens to an ArrayVariable, and unflatten of an ArrayVariable
gives Variables.
"""
import numpy as np

import fasttape.numpy as fnp
from fasttape._arrays import ArrayVariable, holds_variables
from fasttape._containers import flatten as flatten_containers
from fasttape._variable import Variable

_VARIABLE_TYPES = (Variable, ArrayVariable)


def flatten(value):
    """(1-D array of every number of value, unflatten). ``value`` is a number, an
    array, or a container of them (tuples, lists, named tuples, dicts with sortable
    keys, dataclasses, registered types: fasttape._containers); ``unflatten(vector)``
    rebuilds that structure from a vector of the same length. Mixed number types are
    not kept (the vector has one dtype)."""
    leaves, structure = flatten_containers(value, variables=True)
    for leaf in leaves:
        if not (isinstance(leaf, (int, float, complex, np.ndarray, np.generic)) or
                type(leaf) in _VARIABLE_TYPES):
            raise TypeError(f"flatten: cannot flatten a {type(leaf).__name__} (numbers, "
                            f"arrays, and containers of them)")
    shapes = [np.shape(leaf.value if type(leaf) in _VARIABLE_TYPES else leaf)
              for leaf in leaves]
    is_array = [type(leaf) is ArrayVariable or isinstance(leaf, np.ndarray)
                for leaf in leaves]
    if not leaves:
        vector = np.zeros(0)
    elif holds_variables(leaves):
        vector = fnp.concatenate([fnp.ravel(leaf) for leaf in leaves])
    else:
        vector = np.concatenate([np.ravel(leaf) for leaf in leaves])
    sizes = [int(np.prod(shape, dtype=np.int64)) for shape in shapes]
    size = sum(sizes)

    def unflatten(vector):
        if np.shape(vector) != (size,):
            raise ValueError(f"unflatten: expected a vector of {size} numbers, got "
                             f"shape {np.shape(vector)}")
        pieces, at = [], 0
        for shape, n, array in zip(shapes, sizes, is_array):
            if not array:
                piece = vector[at]
                pieces.append(piece.item() if isinstance(piece, np.generic) else piece)
            elif type(vector) is ArrayVariable:
                pieces.append(fnp.reshape(vector[at:at + n], shape))
            else:
                pieces.append(np.array(vector[at:at + n]).reshape(shape))
            at += n
        return structure.rebuild(pieces)
    return vector, unflatten


def flatten_func(func, example):
    """For ``func(value, *args)`` with values structured as ``example``: (the same
    function of the flat vector, returning a flat vector; unflatten; example
    flattened)."""
    flat_example, unflatten = flatten(example)

    def flat_func(vector, *args):
        return flatten(func(unflatten(vector), *args))[0]
    return flat_func, unflatten, flat_example
