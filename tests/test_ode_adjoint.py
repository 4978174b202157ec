"""fasttape._ode_adjoint: odeint's adjoint integrated in C over a traced right-hand side.

Its gradients against central differences (check_grads), against a reverse sweep
through a fixed-step RK4 integrator recorded with fasttape.numpy (the discrete
adjoint) and against the Python stepper's path (the same pair, in Python); that the C
sweep is the path taken; its hand-overs (a stiff interval to SciPy's odeint, a changed
branch to the Python path, which retraces); Python-rule nodes in the right-hand side;
and its checks of bad input."""
import numpy as np
import pytest

import fasttape
import fasttape.numpy as fnp
import fasttape.scipy.integrate as integrate
from fasttape._ode_adjoint import AdjointSweep
from fasttape.check import check_grads
from fasttape.errors import BranchChangedError
from fasttape.scipy._adjoint_steps import pair
from fasttape.scipy.integrate import odeint
from fasttape.trace import trace

from test_scipy_integrate import TIGHT, forced, network, rk4


@pytest.fixture
def sweeps(monkeypatch):
    """The AdjointSweep objects the adjoints make, and the results of their sweeps
    (the interval where it stopped, 0 when done, or "branch changed")."""
    made = []

    class Spy(AdjointSweep):
        def sweep(self, *args):
            try:
                stopped = super().sweep(*args)
            except BranchChangedError:
                made.append((self, "branch changed"))
                raise
            made.append((self, stopped))
            return stopped
    monkeypatch.setattr(integrate, "AdjointSweep", Spy)
    return made


@pytest.fixture
def python_path(monkeypatch):
    """A function that turns the C sweep off (the Python stepper's path)."""
    return lambda: monkeypatch.setattr(integrate._Problem, "compiled_adjoint",
                                       lambda self, rhs: None)


def network_problem(rng, n=4, n_times=9, span=2.0):
    W, c = 0.8 * rng.standard_normal((n, n)), rng.standard_normal(n)
    y0, t = rng.standard_normal(n), np.linspace(0.0, span, n_times)
    return y0, t, W, c, rng.standard_normal((n_times, n))


def network_loss(u, solve):
    return lambda y0, t, W, c: fnp.sum(u * solve(y0, t, W, c))


def gradient(u, solve, *args):
    return fasttape.grad(network_loss(u, solve), (0, 1, 2, 3))(*args)


def test_gradient_matches_central_differences(rng, sweeps):
    y0, t, W, c, _u = network_problem(rng, n=3, n_times=5, span=1.0)
    check_grads(lambda y0, t, W, c: odeint(network, y0, t, args=(W, c), **TIGHT),
                modes=("rev",), order=1)(y0, t, W, c)
    assert sweeps and all(stopped == 0 for _s, stopped in sweeps)
    sweeps.clear()
    a, b = rng.standard_normal(3), rng.standard_normal(3)
    check_grads(lambda y0, t, a, b: odeint(forced, y0, t, args=(a, b), **TIGHT),
                modes=("rev",), order=1)(y0, np.linspace(0.1, 0.6, 4), a, b)
    assert sweeps


@pytest.mark.parametrize("options", [{}, dict(rtol=1e-6, atol=1e-6),
                                     dict(rtol=1e-10, atol=1e-10)])
def test_gradient_matches_a_recorded_rk4_integrator(rng, sweeps, options):
    # {}: Cash-Karp steps; 1e-10: DOP853's
    y0, t, W, c, u = network_problem(rng)
    adjoint = gradient(u, lambda y0, t, W, c: odeint(network, y0, t, args=(W, c),
                                                      **options), y0, t, W, c)
    direct = gradient(u, lambda y0, t, W, c: rk4(network, y0, t, (W, c), 100),
                      y0, t, W, c)
    assert len(sweeps) == 1
    tolerance = max(options.get("rtol", 1.49012e-8), 1e-9)
    for name, x, y in zip(("y0", "t", "W", "c"), adjoint, direct):
        np.testing.assert_allclose(x, y, rtol=0, atol=200 * tolerance * np.abs(y).max(),
                                   err_msg=name)


