"""``const_graph``: autograd's cache of a function whose computation has the same
structure at every call, done by fasttape's ``trace`` (record once, replay in C)."""
import functools
import warnings

from fasttape._arrays import holds_variables
from fasttape.trace import trace


def const_graph(fun, *args, **kwargs):
    """Return ``cached(*more_args)`` computing ``fun(*args, *more_args, **kwargs)``:
    the first call records it (``fasttape.trace``), later calls replay the recording
    without running ``fun``'s Python (primitives and other operations with Python
    rules re-run their value functions). The arguments must keep their structure and
    shapes; a comparison that would branch differently raises BranchChangedError.

    A function the tape cannot replay yet is called every time instead (with a
    warning); so is a call with Variables (inside another differentiation)."""
    partial = functools.partial(fun, *args, **kwargs)
    cache = []                                   # [the Traced], or [None]: not replayable

    @functools.wraps(fun)
    def cached(*call_args):
        if holds_variables(call_args):
            return partial(*call_args)
        if not cache:
            try:
                traced = trace(partial, *call_args)
            except NotImplementedError as error:
                warnings.warn(f"const_graph: {error}; the function runs at every call",
                              RuntimeWarning, stacklevel=2)
                cache.append(None)
                return partial(*call_args)
            cache.append(traced)
            # the values recorded (fun ran once, as it was traced)
            return traced._current.output_values()
        if cache[0] is None:
            return partial(*call_args)
        return cache[0](*call_args)
    return cached
