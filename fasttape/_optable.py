"""The scalar op table: the one place where each elementary op is described.

Every row gives an op's name, its forward formula, its first and second partial
derivatives, the names it answers to (fasttape, NumPy ufunc, ``math``), its docstring
and the domain its tests sample. Everything else that needs this knowledge is derived
from the table (see ``fasttape/_generate.py``, run by ``setup.py``):

- ``_opcodes.pxd``     the op-code enum, with FIRST/LAST markers for each kind
- ``_opmath.pxd``      the C formulas (values, partials, second partials, including the
                       constant-operand variants) and the per-op steps of the scalar
                       sweeps (reverse, replay, tangent, forward over reverse)
- ``_elementary.pyx``  the user-facing functions and their ufunc registrations (+ .pyi)
- ``_rules.py``        the derivative rules that higher-order sweeps record (at import)
- ``fasttape``, ``fasttape.math``, ``fasttape.numpy``: the public names (at import)
- ``tests/opspecs.py`` the test domains

Formulas are expressions in one small language that is valid Cython and valid Python
at once: operands ``x`` (unary) or ``a``, ``b`` (binary), the result ``y``; ``c`` is the
constant operand of a ``*_VC``/``*_CV`` variant. Function names resolve to libc's math
(or the C helpers of ``_opmath_helpers.pxd``) in C, and to ``fasttape.numpy`` (or the
Python twins of those helpers in ``_rules.py``) when a rule is recorded. A helper named
in a formula exists in both languages with the same conventions; tests/test_optable.py
checks the two against each other.

Adding a unary op: one ``unary(...)`` row below (and a line in the README's API
table). Adding a binary op with constant-operand variants: one ``binary(...)`` row with
``variants``. Then ``python -m fasttape._generate`` (or any build) rewrites the
generated files.

What later work reads from the same rows: `dependence()` and `interactions()` give
each op's sparsity (which operands its output depends on, linearly or not, and which
pairs have a second derivative) from the formulas; `holomorphic` marks the rows whose
formulas hold unchanged for complex operands (the complex-number work keys on it).

Order matters only for pickles: op codes are row positions, so new rows go at the end
of their kind (codes of existing ops never change within a release).
"""
import ast
from dataclasses import dataclass

import numpy as np


# Ops whose formulas call SciPy's special functions (cython_special; tens of ns each):
# the scalar sweeps take them through non-inlined functions of fasttape._opmath_rare.
# Inlined into the sweep loops with the common ops, their cases made the replayed
# Rosenbrock gradient 1.3x slower (register pressure and code size in the loop) though
# that code never runs them.
OUT_OF_LINE = ("GAMMA", "GAMMALN", "RGAMMA", "GAMMASGN", "DIGAMMA", "ERFC", "ERFINV",
               "ERFCINV", "I0", "I1", "J0", "J1", "Y0", "Y1")


@dataclass(frozen=True)
class ScalarOp:
    name: str                        # enum suffix: OP_<name>
    kind: str                        # "structural", "arithmetic", "unary" or "binary"
    arity: int                       # Variable operands (constants not counted)
    forward: str | None = None       # y as an expression of the operands
    partials: tuple = ()             # dy/dx, or (dy/da, dy/db)
    seconds: tuple = ()              # d2y/dx2, or (d2y/da2, d2y/dadb, d2y/db2)
    pair_helper: str | None = None     # binary: helper(a, b, y) giving both partials
    variants: tuple = ()             # arithmetic: "VC" (b constant), "CV" (a constant)
    function: str | None = None      # fasttape's name (None: an operator only)
    operator: str | None = None      # arithmetic: the Python operator (operator module)
    numpy: tuple = ()                # NumPy ufuncs it serves (first: its array form)
    math: tuple = ()                 # names in fasttape.math
    aliases: tuple = ()              # more top-level names (math's spellings)
    scipy: str | None = None         # scipy.special function for array values
    doc: str = ""
    domain: tuple = ()               # test sampling: a kind of sample() and its bounds
    grad_rtol: float = 1e-6
    value_rtol: float = 1e-14
    comment: str = ""                # a note for the generated C (conventions)
    holomorphic: bool = False        # the formulas hold unchanged for complex operands

    @property
    def out_of_line(self):
        """Whether the scalar sweeps reach this op through a call out of their loop
        (fasttape._opmath_rare) instead of an inlined case: see OUT_OF_LINE."""
        return self.name in OUT_OF_LINE


