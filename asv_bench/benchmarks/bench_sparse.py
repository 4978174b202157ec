"""Sparse derivatives and exact second-order optimization (fasttape.compressed,
fasttape.optimize): the same workloads as ``python -m fasttape.bench --only
sparse,sparse-opt``.

- ``SparseHessian``: the arrowhead ``sum((x[1:] - x[0])**4) + sum(x**2)`` at
  n = 10^4 on NumPy arrays: f, the traced ``sparse_hessian``, pattern detection plus
  colouring, and the ratio of the sparse Hessian to f (interleaved).
- ``ConstrainedRosenbrock``: the chained Rosenbrock with n/2 circle equalities at
  n = 2,000 and 20,000: the sparse Jacobian of the constraints and the Lagrangian's
  sparse Hessian as IPOPT's callbacks compute them, and the whole
  ``minimize_ipopt`` (trace, patterns, colourings and the IPOPT solve; skipped
  without an IPOPT library).
"""
import numpy as np

from .common import SKIP, interleaved_ratio

try:
    from fasttape.bench import sparse as _sparse
    from fasttape.bench import sparse_opt as _sparse_opt
except ImportError:               # (a commit without the sparse sections)
    _sparse = _sparse_opt = None


def _require():
    if _sparse is None:
        raise SKIP("the sparse bench sections are not in this commit")


class SparseHessian:
    timeout = 120

    def setup(self):
        _require()
        import fasttape as ft
        import fasttape.numpy as fnp
        self.x = np.linspace(-1.0, 1.0, 10_000)
        self.f = _sparse.arrow_numpy(np)
        self.g = ft.trace(_sparse.arrow_numpy(fnp), self.x)
        self.g.sparse_hessian(self.x)              # the pattern and colouring, once
        self.pattern_and_coloring = _sparse._pattern_and_coloring(self.g)

    def time_f(self):
        self.f(self.x)

    def time_sparse_hessian(self):
        self.g.sparse_hessian(self.x)

    def time_pattern_and_coloring(self):
        self.pattern_and_coloring()

    def track_sparse_hessian_over_f(self):
        return interleaved_ratio(lambda: self.g.sparse_hessian(self.x),
                                 lambda: self.f(self.x))
    track_sparse_hessian_over_f.unit = "ratio"


class ConstrainedRosenbrock:
    params = [2_000, 20_000]
    param_names = ["n"]
    timeout = 300

    def setup(self, n):
        _require()
        import scipy.optimize as so

        from fasttape import optimize
        self.x0 = _sparse_opt.starting_point(n)
        self.constraint = so.NonlinearConstraint(_sparse_opt.circles, 0.0, 0.0)
        pieces = optimize._constraint_pieces([self.constraint], self.x0)
        self.problem = optimize._IpoptProblem(_sparse_opt.rosenbrock, (), pieces,
                                              self.x0)
        self.multipliers = np.ones(self.problem.m)
        self.hessian_values = np.zeros(self.problem.hessian_rows.size)
        self.jacobian_values = np.zeros(self.problem.jacobian_rows.size)
        self.time_hessian_callback(n)              # the colourings, once
        self.time_jacobian_callback(n)

    def time_jacobian_callback(self, n):
        self.problem.jacobian(self.x0, self.jacobian_values)

    def time_hessian_callback(self, n):
        self.problem.hessian(self.x0, 1.0, self.multipliers, self.hessian_values)

    def time_minimize_ipopt(self, n):
        from fasttape import _ipopt
        from fasttape.optimize import minimize_ipopt
        if _ipopt.find_library() is None:
            raise SKIP("no IPOPT library installed")
        minimize_ipopt(_sparse_opt.rosenbrock, self.x0, constraints=[self.constraint])
