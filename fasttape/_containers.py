"""Flattening of differentiable arguments: numbers and arrays, and tuples, lists and
dicts of them.

``flatten(x)`` returns the numbers and arrays of ``x`` in a flat list and a ``Structure`` that
rebuilds the same nesting from any flat list of the same length (Variables on the way
in, gradients on the way out). ``joined`` and ``split_like`` go between such a flat
list and one float64 vector (what the C sweeps over array inputs take and return).
"""
import numpy as np

from fasttape._arrays import ArrayVariable
from fasttape._variable import Variable, is_leaf_input

LEAF = "leaf"


class Structure:
    """The nesting of an argument: a leaf, or a container kind with child structures."""

    __slots__ = ("kind", "children", "keys", "n_leaves")

    def __init__(self, kind, children=(), keys=None, n_leaves=None):
        self.kind = kind
        self.children = children
        self.keys = keys
        if n_leaves is None:
            n_leaves = 1 if kind == LEAF else sum(c.n_leaves for c in children)
        self.n_leaves = n_leaves

    @classmethod
    def flat(cls, kind, n_leaves):
        """A list or tuple of n_leaves numbers, with no nested structure."""
        return cls(kind, (), None, n_leaves)

    def rebuild(self, flat):
        """The nested value with this structure whose leaves are ``flat``, in order."""
        if self.kind == LEAF:
            return flat[0]
        if self.kind is list and not self.children:
            return list(flat)
        if self.kind is tuple and not self.children:
            return tuple(flat)
        parts = []
        start = 0
        for child in self.children:
            parts.append(child.rebuild(flat[start:start + child.n_leaves]))
            start += child.n_leaves
        if self.kind is dict:
            return dict(zip(self.keys, parts))
        if self.kind is tuple or self.kind is list:
            return self.kind(parts)
        return self.kind(*parts)        # namedtuple


LEAF_STRUCTURE = Structure(LEAF)


def flatten(x, variables=False):
    """(flat list of numbers, Structure) for a differentiable argument.

    With variables=True, Variables, ArrayVariables and any other non-container are
    leaves too (for outputs, and for arguments inside another differentiation).
    """
    if is_leaf_input(x) or isinstance(x, np.ndarray):
        return [x], LEAF_STRUCTURE
    if variables and not isinstance(x, (list, tuple, dict)):
        return [x], LEAF_STRUCTURE
    if type(x) is list or type(x) is tuple:
        if all(is_leaf_input(v) for v in x):
            return list(x), Structure.flat(type(x), len(x))
    if isinstance(x, (list, tuple, dict)):
        flat = []
        children = []
        keys = None
        if isinstance(x, dict):
            keys = list(x.keys())
            items = [x[k] for k in keys]
            kind = dict
        else:
            items = x
            kind = type(x) if hasattr(x, "_fields") else (
                tuple if isinstance(x, tuple) else list)
        for item in items:
            item_flat, item_structure = flatten(item, variables)
            flat.extend(item_flat)
            children.append(item_structure)
        return flat, Structure(kind, children, keys)
    if isinstance(x, (Variable, ArrayVariable)):
        raise TypeError(
            "a Variable was passed where plain numbers or arrays are expected (trace "
            "and numerical_grad take plain values; grad and its relatives accept "
            "Variables)")
    raise TypeError(
        f"can only differentiate with respect to real numbers and arrays, or tuples, "
        f"lists and dicts of them, not {type(x).__name__}")


def joined(values):
    """Numbers and arrays as one flat float64 vector."""
    return np.concatenate([np.ravel(np.asarray(v, dtype=float)) for v in values]) \
        if values else np.zeros(0)


def split_like(flat, leaves):
    """A flat vector cut into one piece per leaf: floats and arrays of their shapes."""
    pieces, at = [], 0
    for leaf in leaves:
        if type(leaf) is Variable:
            pieces.append(float(flat[at]))
            at += 1
        else:
            pieces.append(flat[at:at + leaf.size].reshape(leaf.shape))
            at += leaf.size
    return pieces