@pytest.mark.parametrize("options", [{}, dict(rtol=1e-10, atol=1e-10)])
def test_gradient_is_the_python_steppers(rng, sweeps, python_path, options):
    # the same pair and error control in C and in Python: the same steps, gradients
    # equal up to rounding
    y0, t, W, c, u = network_problem(rng, n=5, n_times=12, span=3.0)
    solve = lambda y0, t, W, c: odeint(network, y0, t, args=(W, c), **options)
    compiled = gradient(u, solve, y0, t, W, c)
    assert len(sweeps) == 1
    python_path()
    stepped = gradient(u, solve, y0, t, W, c)
    assert len(sweeps) == 1
    for name, x, y in zip(("y0", "t", "W", "c"), compiled, stepped):
        np.testing.assert_allclose(x, y, rtol=1e-9, atol=1e-12 * np.abs(y).max(),
                                   err_msg=name)


def test_scalar_state_and_scalar_arguments(rng, sweeps):
    # y of one value (f in a scalar slot), arguments that are numbers
    decay = lambda y, t, k, m: -k * y * (1.0 + 0.1 * fnp.sin(m * t))
    t = np.linspace(0.0, 1.0, 5)
    check_grads(lambda y0, t, k, m: odeint(decay, y0, t, args=(k, m), **TIGHT),
                modes=("rev",), order=1)(0.7, t, 1.3, 2.0)
    assert sweeps


@pytest.mark.parametrize("func", [
    lambda y, t, k: y,                          # f is y's leaf itself
    lambda y, t, k: k * fnp.ones(3),            # f does not read y
    lambda y, t, k: t * fnp.ones(3) + 0.0 * y,  # f reads the time only
], ids=["identity", "arguments only", "time only"])
def test_right_hand_sides_that_skip_an_input(rng, sweeps, func):
    y0, t = rng.standard_normal(3), np.linspace(0.0, 1.0, 4)
    check_grads(lambda y0, t, k: odeint(func, y0, t, args=(k,), **TIGHT),
                modes=("rev",), order=1)(y0, t, 0.7)
    assert sweeps


def test_a_stiff_interval_goes_on_with_scipys_odeint(rng, sweeps, monkeypatch):
    # a limit of 2 steps per interval: the C sweep stops on the last interval (the
    # first it solves) and SciPy's odeint does it and the rest
    settings = integrate._Problem.stepper_settings
    monkeypatch.setattr(integrate._Problem, "stepper_settings",
                        lambda self: settings(self)[:3] + (2,))
    y0, t, W, c, u = network_problem(rng)
    adjoint = gradient(u, lambda y0, t, W, c: odeint(network, y0, t, args=(W, c)),
                       y0, t, W, c)
    direct = gradient(u, lambda y0, t, W, c: rk4(network, y0, t, (W, c), 100),
                      y0, t, W, c)
    assert [stopped for _s, stopped in sweeps] == [len(t) - 1]
    for name, x, y in zip(("y0", "t", "W", "c"), adjoint, direct):
        np.testing.assert_allclose(x, y, rtol=0, atol=3e-6 * np.abs(y).max(),
                                   err_msg=name)


def kinked(y, t, k):
    """Smooth (C1) in t, written with a branch on t: traced at the last time point, the
    branch changes on the way back."""
    if t < 0.5:
        return -k * y
    return -k * y * (1.0 + (t - 0.5) ** 2)


def test_a_changed_branch_hands_over_to_the_python_path(rng, sweeps):
    y0, t, k = rng.standard_normal(3), np.linspace(0.0, 1.0, 5), 1.3
    u = rng.standard_normal((5, 3))
    loss = lambda solve: lambda y0, k: fnp.sum(u * solve(y0, k))
    adjoint = fasttape.grad(loss(lambda y0, k: odeint(kinked, y0, t, args=(k,), **TIGHT)),
                            (0, 1))(y0, k)
    direct = fasttape.grad(loss(lambda y0, k: rk4(kinked, y0, t, (k,), 200)),
                           (0, 1))(y0, k)
    assert [stopped for _s, stopped in sweeps] == ["branch changed"]
    for x, y in zip(adjoint, direct):
        np.testing.assert_allclose(x, y, rtol=1e-7, atol=1e-9)


