"""User-defined primitives with their own derivative rules (autograd.extend's API).

A primitive called with Variables runs on their plain values and records ONE tape
node (fasttape._rule_nodes.rule_node, as linalg, einsum and checkpoint); its rules run
in the sweeps. A VJP maker ``vjp_maker(ans, *args, **kwargs)``
returns ``g -> cotangent of that argument``; a JVP rule ``jvp(g, ans, *args,
**kwargs)`` returns the output's tangent for the argument's tangent ``g``. Rules
written with ``fasttape.numpy`` (or plain NumPy functions that fasttape supports) work
inside nested differentiation too: there they receive Variables and are recorded.

autograd's other ways of giving rules work too: ``defvjp_argnum(prim, maker)`` with
``maker(argnum, ans, args, kwargs) -> (g -> cotangent)``, ``defvjp_argnums`` with
``maker(argnums, ans, args, kwargs) -> (g -> cotangents)``, ``defjvp_argnum`` with
``rule(argnum, g, ans, args, kwargs)``, ``defjvp_argnums`` with ``rule(argnums, gs,
ans, args, kwargs)``, the JVP ``"same"`` (the primitive is linear in that argument) and
``def_linear``. The rules live in ``primitive_vjps`` / ``primitive_jvps`` (one entry per
primitive, as autograd keeps them). ``vspace(value)`` gives the zeros, ones, shape...
of a value's space, for rules that need them. Unlike autograd, a rule given as
``None`` is not a zero: differentiating that argument raises ``MissingRuleError``
(a TypeError and a NotImplementedError).

Examples
--------
>>> import numpy as np
>>> from fasttape.extend import primitive, defvjp, defjvp
>>> @primitive
... def logsumexp(x):
...     m = np.max(x)
...     return m + np.log(np.sum(np.exp(x - m)))
>>> defvjp(logsumexp, lambda ans, x: lambda g: g * np.exp(x - ans))
>>> defjvp(logsumexp, lambda g, ans, x: np.sum(g * np.exp(x - ans)))
"""
import functools
import warnings
import weakref

import numpy as np

from fasttape._arrays import ArrayVariable, frozen
from fasttape._references import reduce_by_reference
from fasttape._rule_nodes import rule_node
from fasttape._tape_state import OperandSlot
from fasttape._variable import Variable
from fasttape._vspace import ArrayVSpace, ContainerVSpace, VSpace, vspace  # noqa: F401
from fasttape.errors import MissingRuleError

_VARIABLE_TYPES = (Variable, ArrayVariable)


# the rules of each primitive (a _Rules per primitive), as autograd's core keeps them:
# removing a primitive's entry removes its rules (weak keys: a primitive that is no
# longer used takes its rules with it)
primitive_vjps = weakref.WeakKeyDictionary()
primitive_jvps = weakref.WeakKeyDictionary()


class _Rules:
    """One primitive's rules for one mode: per argument (defvjp / defjvp), one maker
    for any argument (the *_argnum forms), or one for all of them together (the
    *_argnums forms)."""

    __slots__ = ("per_argument", "each", "joint")

    def __init__(self, per_argument=None, each=None, joint=None):
        self.per_argument = {} if per_argument is None else per_argument
        self.each = each
        self.joint = joint


