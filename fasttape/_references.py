"""Pickling user code by reference.

A pickled traced function carries arrays and constants, not code; a node whose rules
are Python (a custom primitive, a checkpointed function) names the object that
records it, and a loading interpreter imports that object by its module and name, as
pickle does for functions. Unlike pickle's own lookup, the name is searched for:
``cube = primitive(_cube)`` or ``@checkpoint def block(...)`` bind the object under a
name other than its function's.
"""
import importlib
import pickle
import sys


def find_global(obj):
    """(module name, attribute name) of a module attribute that is obj, or None. The
    module obj says it comes from is searched first."""
    preferred = getattr(obj, "__module__", None)
    names = ([preferred] if preferred in sys.modules else []) + [
        name for name in list(sys.modules) if name != preferred]
    for name in names:
        namespace = getattr(sys.modules.get(name), "__dict__", None)
        if not isinstance(namespace, dict):
            continue
        for attribute, value in list(namespace.items()):
            if value is obj:
                return name, attribute
    return None


def load_global(module, name):
    """The attribute `name` of module `module` (imported if need be)."""
    return getattr(importlib.import_module(module), name)


def reduce_by_reference(obj, what):
    """A __reduce__ value that loads obj by module and name."""
    found = find_global(obj)
    if found is None:
        raise pickle.PicklingError(
            f"{what} is pickled by reference (its module and name), and no module "
            f"binds it: define it at module level")
    return load_global, found
