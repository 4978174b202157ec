"""Memory stays flat over many gradient computations: grad() resets and pools its
tapes, and PyTorch-style rounds (new Variables, backward, read .grad) start a fresh
default tape after each backward and free the old one with its last Variable.

Measured three ways: Python-level allocations (tracemalloc, which also sees the
tape buffers, allocated with PyMem_*), the number of live Tape objects (weak
references), and the resident set size of the process."""
import gc
import math
import os
import tracemalloc
import weakref

import pytest

import fasttape as ft
from fasttape import Variable, grad, value_and_grad


@pytest.fixture(autouse=True)
def fresh_default_tape():
    """Start each test on a fresh default tape: an earlier test may have left
    Variables on it without calling backward()."""
    Variable(0.0).backward()
    yield


def rss_bytes():
    """Current resident set size (Linux), else None."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def f_small(x, y):
    return x * y + ft.sin(x) * ft.exp(-y * y)


def f_medium(p):
    total = 0.0
    for a, b in zip(p[:-1], p[1:]):
        total = total + 100.0 * (b - a ** 2) ** 2 + (1.0 - a) ** 2
    return total


def grad_round(i):
    x, y = 0.001 * (i % 1000), 1.0 + 0.0001 * (i % 100)
    dx, dy = grad(f_small, argnum=(0, 1))(x, y)
    assert dx == pytest.approx(y + math.cos(x) * math.exp(-y * y), rel=1e-13)
    g = grad(f_medium)([0.5, 1.0, 1.5, 2.0, 2.5])
    assert len(g) == 5


def pytorch_round(i, tapes=None):
    x = Variable(0.001 * (i % 1000))
    y = Variable(1.0 + 0.0001 * (i % 100))
    f = f_small(x, y)
    f.backward()
    assert x.grad == pytest.approx(y.value + math.cos(x.value)
                                   * math.exp(-y.value ** 2), rel=1e-13)
    assert x.tape.n_nodes == 9          # each round on its own, fresh default tape
                                        # (2 leaves, 7 operations)
    if tapes is not None:
        tapes.append(weakref.ref(x.tape))


def traced_growth(run, rounds, warmup):
    """Bytes of Python-level memory still allocated after ``rounds`` calls of
    run(i), measured after ``warmup`` calls that fill pools and caches."""
    for i in range(warmup):
        run(i)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(rounds):
            run(i)
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    return after - before


def assert_rss_flat(run, rounds, warmup, limit_bytes):
    if rss_bytes() is None:
        pytest.skip("no /proc/self/statm to read the resident set size from")
    for i in range(warmup):
        run(i)
    gc.collect()
    before = rss_bytes()
    for i in range(rounds):
        run(i)
    gc.collect()
    growth = rss_bytes() - before
    assert growth < limit_bytes, (f"RSS grew by {growth / 1e6:.1f} MB over {rounds} "
                                  f"rounds")


# -- short versions, in the default run ------------------------------------------------

def test_grad_calls_do_not_accumulate_memory():
    growth = traced_growth(grad_round, rounds=2000, warmup=200)
    assert growth < 64 * 1024, f"{growth} bytes still allocated after 2000 grad rounds"


def test_pytorch_style_rounds_do_not_accumulate_memory():
    growth = traced_growth(pytorch_round, rounds=2000, warmup=200)
    assert growth < 64 * 1024, f"{growth} bytes still allocated after 2000 rounds"


def test_old_default_tapes_are_freed():
    tapes = []
    for i in range(500):
        pytorch_round(i, tapes)
    gc.collect()
    alive = sum(ref() is not None for ref in tapes)
    assert alive <= 1, f"{alive} of 500 default tapes are still alive"


def test_a_tape_lives_as_long_as_its_variables():
    x = Variable(2.0)
    y = x * x
    y.backward()
    tape_ref = weakref.ref(x.tape)
    Variable(1.0)                    # the default tape moves on
    assert tape_ref() is not None    # x and y still hold the old one
    del x, y
    gc.collect()
    assert tape_ref() is None


def test_dropped_tapes_with_python_rules_and_array_nodes_are_freed():
    """Variables are not tracked by the cycle collector: no cycle may run through
    them. A tape holds user objects only in its Python rules and the arrays its nodes
    read; with custom primitives, linalg rules and captured arrays on user-held tapes,
    every dropped tape is freed."""
    import numpy as onp

    import fasttape.numpy as fnp
    from fasttape.extend import defvjp, primitive

    @primitive
    def scale(x, w):
        return x * w
    defvjp(scale, lambda ans, x, w: lambda g: g * w,
           lambda ans, x, w: lambda g: fnp.sum(g * x))
    refs = []
    for i in range(20):
        with ft.Tape() as tape:
            w = Variable(2.0 + i)
            a = fnp.array([[2.0, 0.5], [0.5, 3.0]]) * w
            y = fnp.sum(scale(fnp.linalg.solve(a, onp.ones(2)), w)) + w * w
            y.backward()
            assert w.grad != 0.0
        refs.append(weakref.ref(tape))
        del tape, w, a, y
    gc.collect()
    assert sum(ref() is not None for ref in refs) == 0


def test_grad_pool_does_not_keep_growing_with_large_functions():
    def big(x):
        for _ in range(20_000):
            x = x + 1e-5 * ft.sin(x)
        return x

    grad(big)(0.3)
    gc.collect()
    growth = traced_growth(lambda i: grad(big)(0.3 + 1e-3 * i), rounds=10, warmup=0)
    assert growth < 64 * 1024, f"{growth} bytes kept after 10 grads of a 60k-node tape"


# -- long versions ---------------------------------------------------------------------

@pytest.mark.slow
def test_grad_calls_long_run_memory_is_flat():
    growth = traced_growth(grad_round, rounds=100_000, warmup=1000)
    assert growth < 64 * 1024, f"{growth} bytes still allocated after 100k grad rounds"
    assert_rss_flat(grad_round, rounds=100_000, warmup=1000, limit_bytes=4_000_000)


@pytest.mark.slow
def test_pytorch_style_long_run_memory_is_flat():
    growth = traced_growth(pytorch_round, rounds=100_000, warmup=1000)
    assert growth < 64 * 1024, f"{growth} bytes still allocated after 100k rounds"
    assert_rss_flat(pytorch_round, rounds=100_000, warmup=1000, limit_bytes=4_000_000)


@pytest.mark.slow
def test_value_and_grad_with_containers_long_run_memory_is_flat():
    def f(p):
        return p["w"][0] * p["w"][1] + ft.tanh(p["b"])

    def run(i):
        value, g = value_and_grad(f)({"w": [1.0, 2.0 + i % 10], "b": 0.5})
        assert g["w"] == [2.0 + i % 10, 1.0]

    assert_rss_flat(run, rounds=100_000, warmup=1000, limit_bytes=4_000_000)


def test_a_large_grad_does_not_leave_its_tape_in_the_pool():
    from fasttape._tape_pools import pooled_tapes

    def long_loop(x):
        total = x
        for _ in range(300_000):
            total = total * 0.999999 + x
        return total

    ft.grad(lambda x: x * x)(1.0)               # a small tape: pooled
    assert any(t.n_nodes == 0 for t in pooled_tapes())
    ft.grad(long_loop)(1.0)                     # ~600,000 nodes: freed, not kept
    assert all(t.node_capacity <= 1 << 17 for t in pooled_tapes())
    ft.grad(lambda x: x * x)(1.0)
    assert pooled_tapes() and all(t.node_capacity <= 1 << 17 for t in pooled_tapes())


def test_a_jacobian_of_very_many_outputs_does_not_leave_its_lanes_in_the_pool():
    """The lanes' bookkeeping grows with the number of outputs: a Jacobian of
    200,000 outputs (of a short tape) must not keep megabytes in the pool."""
    from fasttape._tape_pools import pooled_tapes
    J = ft.jacrev(lambda z: [z[0] * z[1]] * 200_000)([2.0, 3.0])
    assert len(J) == 200_000 and J[0] == [3.0, 2.0] and J[-1] == [3.0, 2.0]
    assert all(t.nbytes < 2_500_000 for t in pooled_tapes())
    ft.jacrev(lambda z: [z[0] * z[1], z[1]])([2.0, 3.0])
    assert pooled_tapes() and all(t.nbytes < 2_500_000 for t in pooled_tapes())
