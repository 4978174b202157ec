"""Constant arrays are captured as of the recording.

A function may use an array and then change it (a scratch buffer refilled in a
loop). The sweeps must read the values each operation saw, not the array's final
contents: every case below refills its buffer between two uses, and the gradient is
compared with central differences of the same function.
"""
import numpy as np
import pytest

import fasttape as ft
import fasttape.numpy as fnp
from fasttape.extend import defjvp, defvjp, primitive

X0 = np.array([0.7, -1.3, 2.1])


def central_gradient(f, x, h=1e-6):
    g = np.zeros_like(x)
    for j in range(x.size):
        e = np.zeros_like(x)
        e[j] = h
        g[j] = (float(f(x + e)) - float(f(x - e))) / (2 * h)
    return g


@primitive
def scaled_sum(x, weights):
    return np.sum(x * weights)


defvjp(scaled_sum, lambda ans, x, weights: lambda g: g * weights)
defjvp(scaled_sum, lambda g, ans, x, weights: fnp.sum(g * weights))


@ft.checkpoint
def weighted_energy(x, weights):
    return fnp.sum(fnp.sin(x) * weights)


def refilled(use):
    """A function that uses a buffer, refills it, and uses it again."""
    def f(x):
        buffer = np.empty(3)
        total = 0.0
        for i in range(2):
            buffer[:] = [i + 1.0, 2.0 - i, 0.5 * i + 0.25]
            total = total + use(x, buffer)
        return total
    return f


USES = {
    "multiply": lambda x, b: fnp.sum(x * b),
    "divide": lambda x, b: fnp.sum(x / b),
    "subtract from": lambda x, b: fnp.sum((b - x) ** 2),
    "matmul": lambda x, b: fnp.sum(fnp.outer(b, b) @ x),
    "dot": lambda x, b: fnp.dot(b, x),
    "einsum": lambda x, b: fnp.einsum("i,i->", b, fnp.tanh(x)),
    "where on a float condition": lambda x, b: fnp.sum(fnp.where(b - 1.0, x, 2 * x)),
    "maximum": lambda x, b: fnp.sum(fnp.maximum(x, b)),
    "custom primitive": lambda x, b: scaled_sum(x, b),
    "checkpoint": lambda x, b: weighted_energy(x, b),
}


@pytest.mark.parametrize("use", USES.values(), ids=USES.keys())
def test_a_refilled_buffer_does_not_change_the_gradient(use):
    f = refilled(use)
    np.testing.assert_allclose(ft.grad(f)(X0), central_gradient(f, X0), rtol=1e-6,
                               atol=1e-8)


@pytest.mark.parametrize("use", ["multiply", "matmul", "custom primitive"])
def test_forward_mode_and_second_order_see_the_recorded_values(use):
    f = refilled(USES[use])
    v = np.array([0.3, -0.2, 1.0])
    _, tangent = ft.jvp(f, (X0,), (v,))
    h = 1e-6
    np.testing.assert_allclose(tangent, (f(X0 + h * v) - f(X0 - h * v)) / (2 * h),
                               rtol=1e-6, atol=1e-8)
    hessian = ft.hessian(lambda x: refilled(USES[use])(x) * fnp.sum(x))(X0)
    numeric = np.stack([central_gradient(
        lambda x: ft.grad(lambda y: refilled(USES[use])(y) * fnp.sum(y))(x)[j], X0)
        for j in range(3)])
    np.testing.assert_allclose(hessian, numeric, rtol=1e-5, atol=1e-6)


def test_a_trace_captures_its_constants_when_it_is_recorded():
    data = np.array([1.0, 2.0, 3.0])
    traced = ft.trace(lambda x: fnp.sum(x * data), X0)
    data[:] = 100.0                  # changed after recording: the trace keeps its copy
    np.testing.assert_allclose(traced.grad(X0), [1.0, 2.0, 3.0])
    np.testing.assert_allclose(traced(X0), X0 @ [1.0, 2.0, 3.0])


@pytest.mark.parametrize("writeable", [True, False])
def test_only_arrays_that_can_change_are_copied(writeable):
    data = np.array([0.0, 0.25, 0.5, 0.75, 1.0])
    data.flags.writeable = writeable
    kept = []

    def f(x):
        y = x * data
        kept.append(y.tape.array_node(y.anode).operands[1].data)
        return fnp.sum(y)

    ft.grad(f)(np.ones(5))
    # a read-only array (with no writeable base) is kept by reference; a writeable
    # one is copied
    assert (kept[0] is data or np.shares_memory(kept[0], data)) == (not writeable)
    view = np.linspace(0.0, 1.0, 5)
    readonly_view = view[:]
    readonly_view.flags.writeable = False     # ... but its base can still change
    kept.clear()
    data = readonly_view
    ft.grad(f)(np.ones(5))
    assert not np.shares_memory(kept[0], view)


LARGE = 100_000          # elements: above the size up to which constants are copied


def test_a_large_array_is_borrowed_read_only_for_one_grad_call_and_given_back():
    data = np.linspace(-1.0, 1.0, LARGE).copy()
    seen = []

    def f(x):
        total = fnp.sum(x * data)
        seen.append(data.flags.writeable)
        return total

    gradient = ft.grad(f)(np.ones(LARGE))
    np.testing.assert_array_equal(gradient, data)
    assert seen == [False]                 # read-only while the tape reads it
    assert data.flags.writeable            # and writeable again after the call


def test_writing_into_a_borrowed_array_during_the_call_raises():
    data = np.ones(LARGE)

    def f(x):
        total = fnp.sum(x * data)
        data[:] = 2.0                      # would change what the sweep reads
        return total

    with pytest.raises(ValueError, match="read-only"):
        ft.grad(f)(np.ones(LARGE))
    assert data.flags.writeable            # given back after the error too
    data[:] = 3.0


def test_large_arrays_are_copied_where_a_recording_outlives_the_call():
    data = np.ones(LARGE)

    def f(x):
        total = fnp.sum(x * data)
        data[:] = 2.0                      # allowed: this recording holds a copy
        return total

    vjp, _ = ft.make_vjp(f)(np.ones(LARGE))
    np.testing.assert_array_equal(vjp(1.0), np.ones(LARGE))
    data[:] = 1.0
    traced = ft.trace(f, np.ones(LARGE))
    data[:] = 5.0
    np.testing.assert_array_equal(traced.grad(np.ones(LARGE)), np.ones(LARGE))


def test_a_large_view_is_copied_not_borrowed():
    base = np.ones(2 * LARGE)
    view = base[::2]

    def f(x):
        total = fnp.sum(x * view)
        base[:] = 2.0                      # through the base: the copy is unaffected
        return total

    np.testing.assert_array_equal(ft.grad(f)(np.ones(LARGE)), np.ones(LARGE))
