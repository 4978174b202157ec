"""fasttape.optimize.minimize against SciPy's minimize with finite differences on
the classics: chained Rosenbrock, Broyden tridiagonal, HS071 with constraints."""
import numpy as np
import pytest
import scipy.optimize as so

import fasttape.numpy as fnp
import fasttape
from fasttape.optimize import minimize


def rosenbrock(x):
    return fnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def broyden_tridiagonal(x):
    padded = fnp.concatenate([np.zeros(1), x, np.zeros(1)])
    r = (3.0 - 2.0 * x) * x - padded[:-2] - 2.0 * padded[2:] + 1.0
    return fnp.sum(r ** 2)


@pytest.mark.parametrize("method", ["trust-constr", "Newton-CG", "trust-exact",
                                    "trust-ncg", "BFGS"])
def test_rosenbrock_chained(method):
    x0 = np.full(12, -0.5)
    ours = minimize(rosenbrock, x0, method=method, tol=1e-10,
                    options={"maxiter": 3000})
    assert ours.success or method == "trust-constr"
    np.testing.assert_allclose(ours.x, np.ones(12), atol=1e-4)
    theirs = so.minimize(lambda x: float(np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 +
                                                (1.0 - x[:-1]) ** 2)), x0,
                         method="BFGS", options={"maxiter": 5000})
    np.testing.assert_allclose(ours.x, theirs.x, atol=1e-3)
    # exact derivatives: fewer iterations than finite differences need evaluations
    assert ours.nfev < theirs.nfev


@pytest.mark.parametrize("method", ["trust-constr", "Newton-CG"])
def test_broyden_tridiagonal(method):
    x0 = -np.ones(20)
    ours = minimize(broyden_tridiagonal, x0, method=method)
    theirs = so.minimize(lambda x: float(broyden_tridiagonal(x)), x0, method="BFGS")
    assert ours.fun < 1e-10
    np.testing.assert_allclose(ours.x, theirs.x, atol=1e-4)


def hs071(x):
    return x[0] * x[3] * (x[0] + x[1] + x[2]) + x[2]


def hs071_product(x):
    return x[0] * x[1] * x[2] * x[3] - 25.0


def hs071_sphere(x):
    return fnp.sum(x ** 2) - 40.0


@pytest.mark.parametrize("method", ["trust-constr", "SLSQP"])
def test_hs071_with_constraints(method):
    x0 = np.array([1.0, 5.0, 5.0, 1.0])
    constraints = [{"type": "ineq", "fun": hs071_product},
                   {"type": "eq", "fun": hs071_sphere}]
    bounds = so.Bounds(np.ones(4), 5 * np.ones(4))
    ours = minimize(hs071, x0, method=method, bounds=bounds, constraints=constraints,
                    options={"maxiter": 500})
    theirs = so.minimize(lambda x: float(hs071(x)), x0, method="SLSQP", bounds=bounds,
                         constraints=[{"type": "ineq",
                                       "fun": lambda x: float(hs071_product(x))},
                                      {"type": "eq",
                                       "fun": lambda x: float(hs071_sphere(x))}])
    # the published optimum: f* = 17.0140173 at (1, 4.743, 3.82115, 1.37941)
    np.testing.assert_allclose(ours.fun, 17.0140173, rtol=1e-5)
    np.testing.assert_allclose(ours.x, theirs.x, atol=1e-3)


def test_bad_constraint_is_refused():
    with pytest.raises(ValueError, match="'eq' or 'ineq'"):
        minimize(rosenbrock, np.zeros(3), method="SLSQP",
                 constraints=[{"type": "le", "fun": rosenbrock}])


def test_reached_as_an_attribute_of_fasttape():
    assert fasttape.optimize.minimize is minimize


# -- IPOPT through cyipopt (fasttape[ipopt]) -------------------------------------------------

def _dense_from_triplets(rows, cols, values, shape):
    dense = np.zeros(shape)
    np.add.at(dense, (rows, cols), values)
    return dense


def _central_jacobian(f, x, h=1e-6):
    columns = []
    for i in range(x.size):
        e = np.zeros(x.size)
        e[i] = h
        columns.append((np.asarray(f(x + e), dtype=float) -
                        np.asarray(f(x - e), dtype=float)) / (2 * h))
    return np.stack(columns, axis=-1)