def structural(name, arity, comment):
    return ScalarOp(name, "structural", arity, comment=comment)


def arithmetic(name, forward, partials, seconds, variants, **more):
    return ScalarOp(name, "arithmetic", 2, forward, partials, seconds,
                    variants=variants, **more)


def unary(name, forward, partial, second, doc, domain, **more):
    return ScalarOp(name.upper(), "unary", 1, forward, (partial,), (second,),
                    function=more.pop("function", name), doc=doc, domain=domain,
                    numpy=more.pop("numpy", (name,)), **more)


def binary(name, forward, partials, seconds, doc, domain, **more):
    return ScalarOp(name.upper(), "binary", 2, forward, partials, seconds,
                    function=name, doc=doc, domain=domain,
                    numpy=more.pop("numpy", (name,)), **more)


# Every row in code order. `x`, `y`, `a`, `b`, `c` as in the module docstring.
OPS = (
    structural("LEAF", 0, "an input (leaf) variable"),
    structural("CONST", 0, "a constant promoted to a slot (no derivative flows out)"),

    # arithmetic: _VV two variables; _VC the second operand is constants[arg1];
    # _CV the first is constants[arg0]. c + x is recorded as x + c, c * x as x * c.
    arithmetic("ADD", "a + b", ("1.0", "1.0"), ("0.0", "0.0", "0.0"), ("VC",),
               operator="add", numpy=("add",), holomorphic=True),
    arithmetic("SUB", "a - b", ("1.0", "-1.0"), ("0.0", "0.0", "0.0"), ("VC", "CV"),
               operator="sub", numpy=("subtract",), holomorphic=True),
    arithmetic("MUL", "a * b", ("b", "a"), ("0.0", "1.0", "0.0"), ("VC",),
               operator="mul", numpy=("multiply",), holomorphic=True),
    arithmetic("DIV", "a / b", ("1.0 / b", "-(y / b)"),
               ("0.0", "-1.0 / (b * b)", "2.0 * y / (b * b)"), ("VC", "CV"),
               operator="truediv", numpy=("divide", "true_divide"), holomorphic=True),
    arithmetic("POW", "pow(a, b)", ("pow_dbase(a, b)", "pow_dexponent(a, y)"),
               ("pow_dbase_dbase(a, b)", "pow_dbase_dexponent(a, b)",
                "pow_dexponent_dexponent(a, y)"), ("VC", "CV"),
               operator="pow", numpy=("power", "float_power"), function="power",
               math=("pow",), aliases=("pow",),
               doc="x ** y. d/dx = y x^(y-1) (0 when y == 0); d/dy = log(x) x^y (0 when "
                   "x == 0, autograd's convention).",
               comment="d/da is 0 where b == 0 and d/db is 0 where a == 0 (autograd's)",
               holomorphic=True),

    # unary functions
    unary("neg", "-x", "-1.0", "0.0", "-x.", ("uniform", -10, 10),
          function=None, numpy=("negative",), holomorphic=True),
    unary("square", "x * x", "2.0 * x", "2.0", "x * x. d/dx = 2x.", ("uniform", -10, 10),
          holomorphic=True),
    unary("reciprocal", "1.0 / x", "-(y * y)", "2.0 * y * y * y",
          "1 / x. d/dx = -1/x^2.", ("nonzero", 0.1, 10), holomorphic=True),
    unary("sqrt", "sqrt(x)", "0.5 / y", "-0.25 / (y * y * y)",
          "Square root. d/dx = 1/(2 sqrt x): inf at 0 (autograd's convention); "
          "nan below 0.", ("uniform", 0.05, 10), math=("sqrt",), holomorphic=True),
    unary("cbrt", "cbrt(x)", "1.0 / (3.0 * (y * y))", "-2.0 / (9.0 * y * y * y * y * y)",
          "Cube root (real, also of negative numbers). d/dx = 1/(3 cbrt(x)^2): inf "
          "at 0.", ("nonzero", 0.05, 10), math=("cbrt",)),
    unary("exp", "exp(x)", "y", "y",
          "Exponential. d/dx = exp x (the stored result is reused).",
          ("uniform", -5, 5), math=("exp",), holomorphic=True),
    unary("exp2", "exp2(x)", "y * LN2", "y * LN2 * LN2", "2 ** x. d/dx = 2^x log 2.",
          ("uniform", -5, 5), math=("exp2",), holomorphic=True),
    unary("expm1", "expm1(x)", "y + 1.0", "y + 1.0",
          "exp(x) - 1, accurate near 0. d/dx = exp x.", ("uniform", -5, 5),
          math=("expm1",), holomorphic=True),
    unary("log", "log(x)", "1.0 / x", "-1.0 / (x * x)",
          "Natural logarithm. d/dx = 1/x: inf at 0; log of a negative number is nan.",
          ("uniform", 0.05, 10), holomorphic=True),
    unary("log2", "log2(x)", "1.0 / (x * LN2)", "-1.0 / (x * x * LN2)",
          "Base-2 logarithm. d/dx = 1/(x log 2).", ("uniform", 0.05, 10),
          math=("log2",), holomorphic=True),
    unary("log10", "log10(x)", "1.0 / (x * LN10)", "-1.0 / (x * x * LN10)",
          "Base-10 logarithm. d/dx = 1/(x log 10).", ("uniform", 0.05, 10),
          math=("log10",), holomorphic=True),
    unary("log1p", "log1p(x)", "1.0 / (1.0 + x)", "-1.0 / ((1.0 + x) * (1.0 + x))",
          "log(1 + x), accurate near 0. d/dx = 1/(1 + x).", ("uniform", -0.95, 10),
          math=("log1p",), holomorphic=True),
    unary("sin", "sin(x)", "cos(x)", "-y", "Sine. d/dx sin x = cos x.",
          ("uniform", -10, 10), math=("sin",), holomorphic=True),
    unary("cos", "cos(x)", "-sin(x)", "-y", "Cosine. d/dx cos x = -sin x.",
          ("uniform", -10, 10), math=("cos",), holomorphic=True),
    unary("tan", "tan(x)", "1.0 + y * y", "2.0 * y * (1.0 + y * y)",
          "Tangent. d/dx = 1 + tan^2 x.", ("uniform", -1.4, 1.4), grad_rtol=1e-5,
          math=("tan",), holomorphic=True),
    unary("arcsin", "asin(x)", "1.0 / sqrt(1.0 - x * x)",
          "x / ((1.0 - x * x) * sqrt(1.0 - x * x))",
          "Inverse sine. d/dx = 1/sqrt(1 - x^2): inf at +-1, nan outside [-1, 1].",
          ("uniform", -0.95, 0.95), math=("asin",), aliases=("asin",), holomorphic=True),
    unary("arccos", "acos(x)", "-1.0 / sqrt(1.0 - x * x)",
          "-x / ((1.0 - x * x) * sqrt(1.0 - x * x))",
          "Inverse cosine. d/dx = -1/sqrt(1 - x^2): -inf at +-1, nan outside [-1, 1].",
          ("uniform", -0.95, 0.95), math=("acos",), aliases=("acos",), holomorphic=True),
    unary("arctan", "atan(x)", "1.0 / (1.0 + x * x)",
          "-2.0 * x / ((1.0 + x * x) * (1.0 + x * x))",
          "Inverse tangent. d/dx = 1/(1 + x^2).", ("uniform", -10, 10),
          math=("atan",), aliases=("atan",), holomorphic=True),
    unary("sinh", "sinh(x)", "cosh(x)", "y", "Hyperbolic sine. d/dx = cosh x.",
          ("uniform", -5, 5), math=("sinh",), holomorphic=True),
    unary("cosh", "cosh(x)", "sinh(x)", "y", "Hyperbolic cosine. d/dx = sinh x.",
          ("uniform", -5, 5), math=("cosh",), holomorphic=True),
    unary("tanh", "tanh(x)", "1.0 - y * y", "-2.0 * y * (1.0 - y * y)",
          "Hyperbolic tangent. d/dx = 1 - tanh^2 x.", ("uniform", -5, 5),
          math=("tanh",), holomorphic=True),
    # 1/sqrt(x^2 + 1) as 1/hypot(x, 1): no overflow of x^2 (so not holomorphic as written)
    unary("arcsinh", "asinh(x)", "1.0 / hypot(x, 1.0)",
          "-x / ((x * x + 1.0) * sqrt(x * x + 1.0))",
          "Inverse hyperbolic sine. d/dx = 1/sqrt(x^2 + 1).", ("uniform", -10, 10),
          math=("asinh",), aliases=("asinh",)),
    # 1/sqrt(x^2 - 1) as 1/(sqrt(x - 1) sqrt(x + 1)): no overflow of x^2; inf at 1
    unary("arccosh", "acosh(x)", "1.0 / (sqrt(x - 1.0) * sqrt(x + 1.0))",
          "-x / (((x - 1.0) * (x + 1.0)) * sqrt((x - 1.0) * (x + 1.0)))",
          "Inverse hyperbolic cosine. d/dx = 1/sqrt(x^2 - 1): inf at 1, nan below 1.",
          ("uniform", 1.05, 10), math=("acosh",), aliases=("acosh",), holomorphic=True),
    unary("arctanh", "atanh(x)", "1.0 / (1.0 - x * x)",
          "2.0 * x / ((1.0 - x * x) * (1.0 - x * x))",
          "Inverse hyperbolic tangent. d/dx = 1/(1 - x^2): inf at +-1.",
          ("uniform", -0.95, 0.95), math=("atanh",), aliases=("atanh",), holomorphic=True),
    unary("abs", "fabs(x)", "sign(x)", "0.0",
          "Absolute value. d/dx = sign x, and 0 at x = 0 (autograd's convention).",
          ("nonzero", 0.01, 10), numpy=("absolute", "fabs"), math=("fabs",),
          aliases=("fabs",)),
    unary("sign", "sign(x)", "0.0", "0.0",
          "-1, 0 or 1 (nan for nan). Its derivative is 0 everywhere, 0 included.",
          ("nonzero", 0.01, 10)),
    unary("erf", "erf(x)", "TWO_OVER_SQRT_PI * exp(-(x * x))",
          "-2.0 * x * TWO_OVER_SQRT_PI * exp(-(x * x))",
          "Error function. d/dx = 2/sqrt(pi) exp(-x^2).", ("uniform", -3, 3),
          numpy=(), scipy="erf", math=("erf",)),
    unary("sigmoid", "sigmoid(x)", "y * (1.0 - y)", "y * (1.0 - y) * (1.0 - 2.0 * y)",
          "Logistic function 1/(1 + exp(-x)), stable for large |x|. d/dx = s (1 - s).",
          ("uniform", -10, 10), numpy=(), scipy="expit", value_rtol=1e-13,
          holomorphic=True),
    unary("rad2deg", "x * 57.29577951308232", "57.29577951308232", "0.0",
          "Radians to degrees, x * 180/pi.", ("uniform", -10, 10),
          numpy=("rad2deg", "degrees"), math=("degrees",), holomorphic=True),
    unary("deg2rad", "x * 0.017453292519943295", "0.017453292519943295", "0.0",
          "Degrees to radians, x * pi/180.", ("uniform", -500, 500),
          numpy=("deg2rad", "radians"), math=("radians",), holomorphic=True),
    # piecewise constant: derivative 0 (a node all the same, so that a replay
    # recomputes the value)
    unary("floor", "floor(x)", "0.0", "0.0", "Largest integer <= x. Derivative 0.",
          ("offgrid", -5, 5)),
    unary("ceil", "ceil(x)", "0.0", "0.0", "Smallest integer >= x. Derivative 0.",
          ("offgrid", -5, 5)),
    unary("trunc", "trunc(x)", "0.0", "0.0", "x rounded toward 0. Derivative 0.",
          ("offgrid", -5, 5)),
    unary("rint", "rint(x)", "0.0", "0.0",
          "x rounded to the nearest integer, ties to even. Derivative 0.",
          ("offgrid", -5, 5)),
    unary("sinc", "sinc(x)", "sinc_derivative(x, y)", "sinc_second(x, y)",
          "sin(pi x) / (pi x), 1 at 0. d/dx = (cos(pi x) - sinc x) / x, 0 at 0.",
          ("uniform", -3, 3)),

    # scipy.special's functions of one argument (fasttape.scipy.special); values from
    # SciPy's cython_special, so that scalars and arrays agree with scipy.special
    unary("gamma", "gamma(x)", "y * digamma_series(x)",
          "y * (digamma_series(x) * digamma_series(x) + trigamma(x))",
          "Gamma function. d/dx = Gamma(x) psi(x); inf (or nan) at the poles 0, -1, ...",
          ("offgrid", -4, 5), numpy=(), scipy="gamma", math=("gamma",)),
    unary("gammaln", "gammaln(x)", "digamma_series(x)", "trigamma(x)",
          "log|Gamma(x)|. d/dx = psi(x) (digamma); inf at the poles 0, -1, ...",
          ("offgrid", -4, 8), numpy=(), scipy="gammaln", math=("lgamma",)),
    unary("rgamma", "rgamma(x)", "-(y * digamma_series(x))",
          "y * (digamma_series(x) * digamma_series(x) - trigamma(x))",
          "1 / Gamma(x) (0 at the poles). d/dx = -psi(x) / Gamma(x).",
          ("offgrid", -4, 5), numpy=(), scipy="rgamma"),
    unary("gammasgn", "gammasgn(x)", "0.0", "0.0",
          "The sign of Gamma(x). Derivative 0.", ("offgrid", -4, 5), numpy=(),
          scipy="gammasgn"),
    unary("digamma", "digamma(x)", "trigamma(x)", "tetragamma(x)",
          "psi(x) = d/dx log Gamma(x). d/dx = psi'(x) (trigamma, polygamma(1, x)).",
          ("offgrid", -4, 8), numpy=(), scipy="digamma"),
    unary("erfc", "erfc(x)", "-TWO_OVER_SQRT_PI * exp(-(x * x))",
          "2.0 * x * TWO_OVER_SQRT_PI * exp(-(x * x))",
          "Complementary error function 1 - erf(x). d/dx = -2/sqrt(pi) exp(-x^2).",
          ("uniform", -3, 3), numpy=(), scipy="erfc", math=("erfc",)),
    unary("erfinv", "erfinv(x)", "exp(y * y) / TWO_OVER_SQRT_PI",
          "2.0 * y * exp(2.0 * (y * y)) / (TWO_OVER_SQRT_PI * TWO_OVER_SQRT_PI)",
          "Inverse of erf on (-1, 1). d/dx = sqrt(pi)/2 exp(erfinv(x)^2): inf at +-1.",
          ("uniform", -0.95, 0.95), numpy=(), scipy="erfinv"),
    unary("erfcinv", "erfcinv(x)", "-(exp(y * y) / TWO_OVER_SQRT_PI)",
          "2.0 * y * exp(2.0 * (y * y)) / (TWO_OVER_SQRT_PI * TWO_OVER_SQRT_PI)",
          "Inverse of erfc on (0, 2). d/dx = -sqrt(pi)/2 exp(erfcinv(x)^2): -inf at 0 "
          "and 2.", ("uniform", 0.05, 1.95), numpy=(), scipy="erfcinv"),
    unary("logit", "logit(x)", "1.0 / (x * (1.0 - x))",
          "(2.0 * x - 1.0) / ((x * (1.0 - x)) * (x * (1.0 - x)))",
          "log(x / (1 - x)), the inverse of expit. d/dx = 1/(x (1 - x)): inf at 0 and 1.",
          ("uniform", 0.05, 0.95), numpy=(), scipy="logit"),
    unary("i0", "i0(x)", "i1(x)", "i1_derivative(x)",
          "Modified Bessel function of the first kind, order 0. d/dx = I1(x).",
          ("uniform", -10, 10), numpy=(), scipy="i0"),
    unary("i1", "i1(x)", "i1_derivative(x)", "i1_second(x)",
          "Modified Bessel function of the first kind, order 1. d/dx = I0(x) - I1(x)/x "
          "(1/2 at 0).", ("uniform", -10, 10), numpy=(), scipy="i1"),
    unary("j0", "j0(x)", "-j1(x)", "-j1_derivative(x)",
          "Bessel function of the first kind, order 0. d/dx = -J1(x).",
          ("uniform", -20, 20), numpy=(), scipy="j0"),
    unary("j1", "j1(x)", "j1_derivative(x)", "j1_second(x)",
          "Bessel function of the first kind, order 1. d/dx = J0(x) - J1(x)/x (1/2 at 0).",
          ("uniform", -20, 20), numpy=(), scipy="j1"),
    unary("y0", "y0(x)", "-y1(x)", "y1(x) / x - y0(x)",
          "Bessel function of the second kind, order 0 (x > 0; -inf at 0, nan below). "
          "d/dx = -Y1(x).", ("uniform", 0.2, 20), numpy=(), scipy="y0"),
    unary("y1", "y1(x)", "y0(x) - y1(x) / x", "2.0 * y1(x) / (x * x) - y1(x) - y0(x) / x",
          "Bessel function of the second kind, order 1 (x > 0). d/dx = Y0(x) - Y1(x)/x.",
          ("uniform", 0.2, 20), numpy=(), scipy="y1"),

    # binary functions of two variables (a constant operand is promoted with CONST)
    binary("arctan2", "atan2(a, b)", (), ("arctan2_daa(a, b)", "arctan2_dab(a, b)",
                                          "-arctan2_daa(a, b)"),
           "Angle of the point (x, y). d/dy = x/(x^2 + y^2), d/dx = -y/(x^2 + y^2); "
           "nan at the origin.", ("polar", 0.2, 5, -3.0, 3.0),
           pair_helper="arctan2_partials", math=("atan2",), aliases=("atan2",)),
    binary("hypot", "hypot(a, b)", ("a / y", "b / y"),
           ("b * b / (y * y * y)", "-a * b / (y * y * y)", "a * a / (y * y * y)"),
           "sqrt(x^2 + y^2) without overflow. Gradient (x, y)/hypot; nan at the "
           "origin (autograd's convention).", ("polar", 0.2, 5, -3.141592653589793,
                                               3.141592653589793)),
    binary("maximum", "maximum(a, b)", (), ("0.0", "0.0", "0.0"),
           "Larger of x and y (nan if either is nan). The gradient goes to the larger "
           "one; on a tie it is split evenly between them (autograd's convention).",
           ("apart", -5, 5, 0.05, 3), pair_helper="selection_partials"),
    binary("minimum", "minimum(a, b)", (), ("0.0", "0.0", "0.0"),
           "Smaller of x and y (nan if either is nan). Ties split the gradient evenly.",
           ("apart", -5, 5, 0.05, 3), pair_helper="selection_partials"),
    binary("logaddexp", "logaddexp(a, b)", (),
           ("logaddexp_second(a, b)", "-logaddexp_second(a, b)",
            "logaddexp_second(a, b)"),
           "log(exp(x) + exp(y)) without overflow. Gradient: softmax weights "
           "exp(x - result), exp(y - result).", ("uniform", -10, 10),
           pair_helper="logaddexp_partials"),

    binary("fmax", "fmax(a, b)", (), ("0.0", "0.0", "0.0"),
           "Larger of x and y, ignoring a nan (the other operand). The gradient goes to "
           "the result's operand; a tie splits it evenly.", ("apart", -5, 5, 0.05, 3),
           pair_helper="selection_partials"),
    binary("fmin", "fmin(a, b)", (), ("0.0", "0.0", "0.0"),
           "Smaller of x and y, ignoring a nan. Ties split the gradient evenly.",
           ("apart", -5, 5, 0.05, 3), pair_helper="selection_partials"),
    binary("remainder", "remainder(a, b)", ("1.0", "-floor(a / b)"), ("0.0", "0.0", "0.0"),
           "x - floor(x / y) y, the sign of y (Python's %). Gradient (1, -floor(x / y)).",
           ("offgrid", -3, 3), numpy=("remainder", "mod")),
    binary("fmod", "fmod(a, b)", ("1.0", "-trunc(a / b)"), ("0.0", "0.0", "0.0"),
           "x - trunc(x / y) y, the sign of x (C's fmod). Gradient (1, -trunc(x / y)).",
           ("offgrid", -3, 3)),
    binary("logaddexp2", "logaddexp2(a, b)", (),
           ("LN2 * logaddexp_second(LN2 * a, LN2 * b)",
            "-LN2 * logaddexp_second(LN2 * a, LN2 * b)",
            "LN2 * logaddexp_second(LN2 * a, LN2 * b)"),
           "log2(2^x + 2^y) without overflow. Gradient: 2^(x - result), 2^(y - result).",
           ("uniform", -10, 10), pair_helper="logaddexp2_partials"),

    structural("SELECT", 3, "y = a if values[c] > 0 else b: arg0 is the condition "
               "slot c, arg1 the index of (a, b) in the extras pool (fasttape.where)"),
    structural("ARRAY", 0, "an array operation: arg0 is the index of its ArrayNode"),
)

