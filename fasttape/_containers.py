"""Flattening of differentiable arguments and outputs: numbers and arrays, and any
container of them (pytrees: tuples, lists, dicts, named tuples, ``None``, dataclasses and
user-registered types).

``flatten(x)`` returns the numbers and arrays of ``x`` in a flat list and a ``Structure`` that
rebuilds the same nesting from any flat list of the same length (Variables on the way
in, gradients on the way out). ``joined`` and ``split_like`` go between such a flat
list and one float64 vector (what the C sweeps over array inputs take and return).

Containers are flattened by optree (in the namespace ``"fasttape"``, which also sees
optree's global registrations): dicts in the order of their sorted keys (rebuilt in
their own order), ``None`` an empty container (no leaves; its gradient is ``None``, as
JAX). Dataclasses are registered on first sight (their ``init`` fields are children),
as are subclasses of list, tuple and dict that optree does not know (rebuilt as the
plain list, tuple or dict). ``register_pytree_node`` adds a type of one's own. Three
shapes of argument never reach optree: a number, an array, and a flat list or tuple of
numbers (the common cases; a Structure of their own).
"""
import dataclasses

import numpy as np
import optree

from fasttape import _arrays
from fasttape._arrays import ArrayVariable, array_from_scalars
from fasttape._variable import Variable, is_leaf_input
from fasttape.errors import ComplexInputError

NAMESPACE = "fasttape"
LEAF = "leaf"
TREE = "tree"


class Structure:
    """The nesting of an argument: a leaf (``kind`` LEAF), a flat list or tuple of
    numbers (``kind`` list or tuple), or any other container (``kind`` TREE, with
    optree's ``spec``)."""

    __slots__ = ("kind", "spec", "n_leaves")

    def __init__(self, kind, spec=None, n_leaves=1):
        self.kind = kind
        self.spec = spec
        self.n_leaves = n_leaves

    @classmethod
    def flat(cls, kind, n_leaves):
        """A list or tuple of n_leaves numbers, with no nested structure."""
        return cls(kind, None, n_leaves)

    def rebuild(self, flat):
        """The nested value with this structure whose leaves are ``flat``, in order
        (any objects: the leaves of a Jacobian's outer structure are inner ones)."""
        kind = self.kind
        if kind == LEAF:
            return flat[0]
        if kind is list:
            return list(flat)
        if kind is tuple:
            return tuple(flat)
        return self.spec.unflatten(flat)

    def __eq__(self, other):
        return type(other) is Structure and self.kind == other.kind and \
            self.n_leaves == other.n_leaves and self.spec == other.spec

    def __hash__(self):
        return hash((self.kind, self.n_leaves))

    def __reduce__(self):
        # (every pickle protocol: 0 and 1 cannot pickle a class with __slots__ alone)
        return Structure, (self.kind, self.spec, self.n_leaves)

    def describe(self):
        if self.kind == LEAF:
            return "a number"
        if self.kind is list or self.kind is tuple:
            return f"a {self.kind.__name__} of {self.n_leaves} numbers"
        return f"{self.spec} ({self.n_leaves} leaves)"


LEAF_STRUCTURE = Structure(LEAF)


def flat_if_possible(structure):
    """A TREE structure that is only a list or tuple of leaves (an output list of
    Variables, which flatten does not take for numbers) as the flat Structure of that
    container; any other structure as it is."""
    if structure.kind != TREE:
        return structure
    for container in (list, tuple):
        if structure.spec == tree_flatten(container([0.0] * structure.n_leaves))[1]:
            return Structure.flat(container, structure.n_leaves)
    return structure


