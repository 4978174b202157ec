"""The Foundation figures (fasttape alone, in this process) and the memory per
recorded op of every library (each in a fresh process).


The four Foundation targets: (a) time(grad f) / time(f) for the Rosenbrock loop,
(b) the latency of the textbook grad call, (c) reverse-sweep time per node on large
tapes, (d) tape bytes per node. The report prints them (``report``).
"""
import gc
import json
import os
import subprocess
import sys

import fasttape as ft
from fasttape.bench import workloads as w
from fasttape.bench.libraries import FASTTAPE_OPS, FLOAT_OPS, load
from fasttape.bench.peers import recorder
from fasttape.bench.timing import interleaved_ratio, progress, time_call


def foundation(budget):
    """The four Foundation targets, measured in this process."""
    res = {}
    # (a) time(grad f)/time(f) for the Rosenbrock loop, n = 1000, interleaved
    progress("  foundation (a): Rosenbrock n=1000 grad/f")
    x = w.uniform_point(1000)
    f_plain = w.make_rosenbrock(FLOAT_OPS)
    g = ft.grad(w.make_rosenbrock(FASTTAPE_OPS))
    med, lo, t_g, t_f, rounds = interleaved_ratio(lambda: g(x), lambda: f_plain(x),
                                                  2 * budget)
    res["a_rosenbrock1000_grad_over_f"] = dict(
        ratio_median=med, ratio_min=lo, grad_s=t_g, f_s=t_f, rounds=rounds)
    # (b) one textbook grad call
    progress("  foundation (b): textbook grad call")
    tb = ft.grad(w.make_textbook(FASTTAPE_OPS), argnum=(0, 1))
    t = time_call(lambda: tb(2.0, 3.0), budget)
    res["b_textbook_grad_us"] = dict(median_us=t.median * 1e6, min_us=t.min * 1e6,
                                     calls=t.repeats * t.number, value=t.result)
    # (c) reverse sweep per node, on large tapes
    res["c_sweep_ns_per_node"] = {}
    sweeps = [("rosenbrock n=10000", w.make_rosenbrock, (w.uniform_point(10_000),)),
              ("chain-live n=100000", lambda ops: w.make_chain(ops, 100_000, 0.5),
               (0.3,)),
              ("chain n=100000, adjoint underflowed: mostly skipped",
               lambda ops: w.make_chain(ops, 100_000), (0.3,))]
    for label, make, args in sweeps:
        progress(f"  foundation (c): sweep of {label}")
        tape = ft.Tape()
        f = make(FASTTAPE_OPS)
        record = recorder(tape, f, args)
        t_rec = time_call(record, budget)
        y, leaves = record()
        n = tape.n_nodes
        t_sw = time_call(y.backward, budget)
        res["c_sweep_ns_per_node"][label] = dict(
            n_nodes=n, sweep_ns_per_node=t_sw.median * 1e9 / n,
            sweep_ns_per_node_min=t_sw.min * 1e9 / n,
            record_ns_per_node=t_rec.median * 1e9 / n,
            sweep_s=t_sw.median, record_s=t_rec.median)
        if label.startswith("chain-live"):
            # (d) measured tape size on this big tape (capacity, after a sweep)
            res["d_memory"] = dict(bytes_per_node=tape.bytes_per_node,
                                   nbytes=tape.nbytes, n_nodes=n,
                                   nbytes_per_node=tape.nbytes / n)
        del y, leaves, tape
    return res


# chain iterations per library (4 ops each): large enough to dwarf the noise, small
# enough to build in about a second
MEMORY_ITERATIONS = {"fasttape": 250_000, "autograd": 25_000, "torch": 25_000,
                     "micrograd": 25_000, "jax": 1_000}
MEMORY_SLOW = {"jax"}


def _status_bytes(field):
    """A size field of /proc/self/status (VmRSS, VmHWM) in bytes, or None."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _reset_peak_rss():
    """Reset the kernel's RSS high-water mark (VmHWM); False where unsupported.
    Without it the peak left by the imports would hide the growth measured."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _build_graph(library, n):
    """Record the chain of n iterations with ``library`` and return what keeps the
    graph alive (the reverse pass is not run, except for fasttape: see below)."""
    ops = load(library)
    f = w.make_chain(ops, n, 0.5)
    if library == "fasttape":
        tape = ft.Tape()
        y = f(ft.Variable(0.3, tape))
        return tape, y
    if library == "autograd":
        return ops.module.make_vjp(f)(0.3)
    if library == "torch":
        torch = ops.module
        x = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
        return x, f(x)
    if library == "jax":
        return ops.module.vjp(f, 0.3)
    if library == "micrograd":
        return f(ops.module(0.3))
    raise ValueError(library)


def memory_probe(library, n):
    """Print (JSON) memory growth per recorded op of the chain workload: RSS growth
    and tracemalloc growth while the graph is alive, and peak RSS growth."""
    import tracemalloc
    _build_graph(library, 10)                    # imports, caches, first-op setup
    gc.collect()
    ops = 4 * n
    rss0 = _status_bytes("VmRSS")
    peak_ok = _reset_peak_rss()
    graph = _build_graph(library, n)
    rss1, peak1 = _status_bytes("VmRSS"), _status_bytes("VmHWM")
    out = dict(library=library, ops=ops,
               rss_per_op=None if rss0 is None else (rss1 - rss0) / ops,
               peak_rss_per_op=(peak1 - rss0) / ops if peak_ok and peak1 else None)
    if library == "fasttape":
        tape, y = graph
        out["n_nodes"] = tape.n_nodes
        y.backward()                             # allocates the adjoints
        rss2 = _status_bytes("VmRSS")
        out["rss_per_node_after_sweep"] = None if rss0 is None else (
            (rss2 - rss0) / tape.n_nodes)
        out["nbytes_per_node"] = tape.nbytes / tape.n_nodes
    del graph
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    graph = _build_graph(library, n)
    held = tracemalloc.get_traced_memory()[0] - base
    out["tracemalloc_per_op"] = held / ops
    if library == "fasttape":
        graph[1].backward()
        out["tracemalloc_per_node_after_sweep"] = (
            (tracemalloc.get_traced_memory()[0] - base) / graph[0].n_nodes)
    tracemalloc.stop()
    print(json.dumps(out))


def run_memory(libraries, quick):
    results = {}
    root = os.path.dirname(os.path.dirname(os.path.abspath(ft.__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    for lib in libraries:
        if lib not in MEMORY_ITERATIONS or (quick and lib in MEMORY_SLOW):
            continue
        try:
            load(lib)
        except ImportError:
            continue
        n = MEMORY_ITERATIONS[lib] // (5 if quick else 1)
        progress(f"  memory: {lib} (chain of {n} iterations, fresh process)")
        code = (f"from fasttape.bench.foundation import memory_probe; "
                f"memory_probe({lib!r}, {n})")
        try:
            p = subprocess.run([sys.executable, "-c", code], capture_output=True,
                               text=True, env=env, timeout=600)
        except subprocess.TimeoutExpired:
            results[lib] = dict(library=lib, error="timed out")
            continue
        try:
            results[lib] = json.loads(p.stdout.strip().splitlines()[-1])
        except (IndexError, ValueError):
            err = (p.stderr.strip().splitlines() or [f"exit code {p.returncode}"])[-1]
            progress(f"  memory: {lib} failed: {err}")
            results[lib] = dict(library=lib, error=err)
    return results