class Primitive:
    """A function fasttape differentiates by the rules given to defvjp/defjvp."""

    def __init__(self, fun):
        functools.update_wrapper(self, fun)
        self.fun = fun

    @property
    def vjp_makers(self):
        """The per-argument VJP makers given with defvjp ({argnum: maker})."""
        return self._rules(primitive_vjps, False).per_argument

    @property
    def jvp_rules(self):
        """The per-argument JVP rules given with defjvp ({argnum: rule})."""
        return self._rules(primitive_jvps, False).per_argument

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
            return self._cotangents(tuple(argnums), g, ans, call_with(operands), kwargs)

        def forward(tangents, ans, *operands):
            call = call_with(operands)
            recorded = type(ans) in _VARIABLE_TYPES
            given = [(i, t) for i, t in zip(argnums, tangents) if t is not None]
            if not given:
                return np.zeros(np.shape(ans)) if np.ndim(ans) else 0.0
            total = self._tangent(tuple(i for i, _ in given),
                                  [t for _, t in given], ans, call, kwargs)
            # (a tangent of another shape than the output's is an error of the rule,
            # raised by rule_node, not broadcast)
            return total if recorded else np.asarray(total, dtype=float)

        evaluate.__name__ = self.__name__          # (names the node in errors, dumps)
        slots = dict(zip(argnums, range(len(argnums))))
        recipe = (self, tuple(OperandSlot(slots[i]) if i in slots else a
                              for i, a in enumerate(args)), kwargs)
        return rule_node([args[i] for i in argnums], ans_value, reverse, forward,
                         evaluate, recipe)

    # -- the rules --------------------------------------------------------------------

    def _rules(self, registry, missing_ok=True):
        rules = registry.get(self)
        if rules is None:
            if missing_ok:
                return None
            rules = registry[self] = _Rules()
        return rules

    def _cotangents(self, argnums, g, ans, args, kwargs):
        """The cotangent of each argument in argnums for the output's cotangent g."""
        rules = self._rules(primitive_vjps)
        if rules is not None and rules.joint is not None:
            return list(rules.joint(argnums, ans, tuple(args), kwargs)(g))
        return [self._vjp_maker(rules, i)(ans, *args, **kwargs)(g) for i in argnums]

    def _tangent(self, argnums, tangents, ans, args, kwargs):
        """The output's tangent for the tangents of the arguments in argnums."""
        rules = self._rules(primitive_jvps)
        if rules is not None and rules.joint is not None:
            return rules.joint(argnums, tangents, ans, tuple(args), kwargs)
        recorded = type(ans) in _VARIABLE_TYPES
        total = 0.0
        for i, tangent in zip(argnums, tangents):
            term = self._jvp_rule(rules, i)(tangent, ans, *args, **kwargs)
            total = total + (term if recorded else np.asarray(term, dtype=float))
        return total

    def _vjp_maker(self, rules, i):
        if rules is not None:
            if i in rules.per_argument:
                return rules.per_argument[i]
            if rules.each is not None:
                each = rules.each
                return lambda ans, *args, **kwargs: each(i, ans, args, kwargs)
        raise MissingRuleError(f"fasttape.extend: no VJP defined for argument {i} of "
                               f"{self.__name__} (defvjp) — reverse mode cannot "
                               f"differentiate it")

    def _jvp_rule(self, rules, i):
        if rules is not None:
            if i in rules.per_argument:
                rule = rules.per_argument[i]
                if rule == "same":
                    return lambda g, ans, *args, **kwargs: self(
                        *_replaced(args, i, g), **kwargs)
                return rule
            if rules.each is not None:
                each = rules.each
                return lambda g, ans, *args, **kwargs: each(i, g, ans, args, kwargs)
        raise MissingRuleError(f"fasttape.extend: no JVP defined for argument {i} of "
                               f"{self.__name__} (defjvp) — forward mode cannot "
                               f"differentiate it")

    # -- autograd's deprecated spellings (on autograd.primitive's functions) ----------

    def defgrad(self, vjp_maker, argnum=0):
        """Deprecated (autograd): ``defvjp(self, vjp_maker, argnums=[argnum])``."""
        warnings.warn("Primitive.defgrad is deprecated: use fasttape.extend.defvjp",
                      DeprecationWarning, stacklevel=2)
        defvjp(self, vjp_maker, argnums=[argnum])

    def defvjp(self, vjp, argnum=0):
        """Deprecated (autograd): a rule ``vjp(g, ans, vs, gvs, *args, **kwargs)``
        (vs and gvs the spaces of the argument and of g) for argument argnum."""
        warnings.warn("Primitive.defvjp is deprecated: use fasttape.extend.defvjp",
                      DeprecationWarning, stacklevel=2)

        def maker(ans, *args, **kwargs):
            return lambda g: vjp(g, ans, vspace(args[argnum]), vspace(g), *args,
                                 **kwargs)
        defvjp(self, maker, argnums=[argnum])

    def defvjp_is_zero(self, argnums=(0,)):
        """Deprecated (autograd): the arguments argnums have zero derivatives."""
        warnings.warn("Primitive.defvjp_is_zero is deprecated: use "
                      "fasttape.extend.defvjp", DeprecationWarning, stacklevel=2)
        for i in argnums:
            defvjp(self, _zero_vjp(i), argnums=[i])

    def __repr__(self):
        return f"<fasttape primitive {self.__name__}>"

    def __reduce__(self):
        # by reference, as functions pickle (a traced tape names the primitive of each
        # of its nodes)
        return reduce_by_reference(self, f"the primitive {self.__name__}")


def _replaced(args, i, value):
    args = list(args)
    args[i] = value
    return args


def _zero_vjp(i):
    return lambda ans, *args, **kwargs: lambda g: vspace(args[i]).zeros()


