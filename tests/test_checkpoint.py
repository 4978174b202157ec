"""checkpoint(f): one tape node whose sweeps re-run f.

The derivatives of a checkpointed function (gradient, jvp, Jacobians, second
derivatives) equal those of the function itself; a long loop of checkpointed blocks
records one node per block instead of every operation inside, and its peak traced
memory falls accordingly.
"""
import math
import threading
import tracemalloc
import warnings

import numpy as np
import pytest

import fasttape as ft
import fasttape.numpy as fnp
from fasttape import (checkpoint, grad, hessian, hvp, jacfwd, jacrev, jvp, make_jvp,
                      value_and_grad, vjp)

from support import numerical_jacobian


def assert_close(got, expected, rtol=1e-13, atol=1e-15, what=""):
    assert np.shape(got) == np.shape(expected), (
        f"{what}: shape {np.shape(got)} != {np.shape(expected)}")
    expected = np.asarray(expected, dtype=float)
    scale = float(np.max(np.abs(expected), initial=1.0))
    np.testing.assert_allclose(np.asarray(got, dtype=float), expected, rtol=rtol,
                               atol=atol * scale, err_msg=what)


# -- the functions checkpointed ---------------------------------------------------------

def scalar_block(x):
    """A chain of scalar operations."""
    for _ in range(5):
        x = ft.sin(x) * 0.9 + ft.tanh(x * x) * 0.2
    return x


def two_argument_block(x, y):
    return ft.exp(-x * x) * y + ft.sin(x * y)


W = np.random.default_rng(2).standard_normal((4, 4)) * 0.5


def array_block(h, w):
    """A residual layer: h + tanh(w @ h)."""
    return h + fnp.tanh(w @ h)


def layer_stack(block):
    def f(x, w):
        h = x
        for _ in range(4):
            h = block(h, w)
        return fnp.sum(h * h)
    return f


# -- derivatives equal the function's own -----------------------------------------------

@pytest.mark.parametrize("x", [-1.2, 0.3, 2.0])
def test_gradient_of_a_checkpointed_scalar_chain(x):
    ck = checkpoint(scalar_block)

    def f(block):
        return lambda x: block(block(x)) * x

    value, g = value_and_grad(f(ck))(x)
    value0, g0 = value_and_grad(f(scalar_block))(x)
    assert value == value0
    assert g == pytest.approx(g0, rel=1e-14)


def test_gradient_with_several_arguments_and_constants(rng):
    ck = checkpoint(two_argument_block)
    x, y = 0.4, -1.1
    for argnum in [(0, 1), 0, 1]:
        got = grad(lambda a, b: ck(a, b) * a, argnum=argnum)(x, y)
        expected = grad(lambda a, b: two_argument_block(a, b) * a, argnum=argnum)(x, y)
        assert got == pytest.approx(expected, rel=1e-14)
    # one argument a plain number inside the differentiated function
    got = grad(lambda a: ck(a, 2.5) + ck(1.5, a))(x)
    expected = grad(lambda a: two_argument_block(a, 2.5) + two_argument_block(1.5, a))(x)
    assert got == pytest.approx(expected, rel=1e-14)


def test_gradient_of_checkpointed_array_layers(rng):
    x = rng.standard_normal(4)
    plain = layer_stack(array_block)
    checkpointed = layer_stack(checkpoint(array_block))
    gx, gw = grad(checkpointed, argnum=(0, 1))(x, W)
    ex, ew = grad(plain, argnum=(0, 1))(x, W)
    assert_close(gx, ex)
    assert_close(gw, ew)
    numeric = numerical_jacobian(lambda z: plain(z, W), x)
    assert_close(gx, numeric, rtol=1e-8, atol=1e-10)


def test_jvp_through_a_checkpoint(rng):
    x, v = rng.standard_normal(4), rng.standard_normal(4)
    vw = rng.standard_normal((4, 4))
    plain = layer_stack(array_block)
    checkpointed = layer_stack(checkpoint(array_block))
    out, t = jvp(checkpointed, (x, W), (v, vw))
    out0, t0 = jvp(plain, (x, W), (v, vw))
    assert out == pytest.approx(out0, rel=1e-14)
    assert t == pytest.approx(t0, rel=1e-13)
    # one tangent zero (a constant operand inside the checkpointed call)
    assert make_jvp(checkpointed, 1)(x, W)(vw)[1] == pytest.approx(
        make_jvp(plain, 1)(x, W)(vw)[1], rel=1e-13)
    # a scalar chain
    ck = checkpoint(scalar_block)
    assert jvp(ck, (0.7,), (2.0,))[1] == pytest.approx(
        jvp(scalar_block, (0.7,), (2.0,))[1], rel=1e-14)


def test_jacobians_through_a_checkpoint(rng):
    x = rng.standard_normal(4)
    ck = checkpoint(array_block)
    expected = jacrev(lambda h: array_block(array_block(h, W), W))(x)
    assert_close(jacrev(lambda h: ck(ck(h, W), W))(x), expected)
    assert_close(jacfwd(lambda h: ck(ck(h, W), W))(x), expected)


def test_vjp_of_a_checkpointed_function_serves_many_cotangents(rng):
    x = rng.standard_normal(4)
    ck = checkpoint(array_block)
    _, vjp_fun = vjp(lambda h: ck(ck(h, W), W), x)
    _, vjp_plain = vjp(lambda h: array_block(array_block(h, W), W), x)
    for _ in range(3):
        u = rng.standard_normal(4)
        assert_close(vjp_fun(u)[0], vjp_plain(u)[0])


