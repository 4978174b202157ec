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


class MissingRuleError(FasttapeError, TypeError, NotImplementedError):
    """A primitive (fasttape.extend) was differentiated with respect to an argument it
    has no rule for in that mode (no VJP for reverse mode, no JVP for forward mode).
    A TypeError as fasttape raised before, and a NotImplementedError as autograd
    raises."""


class ComplexInputError(FasttapeError, TypeError):
    """A complex number or array reached an operation that takes real values.

    The differential operators catch it for complex arguments (they become pairs of
    real parts, fasttape._complex); elsewhere it names the operation."""
