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


# -- IPOPT through its C interface (fasttape._ipopt) -----------------------------------------

def _ipopt_library():
    from fasttape import _ipopt
    if _ipopt.find_library() is None:
        pytest.skip("no IPOPT library installed (fasttape[ipopt])")


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
    from fasttape.optimize import _IpoptProblem, _constraint_pieces
    rng = np.random.default_rng(3)
    x = rng.uniform(1.0, 2.0, 4)
    pieces = _constraint_pieces([{"type": "ineq", "fun": hs071_product},
                                 {"type": "eq", "fun": hs071_sphere}], x)
    problem = _IpoptProblem(hs071, (), pieces, x)

    def constraints(z):
        return np.array([float(hs071_product(z)), float(hs071_sphere(z))])

    def evaluated(method, size, *args):
        out = np.full(size, np.nan)              # every entry must be written
        method(x, *args, out)
        return out

    problem.new_point()
    np.testing.assert_allclose(problem.objective(x), hs071(x))
    np.testing.assert_allclose(evaluated(problem.gradient, 4),
                               _central_jacobian(lambda z: float(hs071(z)), x),
                               rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(evaluated(problem.constraints, 2), constraints(x))
    rows, cols = problem.jacobian_rows, problem.jacobian_cols
    assert rows.dtype == cols.dtype == np.int32
    np.testing.assert_allclose(
        _dense_from_triplets(rows, cols, evaluated(problem.jacobian, rows.size), (2, 4)),
        _central_jacobian(constraints, x), rtol=1e-6, atol=1e-8)
    sigma, multipliers = 0.7, np.array([-1.3, 2.1])

    def lagrangian_gradient(z):
        return sigma * _central_jacobian(lambda w: float(hs071(w)), z, 1e-4) + \
            multipliers @ _central_jacobian(constraints, z, 1e-4)

    rows, cols = problem.hessian_rows, problem.hessian_cols
    assert np.all(rows >= cols)                    # the lower triangle only
    lower = _dense_from_triplets(rows, cols, evaluated(problem.hessian, rows.size, sigma,
                                                       multipliers), (4, 4))
    full = lower + np.tril(lower, -1).T
    np.testing.assert_allclose(full, _central_jacobian(lagrangian_gradient, x, 1e-4),
                               rtol=1e-4, atol=1e-5)


def test_ipopt_objective_and_gradient_share_one_sweep_per_point():
    from fasttape.optimize import _IpoptProblem
    x = np.array([0.3, -0.2, 0.9])
    problem = _IpoptProblem(rosenbrock, (), [], x)
    sweeps = []
    traced = problem.objective_trace
    original = traced.value_and_grad

    def counted(*args):
        sweeps.append(args[0].copy())
        return original(*args)
    traced.value_and_grad = counted
    gradient = np.zeros(3)
    problem.new_point()
    assert problem.objective(x) == pytest.approx(float(rosenbrock(x)))
    problem.gradient(x, gradient)
    assert len(sweeps) == 1                # the value and the gradient of one sweep
    y = x + 0.5
    problem.new_point()                    # what IPOPT's new_x flag triggers
    problem.gradient(y, gradient)
    np.testing.assert_allclose(gradient, _central_jacobian(lambda z: float(rosenbrock(z)),
                                                           y), rtol=1e-6)
    assert problem.objective(y) == pytest.approx(float(rosenbrock(y)))
    assert len(sweeps) == 2
    # a caller that moves without new_point() still gets the new point's values
    z = y - 0.25
    assert problem.objective(z) == pytest.approx(float(rosenbrock(z)))
    assert len(sweeps) == 3


def test_ipopt_hs071_against_scipy_finite_differences():
    _ipopt_library()
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
    # the bounds' multipliers: the active lower bound x[0] = 1 has one, x[1] < 5 none
    assert ours.mult_x_L[0] > 1e-3 and abs(ours.mult_x_U[1]) < 1e-6
    # one evaluation per iteration at least, one Hessian per iteration (IPOPT's
    # first calls for the structures are not counted)
    assert ours.nfev >= ours.nit + 1 and ours.njev >= ours.nit + 1
    assert ours.nhev == ours.nit and ours.ncjev >= ours.nit + 1
    assert 0.0 < ours.evaluation_seconds


def circles(x):
    return x[0::2] ** 2 + x[1::2] ** 2 - 1.0


def _every_ipopt_library():
    """The installed IPOPT libraries, one per version: the wheels' and the system's
    (IPOPT before 3.14 has another C boolean type); the choice of library must not
    change the result."""
    import ctypes.util

    from fasttape import _ipopt
    versions = {}
    for version, path, _ in _ipopt.bundled_libraries():
        versions.setdefault(version, path)
    found = sorted(versions.values())
    system = ctypes.util.find_library("ipopt")
    if system is not None:
        found.append(system)
    return found or [None]


@pytest.mark.parametrize("library", _every_ipopt_library())
def test_ipopt_rosenbrock_with_circle_constraints(library):
    _ipopt_library()
    from fasttape.optimize import minimize_ipopt
    x0 = np.full(10, 0.5)
    constraint = so.NonlinearConstraint(circles, 0.0, 0.0)
    ours = minimize_ipopt(rosenbrock, x0, constraints=[constraint], tol=1e-10,
                          library=library)
    theirs = so.minimize(lambda x: float(rosenbrock(x)), x0, method="SLSQP",
                         constraints=[{"type": "eq", "fun": lambda x: circles(x)}],
                         options={"maxiter": 1000, "ftol": 1e-12})
    assert ours.success, ours.message
    np.testing.assert_allclose(circles(ours.x), 0.0, atol=1e-8)
    np.testing.assert_allclose(ours.constr, circles(ours.x), atol=1e-12)
    np.testing.assert_allclose(ours.fun, theirs.fun, rtol=1e-6)
    np.testing.assert_allclose(ours.x, theirs.x, atol=1e-4)
    if library is not None:
        assert ours.library == library


@pytest.mark.parametrize("problem", ["rosenbrock", "broyden"])
def test_ipopt_unconstrained_classics(problem):
    _ipopt_library()
    f = rosenbrock if problem == "rosenbrock" else broyden_tridiagonal
    x0 = np.full(12, -0.5) if problem == "rosenbrock" else -np.ones(20)
    ours = minimize(f, x0, method="ipopt", tol=1e-12)
    theirs = so.minimize(lambda x: float(f(x)), x0, method="BFGS",
                         options={"maxiter": 5000, "gtol": 1e-9})
    assert ours.success, ours.message
    np.testing.assert_allclose(ours.x, theirs.x, atol=1e-4)


def test_ipopt_error_in_the_function_is_raised_after_the_solve():
    _ipopt_library()

    def refuses_far_points(x):
        if x[0] > 0.9:                     # a branch the trace's guard catches
            raise ValueError("outside the model's range")
        return rosenbrock(x)

    with pytest.raises(ValueError, match="outside the model's range"):
        minimize(refuses_far_points, np.full(4, -0.5), method="ipopt")


def _modern_ipopt():
    from fasttape import _ipopt
    _ipopt_library()
    if not _ipopt.load().modern:
        pytest.skip("the iteration callback needs IPOPT 3.14 or newer")


def test_ipopt_callback_sees_each_iterate_as_scipy_calls_it():
    _modern_ipopt()
    seen, results = [], []
    x0 = np.full(6, -0.5)
    result = minimize(rosenbrock, x0, method="ipopt", callback=lambda x: seen.append(
        x.copy()))
    assert result.success and len(seen) == result.nit
    np.testing.assert_allclose(seen[-1], result.x, rtol=1e-12)
    assert not np.allclose(seen[0], x0)           # after the first iteration

    def with_result(intermediate_result):
        results.append(intermediate_result)
    minimize(rosenbrock, x0, method="ipopt", callback=with_result)
    assert [r.nit for r in results] == list(range(1, len(results) + 1))
    np.testing.assert_allclose(results[-1].fun, float(rosenbrock(results[-1].x)),
                               rtol=1e-12)


def test_ipopt_callback_stops_the_solve_or_raises():
    _modern_ipopt()

    def stop_at_three(intermediate_result):
        if intermediate_result.nit == 3:
            raise StopIteration
    result = minimize(rosenbrock, np.full(6, -0.5), method="ipopt",
                      callback=stop_at_three)
    assert result.nit == 3 and result.message == "User_Requested_Stop"
    assert not result.success

    def broken(x):
        raise KeyError("callback broke")
    with pytest.raises(KeyError, match="callback broke"):
        minimize(rosenbrock, np.full(6, -0.5), method="ipopt", callback=broken)


def test_ipopt_counts_only_evaluations():
    _ipopt_library()
    unconstrained = minimize(rosenbrock, np.full(6, -0.5), method="ipopt")
    assert unconstrained.ncjev == 0 and unconstrained.ncev == 0
    assert unconstrained.nhev == unconstrained.nit
    quasi_newton = minimize(rosenbrock, np.full(6, -0.5), method="ipopt",
                            options={"hessian_approximation": "limited-memory"})
    assert quasi_newton.success and quasi_newton.nhev == 0


class _Broken:
    """A problem for fasttape._ipopt.solve whose `name` evaluation raises."""
    n, m = 2, 1
    jacobian_rows = np.array([0, 0], np.int32)
    jacobian_cols = np.array([0, 1], np.int32)
    hessian_rows = np.array([0, 1], np.int32)
    hessian_cols = np.array([0, 1], np.int32)

    def __init__(self, name):
        self.name = name

    def new_point(self):
        pass

    def _maybe_raise(self, name):
        if name == self.name:
            raise ArithmeticError(f"{name} broke")

    def objective(self, x):
        self._maybe_raise("objective")
        return float(x @ x)

    def gradient(self, x, out):
        self._maybe_raise("gradient")
        out[:] = 2 * x

    def constraints(self, x, out):
        self._maybe_raise("constraints")
        out[:] = x.sum() - 1.0

    def jacobian(self, x, out):
        self._maybe_raise("jacobian")
        out[:] = 1.0

    def hessian(self, x, obj_factor, multipliers, out):
        self._maybe_raise("hessian")
        out[:] = 2 * obj_factor


@pytest.mark.parametrize("name", ["objective", "gradient", "constraints", "jacobian",
                                  "hessian", None])
def test_ipopt_errors_in_any_callback_are_raised_after_the_solve(name):
    _ipopt_library()
    from fasttape import _ipopt
    args = (np.array([3.0, -1.0]), np.full(2, -np.inf), np.full(2, np.inf), np.zeros(1),
            np.zeros(1), {"print_level": 0, "sb": "yes"})
    if name is None:                       # the problem itself is right: x = (1/2, 1/2)
        info = _ipopt.solve(_Broken(None), *args)
        np.testing.assert_allclose(info["x"], [0.5, 0.5], atol=1e-8)
        return
    with pytest.raises(ArithmeticError, match=f"{name} broke"):
        _ipopt.solve(_Broken(name), *args)


def test_ipopt_bounds_infinities_and_nan():
    _ipopt_library()
    from fasttape import _ipopt
    args = (np.array([3.0, -1.0]), np.full(2, -np.inf), np.full(2, np.inf), np.zeros(1),
            np.zeros(1))
    # an infinite bound is no bound, whatever nlp_lower_bound_inf says
    info = _ipopt.solve(_Broken(None), *args, {"print_level": 0, "sb": "yes",
                                               "nlp_lower_bound_inf": -1e30})
    np.testing.assert_allclose(info["mult_x_L"], 0.0, atol=1e-12)
    np.testing.assert_allclose(info["x"], [0.5, 0.5], atol=1e-8)
    with pytest.raises(ValueError, match="lower bounds hold NaN"):
        _ipopt.solve(_Broken(None), args[0], np.array([np.nan, 0.0]), *args[2:])


def test_ipopt_library_boolean_type_follows_the_version():
    """IPOPT 3.14's C interface takes C bools, earlier ones ints: read from the
    library itself (GetIpoptCurrentIterate came with 3.14)."""
    import ctypes

    from fasttape import _ipopt
    for path in _every_ipopt_library():
        if path is None:
            pytest.skip("no IPOPT library installed")
        library = _ipopt.load(path)
        named = _ipopt._version_from_name(path)
        if len(named) >= 3:
            assert library.modern == (named >= (3, 14))
            assert library.version == named
        assert library.boolean is (ctypes.c_bool if library.modern else ctypes.c_int)
        assert (library.solve_lock is None) == library.modern


def test_ipopt_options_are_checked():
    _ipopt_library()
    with pytest.raises(ValueError, match="no_such_option"):
        minimize(rosenbrock, np.zeros(3), method="ipopt",
                 options={"no_such_option": 3})
    with pytest.raises(TypeError, match="max_iter"):
        minimize(rosenbrock, np.zeros(3), method="ipopt", options={"max_iter": [3]})
    result = minimize(rosenbrock, np.full(6, -0.5), method="ipopt",
                      options={"max_iter": 2})
    assert not result.success and result.message == "Maximum_Iterations_Exceeded"
    # SciPy's maxiter is IPOPT's max_iter; an int for a number option is taken
    result = minimize(rosenbrock, np.full(6, -0.5), method="ipopt",
                      options={"maxiter": 2, "max_cpu_time": 100, b"tol": 1e-9})
    assert result.message == "Maximum_Iterations_Exceeded" and result.nit == 2
    with pytest.raises(ValueError, match="max_iter"):
        minimize(rosenbrock, np.zeros(3), method="ipopt", options={"max_iter": 2**32})



def test_ipopt_missing_library_is_a_clear_error(monkeypatch, tmp_path):
    from fasttape import _ipopt
    from fasttape.optimize import minimize_ipopt
    with pytest.raises(ImportError, match="cannot load the IPOPT library"):
        minimize_ipopt(rosenbrock, np.zeros(3), library=str(tmp_path / "none.so"))
    monkeypatch.setattr(_ipopt, "find_library", lambda: None)
    with pytest.raises(ImportError, match=r"fasttape\[ipopt\]"):
        minimize(rosenbrock, np.zeros(3), method="ipopt")


def test_ipopt_library_choice(monkeypatch, tmp_path):
    from fasttape import _ipopt
    monkeypatch.setenv(_ipopt.ENVIRONMENT_VARIABLE, "/chosen/libipopt.so")
    assert _ipopt.find_library() == "/chosen/libipopt.so"
    monkeypatch.delenv(_ipopt.ENVIRONMENT_VARIABLE)
    # the newest of the wheels' libraries; copies of one library counted once
    old, new = tmp_path / "old", tmp_path / "new"
    old.mkdir()
    new.mkdir()
    for name in ("libipopt.so", "libipopt.so.3", "libipopt.so.3.14.19"):
        (new / name).write_bytes(b"x" * 10)
    (old / "libipopt-3c40042c.so.3.14.11").write_bytes(b"x" * 7)

    class Entry:
        def __init__(self, path):
            self.path = path

        def __str__(self):
            return str(self.path)

        def locate(self):
            return self.path

    files = {"cyipopt-wheels": [Entry(old / "libipopt-3c40042c.so.3.14.11")],
             "casadi": [Entry(new / n) for n in ("libipopt.so", "libipopt.so.3",
                                                 "libipopt.so.3.14.19", "casadi.py")]}

    class Distribution:
        def __init__(self, name):
            if name not in files:
                raise _ipopt.importlib.metadata.PackageNotFoundError(name)
            self.files = files[name]
    monkeypatch.setattr(_ipopt.importlib.metadata, "distribution", Distribution)
    monkeypatch.setattr(_ipopt, "_bundled", None)
    found = _ipopt.bundled_libraries()
    assert sorted(entry[0] for entry in found) == [(3, 14, 11), (3, 14, 19)]
    assert _ipopt.find_library() == str(new / "libipopt.so.3.14.19")
    monkeypatch.setattr(_ipopt, "_bundled", None)


def test_ipopt_version_read_from_file_names():
    from fasttape._ipopt import _version_from_name
    assert _version_from_name("/x/libipopt.so.3.14.19") == (3, 14, 19)
    assert _version_from_name("/x/cyipopt_wheels.libs/libipopt-3c40042c.so.3.14.11") == \
        (3, 14, 11)
    assert _version_from_name("/x/libipopt.so.3.14.19.1") == (3, 14, 19, 1)
    assert _version_from_name("/x/libipopt.3.14.19.dylib") == (3, 14, 19)
    assert _version_from_name("C:/x/ipopt-3.dll") == (3,)
    assert _version_from_name("/x/libipopt.so") == ()


class _BadStructure:
    n, m = 2, 1
    jacobian_rows = np.array([0, 1], np.int32)            # row 1 of a 1-row Jacobian
    jacobian_cols = np.array([0, 1], np.int32)
    hessian_rows = hessian_cols = np.array([0], np.int32)


def test_ipopt_structure_indices_are_checked_before_ipopt_reads_them():
    _ipopt_library()
    from fasttape import _ipopt
    with pytest.raises(ValueError, match="Jacobian structure has an index outside"):
        _ipopt.solve(_BadStructure(), np.zeros(2), -np.ones(2), np.ones(2), np.zeros(1),
                     np.zeros(1))
    bad_type = _BadStructure()
    bad_type.jacobian_rows = np.array([0, 0])                # int64
    with pytest.raises(TypeError, match="int32"):
        _ipopt.solve(bad_type, np.zeros(2), -np.ones(2), np.ones(2), np.zeros(1),
                     np.zeros(1))
    with pytest.raises(ValueError, match="x0 has 3 values"):
        _ipopt.solve(_BadStructure(), np.zeros(3), -np.ones(2), np.ones(2), np.zeros(1),
                     np.zeros(1))


def test_ipopt_pattern_outside_the_structure_is_refused():
    """Values on another pattern (a retrace) are laid out on IPOPT's structure by
    key, into the output array; entries outside it raise."""
    import scipy.sparse as sp
    from fasttape.optimize import _Triplets

    def written(layout, matrix):
        out = np.full(layout.rows.size, np.nan)
        layout.write(matrix, matrix.data, out)
        return out
    structure = sp.csr_matrix(np.array([[1.0, 0.0], [1.0, 1.0]]))
    layout = _Triplets(structure, lower=True)
    # the same pattern: copied; fewer stored entries: zeros filled in
    np.testing.assert_allclose(written(layout, sp.csr_matrix(np.array([[5.0, 0.0],
                                                                       [6.0, 7.0]]))),
                               [5.0, 6.0, 7.0])
    np.testing.assert_allclose(written(layout, sp.csr_matrix(np.array([[2.0, 0.0],
                                                                       [0.0, 3.0]]))),
                               [2.0, 0.0, 3.0])
    # the upper triangle of a symmetric Hessian is left out
    full = sp.csr_matrix(np.array([[2.0, 4.0], [4.0, 3.0]]))
    np.testing.assert_allclose(written(layout, full), [2.0, 4.0, 3.0])
    diagonal = _Triplets(sp.csr_matrix(np.eye(2)), lower=True)
    with pytest.raises(RuntimeError, match="sparsity pattern changed"):
        written(diagonal, full)


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


def test_ipopt_callback_needs_ipopt_3_14():
    """IPOPT before 3.14 has no GetIpoptCurrentIterate: a callback is refused there,
    clearly, before the solve."""
    from fasttape import _ipopt
    from fasttape.optimize import minimize_ipopt
    old = [path for path in _every_ipopt_library()
           if path is not None and not _ipopt.load(path).modern]
    if not old:
        pytest.skip("no IPOPT before 3.14 installed (Debian's coinor-libipopt1v5 is)")
    with pytest.raises(ValueError, match="3.14 or newer"):
        minimize_ipopt(rosenbrock, np.zeros(3), library=old[0], callback=print)
