"""The op specs: one row per elementary function or operator form of fasttape.

Each spec names the fasttape callable, a NumPy reference, a sampler of its input
domain (points where the function is smooth enough for central differences), the op
codes it records, which arguments are differentiable Variables (the others are plain
constants), the matching autograd function and tolerances. tests/test_ops.py checks
every spec three ways (value against NumPy, gradient against central differences,
gradient against autograd) and checks that every op code of the tape has a spec.
"""
import math
from dataclasses import dataclass
from collections.abc import Callable

import numpy as np
import scipy.special

import fasttape as ft
from fasttape import _optable


# -- domain samplers: sampler(rng, n) -> array of n float64 ----------------------------

def uniform(lo, hi):
    return lambda rng, n: rng.uniform(lo, hi, n)


def nonzero(lo, hi):
    """|x| in [lo, hi), either sign."""
    return lambda rng, n: rng.choice([-1.0, 1.0], n) * rng.uniform(lo, hi, n)


def choice(values):
    return lambda rng, n: rng.choice(np.asarray(values, dtype=float), n)


def independent(*samplers):
    """Joint sampler from one sampler per argument."""
    return lambda rng, n: np.stack([s(rng, n) for s in samplers])


def polar(r_lo, r_hi, theta_lo, theta_hi):
    """(y, x) = r (sin t, cos t): keeps away from the origin (and, with |t| < pi, from
    the branch cut of arctan2 on the negative x axis)."""
    def sample(rng, n):
        r = rng.uniform(r_lo, r_hi, n)
        t = rng.uniform(theta_lo, theta_hi, n)
        return np.stack([r * np.sin(t), r * np.cos(t)])
    return sample


def apart(lo, hi, min_gap, max_gap):
    """(x, y) with min_gap <= |x - y| <= max_gap (maximum/minimum are smooth there)."""
    def sample(rng, n):
        x = rng.uniform(lo, hi, n)
        gap = rng.choice([-1.0, 1.0], n) * rng.uniform(min_gap, max_gap, n)
        return np.stack([x, x + gap])
    return sample


# -- NumPy references for functions NumPy does not have --------------------------------

def np_erf(x):
    return np.vectorize(math.erf, otypes=[float])(x)


def np_pow(x, y):
    """x ** y with NumPy float64 scalars (C pow, IEEE special cases). The ufunc
    np.power(x, 0.5) is computed through sqrt, so it gives nan for x = -inf where C99
    pow, Python's math.pow and np.float64(x) ** 0.5 give +inf."""
    with np.errstate(all="ignore"):
        return np.vectorize(lambda a, b: float(np.float64(a) ** np.float64(b)),
                            otypes=[float])(x, y)


def np_sigmoid(x):
    # 1 / (1 + e^-x) = exp(-log(1 + e^-x)), written with logaddexp so that it neither
    # overflows nor loses the tiny values at large negative x
    with np.errstate(all="ignore"):
        return np.exp(-np.logaddexp(0.0, -np.asarray(x, dtype=float)))


# -- the spec --------------------------------------------------------------------------

@dataclass(frozen=True)
class OpSpec:
    name: str
    fun: Callable            # fasttape: fun(*args), Variables and/or floats
    ref: Callable            # NumPy reference on float64
    sample: Callable         # sample(rng, n) -> array of shape (n_args, n)
    ops: tuple               # op codes recorded (LEAF excluded), in order
    diff: tuple | None = None      # differentiable argument positions; default all
    ag: object = None        # name in autograd.numpy, or callable(anp, special) -> fun
    plain: bool = True       # fun also takes plain floats and returns a float
    value_rtol: float = 1e-14
    grad_rtol: float = 1e-6
    grad_atol: float = 1e-10

    @property
    def n_args(self):
        return len(self.sample(np.random.default_rng(0), 1))

    @property
    def argnums(self):
        return self.diff if self.diff is not None else tuple(range(self.n_args))

    @property
    def arity(self):
        """Number of Variable operands."""
        return len(self.argnums)

    def autograd_fun(self, anp, special):
        if self.ag is None:
            return None
        if isinstance(self.ag, str):
            return getattr(anp, self.ag)
        return self.ag(anp, special)

    def __str__(self):
        return self.name


def unary(name, sampler, ag=None, ref=None, fun=None, **kw):
    return OpSpec(name=name, fun=fun or getattr(ft, name),
                  ref=ref or getattr(np, name), sample=independent(sampler),
                  ops=(name.upper(),), ag=ag or name, **kw)


def binary(name, sampler, ag=None, ref=None, **kw):
    return OpSpec(name=name, fun=getattr(ft, name), ref=ref or getattr(np, name),
                  sample=sampler, ops=(name.upper(),), ag=ag or name, **kw)


def operator(name, fun, ref, sampler, ops, diff=None, ag=None, **kw):
    # Python's own float arithmetic raises where NumPy returns inf/nan, so operator
    # forms are only checked with Variables (plain=False)
    return OpSpec(name=name, fun=fun, ref=ref, sample=sampler, ops=ops, diff=diff,
                  ag=ag if ag is not None else (lambda anp, sp: fun), plain=False, **kw)


