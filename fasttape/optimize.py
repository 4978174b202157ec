"""scipy.optimize.minimize with exact derivatives from traces.

``minimize(fun, x0, method=...)`` traces ``fun`` (and the constraint functions) once
at ``x0`` and hands SciPy the gradient (with the value, one replay and one reverse
sweep), the Hessian as scipy.sparse (compressed sweeps: fasttape.compressed; wrapped as a
LinearOperator for Newton-CG) or
Hessian-vector products, as the method takes them; for ``trust-constr`` also the
constraints' sparse Jacobians and the sparse Hessian of ``v . c(x)``. A point at
which the function takes another branch records it again (``retrace=True``).

``minimize_ipopt`` (or ``minimize(..., method="ipopt")``) solves the same problems
with IPOPT, through its C interface (fasttape._ipopt; a library from the optional
extra ``fasttape[ipopt]``, CasADi's or the system's): the gradient, the constraints'
Jacobian and the Hessian of the Lagrangian in IPOPT's triplet format, the structure
computed once and each call's values written into IPOPT's arrays.
"""
import functools

import numpy as np
import scipy.optimize as so
import scipy.sparse as sp
from scipy.sparse.linalg import aslinearoperator

import fasttape.numpy as fnp
from fasttape import _ipopt, compressed
from fasttape.trace import trace

# how each method takes second derivatives
SPARSE_HESSIAN = {"trust-constr"}
OPERATOR_HESSIAN = {"newton-cg"}     # SciPy < 1.12's Newton-CG takes no sparse matrix
DENSE_HESSIAN = {"dogleg", "trust-exact"}
HESSIAN_PRODUCT = {"trust-ncg", "trust-krylov"}
# no derivatives: the objective's value by replay alone (SciPy warns about a jac)
DERIVATIVE_FREE = {"nelder-mead", "powell", "cobyla", "cobyqa"}


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
    kind = None if method is None else str(method).lower()
    if kind == "ipopt":
        return minimize_ipopt(fun, x0, args=args, bounds=bounds,
                              constraints=constraints, tol=tol, options=options,
                              callback=callback)
    x0 = np.asarray(x0, dtype=float).reshape(-1)
    args = tuple(args)
    if kind is None:      # SciPy's default choice, made here to know what it needs
        kind = "slsqp" if constraints else "l-bfgs-b" if bounds is not None else "bfgs"
    objective = trace(fun, x0, *args, argnum=0, retrace=True)

    def value_and_grad(x, *more):
        value, gradient = objective.value_and_grad(np.asarray(x, dtype=float), *more)
        return float(value), np.asarray(gradient, dtype=float)

    if constraints is not None and not isinstance(constraints, (list, tuple)):
        constraints = [constraints]
    constraints = [_with_derivatives(c, x0, kind) for c in constraints or ()]
    if kind in DERIVATIVE_FREE:
        return so.minimize(lambda x, *more: float(objective(np.asarray(x, dtype=float),
                                                            *more)),
                           x0, args=args, method=method, bounds=bounds,
                           constraints=constraints, tol=tol, callback=callback,
                           options=options)
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
    return so.minimize(value_and_grad, x0, args=args, method=method, jac=True,
                       bounds=bounds, constraints=constraints, tol=tol,
                       callback=callback, options=options, **extra)


def _nonlinear_parts(constraint):
    """(fun, its extra args, lower, upper) of a dict or NonlinearConstraint; a clear
    error for anything else (LinearConstraints are the callers' own case)."""
    if isinstance(constraint, so.NonlinearConstraint):
        return constraint.fun, (), constraint.lb, constraint.ub
    if isinstance(constraint, dict):
        if constraint.get("type") not in ("eq", "ineq"):
            raise ValueError(f"a constraint's type is 'eq' or 'ineq', got "
                             f"{constraint.get('type')!r}")
        upper = 0.0 if constraint["type"] == "eq" else np.inf
        return constraint["fun"], tuple(constraint.get("args", ())), 0.0, upper
    raise TypeError(f"constraints are dicts or NonlinearConstraint / "
                    f"LinearConstraint objects, got {type(constraint).__name__}")


