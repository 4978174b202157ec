"""fasttape: fast automatic differentiation of Python and NumPy code.

A Wengert tape in Cython records the operations of ordinary Python code on
``Variable`` objects; a reverse sweep in C without the GIL returns the gradient.

>>> from fasttape import Variable, sin
>>> x, y = Variable(2.0), Variable(3.0)
>>> f = x * y + sin(x)
>>> f.backward()
>>> x.grad
2.5838531634528574
"""
from fasttape._tape import Tape
from fasttape._variable import Variable
from fasttape._elementary import (
    abs, arccos, arccosh, arcsin, arcsinh, arctan, arctan2, arctanh, cbrt, cos, cosh,
    erf, exp, exp2, expm1, hypot, log, log1p, log2, log10, logaddexp, maximum,
    minimum, power, reciprocal, sigmoid, sign, sin, sinh, sqrt, square, tan, tanh)
from fasttape.errors import (BranchChangedError, FasttapeError, GradientCheckError,
                             StaleVariableError, TapeMismatchError)
from fasttape.differential import (checkpoint, elementwise_grad, grad, hessian,
                                   hessian_vector_product, hvp, jacfwd, jacobian,
                                   jacrev, jvp, make_jvp, make_vjp, value_and_grad, vjp)
from fasttape._arrays import ArrayVariable
from fasttape.check import check_grads, numerical_grad
from fasttape.trace import Traced, trace
from fasttape.branching import where
from fasttape import math
from fasttape._wiring import connect_layers

# the lower layers' hooks (NumPy dispatch, ...), filled once: see fasttape._wiring
connect_layers()
del connect_layers

# the math module's spellings, also at the top level
asin, acos, atan, atan2 = arcsin, arccos, arctan, arctan2
asinh, acosh, atanh = arcsinh, arccosh, arctanh
fabs, pow = abs, power

__version__ = "0.1.0"

__all__ = [
    "Variable", "ArrayVariable", "Tape", "grad", "value_and_grad", "elementwise_grad",
    "jacobian", "jacfwd", "jacrev", "hessian", "hessian_vector_product", "hvp", "jvp",
    "vjp", "make_jvp", "make_vjp", "checkpoint", "numerical_grad", "check_grads",
    "FasttapeError", "GradientCheckError", "StaleVariableError", "TapeMismatchError",
    "BranchChangedError", "trace", "Traced", "where",
    "math",
    "sin", "cos", "tan", "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh",
    "arcsinh", "arccosh", "arctanh", "exp", "exp2", "expm1", "log", "log2", "log10",
    "log1p", "sqrt", "cbrt", "square", "reciprocal", "sign", "abs", "power", "arctan2",
    "hypot", "maximum", "minimum", "logaddexp", "erf", "sigmoid",
    "asin", "acos", "atan", "atan2", "asinh", "acosh", "atanh", "fabs", "pow",
]