U = uniform


def table_sampler(op):
    """The sampler of an op table row's test domain (fasttape/_optable.py)."""
    return lambda rng, n: np.stack(_optable.sample(op, rng, n))


# What the table does not say: the references (NumPy, autograd) where the default
# (NumPy's function of the same name, autograd.numpy's) does not fit
REFERENCES = {
    # autograd has no VJP for cbrt: the same function through abs and power
    "cbrt": dict(ag=lambda anp, sp: (lambda x: anp.sign(x) * anp.abs(x) ** (1.0 / 3.0))),
    "abs": dict(ag="abs"),
    "erf": dict(ref=np_erf, ag=lambda anp, sp: sp.erf),
    "sigmoid": dict(ref=np_sigmoid, ag=lambda anp, sp: sp.expit),
    "fmod": dict(ag=None),       # autograd has no rule for fmod
}
# scipy.special's functions of the table: SciPy's values, autograd.scipy.special's
# derivatives. (The reference is a plain function, not SciPy's ufunc: a scipy.special
# ufunc applied to a Variable raises, pointing to fasttape.scipy.special.)
def _scipy_reference(name):
    function = getattr(scipy.special, name)
    return lambda *args: function(*args)


for _name in ("gamma gammaln rgamma gammasgn digamma erfc erfinv erfcinv logit i0 i1 "
              "j0 j1 y0 y1").split():
    REFERENCES[_name] = dict(ref=_scipy_reference(_name),
                             ag=lambda anp, sp, _name=_name: getattr(sp, _name))


def table_spec(op):
    """The spec of one of the op table's functions of Variables."""
    more = dict(REFERENCES.get(op.function, {}))
    return OpSpec(name=op.function, fun=getattr(ft, op.function),
                  ref=more.pop("ref", getattr(np, op.function, None)),
                  sample=table_sampler(op), ops=(op.name,),
                  ag=more.pop("ag", op.function), grad_rtol=op.grad_rtol,
                  value_rtol=op.value_rtol, **more)