def _with_derivatives(constraint, x0, kind):
    """A constraint with its derivatives from a trace, in the form `kind` takes."""
    if isinstance(constraint, so.LinearConstraint):
        return constraint
    fun, more, lb, ub = _nonlinear_parts(constraint)

    def vector(x, *a):
        return fnp.reshape(fun(x, *a), (-1,))

    traced = trace(vector, x0, *more, argnum=0, retrace=True)
    if kind != "trust-constr":
        if isinstance(constraint, so.NonlinearConstraint):
            raise TypeError(f"method {kind!r} takes constraints as dicts")
        values = {"type": constraint["type"], "args": more,
                  "fun": lambda x, *a: np.asarray(traced(x, *a), dtype=float)}
        if kind not in DERIVATIVE_FREE:
            values["jac"] = lambda x, *a: traced.sparse_jacobian(x, *a).toarray()
        return values
    m = np.size(traced(x0, *more))

    def weighted(x, v):
        return fnp.sum(vector(x, *more) * v)

    lagrangian = trace(weighted, x0, np.ones(m), argnum=0, retrace=True)
    return so.NonlinearConstraint(
        lambda x: np.asarray(traced(x, *more), dtype=float), lb, ub,
        jac=lambda x: traced.sparse_jacobian(x, *more),
        hess=lambda x, v: lagrangian.sparse_hessian(x, np.asarray(v, dtype=float)))


# -- IPOPT (fasttape._ipopt: its C interface through ctypes) ---------------------------------

def _bounds_arrays(bounds, n):
    """(lower, upper) arrays of n values from SciPy's Bounds or (low, high) pairs
    (None meaning unbounded)."""
    if bounds is None:
        return np.full(n, -np.inf), np.full(n, np.inf)
    if isinstance(bounds, so.Bounds):
        return (np.broadcast_to(np.asarray(bounds.lb, dtype=float), (n,)).copy(),
                np.broadcast_to(np.asarray(bounds.ub, dtype=float), (n,)).copy())
    pairs = list(bounds)
    if len(pairs) != n:
        raise ValueError(f"bounds has {len(pairs)} (low, high) pairs for {n} variables")
    lower = np.array([-np.inf if lo is None else lo for lo, _ in pairs], dtype=float)
    upper = np.array([np.inf if hi is None else hi for _, hi in pairs], dtype=float)
    return lower, upper


def _constraint_pieces(constraints, x0):
    """[(function of x returning a flat vector, lower, upper)] for SciPy-style
    constraints (dicts, NonlinearConstraint, LinearConstraint)."""
    if constraints is None:
        return []
    if not isinstance(constraints, (list, tuple)):
        constraints = [constraints]
    pieces = []
    for c in constraints:
        if isinstance(c, so.LinearConstraint):
            a = c.A.toarray() if hasattr(c.A, "toarray") else np.asarray(c.A, dtype=float)
            a = np.atleast_2d(np.asarray(a, dtype=float))
            fn = functools.partial(_linear_map, a)
            lb, ub = c.lb, c.ub
        else:
            fun, more, lb, ub = _nonlinear_parts(c)
            fn = functools.partial(_with_extra_args, fun, more)
        size = int(np.size(np.asarray(_plain(fn(x0)))))
        pieces.append((fn, np.broadcast_to(np.asarray(lb, dtype=float), (size,)),
                       np.broadcast_to(np.asarray(ub, dtype=float), (size,))))
    return pieces


def _linear_map(a, x):
    return fnp.dot(a, x)


def _with_extra_args(fun, more, x):
    return fun(x, *more)


def _plain(v):
    """v as a float array (a fasttape value outside a recording is plain already)."""
    return np.asarray(getattr(v, "value", v), dtype=float)


def _scipy_callback(callback):
    """An on_iteration for fasttape._ipopt.solve calling `callback` as SciPy's
    minimize does: callback(intermediate_result) when its one parameter has that
    name, else callback(x); StopIteration stops the solve."""
    import inspect
    try:
        parameters = list(inspect.signature(callback).parameters)
    except (TypeError, ValueError):        # (a builtin without a signature)
        parameters = []
    with_result = parameters == ["intermediate_result"]

    def on_iteration(iteration, objective, x):
        try:
            if with_result:
                callback(intermediate_result=so.OptimizeResult(x=x, fun=objective,
                                                               nit=iteration))
            else:
                callback(x)
        except StopIteration:
            return False
        return True
    return on_iteration


