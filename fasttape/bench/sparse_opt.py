"""The sparse-optimization section (``--only sparse-opt``; not in the default run):
chained Rosenbrock with n/2 circle equality constraints solved by IPOPT, through
fasttape (``fasttape.optimize.minimize_ipopt``) and through CasADi's
``nlpsol('ipopt')``, or by SciPy's trust-constr when cyipopt is absent.

    minimize   sum_i 100 (x[i+1] - x[i]^2)^2 + (1 - x[i])^2
    subject to x[2k]^2 + x[2k+1]^2 = 1,   k = 0 .. n/2 - 1,     from x0 = 0.5

Timed per side: "build" (fasttape: the traces, sparsity patterns and colourings;
CasADi: the symbolic expressions and nlpsol) and "solve" (the solver call), total =
build + solve; one run each (the solve is seconds). Both use IPOPT's defaults
(MUMPS, tol 1e-8) with printing off; the iteration counts are printed beside.
"evals" is the part of the solve spent in the problem's functions and derivatives
(objective, gradient, constraints, their Jacobian, the Lagrangian's Hessian): the part
each library owns; the rest is IPOPT itself, whose builds differ (cyipopt's wheel and
CasADi each bundle their own IPOPT, MUMPS and BLAS).
"""
import time

import numpy as np

SIZES = (2_000, 20_000)


def rosenbrock(x):
    import fasttape.numpy as fnp
    return fnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def circles(x):
    return x[0::2] ** 2 + x[1::2] ** 2 - 1.0


def starting_point(n):
    return np.full(n, 0.5)


def _have(module):
    try:
        __import__(module)
    except ImportError:
        return False
    return True


class _Timed:
    """The IPOPT problem object with the time spent in its callbacks summed."""
    CALLBACKS = ("objective", "gradient", "constraints", "jacobian", "hessian")

    def __init__(self, problem):
        self.problem, self.seconds = problem, 0.0

    def __getattr__(self, name):
        method = getattr(self.problem, name)
        if name not in self.CALLBACKS:
            return method

        def timed(*args):
            started = time.perf_counter()
            try:
                return method(*args)
            finally:
                self.seconds += time.perf_counter() - started
        return timed


def run_fasttape(n):
    """(build s, solve s, objective, iterations or None, method, evaluations s)."""
    import scipy.optimize as so
    from fasttape import optimize
    x0 = starting_point(n)
    constraint = so.NonlinearConstraint(circles, 0.0, 0.0)
    if _have("cyipopt"):
        import cyipopt
        started = time.perf_counter()
        pieces = optimize._constraint_pieces([constraint], x0)
        problem = optimize._IpoptProblem(rosenbrock, (), pieces, x0)
        problem.hessian(x0, np.ones(problem.m), 1.0)        # patterns, colourings
        problem.jacobian(x0)
        timed = _Timed(problem)
        nlp = cyipopt.Problem(n=n, m=problem.m, problem_obj=timed,
                              cl=np.zeros(problem.m), cu=np.zeros(problem.m))
        for key, value in {"print_level": 0, "sb": "yes"}.items():
            nlp.add_option(key, value)
        built = time.perf_counter()
        x, info = nlp.solve(x0)
        solved = time.perf_counter()
        return (built - started, solved - built, float(info["obj_val"]),
                problem.nit, "ipopt", timed.seconds)
    started = time.perf_counter()
    result = optimize.minimize(rosenbrock, x0, method="trust-constr",
                               constraints=[constraint])
    solved = time.perf_counter()
    return (float("nan"), solved - started, float(result.fun), result.nit,
            "trust-constr", float("nan"))


def run_casadi(n):
    import casadi as ca
    started = time.perf_counter()
    x = ca.SX.sym("x", n)
    f = ca.sum1(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)
    g = x[0::2] ** 2 + x[1::2] ** 2 - 1.0
    solver = ca.nlpsol("solver", "ipopt", {"x": x, "f": f, "g": g},
                       {"ipopt.print_level": 0, "print_time": 0, "ipopt.sb": "yes"})
    built = time.perf_counter()
    result = solver(x0=starting_point(n), lbg=0.0, ubg=0.0)
    solved = time.perf_counter()
    stats = solver.stats()
    evaluations = sum(stats.get(f"t_wall_nlp_{part}", 0.0)
                      for part in ("f", "grad_f", "g", "jac_g", "hess_l"))
    return (built - started, solved - built, float(result["f"]),
            stats.get("iter_count"), "ipopt", evaluations)


def sparse_opt(sizes=SIZES):
    """Print the table; returns its rows as dicts."""
    rows = []
    print("\n## Sparse optimization: chained Rosenbrock + n/2 circle equalities "
          "(IPOPT)\n")
    print(f"{'n':>7}  {'library':<9} {'method':<12} {'build s':>8} {'solve s':>8} "
          f"{'evals s':>8} {'total s':>8} {'iters':>5} {'objective':>14}")
    for n in sizes:
        results = {"fasttape": run_fasttape(n)}
        if _have("casadi"):
            results["casadi"] = run_casadi(n)
        for name, (build, solve, value, iters, method, evals) in results.items():
            total = build + solve if build == build else solve
            rows.append(dict(n=n, library=name, method=method, build_s=build,
                             solve_s=solve, evaluations_s=evals, total_s=total,
                             iterations=iters, objective=value))
            print(f"{n:>7}  {name:<9} {method:<12} {build:>8.3f} {solve:>8.3f} "
                  f"{evals:>8.3f} {total:>8.3f} {str(iters):>5} {value:>14.8g}")
        if "casadi" in results:
            ours, theirs = rows[-2], rows[-1]
            print(f"{'':>7}  casadi/fasttape: total {theirs['total_s'] / ours['total_s']:.2f}x,"
                  f" solve {theirs['solve_s'] / ours['solve_s']:.2f}x, evals "
                  f"{theirs['evaluations_s'] / ours['evaluations_s']:.2f}x")
    return rows


if __name__ == "__main__":
    sparse_opt()
