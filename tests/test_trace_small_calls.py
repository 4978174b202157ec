"""Small calls of traced scalar functions, each one C call (fasttape._scalar_calls):
g(z), g.grad / g.value_and_grad with out=, g.jacobian (reverse or tangent sweeps) with
out=, g.jacobian_many. Values and derivatives against the function on floats, the
untraced fasttape.jacobian / fasttape.grad and central differences; out= errors;
guards and argument checks still fire."""
import math
import pickle
import threading

import numpy as np
import pytest

import fasttape as ft
from fasttape import BranchChangedError
from fasttape.bench import libraries, workloads

residual = workloads.make_ba_residual(libraries.FASTTAPE_OPS)
residual_float = workloads.make_ba_residual(libraries.FLOAT_OPS)
lorenz = workloads.make_lorenz96(libraries.FASTTAPE_OPS)
POINTS = workloads.ba_points(6, seed=3)


def fan_out(x):
    """2 inputs to 5 outputs (more outputs than inputs: tangent sweeps), one of them
    a constant."""
    a, b = x
    return [a * b, ft.sin(a) + b, ft.exp(a - b), 2.0, a / (1.0 + b * b)]


def numerical(f, z):
    """Central differences, a step per input scaled to its size (the residual's
    inputs range from 0.001 to 500)."""
    z = np.array(z, dtype=float)
    columns = []
    for j in range(z.size):
        h = 1e-5 * max(1.0, abs(z[j]))
        up, down = z.copy(), z.copy()
        up[j] += h
        down[j] -= h
        columns.append((np.array(f(list(up)), dtype=float)
                        - np.array(f(list(down)), dtype=float)) / (2 * h))
    return np.stack(columns, axis=-1)


# -- values and derivatives ---------------------------------------------------------------

@pytest.mark.parametrize("f, points", [
    (residual, POINTS),
    (lorenz, workloads.lorenz96_points(4, seed=5)),
    (fan_out, [[0.3, -0.7], [1.2, 0.4], [-0.5, 2.0]]),
], ids=["ba-residual", "lorenz96", "fan-out"])
def test_jacobian_matches_untraced_and_differences(f, points):
    g = ft.trace(f, points[0])
    for z in points[1:]:
        expected = np.array(ft.jacobian(f)(z), dtype=float)
        got = g.jacobian(z)
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(got, numerical(f, z), rtol=1e-6, atol=1e-7)
        # every spelling of the argument: list, 1-d float64 array (strided too)
        np.testing.assert_allclose(g.jacobian(np.array(z)), expected, rtol=1e-12,
                                   atol=1e-12)
        strided = np.repeat(np.array(z), 2)[::2]
        np.testing.assert_allclose(g.jacobian(strided), expected, rtol=1e-12,
                                   atol=1e-12)


def test_jacobian_of_many_outputs_in_any_order():
    """More outputs than one block of the one-pass sweep's lanes, recorded out of
    order, repeated, constant, a leaf among them (more inputs than outputs: reverse)."""
    def f(z):
        head = [z[k] * z[k + 1] + ft.sin(z[k]) for k in range(39)]
        last = ft.exp(z[0]) * z[39]
        return [last, 3.0, z[5]] + head[::-1] + [last]

    def f_float(z):
        head = [z[k] * z[k + 1] + math.sin(z[k]) for k in range(39)]
        last = math.exp(z[0]) * z[39]
        return [last, 3.0, z[5]] + head[::-1] + [last]
    rng = np.random.default_rng(4)
    z0 = list(rng.uniform(-1, 1, 60))
    g = ft.trace(f, z0)
    for z in (z0, list(rng.uniform(-1, 1, 60))):
        J = g.jacobian(z)
        assert J.shape == (43, 60)
        np.testing.assert_array_equal(J, np.array(ft.jacobian(f)(z)))
        np.testing.assert_allclose(J, numerical(f_float, z), rtol=1e-6, atol=1e-8)
    assert not J[1].any() and J[2, 5] == 1.0


def test_call_matches_the_function_on_floats():
    g = ft.trace(residual, POINTS[0])
    for z in POINTS[1:]:
        expected = residual_float(z)
        got = g(z)
        assert type(got) is list and len(got) == 3
        np.testing.assert_allclose(got, expected, rtol=1e-13)
        np.testing.assert_allclose(g(np.array(z)), expected, rtol=1e-13)