class _Triplets:
    """A fixed (row, col) structure in the order of a CSR pattern, and values given
    in the CSR order of a pattern laid out on it: copied (the lower triangle's
    taken) when the pattern is the same (the common case: one recording), else
    scattered by key. Entries outside the structure (another branch, more
    nonzeros) raise: IPOPT keeps the structure it was given at the start."""

    def __init__(self, pattern, lower=False):
        coo = pattern.tocoo()
        self.pattern = pattern
        self.kept = None
        if lower:                         # IPOPT takes the Hessian's lower triangle
            self.kept = np.flatnonzero(coo.row >= coo.col)
        self.indptr = pattern.indptr.copy()
        self.indices = pattern.indices.copy()
        rows, cols = coo.row, coo.col
        if self.kept is not None:
            rows, cols = rows[self.kept], cols[self.kept]
        self.rows = np.ascontiguousarray(rows, dtype=np.int32)
        self.cols = np.ascontiguousarray(cols, dtype=np.int32)
        self.n_cols = pattern.shape[1]
        keys = self.rows.astype(np.int64) * self.n_cols + self.cols
        self._order = np.argsort(keys, kind="stable")
        self._sorted = keys[self._order]

    def write(self, pattern, data, out):
        """out[:] = the values `data` (in pattern's CSR order) on this structure."""
        if pattern is self.pattern or (
                pattern.indices.shape == self.indices.shape
                and np.array_equal(pattern.indptr, self.indptr)
                and np.array_equal(pattern.indices, self.indices)):
            if self.kept is None:
                out[:] = data
            else:
                np.take(data, self.kept, out=out)
            return
        coo = sp.csr_matrix((data, pattern.indices, pattern.indptr),
                            shape=pattern.shape).tocoo()
        take = coo.row >= coo.col if self.kept is not None else slice(None)
        keys = coo.row[take].astype(np.int64) * self.n_cols + coo.col[take]
        data = coo.data[take]
        at = np.minimum(np.searchsorted(self._sorted, keys), max(self._sorted.size - 1, 0))
        found = (self._sorted[at] == keys) if self._sorted.size else np.zeros(keys.shape, bool)
        if not np.all(found | (data == 0.0)):
            raise RuntimeError(
                "the sparsity pattern changed: at this point the functions take a "
                "branch with nonzeros outside the structure IPOPT was given at x0; "
                "start from a point on that branch")
        out[:] = 0.0
        out[self._order[at[found]]] = data[found]


class _IpoptProblem:
    """The problem object of fasttape._ipopt.solve: every evaluation a replay of a
    trace made once at x0, written into IPOPT's array."""

    def __init__(self, fun, args, pieces, x0):
        self.objective_trace = trace(fun, x0, *args, argnum=0, retrace=True)
        self.args = args
        self.n = x0.size
        self.m = sum(lb.size for _, lb, _ in pieces)
        functions = [fn for fn, _, _ in pieces]

        def constraint_vector(x):
            parts = [fnp.reshape(fn(x), (-1,)) for fn in functions]
            return parts[0] if len(parts) == 1 else fnp.concatenate(parts)

        def lagrangian(x, sigma, multipliers, *more):
            value = sigma * fun(x, *more)
            if functions:
                value = value + fnp.sum(constraint_vector(x) * multipliers)
            return value

        self.lagrangian_trace = trace(lagrangian, x0, 1.0, np.ones(self.m), *args,
                                      argnum=0, retrace=True)
        self.hessian_layout = _Triplets(self.lagrangian_trace.hessian_sparsity(),
                                        lower=True)
        self.hessian_rows = self.hessian_layout.rows
        self.hessian_cols = self.hessian_layout.cols
        self.constraint_trace = None
        self.jacobian_rows = self.jacobian_cols = np.zeros(0, np.int32)
        if functions:
            self.constraint_trace = trace(constraint_vector, x0, argnum=0, retrace=True)
            self.jacobian_layout = _Triplets(self.constraint_trace.jacobian_sparsity())
            self.jacobian_rows = self.jacobian_layout.rows
            self.jacobian_cols = self.jacobian_layout.cols
        # (x, value, gradient) at the last point, from one sweep: IPOPT asks for the
        # value and the gradient at each point separately
        self._last = None

    def new_point(self):
        """IPOPT's new_x: the next evaluations are at another point."""
        self._last = None

    def _value_and_grad(self, x):
        last = self._last
        if last is None or not np.array_equal(x, last[0]):
            value, gradient = self.objective_trace.value_and_grad(x, *self.args)
            last = self._last = (np.array(x), float(value), gradient)
        return last[1:]

    def objective(self, x):
        return self._value_and_grad(x)[0]

    def gradient(self, x, out):
        out[:] = np.reshape(self._value_and_grad(x)[1], -1)

    def constraints(self, x, out):
        out[:] = np.reshape(self.constraint_trace(x), -1)

    def jacobian(self, x, out):
        pattern, data = compressed.jacobian_values(self.constraint_trace, (x,))
        self.jacobian_layout.write(pattern, data, out)

    def hessian(self, x, obj_factor, multipliers, out):
        traced = self.lagrangian_trace
        pattern, data = compressed.hessian_values(
            traced, (x, obj_factor, multipliers, *self.args),
            traced._flat_hvp_by_function)
        self.hessian_layout.write(pattern, data, out)