def test_second_derivatives_through_a_checkpoint(rng):
    ck = checkpoint(scalar_block)
    for x in (-0.8, 0.5):
        assert grad(grad(ck))(x) == pytest.approx(grad(grad(scalar_block))(x),
                                                  rel=1e-12)
        assert grad(grad(grad(ck)))(x) == pytest.approx(
            grad(grad(grad(scalar_block)))(x), rel=1e-11)
    x = rng.standard_normal(4)
    v = rng.standard_normal(4)
    plain = layer_stack(array_block)
    checkpointed = layer_stack(checkpoint(array_block))
    h = hessian(lambda z: checkpointed(z, W))(x)
    h0 = hessian(lambda z: plain(z, W))(x)
    assert_close(h, h0, rtol=1e-12)
    assert_close(hvp(lambda z: checkpointed(z, W))(x, v), h0 @ v, rtol=1e-12)
    numeric = numerical_jacobian(lambda z: grad(lambda y: plain(y, W))(z), x)
    assert_close(h, numeric, rtol=1e-7, atol=1e-9)


def test_hessian_of_scalar_code_with_checkpoints(rng):
    """A list-of-floats input with a checkpoint inside: the checkpoint node is not a
    scalar operation, so the hessian must still be right (whatever path it takes)."""
    ck = checkpoint(two_argument_block)

    def f(p, block):
        return block(p[0], p[1]) * block(p[1], p[2])

    p = [0.3, -0.6, 1.1]
    assert_close(hessian(lambda q: f(q, ck))(p),
                 hessian(lambda q: f(q, two_argument_block))(p), rtol=1e-12)
    v = [1.0, -2.0, 0.5]
    assert hvp(lambda q: f(q, ck))(p, v) == pytest.approx(
        list(hessian(lambda q: f(q, two_argument_block))(p) @ v), rel=1e-12)


def test_nested_checkpoints(rng):
    inner = checkpoint(array_block)
    outer = checkpoint(lambda h, w: inner(inner(h, w), w) * 0.5)
    x = rng.standard_normal(4)

    def f(block):
        return lambda h: fnp.sum(fnp.sin(block(h, W)))

    assert_close(grad(f(outer))(x),
                 grad(f(lambda h, w: array_block(array_block(h, w), w) * 0.5))(x))


# -- what checkpoint does and refuses ---------------------------------------------------

def test_the_function_runs_again_in_the_reverse_sweep():
    calls = []

    def block(x):
        calls.append(type(x).__name__)
        return ft.sin(x) * x

    ck = checkpoint(block)
    assert grad(lambda x: ck(x) + ck(x * 2.0))(0.3) == pytest.approx(
        math.sin(0.3) + 0.3 * math.cos(0.3) + 2 * (math.sin(0.6) + 0.6 * math.cos(0.6)),
        rel=1e-14)
    assert len(calls) == 4              # two forward calls on numbers, two re-runs
    assert calls[:2] == ["float", "float"]


def test_called_on_plain_values_it_is_the_function():
    sentinel = object()
    ck = checkpoint(lambda x, flag=False: sentinel if flag else x * 2.0)
    assert ck(3.0) == 6.0
    assert ck(np.arange(3.0)).tolist() == [0.0, 2.0, 4.0]


def test_a_checkpointed_function_returning_a_container_is_refused():
    ck = checkpoint(lambda x: (x, x * 2.0))
    with pytest.raises(TypeError, match="checkpoint"):
        grad(lambda x: ck(x)[0])(1.0)


def test_a_checkpointed_function_keeps_its_name():
    def my_block(x):
        return x
    assert checkpoint(my_block).__name__ == "my_block"


# -- memory: node counts and peak traced memory -----------------------------------------

OPS_PER_BLOCK = 2000          # 4 tape nodes per iteration of long_block
N_BLOCKS = 100


def long_block(x):
    for _ in range(OPS_PER_BLOCK // 4):
        x = ft.sin(x) * 0.9 + x * 0.1
    return x


def measure(block):
    """(gradient, number of tape nodes, peak traced memory) of grad through a loop of
    N_BLOCKS blocks, run in a fresh thread: its tape pool starts empty, so the growth
    of the tape's buffers is traced."""
    result = {}

    def f(x):
        for _ in range(N_BLOCKS):
            x = block(x)
        result["nodes"] = x.tape.n_nodes
        result["bytes_per_node"] = x.tape.bytes_per_node
        return x

    def run():
        tracemalloc.start()
        try:
            result["grad"] = grad(f)(0.3)
            result["peak"] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    return result


def test_a_loop_of_checkpointed_blocks_records_far_fewer_nodes_and_less_memory():
    if tracemalloc.is_tracing():
        pytest.skip("tracemalloc is already tracing (the test needs its own trace)")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plain = measure(long_block)
        checkpointed = measure(checkpoint(long_block))
    assert checkpointed["grad"] == pytest.approx(plain["grad"], rel=1e-12)
    # every operation is a node without checkpoints; one (or two) per block with them
    assert plain["nodes"] >= N_BLOCKS * OPS_PER_BLOCK
    assert checkpointed["nodes"] <= 2 * N_BLOCKS + 2
    node_ratio = plain["nodes"] / checkpointed["nodes"]          # about 2000
    # without checkpoints the tape alone holds every node
    assert plain["peak"] >= 0.8 * plain["nodes"] * plain["bytes_per_node"]
    # with them, each block's node also keeps Python objects (closures, its operand
    # list: about 2 KB, the size of ~100 plain nodes) and one block is re-recorded at a
    # time, so the peak falls by about node_ratio / 100; require half of that
    memory_ratio = plain["peak"] / checkpointed["peak"]
    assert memory_ratio >= node_ratio / 200, (
        f"peak traced memory {plain['peak']} B without checkpoints, "
        f"{checkpointed['peak']} B with them: ratio {memory_ratio:.1f}, node ratio "
        f"{node_ratio:.0f}")
