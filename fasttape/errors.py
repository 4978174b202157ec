"""Exceptions raised by fasttape, in one place so that users can catch them by name."""


class FasttapeError(Exception):
    """Base class of fasttape's own errors."""


class StaleVariableError(FasttapeError, RuntimeError):
    """A Variable was used after the tape it was recorded on was reset.

    ``grad`` and its relatives reset their tape when they return, so a Variable that
    escapes from the differentiated function (stored in a global, say) is stale
    afterwards.
    """


class TapeMismatchError(FasttapeError, ValueError):
    """Variables recorded on two different tapes were combined in one operation."""


class GradientCheckError(FasttapeError, AssertionError):
    """check_grads found a derivative that disagrees with central differences."""


class BranchChangedError(FasttapeError):
    """A traced function, replayed at new inputs, would take another branch: a
    comparison made while tracing comes out differently. Trace with ``retrace=True``
    to record the new branch instead, or write the choice with ``fasttape.where``."""


class PointErrors(FasttapeError, RuntimeError):
    """Some points of a map on an executor (``Traced.grad_many(points,
    executor=...)``) raised. ``errors`` maps each failed point's index to its
    exception; ``results`` holds every other point's result (nan rows at the failed
    ones), in the shape the map returns (None when every point failed)."""

    def __init__(self, errors, results):
        self.errors = dict(sorted(errors.items()))
        self.results = results
        first, error = next(iter(self.errors.items()))
        super().__init__(f"{len(self.errors)} of the points raised; the first, point "
                         f"{first}: {type(error).__name__}: {error} (the exception's "
                         f".errors has each one by index, .results the other points' "
                         f"results)")

    def __reduce__(self):
        return PointErrors, (self.errors, self.results)


class MissingRuleError(FasttapeError, TypeError, NotImplementedError):
    """A primitive (fasttape.extend) was differentiated with respect to an argument it
    has no rule for in that mode (no VJP for reverse mode, no JVP for forward mode).
    A TypeError as fasttape raised before, and a NotImplementedError as autograd
    raises."""


class ComplexInputError(FasttapeError, TypeError):
    """A complex number or array reached an operation that takes real values.

    The differential operators catch it for complex arguments (they become pairs of
    real parts, fasttape._complex); elsewhere it names the operation."""
