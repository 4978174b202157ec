"""Concurrent use from several threads: every thread has its own tape stack, tape pool
and default tape, so results must equal the serial ones bit for bit (long tapes are
swept without the GIL, so sweeps really do overlap)."""
import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import fasttape as ft
from fasttape import Tape, Variable, grad, value_and_grad

N_THREADS = 4


def chain(x, n):
    # 3n + 1 nodes; n > 700 gives tapes long enough to be swept without the GIL
    for _ in range(n):
        x = x + 1e-3 * ft.sin(x)
    return x


def rosenbrock(p):
    total = 0.0
    for a, b in zip(p[:-1], p[1:]):
        total = total + 100.0 * (b - a ** 2) ** 2 + (1.0 - a) ** 2
    return total


def mixed(x, y):
    return ft.logaddexp(x * y, ft.tanh(x)) + ft.hypot(x, y) * ft.sigmoid(y)


JOBS = [
    ("chain", lambda k: grad(chain)(0.1 + 0.01 * k, 1000 + 10 * (k % 7))),
    ("rosenbrock", lambda k: tuple(grad(rosenbrock)([0.1 * ((k + i) % 13) - 0.6
                                                     for i in range(30)]))),
    ("mixed", lambda k: value_and_grad(mixed, argnum=(0, 1))(0.3 + 0.001 * k,
                                                             -0.2 - 0.002 * k)),
    ("square", lambda k: grad(lambda x: x * x)(float(k))),
]


def run_jobs(worker, n_per_job):
    out = []
    for k in range(n_per_job):
        for name, job in JOBS:
            out.append((name, k, job(k + 1000 * worker)))
    return out


def test_grad_in_threads_matches_serial():
    check_grad_in_threads(n_per_job=60)


@pytest.mark.slow
def test_grad_in_threads_matches_serial_long_run():
    check_grad_in_threads(n_per_job=1500)


def check_grad_in_threads(n_per_job):
    serial = [run_jobs(w, n_per_job) for w in range(N_THREADS)]
    barrier = threading.Barrier(N_THREADS)

    def worker(w):
        barrier.wait()
        return run_jobs(w, n_per_job)

    with ThreadPoolExecutor(N_THREADS) as pool:
        concurrent = list(pool.map(worker, range(N_THREADS)))
    assert concurrent == serial


def test_pytorch_style_rounds_in_threads():
    """Each thread's default tape is its own: Variables created in different threads
    never end up on one tape, and backward in one thread does not disturb another."""
    barrier = threading.Barrier(N_THREADS)
    errors = []

    def worker(w):
        barrier.wait()
        tapes = set()
        for i in range(300):
            x = Variable(0.5 + 0.001 * i + w)
            y = Variable(2.0 - 0.001 * i)
            f = x * y + ft.sin(x) * ft.exp(y)
            tapes.add(id(x.tape))
            if i % 50 == 0:
                chain(x, 1000).backward()      # a long sweep without the GIL
            f.backward()
            expected = (y.value + math.cos(x.value) * math.exp(y.value),
                        x.value + math.sin(x.value) * math.exp(y.value))
            if (x.grad, y.grad) != pytest.approx(expected, rel=1e-14):
                errors.append((w, i, (x.grad, y.grad), expected))
        return tapes

    with ThreadPoolExecutor(N_THREADS) as pool:
        tape_ids = list(pool.map(worker, range(N_THREADS)))
    assert errors == []
    assert all(len(t) > 1 for t in tape_ids)           # fresh tapes after backward


def explicit_tape_rounds(w):
    tape = Tape()
    out = []
    for i in range(100):
        tape.reset()
        x = Variable(0.01 * i + w, tape=tape)
        y = chain(x, 800)
        y.backward()
        out.append((y.value, x.grad))
    return out


def test_explicit_tapes_in_threads():
    expected = [explicit_tape_rounds(w) for w in range(N_THREADS)]
    barrier = threading.Barrier(N_THREADS)

    def worker(w):
        barrier.wait()
        return explicit_tape_rounds(w)

    with ThreadPoolExecutor(N_THREADS) as pool:
        got = list(pool.map(worker, range(N_THREADS)))
    assert got == expected


def test_tape_blocks_in_threads_are_thread_local(tape_blocks):
    barrier = threading.Barrier(N_THREADS)

    def worker(w):
        with Tape() as mine:
            barrier.wait()                 # every thread is inside its block now
            xs = [Variable(float(w + i)) for i in range(200)]
            barrier.wait()
        return all(x.tape is mine for x in xs), mine.n_nodes

    with ThreadPoolExecutor(N_THREADS) as pool:
        results = list(pool.map(worker, range(N_THREADS)))
    assert results == [(True, 200)] * N_THREADS


def test_a_finished_threads_tapes_are_freed_while_no_other_thread_asks():
    """The last thread's tapes are remembered for the next call (a cache of the
    thread-state lookup), but weakly: they go with the thread, even when no other
    thread differentiates afterwards."""
    import gc
    import weakref

    from fasttape._tape_pools import pooled_tapes
    seen = {}

    def work():
        grad(lambda x: x * x)(3.0)
        seen["pooled"] = [weakref.ref(t) for t in pooled_tapes()]
    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    del thread
    gc.collect()
    assert seen["pooled"] and all(ref() is None for ref in seen["pooled"])


