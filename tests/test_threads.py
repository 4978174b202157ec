"""Concurrent use from several threads: every thread has its own tape stack, tape pool
and default tape, so results must equal the serial ones bit for bit (long tapes are
swept without the GIL, so sweeps really do overlap)."""
import math
import threading
from concurrent.futures import ThreadPoolExecutor

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