def primitive(fun):
    """Make ``fun`` a primitive: one tape node, differentiated by the rules given with
    ``defvjp`` and ``defjvp``."""
    return Primitive(fun)


def defvjp(prim, *vjp_makers, argnums=None):
    """Reverse-mode rules: one ``vjp_maker(ans, *args, **kwargs) -> (g -> cotangent)``
    per argument (or for the arguments listed in ``argnums``). ``None`` skips one."""
    _check(prim)
    argnums = range(len(vjp_makers)) if argnums is None else argnums
    rules = _per_argument_rules(primitive_vjps, prim)
    for i, maker in zip(argnums, vjp_makers):
        if maker is not None:
            if not callable(maker):
                raise TypeError(f"defvjp: the rule for argument {i} of {prim.__name__} "
                                f"is not a function: {maker!r}")
            rules.per_argument[i] = maker


def defjvp(prim, *jvp_rules, argnums=None):
    """Forward-mode rules: one ``jvp(g, ans, *args, **kwargs) -> output tangent`` per
    argument (or for the arguments listed in ``argnums``); ``"same"`` for an argument
    in which ``prim`` is linear (its tangent is ``prim`` applied to ``g`` there)."""
    _check(prim)
    argnums = range(len(jvp_rules)) if argnums is None else argnums
    rules = _per_argument_rules(primitive_jvps, prim)
    for i, rule in zip(argnums, jvp_rules):
        if rule is not None:
            if not (callable(rule) or rule == "same"):
                raise TypeError(f"defjvp: the rule for argument {i} of {prim.__name__} "
                                f"is neither a function nor 'same': {rule!r}")
            rules.per_argument[i] = rule


def defvjp_argnum(prim, vjp_maker):
    """One reverse-mode rule for every argument:
    ``vjp_maker(argnum, ans, args, kwargs) -> (g -> cotangent of args[argnum])``.
    Replaces the primitive's reverse rules."""
    _check(prim)
    primitive_vjps[prim] = _Rules(each=vjp_maker)


def defvjp_argnums(prim, vjp_maker):
    """One reverse-mode rule for the differentiated arguments together:
    ``vjp_maker(argnums, ans, args, kwargs) -> (g -> one cotangent per argnum)``.
    Replaces the primitive's reverse rules."""
    _check(prim)
    primitive_vjps[prim] = _Rules(joint=vjp_maker)


def defjvp_argnum(prim, jvp_rule):
    """One forward-mode rule for every argument:
    ``jvp_rule(argnum, g, ans, args, kwargs) -> output tangent`` (the tangents of
    several arguments add). Replaces the primitive's forward rules."""
    _check(prim)
    primitive_jvps[prim] = _Rules(each=jvp_rule)


def defjvp_argnums(prim, jvp_rule):
    """One forward-mode rule for the differentiated arguments together:
    ``jvp_rule(argnums, gs, ans, args, kwargs) -> output tangent``. Replaces the
    primitive's forward rules."""
    _check(prim)
    primitive_jvps[prim] = _Rules(joint=jvp_rule)


def def_linear(prim):
    """Declare ``prim`` linear in each argument (bilinear, multilinear...): the tangent
    for an argument's tangent g is ``prim`` with that argument replaced by g."""
    _check(prim)
    primitive_jvps[prim] = _Rules(each=lambda i, g, ans, args, kwargs: prim(
        *_replaced(args, i, g), **kwargs))


def notrace_primitive(fun):
    """``fun`` called on the values of any Variables it is given: its result is a
    constant to the differentiation (for functions of a value's type, shape, sign...)."""
    @functools.wraps(fun)
    def call_on_values(*args, **kwargs):
        return fun(*[getval(a) for a in args], **kwargs)
    return call_on_values


def getval(x):
    """The value of a Variable or ArrayVariable; anything else unchanged."""
    return x.value if type(x) in _VARIABLE_TYPES else x


def isbox(x):
    """True for a value being differentiated (a Variable or an ArrayVariable), as
    autograd's boxes."""
    return type(x) in _VARIABLE_TYPES


def _per_argument_rules(registry, prim):
    rules = registry.get(prim)
    if rules is None or rules.each is not None or rules.joint is not None:
        rules = registry[prim] = _Rules()
    return rules


def _check(prim):
    if not isinstance(prim, Primitive):
        raise TypeError(f"{prim!r} is not a fasttape primitive: decorate it with "
                        f"fasttape.extend.primitive first")