def flatten(x, variables=False):
    """(flat list of numbers, Structure) for a differentiable argument.

    With variables=True, Variables, ArrayVariables and any other object that is not a
    container are leaves too (for outputs, and for arguments inside another
    differentiation).
    """
    tx = type(x)
    if tx is dict:
        leaves, spec = tree_flatten(x)
    elif tx is list or tx is tuple:
        if all(is_leaf_input(v) for v in x):
            return list(x), Structure.flat(tx, len(x))
        leaves, spec = tree_flatten(x)
    elif tx is Variable or tx is ArrayVariable:
        if variables:
            return [x], LEAF_STRUCTURE
        _refuse_leaf(x)
    elif isinstance(x, np.ndarray):
        if variables and x.dtype == object:
            return [recorded_array(x)], LEAF_STRUCTURE
        return [x], LEAF_STRUCTURE
    elif is_leaf_input(x):
        return [x], LEAF_STRUCTURE
    elif x is None and not variables:
        raise TypeError("cannot differentiate with respect to None (no numbers); "
                        "None inside a container is an empty leaf")
    else:
        leaves, spec = tree_flatten(x)
        if spec.is_leaf():
            if variables:
                return [x], LEAF_STRUCTURE
            _refuse_leaf(x)
    if variables:
        for i, v in enumerate(leaves):
            if type(v) is np.ndarray and v.dtype == object:
                leaves[i] = recorded_array(v)
    else:
        for v in leaves:
            if type(v) not in _PLAIN_LEAVES and not (
                    is_leaf_input(v) or isinstance(v, np.ndarray)) or \
                    type(v) is Variable or type(v) is ArrayVariable:
                _refuse_leaf(v)
    return leaves, Structure(TREE, spec, len(leaves))


def tree_flatten(x):
    """optree's (leaves, spec) of x in fasttape's namespace, with dataclasses and
    unknown subclasses of list, tuple and dict registered when first met."""
    while True:
        leaves, spec = optree.tree_flatten(x, namespace=NAMESPACE)
        for v in leaves:
            if type(v) not in _PLAIN_LEAVES and _registrable(v):
                break
        else:
            return leaves, spec
        for cls in {type(v) for v in leaves if _registrable(v)}:
            if cls in _REGISTERED_ON_SIGHT:     # (optree still sees a leaf)
                raise TypeError(f"cannot flatten a {cls.__name__}: register it with "
                                f"fasttape.register_pytree_node")
            _register_on_sight(cls)
            _REGISTERED_ON_SIGHT.add(cls)


_PLAIN_LEAVES = frozenset([float, int, np.ndarray, np.float64, Variable, ArrayVariable])


def _refuse_leaf(x):
    """The TypeError (or ComplexInputError) for a leaf that is not a real number or
    array."""
    if isinstance(x, (Variable, ArrayVariable)):
        raise TypeError(
            "a Variable was passed where plain numbers or arrays are expected (trace "
            "and numerical_grad take plain values; grad and its relatives accept "
            "Variables)")
    if isinstance(x, complex) or isinstance(x, np.complexfloating):
        # (grad and its relatives catch this one: complex arguments are pairs of parts)
        raise ComplexInputError(f"a complex number ({x!r}) where real numbers are "
                                f"expected")
    raise TypeError(
        f"can only differentiate with respect to real numbers and arrays, or containers "
        f"of them (tuples, lists, dicts, named tuples, dataclasses, types registered "
        f"with fasttape.register_pytree_node), not {type(x).__name__}")


# -- registering container types ----------------------------------------------------------

def register_pytree_node(cls, flatten_func, unflatten_func):
    """Make instances of ``cls`` containers that fasttape looks into, as JAX's
    ``jax.tree_util.register_pytree_node``: ``flatten_func(x) -> (children,
    aux_data)`` gives the differentiable children (numbers, arrays, containers) and
    whatever else rebuilding needs (hashable, compared for equality);
    ``unflatten_func(aux_data, children) -> x`` builds one again (with Variables or
    gradients as its children). Gradients with respect to an argument of that type,
    and Jacobians of outputs of it, are instances of it.

    Returns ``cls`` (so it can decorate a class whose methods it names:
    ``register_pytree_node(Cls, Cls.tree_flatten, Cls.tree_unflatten)``).
    """
    optree.register_pytree_node(cls, flatten_func, unflatten_func, namespace=NAMESPACE)
    return cls