OPS_BY_NAME = {op.name: op for op in OPS}


def expanded():
    """(enum name, ScalarOp, variant) for every op code, in code order: an arithmetic
    row gives its _VV code and then one code per constant-operand variant."""
    rows = []
    for op in OPS:
        if op.kind == "arithmetic":
            rows.append((op.name + "_VV", op, "VV"))
            rows.extend((f"{op.name}_{v}", op, v) for v in op.variants)
        else:
            rows.append((op.name, op, None))
    return rows


def op_arity(op, variant):
    """Variable operands of one op code."""
    return 1 if variant in ("VC", "CV") else op.arity


# -- formulas as expressions -------------------------------------------------------------

class _Rename(ast.NodeTransformer):
    def __init__(self, mapping):
        self.mapping = mapping

    def visit_Name(self, node):
        if node.id in self.mapping:
            return ast.copy_location(ast.Name(self.mapping[node.id], node.ctx), node)
        return node


def rename(expr, **mapping):
    """The formula with names replaced (an ast rewrite, not text substitution)."""
    return ast.unparse(_Rename(mapping).visit(ast.parse(expr, mode="eval")))


def names_in(expr):
    """The names a formula reads."""
    return {n.id for n in ast.walk(ast.parse(expr, mode="eval")) if isinstance(n, ast.Name)}


