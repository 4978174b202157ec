"""autograd.builtins' names: ``list``, ``tuple`` and ``dict`` that build containers of
differentiated values, and ``isinstance`` and ``type`` that see through Variables.

fasttape differentiates Python containers as they are: a tuple of Variables is a
tuple, and ``grad`` of a function returning through it follows every element. So
``list(xs)``, ``tuple(xs)`` and ``dict(...)`` here build the plain containers, and
exist for code written for autograd (whose boxes needed them); as classes,
``isinstance(x, fasttape.builtins.list)`` holds for every list.

``isinstance(x, float)`` is True for a scalar Variable and ``isinstance(x,
np.ndarray)`` for an ArrayVariable, as for the values they stand for; ``type(x)`` is
the type of that value.

These shadow Python's own names: ``fasttape.list``, ``fasttape.isinstance``... are
attributes of the package but not in its ``__all__``, so ``from fasttape import *``
leaves Python's builtins alone.
"""
import builtins as _python

from fasttape._arrays import ArrayVariable
from fasttape._variable import Variable

_VARIABLE_TYPES = (Variable, ArrayVariable)


def isinstance(obj, classinfo):
    """Python's isinstance, seeing a Variable as its value too: True if ``obj`` or the
    value it stands for (a float, an ndarray) is an instance of ``classinfo``."""
    if _python.type(obj) in _VARIABLE_TYPES and \
            _python.isinstance(obj.value, classinfo):
        return True
    return _python.isinstance(obj, classinfo)


def type(obj, *bases_and_namespace):
    """Python's type; for a Variable or ArrayVariable, the type of its value (float,
    numpy.ndarray). With three arguments, Python's type(name, bases, namespace)."""
    if bases_and_namespace:
        return _python.type(obj, *bases_and_namespace)
    if _python.type(obj) in _VARIABLE_TYPES:
        return _python.type(obj.value)
    return _python.type(obj)


class _ContainerType(_python.type):
    """Makes isinstance(x, fasttape.builtins.list) the test for Python's list."""

    def __instancecheck__(cls, instance):
        return _python.isinstance(instance, cls.__bases__[0])

    def __subclasscheck__(cls, subclass):
        return _python.issubclass(subclass, cls.__bases__[0])


class list(_python.list, metaclass=_ContainerType):
    """``list(iterable)``: a Python list of the (differentiated) elements."""

    def __new__(cls, iterable=()):
        return _python.list(iterable)


class tuple(_python.tuple, metaclass=_ContainerType):
    """``tuple(iterable)``: a Python tuple of the (differentiated) elements."""

    def __new__(cls, iterable=()):
        return _python.tuple(iterable)


class dict(_python.dict, metaclass=_ContainerType):
    """``dict(...)``, as Python's (a mapping, pairs, keywords): its values are
    differentiated."""

    def __new__(cls, *args, **kwargs):
        return _python.dict(*args, **kwargs)
