"""The sparse-optimization section (``--only sparse-opt``; not in the default run):
chained Rosenbrock with n/2 circle equality constraints solved by IPOPT, through
fasttape (``fasttape.optimize.minimize_ipopt``) and through CasADi's
``nlpsol('ipopt')``, or by SciPy's trust-constr when no IPOPT library is installed.

    minimize   sum_i 100 (x[i+1] - x[i]^2)^2 + (1 - x[i])^2
    subject to x[2k]^2 + x[2k+1]^2 = 1,   k = 0 .. n/2 - 1,     from x0 = 0.5

Timed per side: "build" (fasttape: the traces, sparsity patterns and colourings;
CasADi: the symbolic expressions and nlpsol) and "solve" (the solver call), total =
build + solve; one run each, after one untimed solve at n = 20 per side (imports,
plugins, first-use setup). Both use IPOPT's defaults (MUMPS, tol 1e-8) with printing
off; the IPOPT version and iteration counts are printed beside. "evals" is the part
of the solve spent in the problem's functions and derivatives (objective, gradient,
constraints, their Jacobian, the Lagrangian's Hessian): the part each library owns;
the rest is IPOPT itself. IPOPT builds differ in speed (each wheel bundles its own
IPOPT, MUMPS and BLAS): fasttape runs with the library it finds by default, and, when
that is not CasADi's, also with CasADi's (row "fasttape*", the same solver build).
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


def casadi_ipopt_library():
    """The IPOPT library inside CasADi's wheel (the newest there), or None."""
    from fasttape import _ipopt
    return _ipopt.newest_bundled("casadi")


def run_fasttape(n, library=None):
    """(build s, solve s, objective, iterations or None, method, evaluations s)."""
    import scipy.optimize as so
    from fasttape import _ipopt, optimize
    x0 = starting_point(n)
    constraint = so.NonlinearConstraint(circles, 0.0, 0.0)
    try:
        ipopt = _ipopt.load(library)
    except ImportError:
        ipopt = None
    if ipopt is not None:
        started = time.perf_counter()
        pieces = optimize._constraint_pieces([constraint], x0)
        problem = optimize._IpoptProblem(rosenbrock, (), pieces, x0)
        # the patterns' colourings are made on the first call
        problem.hessian(x0, 1.0, np.ones(problem.m), np.zeros(problem.hessian_rows.size))
        problem.jacobian(x0, np.zeros(problem.jacobian_rows.size))
        built = time.perf_counter()
        info = _ipopt.solve(problem, x0, np.full(n, -np.inf), np.full(n, np.inf),
                            np.zeros(problem.m), np.zeros(problem.m),
                            {"print_level": 0, "sb": "yes"}, library=ipopt.path)
        solved = time.perf_counter()
        return (built - started, solved - built, info["obj_val"], info["iterations"],
                f"ipopt {ipopt.version_string}", info["eval_seconds"])
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
    version = casadi_ipopt_library()
    version = ".".join(map(str, _version(version))) if version else "?"
    evaluations = sum(stats.get(f"t_wall_nlp_{part}", 0.0)
                      for part in ("f", "grad_f", "g", "jac_g", "hess_l"))
    return (built - started, solved - built, float(result["f"]),
            stats.get("iter_count"), f"ipopt {version}", evaluations)


def _version(path):
    from fasttape import _ipopt
    return _ipopt.load(path).version or ()


def sparse_opt(sizes=SIZES):
    """Print the table; returns its rows as dicts."""
    rows = []
    print("\n## Sparse optimization: chained Rosenbrock + n/2 circle equalities "
          "(IPOPT)\n")
    print(f"{'n':>7}  {'library':<9} {'method':<14} {'build s':>8} {'solve s':>8} "
          f"{'evals s':>8} {'total s':>8} {'iters':>5} {'objective':>14}")
    casadi_library = casadi_ipopt_library() if _have("casadi") else None
    same_library = casadi_library is None or _default_library() == casadi_library
    # first calls (imports, plugins, first-use setup) before the timed runs, both sides
    run_fasttape(20)
    if casadi_library is not None:
        run_fasttape(20, casadi_library)
        run_casadi(20)
    for n in sizes:
        results = {"fasttape": run_fasttape(n)}
        if not same_library:
            results["fasttape*"] = run_fasttape(n, casadi_library)
        if casadi_library is not None:
            results["casadi"] = run_casadi(n)
        for name, (build, solve, value, iters, method, evals) in results.items():
            total = build + solve if build == build else solve
            rows.append(dict(n=n, library=name, method=method, build_s=build,
                             solve_s=solve, evaluations_s=evals, total_s=total,
                             iterations=iters, objective=value))
            print(f"{n:>7}  {name:<9} {method:<14} {build:>8.3f} {solve:>8.3f} "
                  f"{evals:>8.3f} {total:>8.3f} {str(iters):>5} {value:>14.8g}")
        if "casadi" in results:
            by_name = {row["library"]: row for row in rows[-len(results):]}
            theirs = by_name["casadi"]
            for name in ("fasttape", "fasttape*"):
                if name in by_name:
                    ours = by_name[name]
                    print(f"{'':>7}  casadi/{name}: total "
                          f"{theirs['total_s'] / ours['total_s']:.2f}x, solve "
                          f"{theirs['solve_s'] / ours['solve_s']:.2f}x, evals "
                          f"{theirs['evaluations_s'] / ours['evaluations_s']:.2f}x")
    if not same_library:
        print("\nfasttape*: fasttape with CasADi's IPOPT library (the same solver build)")
    return rows


def _default_library():
    import os

    from fasttape import _ipopt
    found = _ipopt.find_library()
    return os.path.realpath(found) if found and os.path.exists(found) else found


if __name__ == "__main__":
    sparse_opt()
