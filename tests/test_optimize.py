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
