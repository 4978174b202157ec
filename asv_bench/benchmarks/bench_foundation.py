"""The four Foundation targets as tracked numbers.

(a) time(grad(f)(x)) / time(f(x) on floats) for the Rosenbrock loop, n = 1000
(b) one textbook grad call, in microseconds
(c) reverse-sweep time per scalar node, on large tapes
(d) tape bytes per scalar node: the declared layout, the allocated buffers, and the
    growth tracemalloc sees while recording and sweeping
"""
import tracemalloc

import fasttape as ft

from .common import (FLOAT_OPS, TAPE_OPS, interleaved_ratio, median_time, record,
                     require, textbook, workloads)


def setup(*params):
    """asv runs a module's setup before each of its benchmarks: all skip on a commit
    without fasttape.bench."""
    require()


def track_a_rosenbrock_grad_over_f():
    rosenbrock = workloads.make_rosenbrock(FLOAT_OPS)
    x = workloads.uniform_point(1000)
    g = ft.grad(rosenbrock)
    return interleaved_ratio(lambda: g(x), lambda: rosenbrock(x), budget=1.0)
track_a_rosenbrock_grad_over_f.unit = "ratio"
track_a_rosenbrock_grad_over_f.timeout = 120


def track_b_textbook_grad_us():
    g = ft.grad(textbook, argnum=(0, 1))
    return median_time(lambda: g(2.0, 3.0), budget=0.5) * 1e6
track_b_textbook_grad_us.unit = "us"


# Every adjoint of these tapes is nonzero, so the sweep does all its work (the chain
# with a = 1.0001 would mostly time the zero-adjoint skip: see bench_chain).
LARGE_TAPES = ["rosenbrock 1e4", "chain a=0.5 1e5"]


def large_tape(name):
    """(f on Variables, x0) of one of LARGE_TAPES."""
    if name == "rosenbrock 1e4":
        return workloads.make_rosenbrock(TAPE_OPS), workloads.uniform_point(10_000)
    chain = workloads.make_chain(TAPE_OPS, 100_000, 0.5)
    return (lambda xs: chain(xs[0])), [0.3]


def track_c_sweep_ns_per_node(tape_name):
    f, x0 = large_tape(tape_name)
    tape = ft.Tape()
    y, _ = record(tape, f, x0)
    return median_time(y.backward, budget=0.5) * 1e9 / tape.n_nodes
track_c_sweep_ns_per_node.params = LARGE_TAPES
track_c_sweep_ns_per_node.param_names = ["tape"]
track_c_sweep_ns_per_node.unit = "ns"
track_c_sweep_ns_per_node.timeout = 120


def track_d_bytes_per_node():
    return ft.Tape().bytes_per_node
track_d_bytes_per_node.unit = "bytes"


def track_d_nbytes_per_node():
    """Allocated capacity of all buffers per node, chain 1e5 after a sweep
    (includes the doubling slack and the constants pool)."""
    f, x0 = large_tape("chain a=0.5 1e5")
    tape = ft.Tape()
    y, _ = record(tape, f, x0)
    y.backward()
    return tape.nbytes / tape.n_nodes
track_d_nbytes_per_node.unit = "bytes"


def track_d_tracemalloc_bytes_per_node():
    """Memory growth (tracemalloc) per node of recording and sweeping chain 1e5."""
    f, x0 = large_tape("chain a=0.5 1e5")
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tape = ft.Tape()
        y, _ = record(tape, f, x0)
        y.backward()
        grown = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    return grown / tape.n_nodes
track_d_tracemalloc_bytes_per_node.unit = "bytes"
