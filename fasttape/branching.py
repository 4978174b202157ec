"""``fasttape.where``: a choice between two values that replays without guards.

``if x > 0: y = a else: y = b`` records the comparison as a guard, and a traced
function replayed where it comes out differently refuses (BranchChangedError).
``y = fasttape.where(x > 0, a, b)`` records a select node instead, whose condition is
re-evaluated on every replay, so such code never needs a retrace.
"""
import fasttape.numpy as fnp
from fasttape._arrays import ArrayVariable, variable_at
from fasttape._tape_pools import active_tape
from fasttape._variable import Variable, make_constant

CMP_LT, CMP_LE, CMP_GT, CMP_GE, CMP_EQ, CMP_NE = range(6)


def where(condition, a, b):
    """``a`` where ``condition`` holds, else ``b``; the gradient flows to the chosen one.

    For scalar Variables, ``condition`` must be the comparison made just before (as in
    ``where(x > 0, f(x), g(x))``): it becomes part of the select node instead of a
    guard. Arrays go to ``fasttape.numpy.where``.

    A nan condition (a comparison with nan) selects as the comparison did when
    recorded; on replay the condition is evaluated as a sign test of the difference of
    the compared values, so a nan there selects ``b`` for < and >, ``a`` for <=, >=
    and ==.
    """
    if any(type(v) is ArrayVariable or hasattr(v, "shape") and getattr(v, "ndim", 0)
           for v in (condition, a, b)):
        return fnp.where(condition, a, b)
    tape = next((v.tape for v in (a, b) if type(v) is Variable), None)
    if tape is None:
        # constant choices: the comparison, if any, was recorded on the active tape
        tape = active_tape()
        if tape is None:
            return a if condition else b
    last = tape.last_guard()
    if last is None or last[4] != bool(condition):
        # not the comparison just made: an ordinary branch (its guard stays)
        return a if condition else b
    cmp, lhs, rhs, rhs_is_constant, outcome = last
    left = variable_at(tape, lhs)
    right = tape.constant(rhs) if rhs_is_constant else variable_at(tape, rhs)
    tape.forget_last_guard()
    # the condition as "d > 0" (swapping a and b where it is the negation)
    if cmp == CMP_GT:
        d, first, second = left - right, a, b
    elif cmp == CMP_LT:
        d, first, second = right - left, a, b
    elif cmp == CMP_LE:
        d, first, second = left - right, b, a
    elif cmp == CMP_GE:
        d, first, second = right - left, b, a
    elif cmp == CMP_EQ:                # (|l - r| rather than its square, which
        d, first, second = abs(left - right), b, a    # underflows for tiny differences)
    else:
        d, first, second = abs(left - right), a, b
    first = _on_tape(tape, first)
    second = _on_tape(tape, second)
    value = (a.value if type(a) is Variable else float(a)) if condition else \
        (b.value if type(b) is Variable else float(b))
    if type(d) is not Variable:        # both compared values were constants
        return a if condition else b
    return variable_at(tape, tape.select(d.slot, first.slot, second.slot, value))


def _on_tape(tape, x):
    if type(x) is Variable:
        return x
    return make_constant(tape, float(x))
