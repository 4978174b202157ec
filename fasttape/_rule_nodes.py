"""Tape nodes whose derivative rules are Python functions, all through one door,
``rule_node``: fasttape's own linalg, einsum, gammaln and checkpoint, and users'
primitives (fasttape.extend).

A rule written with fasttape.numpy computes numbers when the C sweeps call it with
plain arrays, and records itself when they call it with Variables (a derivative
differentiated again), so one rule serves every order.
"""
import numpy as np

from fasttape import _arrays
from fasttape._arrays import ArrayVariable
from fasttape._tape_state import OperandSlot
from fasttape._variable import Variable


def rule_node(operands, value, reverse_rule, forward_rule, evaluate, recipe=None):
    """One node whose derivatives are given by rules written with fasttape.numpy:
    reverse_rule(g, ans, *operands) -> one cotangent per operand (None to skip) and
    forward_rule(tangents, ans, *operands) -> the output tangent, where tangents has
    one entry per operand (None for a constant; a float for a scalar operand, as the
    operands themselves); evaluate(*operands) -> the value, for
    a replay of the tape; recipe: see fasttape._arrays.pyfunc (for pickling). The
    sweeps call the rules with the current values (plain arrays and floats, shaped as
    at recording); differentiated again, with Variables."""
    shapes = [np.shape(_value(o)) for o in operands]
    shape = np.shape(value)

    def shaped(xs):
        return [float(x[0]) if s == () else x.reshape(s) for x, s in zip(xs, shapes)]

    def answer(ans):
        return ans if not shape else ans.reshape(shape)

    def reverse(g, ans, xs):
        return reverse_rule(g.reshape(shape) if shape else float(g[0]), answer(ans),
                            *shaped(xs))

    def forward(tangents, ans, xs):
        return forward_rule([None if t is None else float(t[0]) if s == () else
                             t.reshape(s) for t, s in zip(tangents, shapes)],
                            answer(ans), *shaped(xs))

    def value_of(xs):
        return evaluate(*shaped(xs))

    reverse.__name__ = getattr(evaluate, "__name__", "a Python rule")   # (for errors)
    reverse.recording = reverse_rule
    forward.recording = forward_rule
    return _arrays.pyfunc(list(operands), value, reverse, forward, value_of, recipe)


def operand_slots(n):
    """OperandSlot(0) ... OperandSlot(n - 1): a recipe's arguments (see pyfunc)."""
    return tuple(OperandSlot(j) for j in range(n))


def _value(x):
    return x.value if type(x) is Variable or type(x) is ArrayVariable else \
        np.asarray(x, dtype=np.float64)