def operands_of(op):
    """The names of a row's operands in its formulas."""
    return ("x",) if op.kind == "unary" else ("a", "b")


def dependence(op):
    """How the output depends on each operand, from the formulas alone: for each
    operand, "none" (its partial is 0), "linear" (a partial that reads no operand and
    not the result) or "nonlinear". The sparsity pattern of a Jacobian propagates the
    operands that are not "none"; of a Hessian, see interactions()."""
    operands = operands_of(op)
    result = {}
    for name, partial in zip(operands, op.partials):
        if _is_zero(partial):
            result[name] = "none"
        elif names_in(partial) & (set(operands) | {"y"}):
            result[name] = "nonlinear"
        else:
            result[name] = "linear"
    if op.pair_helper:        # a helper's partials: treated as reading both operands
        result = {name: "nonlinear" for name in operands}
    return result


def interactions(op):
    """The pairs of operands whose second partial is not identically zero (a Hessian
    sparsity pattern joins their index sets): ("x", "x") for a nonlinear unary op;
    from ("a", "a"), ("a", "b"), ("b", "b") for a binary one."""
    operands = operands_of(op)
    pairs = [(operands[0], operands[0])] if op.kind == "unary" else \
        [("a", "a"), ("a", "b"), ("b", "b")]
    return [pair for pair, second in zip(pairs, op.seconds) if not _is_zero(second)]


