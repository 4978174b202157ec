"""JAX's ``jax.tree_util`` names over the containers fasttape differentiates (optree,
in fasttape's namespace: see fasttape._containers): ``tree_map``, ``tree_leaves``,
``tree_flatten``, ``tree_unflatten``, ``tree_structure`` and the registration hooks.
``None`` is an empty container, as in JAX."""
from collections.abc import Callable
from typing import Any

import optree

from fasttape._containers import (NAMESPACE, register_dataclass, register_pytree_node,
                                  tree_flatten as _flatten_registering)

__all__ = ["tree_map", "tree_leaves", "tree_flatten", "tree_unflatten",
           "tree_structure", "register_pytree_node", "register_dataclass"]


def tree_flatten(tree: Any) -> tuple[list[Any], Any]:
    """(leaves, treedef): the leaves of ``tree`` in order, and its structure."""
    return _flatten_registering(tree)


def tree_leaves(tree: Any) -> list[Any]:
    """The leaves of ``tree`` in order."""
    return _flatten_registering(tree)[0]


def tree_structure(tree: Any) -> Any:
    """The structure (treedef) of ``tree``."""
    return _flatten_registering(tree)[1]


def tree_unflatten(treedef: Any, leaves: Any) -> Any:
    """The tree of structure ``treedef`` holding ``leaves``."""
    return treedef.unflatten(leaves)


def tree_map(f: Callable[..., Any], tree: Any, *rest: Any) -> Any:
    """``f`` applied to the leaves of ``tree`` (and the matching leaves of the trees
    ``rest``, of the same structure), in a tree of the same structure."""
    _flatten_registering(tree)
    return optree.tree_map(f, tree, *rest, namespace=NAMESPACE)