def test_output_structures_are_kept():
    g = ft.trace(lambda x: (x[0] * x[1], x[0] + 1.0), [1.0, 2.0])
    assert g([3.0, 4.0]) == (12.0, 4.0)
    h = ft.trace(lambda x: {"p": x[0] * x[1]}, [1.0, 2.0])
    assert h([3.0, 4.0]) == {"p": 12.0}
    k = ft.trace(lambda x: x[0] * x[1], (1.0, 2.0))
    assert k((3.0, 4.0)) == 12.0
    nested = ft.trace(lambda x: [[x[0] * x[1]], (x[0], 2.0)], [1.0, 2.0])
    assert nested([3.0, 4.0]) == [[12.0], (3.0, 2.0)]
    flat = ft.trace(lambda x: [x[0] * x[1], 2.0, x[1]], [1.0, 2.0])
    assert flat([3.0, 4.0]) == [12.0, 2.0, 4.0] and type(flat([3.0, 4.0])) is list


def test_grad_and_out():
    def cost(z):
        return 0.5 * sum(r * r for r in residual(z))
    g = ft.trace(cost, POINTS[0])
    for z in POINTS[1:]:
        value, expected = ft.value_and_grad(cost)(z)
        v, got = g.value_and_grad(z)
        assert type(got) is list
        assert v == pytest.approx(value, rel=1e-13)
        np.testing.assert_allclose(got, expected, rtol=1e-11, atol=1e-12)
        np.testing.assert_allclose(got, numerical(lambda x: [cost(x)], z)[0],
                                   rtol=1e-6, atol=1e-6)
        out = np.full(17, np.nan)
        assert g.grad(z, out=out) is out
        np.testing.assert_allclose(out, expected, rtol=1e-11, atol=1e-12)
        v2, got2 = g.value_and_grad(np.array(z), out=out)
        assert got2 is out and v2 == v
        # an array argument gives an array
        arr = g.grad(np.array(z))
        assert type(arr) is np.ndarray and arr.shape == (17,)
        np.testing.assert_allclose(arr, expected, rtol=1e-11, atol=1e-12)


def test_number_arguments_and_argnum():
    def f(x, y, w):
        return x * ft.sin(y) + w[0] * w[1] * y
    g = ft.trace(f, 1.0, 2.0, [0.5, 0.25], argnum=1)
    args = (0.3, -1.1, [2.0, 3.0])
    assert g(*args) == pytest.approx(f(*args))
    grad = g.grad(*args)
    assert type(grad) is float
    assert grad == pytest.approx(ft.grad(f, 1)(*args), rel=1e-14)
    out = np.empty(1)
    g.grad(*args, out=out)
    assert out[0] == pytest.approx(grad, rel=1e-14)
    # ints and NumPy scalars are numbers too
    assert g(1, np.float32(2.0), [np.int64(2), 3.0]) == pytest.approx(f(1.0, 2.0,
                                                                        [2.0, 3.0]))
    # jacobian w.r.t. argument 2 (a list), and a negative argnum
    h = ft.trace(f, 1.0, 2.0, [0.5, 0.25], argnum=-1)
    np.testing.assert_allclose(h.jacobian(*args),
                               [ft.grad(f, 2)(*args)], rtol=1e-14)


def test_argnum_set_after_tracing_is_the_one_differentiated():
    """The compiled calls differentiate the recording's argnum: once the traced
    function's argnum is set to another, grad, value_and_grad and jacobian follow it
    (as hessian does), not the recording's."""
    def f(x, y):
        return [x * y, ft.sin(x) + y * y]
    g = ft.trace(f, 1.0, 2.0)
    s = ft.trace(lambda x, y: x * y + ft.sin(x), 1.0, 2.0)
    assert s.grad(1.0, 3.0) == pytest.approx(3.0 + math.cos(1.0), rel=1e-14)
    g.argnum = s.argnum = 1
    assert s.grad(1.0, 3.0) == 1.0
    assert s.value_and_grad(1.0, 3.0) == (pytest.approx(3.0 + math.sin(1.0)), 1.0)
    np.testing.assert_array_equal(g.jacobian(1.0, 3.0), [[1.0], [6.0]])
    g.argnum = s.argnum = 0
    assert s.grad(1.0, 3.0) == pytest.approx(3.0 + math.cos(1.0), rel=1e-14)
    np.testing.assert_allclose(g.jacobian(1.0, 3.0), [[3.0], [math.cos(1.0)]],
                               rtol=1e-14)