SPECS = [table_spec(op) for op in _optable.OPS
         if op.kind in ("unary", "binary") and op.function] + [
    OpSpec("power", ft.power, np_pow, independent(U(0.1, 5), U(-3, 3)),
           ("POW_VV",), ag="power"),
    # binary functions with one constant operand: the constant is promoted to a slot
    OpSpec("power(x, c)", ft.power, np_pow, independent(U(0.1, 5), U(-3, 3)),
           ("POW_VC",), diff=(0,), ag="power"),
    OpSpec("power(c, x)", ft.power, np_pow, independent(U(0.1, 5), U(-3, 3)),
           ("POW_CV",), diff=(1,), ag="power"),
    OpSpec("arctan2(y, c)", ft.arctan2, np.arctan2, polar(0.2, 5, -3.0, 3.0),
           ("CONST", "ARCTAN2"), diff=(0,), ag="arctan2"),
    OpSpec("arctan2(c, x)", ft.arctan2, np.arctan2, polar(0.2, 5, -3.0, 3.0),
           ("CONST", "ARCTAN2"), diff=(1,), ag="arctan2"),
    OpSpec("hypot(x, c)", ft.hypot, np.hypot, polar(0.2, 5, -math.pi, math.pi),
           ("CONST", "HYPOT"), diff=(0,), ag="hypot"),
    OpSpec("maximum(c, x)", ft.maximum, np.maximum, apart(-5, 5, 0.05, 3),
           ("CONST", "MAXIMUM"), diff=(1,), ag="maximum"),
    OpSpec("minimum(x, c)", ft.minimum, np.minimum, apart(-5, 5, 0.05, 3),
           ("CONST", "MINIMUM"), diff=(0,), ag="minimum"),
    OpSpec("logaddexp(x, c)", ft.logaddexp, np.logaddexp,
           independent(U(-10, 10), U(-10, 10)), ("CONST", "LOGADDEXP"), diff=(0,),
           ag="logaddexp"),
    # arithmetic operators: Variable-Variable, Variable-constant, constant-Variable
    operator("x+y", lambda x, y: x + y, np.add, independent(U(-10, 10), U(-10, 10)),
             ("ADD_VV",)),
    operator("x+c", lambda x, c: x + c, np.add, independent(U(-10, 10), U(-10, 10)),
             ("ADD_VC",), diff=(0,)),
    operator("c+x", lambda c, x: c + x, np.add, independent(U(-10, 10), U(-10, 10)),
             ("ADD_VC",), diff=(1,)),
    operator("x-y", lambda x, y: x - y, np.subtract,
             independent(U(-10, 10), U(-10, 10)), ("SUB_VV",)),
    operator("x-c", lambda x, c: x - c, np.subtract,
             independent(U(-10, 10), U(-10, 10)), ("SUB_VC",), diff=(0,)),
    operator("c-x", lambda c, x: c - x, np.subtract,
             independent(U(-10, 10), U(-10, 10)), ("SUB_CV",), diff=(1,)),
    operator("x*y", lambda x, y: x * y, np.multiply,
             independent(U(-10, 10), U(-10, 10)), ("MUL_VV",)),
    operator("x*c", lambda x, c: x * c, np.multiply,
             independent(U(-10, 10), U(-10, 10)), ("MUL_VC",), diff=(0,)),
    operator("c*x", lambda c, x: c * x, np.multiply,
             independent(U(-10, 10), U(-10, 10)), ("MUL_VC",), diff=(1,)),
    operator("x/y", lambda x, y: x / y, np.divide,
             independent(U(-10, 10), nonzero(0.2, 5)), ("DIV_VV",)),
    operator("x/c", lambda x, c: x / c, np.divide,
             independent(U(-10, 10), nonzero(0.2, 5)), ("DIV_VC",), diff=(0,)),
    operator("c/x", lambda c, x: c / x, np.divide,
             independent(U(-10, 10), nonzero(0.2, 5)), ("DIV_CV",), diff=(1,)),
    operator("x**y", lambda x, y: x ** y, np_pow,
             independent(U(0.1, 5), U(-3, 3)), ("POW_VV",)),
    operator("x**c", lambda x, c: x ** c, np_pow,
             independent(U(0.1, 5), U(-3, 3)), ("POW_VC",), diff=(0,)),
    operator("x**k (integer k, x of either sign)", lambda x, k: x ** k, np_pow,
             independent(nonzero(0.2, 3), choice([-3, -1, 1, 3, 4])), ("POW_VC",),
             diff=(0,)),
    operator("c**x", lambda c, x: c ** x, np_pow,
             independent(U(0.1, 5), U(-3, 3)), ("POW_CV",), diff=(1,)),
    # Python's % (np.remainder's rule, a REMAINDER node; a constant is promoted)
    operator("x%y", lambda x, y: x % y, np.remainder,
             table_sampler(_optable.OPS_BY_NAME["REMAINDER"]), ("REMAINDER",)),
    operator("x%c", lambda x, c: x % c, np.remainder,
             table_sampler(_optable.OPS_BY_NAME["REMAINDER"]), ("CONST", "REMAINDER"),
             diff=(0,)),
    operator("c%x", lambda c, x: c % x, np.remainder,
             table_sampler(_optable.OPS_BY_NAME["REMAINDER"]), ("CONST", "REMAINDER"),
             diff=(1,)),
    operator("x**2", lambda x: x ** 2, np.square, independent(U(-10, 10)),
             ("SQUARE",)),
    operator("x**2.0", lambda x: x ** 2.0, np.square, independent(U(-10, 10)),
             ("SQUARE",)),
    operator("-x", lambda x: -x, np.negative, independent(U(-10, 10)), ("NEG",)),
    operator("+x", lambda x: +x, np.positive, independent(U(-10, 10)), (),
             ag=lambda anp, sp: (lambda x: x)),     # autograd's boxes have no unary +
    operator("abs(x)", lambda x: abs(x), np.abs, independent(nonzero(0.01, 10)),
             ("ABS",)),
    # the same Variable as both operands (adjoints of one slot accumulate twice)
    operator("x*x", lambda x: x * x, np.square, independent(U(-10, 10)),
             ("MUL_VV",)),
    operator("x-x", lambda x: x - x, lambda x: x - x, independent(U(-10, 10)),
             ("SUB_VV",)),
    operator("x/x", lambda x: x / x, lambda x: x / x, independent(nonzero(0.2, 5)),
             ("DIV_VV",)),
    operator("x**x", lambda x: x ** x, lambda x: np_pow(x, x),
             independent(U(0.2, 3)), ("POW_VV",)),
    # fasttape.where: the comparison becomes a select node (d = x - y; SELECT)
    operator("where(x > y, x*y, x-y)", lambda x, y: ft.where(x > y, x * y, x - y),
             lambda x, y: np.where(x > y, x * y, x - y), apart(-5, 5, 0.05, 3),
             ("MUL_VV", "SUB_VV", "SUB_VV", "SELECT"),
             ag=lambda anp, sp: (lambda x, y: anp.where(x > y, x * y, x - y))),
]

SPECS_BY_NAME = {s.name: s for s in SPECS}
assert len(SPECS_BY_NAME) == len(SPECS), "spec names must be unique"

# specs of the top-level functions (not operator forms) taking only Variables
FUNCTION_SPECS = [s for s in SPECS if s.plain and s.diff is None]
UNARY_FUNCTION_SPECS = [s for s in FUNCTION_SPECS if s.n_args == 1]
BINARY_FUNCTION_SPECS = [s for s in FUNCTION_SPECS if s.n_args == 2]

# awkward inputs: zeros, +-1 (edges of domains), tiny and huge numbers, overflow
# thresholds of exp, infinities and nan
SPECIAL_VALUES = [0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 2.0, -2.0, 1e-300, -1e-300,
                  5e-324, 1e300, -1e300, 709.0, 710.0, -745.0, -746.0, 1e20, -1e20,
                  math.inf, -math.inf, math.nan]
SPECIAL_PAIR_VALUES = [0.0, -0.0, 1.0, -1.0, 0.5, -2.0, 3.0, 1e300, -1e300,
                       math.inf, -math.inf, math.nan]