def test_python_rule_nodes_in_the_right_hand_side(rng, sweeps, python_path):
    # einsum is a node with Python rules: replayed and swept inside the C loop
    def mixing(y, t, W):
        return fnp.einsum("ij,j->i", W, fnp.sin(y)) - y
    W, y0, t = 0.5 * rng.standard_normal((3, 3)), rng.standard_normal(3), \
        np.linspace(0.0, 1.0, 4)
    solve = lambda y0, W: fnp.sum(odeint(mixing, y0, t, args=(W,), **TIGHT) ** 2)
    compiled = fasttape.grad(solve, (0, 1))(y0, W)
    assert sweeps
    check_grads(lambda y0, W: odeint(mixing, y0, t, args=(W,), **TIGHT),
                modes=("rev",), order=1)(y0, W)
    python_path()
    stepped = fasttape.grad(solve, (0, 1))(y0, W)
    for x, y in zip(compiled, stepped):
        np.testing.assert_allclose(x, y, rtol=1e-9, atol=1e-12)


# -- AdjointSweep itself ---------------------------------------------------------------

def traced_network(rng, n=3):
    W, c = rng.standard_normal((n, n)), rng.standard_normal(n)
    flat = lambda y, t, W, c: fnp.reshape(network(y, t, W, c), (n,))
    rhs = trace(flat, rng.standard_normal(n), 0.5, W, c, argnum=(0, 2, 3))
    tape, leaves, (out_node, out_anode) = rhs.lean_refs()
    return rhs, tape, leaves, out_node, out_anode, W, c


def make_sweep(rng, **changes):
    rhs, tape, leaves, out_node, out_anode, W, c = traced_network(rng)
    arguments = dict(tape=tape, y_anode=leaves[0][1], time_slot=leaves[1][1],
                     args=leaves[2:], out_node=out_node, out_anode=out_anode,
                     pair=pair("CashKarp"), rtol=1e-8, atol=1e-8, max_steps=500)
    arguments.update(changes)
    return AdjointSweep(*arguments.values()), rhs, W, c, arguments


def test_the_derivative_is_f_and_the_pullback_of_minus_a(rng):
    sweep, rhs, W, c, _ = make_sweep(rng)
    assert sweep.width == 2 * 3 + 9 + 3
    y, a = rng.standard_normal(3), rng.standard_normal(3)
    state = np.concatenate([y, a, np.zeros(12)])
    value, (dy, dW, dc) = rhs.value_and_vjp((y, 0.3, W, c), -a)
    out = sweep.derivative(state, 0.3)
    np.testing.assert_allclose(out, np.concatenate([value, dy, np.ravel(dW), dc]),
                               rtol=1e-14, atol=1e-15)


def test_a_sweep_solves_the_adjoint_with_its_jumps(rng):
    # without cotangents other than at the last point, one sweep over one interval
    # equals several sweeps over its pieces: the jumps and restarts change nothing
    sweep, rhs, W, c, arguments = make_sweep(rng)
    t = np.linspace(0.0, 1.0, 5)
    yt = integrate._integrate.odeint(lambda y, t: np.tanh(W @ y + c) - 0.5 * y,
                                     rng.standard_normal(3), t, rtol=1e-12, atol=1e-12)
    g = np.zeros((5, 3))
    g[-1] = rng.standard_normal(3)
    whole, pieces = np.zeros(18), np.zeros(18)
    whole[:3] = pieces[:3] = yt[-1]
    dt_whole, dt_pieces = np.zeros(5), np.zeros(5)
    assert sweep.sweep(whole, yt, g, t, [0, 4], dt_whole) == 0
    other = AdjointSweep(*arguments.values())
    assert other.sweep(pieces, yt, g, t, [0, 1, 2, 3, 4], dt_pieces) == 0
    np.testing.assert_allclose(whole[3:], pieces[3:], rtol=1e-6, atol=1e-9)
    np.testing.assert_array_equal(dt_whole[1:4], 0.0)
    assert dt_whole[4] == dt_pieces[4] != 0.0
    assert sweep.steps > 0 and sweep.evaluations > sweep.steps