def test_copies_of_a_trace_replay_and_differentiate():
    """copy.copy and copy.deepcopy of a traced function (a Python subclass of the
    compiled TracedCalls) go through its pickled state: the copies call, differentiate
    and retrace on their own."""
    import copy

    def f(x):
        if x[0] > 0:
            return [x[0] * x[1], ft.sin(x[1])]
        return [x[0] - x[1], 2.0 * x[1]]
    g = ft.trace(f, [1.0, 2.0], retrace=True)
    for h in (copy.copy(g), copy.deepcopy(g)):
        assert h is not g
        assert h([0.5, 0.25]) == g([0.5, 0.25])
        np.testing.assert_array_equal(h.jacobian([0.5, 0.25]), g.jacobian([0.5, 0.25]))
        assert h.argnum == g.argnum and h.retrace
        with pytest.raises(BranchChangedError, match="without its Python code"):
            h.jacobian([-0.5, 0.25])      # (a copy is a loaded function: no code)


def test_tuple_argnum_takes_the_general_path():
    def f(x, y):
        return x[0] * y[1] + x[1]
    g = ft.trace(f, [1.0, 2.0], [3.0, 4.0], argnum=(0, 1))
    gx, gy = g.grad([1.0, 2.0], [3.0, 4.0])
    assert gx == [4.0, 1.0] and gy == [0.0, 1.0]
    out = np.empty(4)
    g.grad([1.0, 2.0], [3.0, 4.0], out=out)
    np.testing.assert_array_equal(out, [4.0, 1.0, 0.0, 1.0])


def test_constant_output_has_zero_rows_and_gradient():
    g = ft.trace(lambda x: [x[0] * x[1], 3.0], [1.0, 2.0])
    np.testing.assert_array_equal(g.jacobian([2.0, 5.0]), [[5.0, 2.0], [0.0, 0.0]])
    # the untraced jacobian of numbers to numbers (one sweep per output) agrees
    np.testing.assert_array_equal(
        ft.jacobian(lambda x: [x[0] * x[1], 3.0])([2.0, 5.0]), [[5.0, 2.0], [0.0, 0.0]])
    # (a tuple of outputs of a number: a tuple of derivatives, as JAX's jacobian)
    jac = ft.jacobian(lambda x: (x * x, 3.0))(2.0)
    assert type(jac) is tuple and [float(v) for v in jac] == [4.0, 0.0]
    c = ft.trace(lambda x: 3.0, [1.0, 2.0])
    assert c.value_and_grad([4.0, 5.0]) == (3.0, [0.0, 0.0])


# -- out= ---------------------------------------------------------------------------------

@pytest.mark.parametrize("bad, error, words", [
    (np.empty(16), ValueError, "shape (17,)"),
    (np.empty((17, 1)), ValueError, "shape (17,)"),
    (np.empty(17, dtype=np.float32), TypeError, "float64"),
    ([0.0] * 17, TypeError, "numpy array"),
    (np.empty(34)[::2], ValueError, "C-contiguous"),
])
def test_grad_out_errors(bad, error, words):
    g = ft.trace(lambda z: sum(v * v for v in z), POINTS[0])
    with pytest.raises(error, match=words.replace("(", r"\(").replace(")", r"\)")):
        g.grad(POINTS[1], out=bad)


def test_read_only_out_is_refused():
    g = ft.trace(residual, POINTS[0])
    out = np.empty((3, 17))
    out.setflags(write=False)
    with pytest.raises(ValueError, match="writable"):
        g.jacobian(POINTS[1], out=out)


@pytest.mark.parametrize("bad, error", [
    (np.empty((17, 3)), ValueError), (np.empty((3, 17), dtype=complex), TypeError),
    (np.empty(51), ValueError)])
def test_jacobian_out_errors(bad, error):
    g = ft.trace(residual, POINTS[0])
    with pytest.raises(error, match="out"):
        g.jacobian(POINTS[1], out=bad)
    out = np.empty((3, 17))
    assert g.jacobian(POINTS[1], out=out) is out
    np.testing.assert_allclose(out, ft.jacobian(residual)(POINTS[1]), rtol=1e-12,
                               atol=1e-12)


