# Elementary functions for Variables and plain numbers.
#
# Each function records one node when given a Variable, computes in C (NumPy float64
# semantics: nan/inf, no exceptions) when given a Python float or int, and defers to
# the NumPy ufunc for anything else (NumPy scalars of other dtypes, arrays).
# Derivative formulas and conventions live with the reverse sweep in _tape.pyx.

from cpython.float cimport PyFloat_AS_DOUBLE, PyFloat_Check
from cpython.long cimport PyLong_AsDouble, PyLong_Check

import numpy as np

from fasttape._opmath cimport eval_binary, eval_unary
from fasttape._tape cimport *
from fasttape._variable cimport (Variable, as_double, check_live, check_pair,
                                 promote_constant, record_binary, record_unary,
                                 value_of)
from fasttape._variable import register_ufunc


cdef inline bint plain_number(object x, double* out) except -1:
    """Python float or int (not NumPy scalars of other dtypes, which go to NumPy)."""
    if PyFloat_Check(x):
        out[0] = PyFloat_AS_DOUBLE(x)
        return True
    if PyLong_Check(x):
        out[0] = PyLong_AsDouble(x)
        return True
    return False


cdef object unary(opcode_t op, object x, object numpy_ufunc):
    cdef double v
    cdef Variable var
    if type(x) is Variable:
        var = <Variable>x
        check_live(var)
        return record_unary(op, var, eval_unary(op, value_of(var)))
    if plain_number(x, &v):
        return eval_unary(op, v)
    return numpy_ufunc(x)


cdef object binary(opcode_t op, object a, object b, object numpy_ufunc):
    cdef double x, y
    cdef Variable va, vb
    if type(a) is Variable:
        va = <Variable>a
        if type(b) is Variable:
            vb = <Variable>b
            check_pair(va, vb)
        elif as_double(b, &y):
            check_live(va)
            vb = promote_constant(va.tape, y)
        else:
            return numpy_ufunc(a, b)
    elif type(b) is Variable:
        vb = <Variable>b
        if not as_double(a, &x):
            return numpy_ufunc(a, b)
        check_live(vb)
        va = promote_constant(vb.tape, x)
    elif plain_number(a, &x) and plain_number(b, &y):
        return eval_binary(op, x, y)
    else:
        return numpy_ufunc(a, b)
    return record_binary(op, va, vb, eval_binary(op, value_of(va), value_of(vb)))


# -- unary functions ------------------------------------------------------------------

def sin(x):
    """Sine. d/dx sin x = cos x."""
    return unary(OP_SIN, x, np.sin)

def cos(x):
    """Cosine. d/dx cos x = -sin x."""
    return unary(OP_COS, x, np.cos)

def tan(x):
    """Tangent. d/dx tan x = 1 + tan^2 x."""
    return unary(OP_TAN, x, np.tan)

def arcsin(x):
    """Inverse sine. d/dx = 1/sqrt(1 - x^2): inf at +-1, nan outside [-1, 1]."""
    return unary(OP_ARCSIN, x, np.arcsin)

def arccos(x):
    """Inverse cosine. d/dx = -1/sqrt(1 - x^2): -inf at +-1, nan outside [-1, 1]."""
    return unary(OP_ARCCOS, x, np.arccos)

def arctan(x):
    """Inverse tangent. d/dx = 1/(1 + x^2)."""
    return unary(OP_ARCTAN, x, np.arctan)

def sinh(x):
    """Hyperbolic sine. d/dx = cosh x."""
    return unary(OP_SINH, x, np.sinh)

def cosh(x):
    """Hyperbolic cosine. d/dx = sinh x."""
    return unary(OP_COSH, x, np.cosh)

def tanh(x):
    """Hyperbolic tangent. d/dx = 1 - tanh^2 x."""
    return unary(OP_TANH, x, np.tanh)

def arcsinh(x):
    """Inverse hyperbolic sine. d/dx = 1/sqrt(x^2 + 1)."""
    return unary(OP_ARCSINH, x, np.arcsinh)

def arccosh(x):
    """Inverse hyperbolic cosine. d/dx = 1/sqrt(x^2 - 1): inf at 1, nan below 1."""
    return unary(OP_ARCCOSH, x, np.arccosh)

def arctanh(x):
    """Inverse hyperbolic tangent. d/dx = 1/(1 - x^2): inf at +-1."""
    return unary(OP_ARCTANH, x, np.arctanh)

def exp(x):
    """Exponential. d/dx = exp x (the stored result is reused)."""
    return unary(OP_EXP, x, np.exp)

def exp2(x):
    """2 ** x. d/dx = 2^x log 2."""
    return unary(OP_EXP2, x, np.exp2)

def expm1(x):
    """exp(x) - 1, accurate near 0. d/dx = exp x."""
    return unary(OP_EXPM1, x, np.expm1)

def log(x):
    """Natural logarithm. d/dx = 1/x: inf at 0; log of a negative number is nan."""
    return unary(OP_LOG, x, np.log)

def log2(x):
    """Base-2 logarithm. d/dx = 1/(x log 2)."""
    return unary(OP_LOG2, x, np.log2)

def log10(x):
    """Base-10 logarithm. d/dx = 1/(x log 10)."""
    return unary(OP_LOG10, x, np.log10)