def register_dataclass(cls, data_fields=None, meta_fields=()):
    """Register the dataclass ``cls`` with ``data_fields`` (default: every field
    that ``__init__`` takes, less ``meta_fields``) as its differentiable children and
    ``meta_fields`` as constants kept as they are (JAX's ``register_dataclass``).
    Unregistered dataclasses are registered with every init field as a child when
    first met; register one beforehand to keep a non-numeric field out.
    Returns ``cls`` (usable as a decorator when there are no meta fields)."""
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise TypeError(f"register_dataclass: {cls!r} is not a dataclass")
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    meta = tuple(meta_fields)
    data = tuple(n for n in names if n not in meta) if data_fields is None \
        else tuple(data_fields)
    missing = [n for n in data + meta if n not in names]
    if missing:
        raise ValueError(f"register_dataclass: {cls.__name__} has no init field(s) "
                         f"{missing}")

    def flatten_dataclass(x):
        return ([getattr(x, n) for n in data],
                tuple(getattr(x, n) for n in meta), data)

    def unflatten_dataclass(constants, children):
        return cls(**dict(zip(data, children)), **dict(zip(meta, constants)))

    optree.register_pytree_node(cls, flatten_dataclass, unflatten_dataclass,
                                namespace=NAMESPACE)
    return cls


def _registrable(x):
    """x (a leaf by optree's registry) is a dataclass instance or a list, tuple or
    dict of a subclass optree does not know: a container of ours after all."""
    return (dataclasses.is_dataclass(x) and not isinstance(x, type)) or \
        isinstance(x, (list, tuple, dict))


_REGISTERED_ON_SIGHT = set()


def _register_on_sight(cls):
    if dataclasses.is_dataclass(cls):
        register_dataclass(cls)
        return
    base = dict if issubclass(cls, dict) else tuple if issubclass(cls, tuple) else list
    if base is dict:
        def flatten_mapping(x):
            keys = list(x.keys())
            return [x[k] for k in keys], keys, keys
        optree.register_pytree_node(cls, flatten_mapping,
                                    lambda keys, children: dict(zip(keys, children)),
                                    namespace=NAMESPACE)
    else:
        optree.register_pytree_node(cls, lambda x: (list(x), None),
                                    lambda _, children: base(children),
                                    namespace=NAMESPACE)


def holds_variables_in_tree(x):
    """fasttape._arrays.holds_variables for objects it does not look into (dataclasses,
    registered types)."""
    leaves, spec = tree_flatten(x)
    if spec.is_leaf():
        return False
    return any(_arrays.holds_variables(v) for v in leaves)


def tree_map(fun, x):
    """x with each leaf (numbers, arrays, Variables, anything not a container)
    replaced by fun(leaf)."""
    leaves, structure = flatten(x, variables=True)
    return structure.rebuild([fun(v) for v in leaves])


def recorded_array(x):
    """An object array holding Variables (what plain NumPy makes of them:
    np.array([a, b]), np.r_[a, b]) as one recorded array, so that its derivative is
    not lost (TypeError if it also holds objects other than numbers); an object array
    without Variables as it is."""
    items = x.ravel().tolist()
    if not any(type(v) is Variable for v in items):
        return x                    # (NumPy's business)
    if not all(type(v) is Variable or isinstance(v, (int, float)) and type(v) is not bool
               for v in items):
        kinds = sorted({type(v).__name__ for v in items})
        raise TypeError(f"an object array of {', '.join(kinds)} cannot be "
                        f"differentiated; build arrays of Variables with "
                        f"fasttape.numpy (np.array, np.stack, ...)")
    return array_from_scalars(items, x.shape)


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