def test_out_on_array_code():
    import fasttape.numpy as fnp

    def f(x):
        return fnp.sum(fnp.sin(x) * x)
    x = np.linspace(0.1, 1.0, 6).reshape(2, 3)
    g = ft.trace(f, x)
    expected = ft.grad(f)(x)
    out = np.empty((2, 3))
    assert g.grad(x, out=out) is out
    np.testing.assert_allclose(out, expected, rtol=1e-13)
    flat = np.empty(6)
    g.grad(x, out=flat)
    np.testing.assert_allclose(flat, expected.ravel(), rtol=1e-13)
    with pytest.raises(ValueError, match="shape"):
        g.grad(x, out=np.empty(5))
    jac = np.empty((1, 6))
    g.jacobian(x, out=jac)
    np.testing.assert_allclose(jac[0], expected.ravel(), rtol=1e-13)


# -- arguments and guards -----------------------------------------------------------------

def test_arguments_not_as_traced_raise():
    g = ft.trace(residual, POINTS[0])
    for bad in (POINTS[0][:-1], np.array(POINTS[0][:-1]), np.array([POINTS[0]]),
                tuple(POINTS[0]), POINTS[0][:-1] + ["x"]):
        with pytest.raises(ValueError, match="structure"):
            g(bad)
        with pytest.raises(ValueError, match="structure"):
            g.jacobian(bad)
    with pytest.raises(TypeError, match="arguments"):
        g(POINTS[0], POINTS[1])
    with pytest.raises(TypeError, match="complex"):
        g.jacobian(np.array(POINTS[0], dtype=complex))
    # ints in an int array are numbers
    h = ft.trace(lambda x: x[0] * x[1], [1.0, 2.0])
    assert h(np.array([3, 4])) == 12.0


def branchy(x):
    if x[0] > 0:
        return [x[0] * x[1], x[1]]
    return [-x[0] * x[1], 2.0 * x[1]]


def test_guards_fire_on_every_call():
    g = ft.trace(branchy, [1.0, 2.0])
    for call in (g, g.jacobian, lambda z: g.jacobian(z, out=np.empty((2, 2)))):
        with pytest.raises(BranchChangedError, match="comparison"):
            call([-1.0, 2.0])
    cost = ft.trace(lambda x: branchy(x)[0], [1.0, 2.0])
    with pytest.raises(BranchChangedError):
        cost.grad([-1.0, 2.0])
    with pytest.raises(BranchChangedError):
        cost.grad([-1.0, 2.0], out=np.empty(2))
    # the recording is unchanged: the other branch still replays
    np.testing.assert_array_equal(g.jacobian([3.0, 2.0]), [[2.0, 3.0], [0.0, 1.0]])


def test_retrace_gives_the_other_branch():
    g = ft.trace(branchy, [1.0, 2.0], retrace=True)
    np.testing.assert_array_equal(g.jacobian([-1.0, 2.0]), [[-2.0, 1.0], [0.0, 2.0]])
    assert g([-1.0, 2.0]) == [2.0, 4.0]
    cost = ft.trace(lambda x: branchy(x)[0], [1.0, 2.0], retrace=True)
    out = np.empty(2)
    cost.grad([-1.0, 2.0], out=out)
    np.testing.assert_array_equal(out, [-2.0, 1.0])


# -- many points ----------------------------------------------------------------------------

@pytest.mark.parametrize("f, points", [
    (residual, POINTS), (fan_out, [[0.3, -0.7], [1.2, 0.4], [-0.5, 2.0]])],
    ids=["ba-residual", "fan-out"])
def test_jacobian_many_matches_per_point(f, points):
    g = ft.trace(f, points[0])
    Z = np.array(points)
    expected = np.array([ft.jacobian(f)(z) for z in points], dtype=float)
    np.testing.assert_allclose(g.jacobian_many(Z), expected, rtol=1e-12, atol=1e-12)
    out = np.empty(expected.shape)
    assert g.jacobian_many(Z, out=out) is out
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)
    assert g.jacobian_many(np.empty((0, Z.shape[1]))).shape == (0,) + expected.shape[1:]
    with pytest.raises(ValueError, match="points"):
        g.jacobian_many(Z[:, 1:])
    with pytest.raises(ValueError, match="shape"):
        g.jacobian_many(Z, out=np.empty((len(points), 1, 1)))


