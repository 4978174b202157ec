"""fasttape.scipy.integrate.odeint: values against scipy.integrate.odeint; derivatives
in the initial state, the time points and the arguments against central differences
(fasttape.check_grads, forward and reverse mode, first and second order), against a
reverse sweep through a fixed-step RK4 integrator written with fasttape.numpy, and
against autograd's odeint where it is installed; and its errors."""
import numpy as np
import pytest
import scipy.integrate

import fasttape
import fasttape.numpy as fnp
from fasttape.check import check_grads
from fasttape.scipy.integrate import odeint

TIGHT = dict(rtol=1e-11, atol=1e-11)


def forced(y, t, a, b):
    """Nonlinear, non-autonomous, and using both arguments."""
    return -fnp.sqrt(t) - y + a - fnp.mean((y + b) ** 2)


def network(y, t, W, c):
    """A small recurrent network: dy/dt = tanh(W y + c) - y / 2."""
    return fnp.tanh(W @ y + c) - 0.5 * y


def problem(rng):
    return (rng.standard_normal(3), np.linspace(0.1, 0.6, 5),
            rng.standard_normal(3), rng.standard_normal(3))


def test_values_match_scipy(rng):
    y0, t, a, b = problem(rng)
    expected = scipy.integrate.odeint(forced, y0, t, args=(a, b), **TIGHT)
    plain = odeint(forced, y0, t, args=(a, b), **TIGHT)
    np.testing.assert_array_equal(plain, expected)
    value = fasttape.jvp(lambda y0: odeint(forced, y0, t, args=(a, b), **TIGHT),
                         (y0,), (np.zeros(3),))[0]
    np.testing.assert_allclose(value, expected, rtol=1e-13)


def test_first_order_in_every_argument_both_modes(rng):
    y0, t, a, b = problem(rng)
    check_grads(lambda y0, t, a, b: odeint(forced, y0, t, args=(a, b), **TIGHT),
                modes=("fwd", "rev"), order=1)(y0, t, a, b)


def test_second_order(rng):
    # the rules solve their ODEs with odeint itself, so they differentiate again
    y0, t, a, b = problem(rng)
    t = t[:3]
    check_grads(lambda y0, t, a, b: odeint(forced, y0, t, args=(a, b), **TIGHT),
                modes=("fwd", "rev"), order=2)(y0, t, a, b)


def test_matrix_argument_scalar_state_and_constant_arguments(rng):
    W, c = 0.5 * rng.standard_normal((3, 3)), rng.standard_normal(3)
    y0, t = rng.standard_normal(3), np.linspace(0.0, 1.0, 4)
    check_grads(lambda y0, W: odeint(network, y0, t, args=(W, c), **TIGHT),
                modes=("fwd", "rev"))(y0, W)
    check_grads(lambda t: odeint(network, y0, t, args=(W, c), **TIGHT),
                modes=("fwd", "rev"))(t)
    decay = lambda y, t, k: -k * y * (1.0 + 0.1 * fnp.sin(t))
    check_grads(lambda y0, k: odeint(decay, y0, t, args=(k,), **TIGHT),
                modes=("fwd", "rev"), order=2)(0.7, 1.3)


def rk4(func, y0, t, args, substeps):
    """A fixed-step classical Runge-Kutta integrator written with fasttape.numpy, so
    that fasttape records every step: its reverse sweep is the discrete adjoint."""
    rows, y = [y0], y0
    for i in range(len(t) - 1):
        h = (t[i + 1] - t[i]) / substeps
        s = t[i]
        for _ in range(substeps):
            k1 = func(y, s, *args)
            k2 = func(y + 0.5 * h * k1, s + 0.5 * h, *args)
            k3 = func(y + 0.5 * h * k2, s + 0.5 * h, *args)
            k4 = func(y + h * k3, s + h, *args)
            y = y + h / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
            s = s + h
        rows.append(y)
    return fnp.stack(rows)


def test_gradient_matches_a_recorded_rk4_integrator(rng):
    W, c = 0.8 * rng.standard_normal((4, 4)), rng.standard_normal(4)
    y0, t = rng.standard_normal(4), np.linspace(0.0, 2.0, 6)
    u = rng.standard_normal((6, 4))

    def loss(solve):
        return lambda y0, t, W, c: fnp.sum(u * solve(y0, t, W, c))
    adjoint = fasttape.grad(loss(lambda y0, t, W, c: odeint(
        network, y0, t, args=(W, c), **TIGHT)), (0, 1, 2, 3))(y0, t, W, c)
    direct = fasttape.grad(loss(lambda y0, t, W, c: rk4(
        network, y0, t, (W, c), 200)), (0, 1, 2, 3))(y0, t, W, c)
    for name, x, y in zip(("y0", "t", "W", "c"), adjoint, direct):
        np.testing.assert_allclose(x, y, rtol=1e-7, atol=1e-9, err_msg=name)