def test_ipopt_callbacks_against_central_differences():
    pytest.importorskip("cyipopt")
    from fasttape.optimize import _IpoptProblem, _constraint_pieces
    rng = np.random.default_rng(3)
    x = rng.uniform(1.0, 2.0, 4)
    pieces = _constraint_pieces([{"type": "ineq", "fun": hs071_product},
                                 {"type": "eq", "fun": hs071_sphere}], x)
    problem = _IpoptProblem(hs071, (), pieces, x)

    def constraints(z):
        return np.array([float(hs071_product(z)), float(hs071_sphere(z))])

    np.testing.assert_allclose(problem.objective(x), hs071(x))
    np.testing.assert_allclose(problem.gradient(x),
                               _central_jacobian(lambda z: float(hs071(z)), x),
                               rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(problem.constraints(x), constraints(x))
    rows, cols = problem.jacobianstructure()
    np.testing.assert_allclose(
        _dense_from_triplets(rows, cols, problem.jacobian(x), (2, 4)),
        _central_jacobian(constraints, x), rtol=1e-6, atol=1e-8)
    sigma, multipliers = 0.7, np.array([-1.3, 2.1])

    def lagrangian_gradient(z):
        return sigma * _central_jacobian(lambda w: float(hs071(w)), z, 1e-4) + \
            multipliers @ _central_jacobian(constraints, z, 1e-4)

    rows, cols = problem.hessianstructure()
    assert np.all(rows >= cols)                    # the lower triangle only
    lower = _dense_from_triplets(rows, cols, problem.hessian(x, multipliers, sigma),
                                 (4, 4))
    full = lower + np.tril(lower, -1).T
    np.testing.assert_allclose(full, _central_jacobian(lagrangian_gradient, x, 1e-4),
                               rtol=1e-4, atol=1e-5)


def test_ipopt_hs071_against_scipy_finite_differences():
    pytest.importorskip("cyipopt")
    x0 = np.array([1.0, 5.0, 5.0, 1.0])
    constraints = [{"type": "ineq", "fun": hs071_product},
                   {"type": "eq", "fun": hs071_sphere}]
    bounds = so.Bounds(np.ones(4), 5 * np.ones(4))
    ours = minimize(hs071, x0, method="ipopt", bounds=bounds, constraints=constraints)
    theirs = so.minimize(lambda x: float(hs071(x)), x0, method="SLSQP", bounds=bounds,
                         constraints=[{"type": "ineq",
                                       "fun": lambda x: float(hs071_product(x))},
                                      {"type": "eq",
                                       "fun": lambda x: float(hs071_sphere(x))}])
    assert ours.success, ours.message
    np.testing.assert_allclose(ours.fun, 17.0140173, rtol=1e-6)
    np.testing.assert_allclose(ours.x, theirs.x, atol=1e-3)
    np.testing.assert_allclose(ours.constr[1], 0.0, atol=1e-7)


def circles(x):
    return x[0::2] ** 2 + x[1::2] ** 2 - 1.0


def test_ipopt_rosenbrock_with_circle_constraints():
    pytest.importorskip("cyipopt")
    from fasttape.optimize import minimize_ipopt
    x0 = np.full(10, 0.5)
    constraint = so.NonlinearConstraint(circles, 0.0, 0.0)
    ours = minimize_ipopt(rosenbrock, x0, constraints=[constraint], tol=1e-10)
    theirs = so.minimize(lambda x: float(rosenbrock(x)), x0, method="SLSQP",
                         constraints=[{"type": "eq", "fun": lambda x: circles(x)}],
                         options={"maxiter": 1000, "ftol": 1e-12})
    assert ours.success, ours.message
    np.testing.assert_allclose(circles(ours.x), 0.0, atol=1e-8)
    np.testing.assert_allclose(ours.fun, theirs.fun, rtol=1e-6)
    np.testing.assert_allclose(ours.x, theirs.x, atol=1e-4)


@pytest.mark.parametrize("problem", ["rosenbrock", "broyden"])
def test_ipopt_unconstrained_classics(problem):
    pytest.importorskip("cyipopt")
    f = rosenbrock if problem == "rosenbrock" else broyden_tridiagonal
    x0 = np.full(12, -0.5) if problem == "rosenbrock" else -np.ones(20)
    ours = minimize(f, x0, method="ipopt", tol=1e-12)
    theirs = so.minimize(lambda x: float(f(x)), x0, method="BFGS",
                         options={"maxiter": 5000, "gtol": 1e-9})
    assert ours.success, ours.message
    np.testing.assert_allclose(ours.x, theirs.x, atol=1e-4)


def test_ipopt_pattern_outside_the_structure_is_refused():
    import scipy.sparse as sp
    from fasttape.optimize import _Triplets
    layout = _Triplets(sp.csr_matrix(np.array([[1.0, 0.0], [1.0, 1.0]])), lower=True)
    # a matrix with fewer stored entries is laid out on the structure, zeros filled in
    np.testing.assert_allclose(layout.values(sp.csr_matrix(np.array([[2.0, 0.0],
                                                                     [0.0, 3.0]]))),
                               [2.0, 0.0, 3.0])
    diagonal = _Triplets(sp.csr_matrix(np.eye(2)), lower=True)
    with pytest.raises(RuntimeError, match="sparsity pattern changed"):
        diagonal.values(sp.csr_matrix(np.array([[1.0, 4.0], [4.0, 1.0]])))


@pytest.mark.parametrize("method", ["Nelder-Mead", "Powell"])
def test_derivative_free_methods_get_values_only(method):
    import warnings
    x0 = np.array([-0.5, 0.7])
    with warnings.catch_warnings():
        warnings.simplefilter("error")      # SciPy warns when given an unused jac
        ours = minimize(rosenbrock, x0, method=method, tol=1e-10,
                        options={"maxiter": 20000})
    theirs = so.minimize(lambda x: float(rosenbrock(x)), x0, method=method, tol=1e-10,
                         options={"maxiter": 20000})
    np.testing.assert_allclose(ours.x, theirs.x, atol=1e-6)


def test_cobyla_with_a_constraint_gets_values_only():
    import warnings
    x0 = np.array([1.0, 5.0, 5.0, 1.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ours = minimize(hs071, x0, method="COBYLA",
                        constraints=[{"type": "ineq", "fun": hs071_product}],
                        options={"maxiter": 200})
    # the same run as SciPy's own on the plain function (values only, no derivatives),
    # however far COBYLA gets in 200 steps (SciPy 1.11's falls short of feasibility)
    theirs = so.minimize(hs071, x0, method="COBYLA",
                         constraints=[{"type": "ineq", "fun": hs071_product}],
                         options={"maxiter": 200})
    np.testing.assert_allclose(ours.x, theirs.x, rtol=1e-12)
    assert ours.nfev == theirs.nfev
