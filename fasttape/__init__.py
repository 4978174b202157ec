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
from fasttape._version import __version__  # noqa: F401  (public)
from fasttape._tape import Tape
from fasttape._variable import Variable
from fasttape import _elementary
from fasttape._elementary import *  # noqa: F401,F403  the op table's functions
from fasttape.errors import (BranchChangedError, FasttapeError, GradientCheckError,
                             MissingRuleError, PointErrors, StaleVariableError,
                             TapeMismatchError)
from fasttape.differential import (checkpoint, elementwise_grad, grad, hessian,
                                   hessian_vector_product, hvp, jacfwd, jacobian,
                                   jacrev, jvp, make_jvp, make_vjp, no_grad, stop_gradient,
                                   value_and_grad, vjp)
from fasttape._containers import register_dataclass, register_pytree_node
from fasttape._arrays import ArrayVariable
from fasttape._complex import ComplexArray
from fasttape._complex_recording import holomorphic_grad
from fasttape.check import check_grads, numerical_grad
from fasttape.trace import Traced, trace
from fasttape.sparse import sparse_hessian, sparse_jacobian
from fasttape.branching import where
from fasttape.composed import (deriv, grad_and_aux, grad_named, hessian_tensor_product,
                               make_ggnvp, make_hvp, multigrad_dict,
                               tensor_jacobian_product, vector_jacobian_product)
from fasttape.extend import primitive
# autograd's differentiable containers and type tests (not in __all__: they shadow
# Python's builtins of the same names, which `from fasttape import *` leaves alone)
from fasttape.builtins import dict, isinstance, list, tuple, type  # noqa: A004, F401
from fasttape import math, tree_util  # noqa: F401  (fasttape.tree_util, as jax's)
from fasttape._wiring import connect_layers

# the lower layers' hooks (NumPy dispatch, ...), filled once: see fasttape._wiring
connect_layers()
del connect_layers


__all__ = [
    "Variable", "ArrayVariable", "Tape", "grad", "value_and_grad", "elementwise_grad",
    "jacobian", "jacfwd", "jacrev", "hessian", "hessian_vector_product", "hvp", "jvp",
    "vjp", "make_jvp", "make_vjp", "checkpoint", "numerical_grad", "check_grads",
    "FasttapeError", "GradientCheckError", "StaleVariableError", "TapeMismatchError",
    "BranchChangedError", "MissingRuleError", "PointErrors", "trace", "Traced", "where",
    "math", "deriv", "grad_named", "make_hvp", "hessian_tensor_product", "make_ggnvp",
    "tensor_jacobian_product", "vector_jacobian_product", "multigrad_dict",
    "grad_and_aux", "holomorphic_grad", "primitive", "ComplexArray",
    "sparse_jacobian", "sparse_hessian",
    "stop_gradient", "no_grad", "register_pytree_node", "register_dataclass",
]
__all__ += _elementary.__all__      # the elementary functions and math's spellings of them


def __getattr__(name):
    # fasttape.optimize on first use (it loads scipy.optimize)
    if name == "optimize":
        import fasttape.optimize as optimize
        return optimize
    raise AttributeError(f"module 'fasttape' has no attribute {name!r}")