def test_gradient_matches_autograd(rng):
    autograd = pytest.importorskip("autograd")
    import autograd.numpy as anp
    from autograd.scipy.integrate import odeint as autograd_odeint
    y0, t, a, b = problem(rng)
    u = rng.standard_normal((5, 3))

    def theirs_rhs(y, t, a, b):
        return -anp.sqrt(t) - y + a - anp.mean((y + b) ** 2)
    ours = fasttape.grad(lambda *x: fnp.sum(u * odeint(forced, x[0], x[1], args=x[2:],
                                                       **TIGHT)), (0, 1, 2, 3))(y0, t, a, b)
    # (autograd differentiates args as one tuple argument)
    theirs = autograd.grad(lambda y0, t, args: anp.sum(u * autograd_odeint(
        theirs_rhs, y0, t, args, **TIGHT)), (0, 1, 2))(y0, t, (a, b))
    theirs = theirs[:2] + tuple(theirs[2])
    for x, y in zip(ours, theirs):
        np.testing.assert_allclose(x, y, rtol=1e-7, atol=1e-9)


def test_one_time_point(rng):
    y0, t, a, b = problem(rng)
    g = fasttape.grad(lambda y0, t: fnp.sum(odeint(forced, y0, t, args=(a, b)) * 2.0),
                      (0, 1))(y0, t[:1])
    np.testing.assert_array_equal(g[0], np.full(3, 2.0))
    np.testing.assert_array_equal(g[1], [0.0])


def test_a_variable_closed_over_is_an_error_not_a_lost_derivative(rng):
    y0, t = rng.standard_normal(3), np.linspace(0.0, 1.0, 3)

    def loss(k):
        return fnp.sum(odeint(lambda y, t: -k * y, y0, t))
    with pytest.raises(TypeError, match="element of args"):
        fasttape.grad(loss)(1.5)
    inside = lambda k: fnp.sum(odeint(lambda y, t, ks: -ks[0] * y, y0, t, args=((k,),)))
    with pytest.raises(TypeError, match="element of args"):
        fasttape.grad(inside)(1.5)


def test_full_output_and_bad_shapes_raise(rng):
    y0, t, a, b = problem(rng)
    with pytest.raises(ValueError, match="full_output"):
        fasttape.grad(lambda y0: fnp.sum(odeint(forced, y0, t, args=(a, b),
                                                full_output=True)[0]))(y0)
    with pytest.raises(ValueError, match="1-d"):
        fasttape.grad(lambda y0: fnp.sum(odeint(forced, y0, t, args=(a, b))))(
            np.ones((3, 1)))


def test_plain_inputs_are_scipys_odeint(rng):
    y0, t, a, b = problem(rng)
    out, info = odeint(forced, y0, t, args=(a, b), full_output=True)
    assert type(out) is np.ndarray and "nfe" in info


def test_cotangents_zero_at_some_time_points(rng):
    # runs of time points with a zero cotangent are crossed by one backward solve
    y0, t, a, b = problem(rng)
    for rows in ([4], [2, 4], [0, 3], [1]):
        u = np.zeros((5, 3))
        u[rows] = rng.standard_normal((len(rows), 3))
        loss = lambda y0, t, a, b: fnp.sum(u * odeint(forced, y0, t, args=(a, b), **TIGHT))
        check_grads(loss, modes=("rev",))(y0, t, a, b)


def test_a_right_hand_side_that_reads_floats_is_still_differentiated(rng):
    # float(t) cannot be traced (the adjoint's fast path): the reverse rule records
    # func at each evaluation instead
    import math
    y0, t = rng.standard_normal(3), np.linspace(0.0, 1.0, 4)

    def wobble(y, t, k):
        return -k * y * (1.0 + 0.1 * math.sin(float(t)))
    check_grads(lambda y0, k: odeint(wobble, y0, t, args=(k,), **TIGHT),
                modes=("rev",), order=1)(y0, 1.3)