def test_a_finished_threads_tapes_are_freed_and_a_new_thread_starts_clean():
    """Each thread's tapes (its pool, default tape, active stack) live with the
    thread: once it ends they are freed, and a thread started afterwards (which may
    reuse the finished one's identifier) starts with none of them."""
    import gc
    import weakref

    from fasttape._tape_pools import pooled_tapes, recording_is_paused
    seen = {}

    def first():
        grad(lambda x: x * x)(3.0)
        Variable(1.0)                          # (a default tape)
        seen["pooled"] = [weakref.ref(t) for t in pooled_tapes()]

    def second():
        seen["second"] = (pooled_tapes(), recording_is_paused())
        seen["grad"] = grad(lambda x: x * x)(3.0)

    for target in (first, second):
        thread = threading.Thread(target=target)
        thread.start()
        thread.join()
    gc.collect()
    assert seen["pooled"] and all(ref() is None for ref in seen["pooled"])
    assert seen["second"] == ([], False)
    assert seen["grad"] == 6.0


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_finds_its_own_tapes_while_another_threads_are_remembered():
    """The remembered thread state is another thread's (it differentiated last) at
    the fork; in the child, which has only the forking thread, grad and jacobian
    find that thread's tapes, and a thread started there its own."""
    import warnings
    asked, done = threading.Event(), threading.Event()

    def other():
        grad(lambda x: x * x)(2.0)            # this thread's tapes, remembered
        asked.set()
        done.wait(10.0)
    thread = threading.Thread(target=other)
    thread.start()
    asked.wait(10.0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)   # (fork in threads)
            pid = os.fork()
        if pid == 0:                           # the child: exit status 0 if all agree
            code = 1
            try:
                results = [grad(lambda x: x * x * x)(2.0),
                           ft.jacobian(lambda z: [z[0] * z[1], z[1]])([2.0, 3.0])]
                child = threading.Thread(
                    target=lambda: results.append(grad(lambda x: -x * x)(3.0)))
                child.start()
                child.join()
                code = 0 if results == [12.0, [[3.0, 2.0], [0.0, 1.0]], -6.0] else 1
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
    finally:
        done.set()
        thread.join()
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert grad(lambda x: x * x)(5.0) == 10.0


def test_variables_of_another_thread_are_usable_with_their_own_tape():
    """A Variable handed to another thread keeps recording on its own tape."""
    tape = Tape()
    x = Variable(1.25, tape=tape)

    def other():
        y = x * x + 1.0
        y.backward()
        return x.grad

    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(other).result() == 2.5


def test_concurrent_sweeps_of_one_shared_tape_raise_instead_of_mixing():
    # threads calling backward() on ONE tape: each gets the right gradients or a
    # RuntimeError saying the tape is being swept, never gradients of a half-done sweep
    import fasttape as ft
    with ft.Tape():
        xs = [ft.Variable(0.01 * i) for i in range(3000)]   # long enough to drop the GIL
        f = xs[0]
        for x in xs[1:]:
            f = f + ft.sin(x) * x
    f.backward()
    expected = [x.grad for x in xs[:50]]
    outcomes = {"right": 0, "refused": 0, "wrong": 0}
    lock = threading.Lock()

    def work():
        for _ in range(100):
            try:
                f.backward()
                got = [x.grad for x in xs[:50]]
                key = "right" if got == expected else "wrong"
            except RuntimeError as error:
                assert "already being swept" in str(error)
                key = "refused"
            with lock:
                outcomes[key] += 1

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes["wrong"] == 0, outcomes
    assert outcomes["right"] > 0


@pytest.mark.parametrize("asked", [0, -1, 2.5, True])
def test_grad_many_refuses_a_thread_count_that_is_not_a_positive_int(asked):
    import fasttape as ft
    traced = ft.trace(lambda x: x[0] * x[1], [1.0, 2.0])
    with pytest.raises(ValueError, match="n_threads"):
        traced.grad_many(np.ones((4, 2)), n_threads=asked)


def test_grad_many_caps_its_threads_and_tape_copies():
    import fasttape as ft
    import fasttape.numpy as fnp
    import importlib
    trace_module = importlib.import_module("fasttape.trace")
    traced = ft.trace(lambda x: fnp.sum(fnp.sin(x) * x), np.ones(3))
    copies = []
    original = traced._replicas

    def counting(n):
        copies.append(n)
        return original(n)

    traced._replicas = counting
    points = np.random.default_rng(0).standard_normal((500, 3))
    got = traced.grad_many(points, n_threads=1000)
    np.testing.assert_allclose(got, np.cos(points) * points + np.sin(points), rtol=1e-13)
    assert max(copies) <= trace_module.THREADS_PER_CORE * (os.cpu_count() or 1)
