"""Functions that move elements: sort, partition, pad and make_diagonal of
ArrayVariables, each one node (a gather, which may repeat elements, or a join, which
places each element once among constants), found by applying NumPy to the elements'
positions.

Below fasttape.numpy, which converts the operands (lists, scalar Variables, object
arrays) and calls these for ArrayVariables.
"""
import numpy as np

from fasttape import _arrays


def rearranged(a, index, value):
    """The array `value` whose elements are a's elements at the flat positions `index`
    (an integer array of value's shape; -1 where value holds a constant): one gather,
    or one join when each of a's elements appears once among constants (else a gather
    and a where)."""
    index = np.asarray(index, dtype=np.int64)
    taken = index >= 0
    if taken.all():
        return _arrays.gather(a, index)
    if taken.sum() == a.size and \
            np.bincount(index[taken], minlength=a.size).max(initial=0) <= 1:
        where_placed = np.empty(a.size, dtype=np.int64)
        where_placed[index[taken]] = np.flatnonzero(taken)
        return _arrays.concat_values([a], np.asarray(value, dtype=np.float64),
                                     [where_placed])
    picked = _arrays.gather(a, np.where(taken, index, 0))
    return _arrays.where(taken, picked, np.asarray(value, dtype=np.float64))


def _refuse_on_replay(a, name):
    if a.tape.replayable:
        raise TypeError(f"{name} of Variables cannot be replayed by trace (the order of "
                        f"its elements depends on their values); differentiate it with "
                        f"grad, jacobian, ... instead")


def _reordered(a, axis, order_of, name):
    """a's elements in the order order_of(values, axis) gives along axis (None: of
    the flattened array)."""
    _refuse_on_replay(a, name)
    positions = _arrays.positions(a)
    if axis is None:
        a, positions, axis = _arrays.reshape(a, (-1,)), positions.reshape(-1), 0
    order = order_of(a.value, axis)
    return _arrays.gather(a, np.take_along_axis(positions, order, axis))


def sort(a, axis=-1):
    # (a stable order: tied elements keep their places)
    return _reordered(a, axis, lambda v, ax: np.argsort(v, axis=ax, kind="stable"),
                      "sort")


def partition(a, kth, axis=-1):
    return _reordered(a, axis, lambda v, ax: np.argpartition(v, kth, axis=ax),
                      "partition")


COPYING_PAD_MODES = ("constant", "edge", "reflect", "symmetric", "wrap", "empty")


def pad(a, pad_width, mode, kwargs):
    if mode not in COPYING_PAD_MODES:
        raise TypeError(f"pad of Variables supports the modes that copy elements "
                        f"(constant, edge, reflect, symmetric, wrap), not {mode!r}")
    value = np.pad(a.value, pad_width, mode, **kwargs)
    if mode in ("constant", "empty"):
        index = np.pad(_arrays.positions(a), pad_width, "constant", constant_values=-1)
        if mode == "empty":
            value = np.where(index >= 0, value, 0.0)
    else:
        index = np.pad(_arrays.positions(a), pad_width, mode, **kwargs)
    return rearranged(a, index, value)


def make_diagonal(D, offset, axis1, axis2):
    """D an ArrayVariable or a float array."""
    shape = np.shape(D.value if type(D) is _arrays.ArrayVariable else D)
    if len(shape) == 0:
        raise ValueError("make_diagonal needs an array of at least one dimension")
    n = shape[-1] + abs(offset)
    ndim = len(shape) + 1
    axis1, axis2 = axis1 % ndim, axis2 % ndim
    if axis1 == axis2:
        raise ValueError("make_diagonal: axis1 and axis2 cannot be the same")
    out_shape = list(shape[:-1])
    for ax in sorted((axis1, axis2)):
        out_shape.insert(ax, n)
    # the flat positions of the output's diagonal, laid out as D (np.diagonal puts
    # the diagonal's axis last)
    placed = np.diagonal(np.arange(int(np.prod(out_shape)), dtype=np.int64).reshape(
        out_shape), offset, axis1, axis2)
    value = np.zeros(out_shape)
    if type(D) is not _arrays.ArrayVariable:
        value.reshape(-1)[placed] = D
        return value
    value.reshape(-1)[placed] = D.value
    return _arrays.concat_values([D], value, [placed])