def _is_zero(expr):
    try:
        return float(ast.literal_eval(expr)) == 0.0
    except (ValueError, SyntaxError, TypeError):
        return False


def variant_partial(op, variant):
    """The partial of a constant-operand variant with respect to its Variable
    operand, as a formula of x (the Variable), c (the constant) and y."""
    if variant == "VC":
        return rename(op.partials[0], a="x", b="c")
    return rename(op.partials[1], a="c", b="x")


# -- test domains ---------------------------------------------------------------------------

def sample(op, rng, shape):
    """Points of a row's test domain (where the op is smooth enough for central
    differences): one array of `shape` per operand, drawn with NumPy's Generator `rng`.

    uniform(lo, hi)       each operand uniform in [lo, hi)
    nonzero(lo, hi)       |operand| uniform in [lo, hi), either sign
    polar(r0, r1, t0, t1) (a, b) = r (sin t, cos t): away from the origin
    apart(lo, hi, g0, g1) a uniform, b = a +- a gap in [g0, g1)
    offgrid(lo, hi)       x = k + f, k an integer in [lo, hi), f in [0.2, 0.8]; for two
                          operands b = +-[0.5, 2) and a = b (k + f): away from the jumps
                          of floor, mod, ...
    """
    kind, *bounds = op.domain
    n = op.arity
    if kind == "uniform":
        return tuple(rng.uniform(bounds[0], bounds[1], shape) for _ in range(n))
    if kind == "nonzero":
        return tuple(rng.choice([-1.0, 1.0], shape) * rng.uniform(bounds[0], bounds[1], shape)
                     for _ in range(n))
    if kind == "polar":
        r = rng.uniform(bounds[0], bounds[1], shape)
        t = rng.uniform(bounds[2], bounds[3], shape)
        return r * np.sin(t), r * np.cos(t)
    if kind == "apart":
        a = rng.uniform(bounds[0], bounds[1], shape)
        gap = rng.choice([-1.0, 1.0], shape) * rng.uniform(bounds[2], bounds[3], shape)
        return a, a + gap
    if kind == "offgrid":
        x = rng.integers(bounds[0], bounds[1], shape) + rng.uniform(0.2, 0.8, shape)
        if n == 1:
            return (x * 1.0,)
        b = rng.choice([-1.0, 1.0], shape) * rng.uniform(0.5, 2.0, shape)
        return b * x, b
    raise ValueError(f"unknown test domain {op.domain} of {op.name}")