def test_jacobian_many_other_arguments_as_traced():
    def f(x, y):
        return [x[0] * y, x[1] + y * y]
    g = ft.trace(f, [1.0, 2.0], 3.0)
    Z = np.array([[1.0, 2.0], [4.0, 5.0]])
    np.testing.assert_array_equal(g.jacobian_many(Z),
                                  [[[3.0, 0.0], [0.0, 1.0]]] * 2)


def test_jacobian_many_branches():
    Z = np.array([[1.0, 2.0], [2.0, 1.0], [-1.0, 2.0], [-3.0, 1.0]])
    expected = np.array([ft.jacobian(branchy)(list(z)) for z in Z], dtype=float)
    g = ft.trace(branchy, [1.0, 2.0])
    with pytest.raises(BranchChangedError, match="at point 2"):
        g.jacobian_many(Z)
    r = ft.trace(branchy, [1.0, 2.0], retrace=True)
    np.testing.assert_array_equal(r.jacobian_many(Z), expected)


def test_jacobian_many_on_array_code():
    import fasttape.numpy as fnp

    def f(x):
        return fnp.sin(x) * x[0]
    g = ft.trace(f, np.array([0.5, 1.0, 1.5]))
    Z = np.array([[0.1, 0.2, 0.3], [1.0, -1.0, 2.0]])
    expected = np.array([ft.jacobian(f)(z) for z in Z])
    np.testing.assert_allclose(g.jacobian_many(Z), expected, rtol=1e-13)


def test_jacobian_many_needs_an_int_argnum():
    g = ft.trace(lambda x, y: x * y, 1.0, 2.0, argnum=(0, 1))
    with pytest.raises(TypeError, match="int argnum"):
        g.jacobian_many(np.ones((2, 1)))


# -- threads and pickling -------------------------------------------------------------------

def test_threads_get_their_own_results():
    g = ft.trace(residual, POINTS[0])
    expected = [ft.jacobian(residual)(z) for z in POINTS]
    errors = []

    def work(k):
        try:
            for _ in range(200):
                z = POINTS[k % len(POINTS)]
                np.testing.assert_allclose(g.jacobian(z), expected[k % len(POINTS)],
                                           rtol=1e-12, atol=1e-12)
                np.testing.assert_allclose(g(z), residual_float(z), rtol=1e-13)
        except BaseException as e:
            errors.append(e)
    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_loaded_trace_replays():
    g = pickle.loads(pickle.dumps(ft.trace(residual, POINTS[0])))
    np.testing.assert_allclose(g.jacobian(POINTS[1]), ft.jacobian(residual)(POINTS[1]),
                               rtol=1e-12, atol=1e-12)
    assert g(POINTS[2]) == pytest.approx(residual_float(POINTS[2]), rel=1e-13)


def test_residual_is_the_size_the_benchmark_says():
    g = ft.trace(residual, POINTS[0])
    assert 80 <= g.n_nodes <= 110 and g.n_guards == 0
    assert math.isfinite(g(POINTS[1])[0])


def test_grad_many_on_one_thread_runs_the_compiled_loop():
    def cost(z):
        return 0.5 * sum(r * r for r in residual(z))
    g = ft.trace(cost, POINTS[0])
    Z = np.array(POINTS)
    expected = np.array([ft.grad(cost)(z) for z in POINTS])
    one = g.grad_many(Z, n_threads=1)
    assert one.shape == Z.shape
    np.testing.assert_allclose(one, expected, rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(g.grad_many(Z, n_threads=2), one, rtol=1e-14)

    def first(x):
        return branchy(x)[0]
    B = np.array([[1.0, 2.0], [2.0, 1.0], [-1.0, 2.0], [-3.0, 1.0]])
    with pytest.raises(BranchChangedError, match="at point 2"):
        ft.trace(first, [1.0, 2.0]).grad_many(B, n_threads=1)
    r = ft.trace(first, [1.0, 2.0], retrace=True)
    np.testing.assert_array_equal(r.grad_many(B, n_threads=1),
                                  [ft.grad(first)(list(z)) for z in B])
