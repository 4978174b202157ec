"""NumPy functions whose results carry no derivative (integers, booleans, indices:
argmax, allclose, nonzero, ...): given Variables, they run on the plain values and
return NumPy's plain result, as autograd's do.

On a tape recorded for replay (trace) they are refused instead: a replay would reuse
the result computed from the recorded values, silently, at new inputs.
"""
import numpy as np

from fasttape._arrays import ArrayVariable
from fasttape._variable import Variable

NAMES = ("argmax", "argmin", "argsort", "argpartition", "argwhere", "nonzero",
         "flatnonzero", "count_nonzero", "searchsorted", "allclose", "isclose",
         "array_equal", "array_equiv", "all", "any", "iscomplexobj", "isrealobj",
         "iscomplex", "isreal", "isscalar", "result_type", "digitize", "bincount")


def _plain(x):
    if type(x) is Variable or type(x) is ArrayVariable:
        if x.tape.replayable:
            raise _RefusedOnReplay()
        return x.value
    if type(x) is list or type(x) is tuple:
        return type(x)(_plain(v) for v in x)
    return x


class _RefusedOnReplay(Exception):
    pass


def values_only(numpy_function):
    """numpy_function evaluated on the plain values of its arguments."""
    name = numpy_function.__name__

    def function(*args, **kwargs):
        try:
            args = [_plain(a) for a in args]
            kwargs = {k: _plain(v) for k, v in kwargs.items()}
        except _RefusedOnReplay:
            raise TypeError(
                f"numpy.{name} of Variables cannot be replayed by trace: its result "
                f"depends on the values and would be reused at new inputs; compute it "
                f"outside the traced function, or differentiate with grad, jacobian, "
                f"...") from None
        return numpy_function(*args, **kwargs)
    function.__name__ = name
    function.__doc__ = (f"numpy.{name} on the plain values of Variables: its result has "
                        f"no derivative.")
    return function


FUNCTIONS = {getattr(np, name): values_only(getattr(np, name)) for name in NAMES}