def minimize_ipopt(fun, x0, args=(), bounds=None, constraints=(), tol=None,
                   options=None, library=None, callback=None):
    """Minimize ``fun(x, *args)`` with IPOPT, with exact first and second derivatives
    from traces.

    The arguments are those of ``minimize``: bounds as ``scipy.optimize.Bounds`` or
    (low, high) pairs, constraints as SciPy's dicts ("eq": c(x) = 0, "ineq":
    c(x) >= 0) or NonlinearConstraint / LinearConstraint objects; ``options`` are
    IPOPT options (``{"max_iter": 200, "print_level": 5, ...}``; printing is off
    unless set) and ``tol`` sets IPOPT's ``tol``. The objective, the constraints
    (concatenated) and the Lagrangian ``sigma f(x) + lambda . c(x)`` are traced once
    at x0; IPOPT gets their sparse Jacobian and the lower triangle of the Lagrangian's
    sparse Hessian, written into its arrays.

    IPOPT is called through its C interface, in the shared library ``library`` (a
    path); by default the one named by the environment variable
    ``FASTTAPE_IPOPT_LIBRARY``, else the newest bundled by an installed wheel
    (``pip install "fasttape[ipopt]"``, or CasADi's), else the system's.

    Returns scipy.optimize.OptimizeResult with x, fun, success, status, message,
    the multipliers (``mult_g``, ``mult_x_L``, ``mult_x_U``), the constraint values
    ``constr``, the counts nit, nfev (objective), njev (its gradient), nhev (the
    Lagrangian's Hessian), ncev and ncjev (the constraints and their Jacobian),
    ``evaluation_seconds`` (the time spent in the functions and derivatives; the rest
    is IPOPT's) and ``library`` (the IPOPT library's path or loader name). The
    message is the name of IPOPT's status ("Solve_Succeeded", ...); SciPy's
    ``maxiter`` and ``disp`` options are taken as IPOPT's max_iter and print_level.
    ``callback`` is called after each iteration as SciPy calls it: with an
    OptimizeResult (x, fun, nit) when its one parameter is named
    ``intermediate_result``, else with x; raising StopIteration stops the solve
    (IPOPT 3.14 or newer).
    """
    x0 = np.asarray(x0, dtype=float).reshape(-1)
    args = tuple(args)
    pieces = _constraint_pieces(constraints, x0)
    problem = _IpoptProblem(fun, args, pieces, x0)
    lower, upper = _bounds_arrays(bounds, x0.size)
    if pieces:
        cl = np.concatenate([lb for _, lb, _ in pieces])
        cu = np.concatenate([ub for _, _, ub in pieces])
    else:
        cl = cu = np.zeros(0)
    settings = {"print_level": 0, "sb": "yes"}
    for key, value in (options or {}).items():
        # SciPy's names for the two options every method takes
        if key == "maxiter":
            key = "max_iter"
        elif key == "disp":
            key, value = "print_level", 5 if value else 0
        settings[key] = value
    if tol is not None:
        settings["tol"] = float(tol)
    info = _ipopt.solve(problem, x0, lower, upper, cl, cu, settings, library=library,
                        on_iteration=None if callback is None
                        else _scipy_callback(callback))
    status = info["status"]
    counts = info["counts"]
    return so.OptimizeResult(
        x=info["x"], fun=info["obj_val"], success=status in (0, 1), status=status,
        message=info["status_msg"], constr=info["g"], mult_g=info["mult_g"],
        mult_x_L=info["mult_x_L"], mult_x_U=info["mult_x_U"], nit=info["iterations"],
        nfev=counts["objective"], njev=counts["gradient"], nhev=counts["hessian"],
        ncev=counts["constraints"], ncjev=counts["jacobian"],
        evaluation_seconds=info["eval_seconds"], library=info["library"])
