"""scipy.optimize.minimize with exact derivatives from traces.

``minimize(fun, x0, method=...)`` traces ``fun`` (and the constraint functions) once
at ``x0`` and hands SciPy the gradient (with the value, one replay and one reverse
sweep), the Hessian as scipy.sparse (compressed sweeps: fasttape.compressed; wrapped as a
LinearOperator for Newton-CG) or
Hessian-vector products, as the method takes them; for ``trust-constr`` also the
constraints' sparse Jacobians and the sparse Hessian of ``v . c(x)``. A point at
which the function takes another branch records it again (``retrace=True``).
"""
import numpy as np
import scipy.optimize as so
from scipy.sparse.linalg import aslinearoperator

import fasttape.numpy as fnp
from fasttape.trace import trace

# how each method takes second derivatives
SPARSE_HESSIAN = {"trust-constr"}
OPERATOR_HESSIAN = {"newton-cg"}     # SciPy < 1.12's Newton-CG takes no sparse matrix
DENSE_HESSIAN = {"dogleg", "trust-exact"}
HESSIAN_PRODUCT = {"trust-ncg", "trust-krylov"}


def minimize(fun, x0, args=(), method=None, bounds=None, constraints=(), tol=None,
             callback=None, options=None):
    """scipy.optimize.minimize(fun, x0, ...) with ``jac``, ``hess``/``hessp`` and the
    constraints' derivatives computed by fasttape from traces of the functions.

    ``fun(x, *args)`` and the constraints' functions must be written with
    fasttape.numpy (or plain Python arithmetic); x0 is flattened to a 1-d float
    array, as SciPy does. Constraints are given as SciPy takes them (dicts with
    "type" and "fun", or NonlinearConstraint / LinearConstraint objects); their
    derivative entries are filled in. Returns SciPy's OptimizeResult.
    """
    x0 = np.asarray(x0, dtype=float).reshape(-1)
    args = tuple(args)
    kind = None if method is None else str(method).lower()
    if kind is None:      # SciPy's default choice, made here to know what it needs
        kind = "slsqp" if constraints else "l-bfgs-b" if bounds is not None else "bfgs"
    objective = trace(fun, x0, *args, argnum=0, retrace=True)

    def value_and_grad(x, *more):
        value, gradient = objective.value_and_grad(np.asarray(x, dtype=float), *more)
        return float(value), np.asarray(gradient, dtype=float)

    extra = {}
    if kind in SPARSE_HESSIAN:
        extra["hess"] = lambda x, *more: objective.sparse_hessian(x, *more)
    elif kind in OPERATOR_HESSIAN:
        extra["hess"] = lambda x, *more: aslinearoperator(objective.sparse_hessian(x, *more))
    elif kind in DENSE_HESSIAN:
        extra["hess"] = lambda x, *more: objective.sparse_hessian(x, *more).toarray()
    elif kind in HESSIAN_PRODUCT:
        extra["hessp"] = lambda x, p, *more: np.asarray(
            objective.hvp((x, *more), np.asarray(p, dtype=float)), dtype=float)
    if constraints is not None and not isinstance(constraints, (list, tuple)):
        constraints = [constraints]
    constraints = [_with_derivatives(c, x0, kind) for c in constraints or ()]
    return so.minimize(value_and_grad, x0, args=args, method=method, jac=True,
                       bounds=bounds, constraints=constraints, tol=tol,
                       callback=callback, options=options, **extra)


def _with_derivatives(constraint, x0, kind):
    """A constraint with its derivatives from a trace, in the form `kind` takes."""
    if isinstance(constraint, so.LinearConstraint):
        return constraint
    if isinstance(constraint, so.NonlinearConstraint):
        fun, lb, ub, more = constraint.fun, constraint.lb, constraint.ub, ()
    elif isinstance(constraint, dict):
        fun, more = constraint["fun"], tuple(constraint.get("args", ()))
        if constraint.get("type") not in ("eq", "ineq"):
            raise ValueError(f"a constraint's type is 'eq' or 'ineq', got "
                             f"{constraint.get('type')!r}")
        lb, ub = 0.0, 0.0 if constraint["type"] == "eq" else np.inf
    else:
        raise TypeError(f"constraints are dicts or NonlinearConstraint / "
                        f"LinearConstraint objects, got {type(constraint).__name__}")

    def vector(x, *a):
        return fnp.reshape(fun(x, *a), (-1,))

    traced = trace(vector, x0, *more, argnum=0, retrace=True)
    if kind != "trust-constr":
        if isinstance(constraint, so.NonlinearConstraint):
            raise TypeError(f"method {kind!r} takes constraints as dicts")
        return {"type": constraint["type"], "args": more,
                "fun": lambda x, *a: np.asarray(traced(x, *a), dtype=float),
                "jac": lambda x, *a: traced.sparse_jacobian(x, *a).toarray()}
    m = np.size(traced(x0, *more))

    def weighted(x, v):
        return fnp.sum(vector(x, *more) * v)

    lagrangian = trace(weighted, x0, np.ones(m), argnum=0, retrace=True)
    return so.NonlinearConstraint(
        lambda x: np.asarray(traced(x, *more), dtype=float), lb, ub,
        jac=lambda x: traced.sparse_jacobian(x, *more),
        hess=lambda x, v: lagrangian.sparse_hessian(x, np.asarray(v, dtype=float)))