def test_gradient_with_cotangents_at_some_time_points_only(rng):
    # the backward solves cross the time points whose cotangent is zero
    W, c = 0.8 * rng.standard_normal((3, 3)), rng.standard_normal(3)
    y0, t = rng.standard_normal(3), np.linspace(0.0, 1.5, 6)
    u = np.zeros((6, 3))
    u[2], u[5] = rng.standard_normal(3), rng.standard_normal(3)
    loss = lambda solve: lambda y0, t, W, c: fnp.sum(u * solve(y0, t, W, c))
    adjoint = fasttape.grad(loss(lambda y0, t, W, c: odeint(
        network, y0, t, args=(W, c), **TIGHT)), (0, 1, 2, 3))(y0, t, W, c)
    direct = fasttape.grad(loss(lambda y0, t, W, c: rk4(
        network, y0, t, (W, c), 200)), (0, 1, 2, 3))(y0, t, W, c)
    for name, x, y in zip(("y0", "t", "W", "c"), adjoint, direct):
        np.testing.assert_allclose(x, y, rtol=1e-7, atol=1e-9, err_msg=name)


def network_gradients(rng, **options):
    W, c = 0.8 * rng.standard_normal((4, 4)), rng.standard_normal(4)
    y0, t = rng.standard_normal(4), np.linspace(0.0, 3.0, 13)
    u = rng.standard_normal((13, 4))

    def loss(solve):
        return lambda y0, t, W, c: fnp.sum(u * solve(y0, t, W, c))
    adjoint = fasttape.grad(loss(lambda y0, t, W, c: odeint(
        network, y0, t, args=(W, c), **options)), (0, 1, 2, 3))(y0, t, W, c)
    direct = fasttape.grad(loss(lambda y0, t, W, c: rk4(
        network, y0, t, (W, c), 100)), (0, 1, 2, 3))(y0, t, W, c)
    return adjoint, direct


@pytest.mark.parametrize("options", [
    {},                                   # SciPy's default tolerances: Cash-Karp steps
    dict(rtol=1e-6, atol=1e-6),
    dict(rtol=1e-10, atol=1e-10),         # DOP853 steps
    dict(hmax=0.5),                       # an LSODA option: SciPy's odeint backwards
])
def test_gradient_follows_the_tolerances(rng, options):
    # the adjoint's error stays of the order of the tolerance asked for
    tolerance = max(options.get("rtol", 1.49012e-8), 1e-9)
    adjoint, direct = network_gradients(rng, **options)
    for name, x, y in zip(("y0", "t", "W", "c"), adjoint, direct):
        np.testing.assert_allclose(x, y, rtol=0, atol=200 * tolerance * np.abs(y).max(),
                                   err_msg=name)


def test_an_interval_with_too_many_steps_is_handed_to_scipys_odeint(rng, monkeypatch):
    # (a stiff problem for the explicit pair) here forced by a limit of 2 steps: the
    # backward solve goes on with SciPy's odeint from that interval (the Python
    # stepper's path: the C sweep's is test_ode_adjoint.py's)
    import fasttape.scipy.integrate as integrate
    from fasttape.scipy._adjoint_steps import StepLimit, Stepper
    limits = []
    monkeypatch.setattr(integrate._Problem, "compiled_adjoint", lambda self, rhs: None)

    class Limited(Stepper):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **dict(kwargs, max_steps=2))

        def advance(self, *args):
            try:
                return super().advance(*args)
            except StepLimit:
                limits.append(args[1])
                raise
    monkeypatch.setattr(integrate, "Stepper", Limited)
    adjoint, direct = network_gradients(rng)
    assert len(limits) == 1
    for name, x, y in zip(("y0", "t", "W", "c"), adjoint, direct):
        np.testing.assert_allclose(x, y, rtol=0, atol=3e-6 * np.abs(y).max(),
                                   err_msg=name)


def test_the_stepper_solves_a_linear_ode_with_jumps():
    # y' = -y from 2 to 0 backwards with 1 added at t = 1: y(0) = e^2 y(2) + e
    from fasttape.scipy._adjoint_steps import Stepper
    for method in ("RK45", "DOP853", "CashKarp"):
        stepper = Stepper(lambda y, t: -y, 1e-10, 1e-10, method)
        y, f = stepper.advance(np.array([1.0]), 2.0, 1.0)
        assert f is None if method == "CashKarp" else f[0] == -y[0]
        y = stepper.advance(y + 1.0, 1.0, 0.0)[0]
        np.testing.assert_allclose(y, [np.exp(2.0) + np.exp(1.0)], rtol=1e-8)


def test_decreasing_time_points(rng):
    # the adjoint then integrates forwards in time
    W, c = 0.8 * rng.standard_normal((3, 3)), rng.standard_normal(3)
    y0, t = rng.standard_normal(3), np.linspace(2.0, 0.0, 6)
    check_grads(lambda y0, t, W, c: odeint(network, y0, t, args=(W, c)),
                modes=("rev",))(y0, t, W, c)
