"""User-defined primitives with their own derivative rules (autograd.extend's API).

>>> import numpy as np
>>> from fasttape.extend import primitive, defvjp, defjvp
>>> @primitive
... def logsumexp(x):
...     m = np.max(x)
...     return m + np.log(np.sum(np.exp(x - m)))
>>> defvjp(logsumexp, lambda ans, x: lambda g: g * np.exp(x - ans))
>>> defjvp(logsumexp, lambda g, ans, x: np.sum(g * np.exp(x - ans)))

A primitive called with Variables runs on their plain values and records ONE tape
node (fasttape._rule_nodes.rule_node, as linalg, einsum and checkpoint); its rules run
in the sweeps. A VJP maker ``vjp_maker(ans, *args, **kwargs)``
returns ``g -> cotangent of that argument``; a JVP rule ``jvp(g, ans, *args,
**kwargs)`` returns the output's tangent for the argument's tangent ``g``. Rules
written with ``fasttape.numpy`` (or plain NumPy functions that fasttape supports) work
inside nested differentiation too: there they receive Variables and are recorded.
"""
import functools

import numpy as np

from fasttape._arrays import ArrayVariable, frozen
from fasttape._references import reduce_by_reference
from fasttape._rule_nodes import rule_node
from fasttape._tape_state import OperandSlot
from fasttape._variable import Variable

_VARIABLE_TYPES = (Variable, ArrayVariable)


class Primitive:
    """A function fasttape differentiates by the rules given to defvjp/defjvp."""

    def __init__(self, fun):
        functools.update_wrapper(self, fun)
        self.fun = fun
        self.vjp_makers = {}
        self.jvp_rules = {}

    def __call__(self, *args, **kwargs):
        argnums = [i for i, a in enumerate(args) if type(a) in _VARIABLE_TYPES]
        if not argnums:
            return self.fun(*args, **kwargs)
        values = [a.value if type(a) in _VARIABLE_TYPES else a for a in args]
        ans = self.fun(*values, **kwargs)
        # the rules run later: they must see the plain arguments as they are now
        values = [v if type(a) in _VARIABLE_TYPES else frozen(v)
                  for a, v in zip(args, values)]
        kwargs = frozen(kwargs)
        if isinstance(ans, (tuple, list, dict)):
            raise TypeError(f"{self.__name__}: a fasttape primitive must return one "
                            f"number or array")
        ans_value = float(ans) if np.ndim(ans) == 0 else np.asarray(ans, dtype=float)

        def call_with(operands):
            """The arguments with the differentiated ones replaced by operands (their
            current values in a sweep, or Variables when the rules are recorded)."""
            call = list(values)
            for i, operand in zip(argnums, operands):
                call[i] = operand
            return call

        def evaluate(*operands):
            return self.fun(*call_with(operands), **kwargs)

        def reverse(g, ans, *operands):
            call = call_with(operands)
            return [self._vjp_maker(i)(ans, *call, **kwargs)(g) for i in argnums]

        def forward(tangents, ans, *operands):
            call = call_with(operands)
            recorded = type(ans) in _VARIABLE_TYPES
            total = 0.0
            for i, tangent in zip(argnums, tangents):
                if tangent is not None:
                    term = self._jvp_rule(i)(tangent, ans, *call, **kwargs)
                    total = total + (term if recorded else np.asarray(term, dtype=float))
            return total if recorded else np.broadcast_to(total, np.shape(ans))

        evaluate.__name__ = self.__name__          # (names the node in errors, dumps)
        slots = dict(zip(argnums, range(len(argnums))))
        recipe = (self, tuple(OperandSlot(slots[i]) if i in slots else a
                              for i, a in enumerate(args)), kwargs)
        return rule_node([args[i] for i in argnums], ans_value, reverse, forward,
                         evaluate, recipe)

    def _vjp_maker(self, i):
        try:
            return self.vjp_makers[i]
        except KeyError:
            raise TypeError(f"fasttape.extend: no VJP defined for argument {i} of "
                            f"{self.__name__} (defvjp) — reverse mode cannot "
                            f"differentiate it") from None

    def _jvp_rule(self, i):
        try:
            return self.jvp_rules[i]
        except KeyError:
            raise TypeError(f"fasttape.extend: no JVP defined for argument {i} of "
                            f"{self.__name__} (defjvp) — forward mode cannot "
                            f"differentiate it") from None

    def __repr__(self):
        return f"<fasttape primitive {self.__name__}>"

    def __reduce__(self):
        # by reference, as functions pickle (a traced tape names the primitive of each
        # of its nodes)
        return reduce_by_reference(self, f"the primitive {self.__name__}")


def primitive(fun):
    """Make ``fun`` a primitive: one tape node, differentiated by the rules given with
    ``defvjp`` and ``defjvp``."""
    return Primitive(fun)


def defvjp(prim, *vjp_makers, argnums=None):
    """Reverse-mode rules: one ``vjp_maker(ans, *args, **kwargs) -> (g -> cotangent)``
    per argument (or for the arguments listed in ``argnums``). ``None`` skips one."""
    _check(prim)
    argnums = range(len(vjp_makers)) if argnums is None else argnums
    for i, maker in zip(argnums, vjp_makers):
        if maker is not None:
            prim.vjp_makers[i] = maker


def defjvp(prim, *jvp_rules, argnums=None):
    """Forward-mode rules: one ``jvp(g, ans, *args, **kwargs) -> output tangent`` per
    argument (or for the arguments listed in ``argnums``)."""
    _check(prim)
    argnums = range(len(jvp_rules)) if argnums is None else argnums
    for i, rule in zip(argnums, jvp_rules):
        if rule is not None:
            prim.jvp_rules[i] = rule


def _check(prim):
    if not isinstance(prim, Primitive):
        raise TypeError(f"{prim!r} is not a fasttape primitive: decorate it with "
                        f"fasttape.extend.primitive first")