def test_bad_input_raises(rng):
    rhs, tape, leaves, out_node, out_anode, W, c = traced_network(rng)
    y_anode, time_slot = leaves[0][1], leaves[1][1]
    good = dict(tape=tape, y_anode=y_anode, time_slot=time_slot, args=leaves[2:],
                out_node=out_node, out_anode=out_anode, pair=pair("CashKarp"),
                rtol=1e-8, atol=1e-8, max_steps=500)

    def build(**changes):
        return AdjointSweep(*dict(good, **changes).values())
    with pytest.raises(ValueError, match="not an array input"):
        build(y_anode=out_anode)
    with pytest.raises(IndexError):
        build(y_anode=10 ** 6)
    with pytest.raises(ValueError, match="not a scalar input"):
        build(time_slot=out_node)
    with pytest.raises(ValueError, match="not a scalar input"):
        build(time_slot=-1)
    with pytest.raises(ValueError, match="not an output"):
        build(out_node=out_node - 1)
    with pytest.raises(ValueError, match="not an output"):
        build(out_anode=leaves[2][1])             # W: 9 values, y: 3
    with pytest.raises(ValueError, match="argument 0"):
        build(args=[(True, out_anode)] + leaves[3:])
    with pytest.raises(ValueError, match="coefficients"):
        build(pair=pair("CashKarp")[:3] + (np.zeros(3), None, False, 4))
    with pytest.raises(ValueError, match="out of range"):
        build(atol=0.0)
    with pytest.raises(ValueError, match="unknown Runge-Kutta pair"):
        pair("Euler")

    sweep = build()
    t, yt, g, dt = np.linspace(0, 1, 3), np.zeros((3, 3)), np.zeros((3, 3)), np.zeros(3)
    with pytest.raises(ValueError, match="must hold 18 values"):
        sweep.derivative(np.zeros(17), 0.0)
    with pytest.raises(ValueError, match="must hold 18 values"):
        sweep.sweep(np.zeros(19), yt, g, t, [0, 2], dt)
    with pytest.raises(ValueError, match="rows"):
        sweep.sweep(np.zeros(18), yt[:2], g, t, [0, 2], dt)
    with pytest.raises(ValueError, match="rows"):
        sweep.sweep(np.zeros(18), yt, g, t, [0, 2], dt[:2])
    with pytest.raises(ValueError, match="start at time point 0"):
        sweep.sweep(np.zeros(18), yt, g, t, [1, 2], dt)
    with pytest.raises(ValueError, match="increase"):
        sweep.sweep(np.zeros(18), yt, g, t, [0, 2, 1], dt)
    with pytest.raises(ValueError, match="increase"):
        sweep.sweep(np.zeros(18), yt, g, t, [0, 3], dt)
    tape.reset()
    with pytest.raises(RuntimeError, match="reset"):
        sweep.derivative(np.zeros(18), 0.0)
    with pytest.raises(RuntimeError, match="reset"):
        sweep.sweep(np.zeros(18), yt, g, t, [0, 2], dt)


def test_a_changed_branch_raises(rng):
    def branching(y, t):
        return -y if t < 0.5 else -2.0 * y
    rhs = trace(branching, np.ones(2), 0.25, argnum=0)
    tape, leaves, (out_node, out_anode) = rhs.lean_refs()
    sweep = AdjointSweep(tape, leaves[0][1], leaves[1][1], [], out_node, out_anode,
                         pair("DOP853"), 1e-10, 1e-10, 500)
    np.testing.assert_allclose(sweep.derivative(np.array([1.0, 2.0, 3.0, 4.0]), 0.3),
                               [-1.0, -2.0, 3.0, 4.0])
    with pytest.raises(BranchChangedError, match="another branch"):
        sweep.derivative(np.ones(4), 0.7)
    # the tape is free again after the error
    np.testing.assert_allclose(rhs(np.ones(2), 0.1), [-1.0, -1.0])


def test_a_signal_interrupts_a_long_sweep(rng):
    # Ctrl-C (here SIGALRM's handler) is seen within a sweep of ~10^6 steps, and the
    # tape is free afterwards
    import signal

    class Alarm(Exception):
        pass

    def ring(signum, frame):
        raise Alarm()
    W = np.array([[0.0, 10.0], [-10.0, 0.0]])
    rhs = trace(lambda y, t, W: W @ y, np.ones(2), 0.0, W, argnum=(0, 2))
    tape, leaves, (out_node, out_anode) = rhs.lean_refs()
    sweep = AdjointSweep(tape, leaves[0][1], leaves[1][1], leaves[2:], out_node,
                         out_anode, pair("CashKarp"), 1e-8, 1e-8, 10 ** 8)
    t = np.array([0.0, 1e4])
    previous = signal.signal(signal.SIGALRM, ring)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        with pytest.raises(Alarm):
            sweep.sweep(np.zeros(8), np.ones((2, 2)), np.ones((2, 2)), t, [0, 1],
                        np.zeros(2))
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert 0 < sweep.steps < 10 ** 6
    np.testing.assert_allclose(rhs(np.ones(2), 0.0, W), [10.0, -10.0])