def log1p(x):
    """log(1 + x), accurate near 0. d/dx = 1/(1 + x)."""
    return unary(OP_LOG1P, x, np.log1p)

def sqrt(x):
    """Square root. d/dx = 1/(2 sqrt x): inf at 0 (autograd's convention); nan below 0."""
    return unary(OP_SQRT, x, np.sqrt)

def cbrt(x):
    """Cube root (real, also of negative numbers). d/dx = 1/(3 cbrt(x)^2): inf at 0."""
    return unary(OP_CBRT, x, np.cbrt)

def square(x):
    """x * x. d/dx = 2x."""
    return unary(OP_SQUARE, x, np.square)

def reciprocal(x):
    """1 / x. d/dx = -1/x^2."""
    return unary(OP_RECIPROCAL, x, np.reciprocal)

def sign(x):
    """-1, 0 or 1 (nan for nan). Its derivative is 0 everywhere, 0 included."""
    return unary(OP_SIGN, x, np.sign)

def abs(x):
    """Absolute value. d/dx = sign x, and 0 at x = 0 (autograd's convention)."""
    return unary(OP_ABS, x, np.abs)

def erf(x):
    """Error function. d/dx = 2/sqrt(pi) exp(-x^2)."""
    return unary(OP_ERF, x, _numpy_erf)

def sigmoid(x):
    """Logistic function 1/(1 + exp(-x)), stable for large |x|. d/dx = s (1 - s)."""
    return unary(OP_SIGMOID, x, _numpy_sigmoid)


def _numpy_erf(x):
    try:
        from scipy.special import erf as scipy_erf
    except ImportError:
        raise TypeError("fasttape.erf of an array needs scipy") from None
    return scipy_erf(x)


def _numpy_sigmoid(x):
    x = np.asarray(x, dtype=float)
    return np.where(x >= 0, 1.0 / (1.0 + np.exp(-np.abs(x))),
                    np.exp(-np.abs(x)) / (1.0 + np.exp(-np.abs(x))))


# -- binary functions -----------------------------------------------------------------

def arctan2(y, x):
    """Angle of the point (x, y). d/dy = x/(x^2 + y^2), d/dx = -y/(x^2 + y^2);
    nan at the origin."""
    return binary(OP_ARCTAN2, y, x, np.arctan2)

def hypot(x, y):
    """sqrt(x^2 + y^2) without overflow. Gradient (x, y)/hypot; nan at the origin
    (autograd's convention)."""
    return binary(OP_HYPOT, x, y, np.hypot)

def maximum(x, y):
    """Larger of x and y (nan if either is nan). The gradient goes to the larger one;
    on a tie it is split evenly between them (autograd's convention)."""
    return binary(OP_MAXIMUM, x, y, np.maximum)

def minimum(x, y):
    """Smaller of x and y (nan if either is nan). Ties split the gradient evenly."""
    return binary(OP_MINIMUM, x, y, np.minimum)

def logaddexp(x, y):
    """log(exp(x) + exp(y)) without overflow. Gradient: softmax weights
    exp(x - result), exp(y - result)."""
    return binary(OP_LOGADDEXP, x, y, np.logaddexp)

def power(x, y):
    """x ** y. d/dx = y x^(y-1) (0 when y == 0); d/dy = log(x) x^y (0 when x == 0,
    autograd's convention)."""
    cdef double a, b
    if type(x) is Variable or type(y) is Variable:
        return x ** y
    if plain_number(x, &a) and plain_number(y, &b):
        return eval_binary(OP_POW_VV, a, b)
    return np.power(x, y)


# -- NumPy ufuncs on Variables (dispatched from Variable.__array_ufunc__) --------------

import operator as _operator

for _ufunc, _handler in (
        (np.add, _operator.add), (np.subtract, _operator.sub),
        (np.multiply, _operator.mul), (np.true_divide, _operator.truediv),
        (np.power, power), (np.float_power, power),
        (np.negative, _operator.neg), (np.positive, _operator.pos),
        (np.absolute, abs), (np.fabs, abs),
        (np.sin, sin), (np.cos, cos), (np.tan, tan),
        (np.arcsin, arcsin), (np.arccos, arccos), (np.arctan, arctan),
        (np.sinh, sinh), (np.cosh, cosh), (np.tanh, tanh),
        (np.arcsinh, arcsinh), (np.arccosh, arccosh), (np.arctanh, arctanh),
        (np.exp, exp), (np.exp2, exp2), (np.expm1, expm1),
        (np.log, log), (np.log2, log2), (np.log10, log10), (np.log1p, log1p),
        (np.sqrt, sqrt), (np.cbrt, cbrt), (np.square, square),
        (np.reciprocal, reciprocal), (np.sign, sign),
        (np.arctan2, arctan2), (np.hypot, hypot),
        (np.maximum, maximum), (np.minimum, minimum), (np.logaddexp, logaddexp),
        (np.less, _operator.lt), (np.less_equal, _operator.le),
        (np.greater, _operator.gt), (np.greater_equal, _operator.ge),
        (np.equal, _operator.eq), (np.not_equal, _operator.ne)):
    register_ufunc(_ufunc, _handler)
