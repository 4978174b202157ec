"""Workloads and measuring helpers shared by the benchmark modules.

Each workload is written once and runs on Python floats (the baseline) and on
fasttape Variables alike; the elementary functions come in as arguments (math's or
fasttape's). Only the public API is used (Variable, Tape, grad, the elementary
functions), so the suite also runs against older commits.
"""
import gc
import math
import random
import statistics
import time

import fasttape as ft

HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


# -- workloads --------------------------------------------------------------------------

def textbook(x, y):
    return x * y + ft.sin(x)          # fasttape.sin also computes on plain floats


def textbook_float(x, y):
    return x * y + math.sin(x)


def rosenbrock(x):
    s = 0.0
    for i in range(len(x) - 1):
        s += 100 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2
    return s


def chain(x, n, sin, a=1.0001):
    """x <- sin(x) * a + x * 0.5, n times: 4 n ops, each using the last.

    a = 1.0001 (the workload as specified): x settles at 1.9 where each step scales
    the adjoint by 0.18, so it underflows to 0.0 after ~430 steps and the sweep
    skips the older nodes (zero-adjoint rule). a = 0.5: every adjoint stays nonzero.
    """
    for _ in range(n):
        x = sin(x) * a + x * 0.5
    return x


def fan(xs, m):
    """Fan-out/fan-in: m products of pairs of the few inputs, summed. Every input
    is used ~2 m / len(xs) times, so the sweep accumulates into few adjoints."""
    k = len(xs)
    s = 0.0
    for i in range(m):
        s = s + xs[i % k] * xs[(i + 1) % k]
    return s


def gmm(p, data, exp, log1p, logaddexp):
    """Log-likelihood of data under a two-component 1-D Gaussian mixture with
    parameters p = (mu1, mu2, log_sigma1, log_sigma2, a), weights sigmoid(+-a)."""
    mu1, mu2, log_s1, log_s2, a = p[0], p[1], p[2], p[3], p[4]
    c1 = -log1p(exp(-a)) - log_s1 - HALF_LOG_2PI
    c2 = -log1p(exp(a)) - log_s2 - HALF_LOG_2PI
    h1 = 0.5 * exp(-2.0 * log_s1)
    h2 = 0.5 * exp(-2.0 * log_s2)
    total = 0.0
    for xi in data:
        d1 = xi - mu1
        d2 = xi - mu2
        total = total + logaddexp(c1 - h1 * d1 * d1, c2 - h2 * d2 * d2)
    return total


def float_logaddexp(a, b):
    m = a if a > b else b
    return m + math.log1p(math.exp(-abs(a - b)))


def gmm_float(p, data):
    return gmm(p, data, math.exp, math.log1p, float_logaddexp)


def gmm_fasttape(p, data):
    return gmm(p, data, ft.exp, ft.log1p, ft.logaddexp)


def gmm_data(n):
    rng = random.Random(12345)
    return [rng.gauss(-1.0, 0.7) if rng.random() < 0.4 else rng.gauss(1.5, 1.2)
            for _ in range(n)]


GMM_POINT = [-1.0, 1.5, math.log(0.7), math.log(1.2), 0.3]


def uniform_point(n, seed=0):
    rng = random.Random(seed + n)
    return [rng.uniform(-1.5, 1.5) for _ in range(n)]


# -- recording --------------------------------------------------------------------------

def record(tape, f, x0):
    """Reset ``tape`` and record f on a list of Variables made from the floats x0,
    the way users record: ``with tape: xs = [Variable(v) for v in x0]; y = f(xs)``.

    Returns (output, leaves).
    """
    tape.reset()
    with tape:
        xs = [ft.Variable(v) for v in x0]
        return f(xs), xs


# -- measuring inside track_ benchmarks -------------------------------------------------

def median_time(fn, budget=0.2, min_repeats=5, repeat_target=0.005):
    """Median seconds per call of fn(), over repeats of enough calls to last
    ``repeat_target`` seconds, for at least ``budget`` seconds in all."""
    fn()
    t0 = time.perf_counter()
    fn()
    number = max(1, int(repeat_target / max(time.perf_counter() - t0, 1e-9)))
    times = []
    start = time.perf_counter()
    while len(times) < min_repeats or time.perf_counter() - start < budget:
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - t0) / number)
        if len(times) >= 200:
            break
    return statistics.median(times)


def interleaved_ratio(num, den, budget=0.3, min_rounds=7, repeat_target=0.005):
    """Median over rounds of time(num())/time(den()), the two timed one after the
    other in every round so that a noisy machine slows both alike."""
    gc.collect()

    def calls_for(fn):
        fn()
        t0 = time.perf_counter()
        fn()
        return max(1, int(repeat_target / max(time.perf_counter() - t0, 1e-9)))
    n_num, n_den = calls_for(num), calls_for(den)
    ratios = []
    start = time.perf_counter()
    while len(ratios) < min_rounds or time.perf_counter() - start < budget:
        t0 = time.perf_counter()
        for _ in range(n_num):
            num()
        a = (time.perf_counter() - t0) / n_num
        t0 = time.perf_counter()
        for _ in range(n_den):
            den()
        b = (time.perf_counter() - t0) / n_den
        ratios.append(a / b)
        if len(ratios) >= 200:
            break
    return statistics.median(ratios)


# -- the benchmark classes every scalar workload shares ------------------------------------
#
# A workload module defines make(size) -> (f on floats, f on Variables, x0) and two
# classes: one for recording and the whole grad call, one that records in its setup and
# times the sweep alone. They are separate so that peakmem_ of the first does not count
# a tape recorded by setup for the second.

class _Calls:
    """time_f (floats), time_record, time_grad, peakmem_grad and the ratio
    time(grad)/time(f). Subclasses set params and make(*params)."""
    params = []
    param_names = ["n"]
    timeout = 300

    def setup(self, *params):
        self.f_float, self.f_var, self.x0 = self.make(*params)
        self.tape = ft.Tape()
        self.grad = ft.grad(self.f_var)

    def time_f(self, *params):
        self.f_float(self.x0)

    def time_record(self, *params):
        record(self.tape, self.f_var, self.x0)

    def time_grad(self, *params):
        self.grad(self.x0)

    def peakmem_grad(self, *params):
        self.grad(self.x0)

    def track_grad_over_f(self, *params):
        return interleaved_ratio(lambda: self.grad(self.x0),
                                 lambda: self.f_float(self.x0))
    track_grad_over_f.unit = "ratio"


class _Sweep:
    """The reverse sweep of a recorded tape: time_reverse, its throughput, and the
    tape's allocated bytes per node. Subclasses set params and make(*params).
    (Nanoseconds per node and the declared bytes per node are in bench_foundation.)"""
    params = []
    param_names = ["n"]
    timeout = 300

    def setup(self, *params):
        _, f_var, x0 = self.make(*params)
        self.tape = ft.Tape()
        self.y, self.xs = record(self.tape, f_var, x0)
        self.y.backward()                   # allocates the adjoints once
        self.n_nodes = self.tape.n_nodes

    def time_reverse(self, *params):
        self.y.backward()

    def track_sweep_mnodes_per_s(self, *params):
        return self.n_nodes / median_time(self.y.backward) / 1e6
    track_sweep_mnodes_per_s.unit = "Mnodes/s"

    def track_nbytes_per_node(self, *params):
        """Allocated bytes of all buffers (capacity) per node, after a sweep."""
        return self.tape.nbytes / self.n_nodes
    track_nbytes_per_node.unit = "bytes"


# -- the workloads of fasttape.bench ------------------------------------------------------
#
# The array, second-order and replay workloads (and their peers) are defined once, in
# fasttape.bench, and timed here through the same setups, so that asv and the
# side-by-side table measure the same calls. Commits without them skip these
# benchmarks (asv's skip: NotImplementedError from setup).

SKIP = NotImplementedError


def bench_module():
    try:
        from fasttape import bench
    except ImportError:                 # a commit older than fasttape.bench
        return None
    return bench


def bench_workloads(group):
    """The names of fasttape.bench's workloads of ``group`` (asv params), or
    ["none"] when this commit has none."""
    bench = bench_module()
    if bench is None:
        return ["none"]
    names = [name for name, w in bench.WORKLOADS.items()
             if getattr(w, "group", None) == group]
    return names or ["none"]


def bench_case(workload, variant):
    """The Case (``.call``: what fasttape.bench times) of one variant of one of its
    workloads; SKIP if the workload, the variant or its library is missing."""
    bench = bench_module()
    w = None if bench is None else bench.WORKLOADS.get(workload)
    if w is None:
        raise SKIP(f"fasttape.bench has no workload {workload!r} in this commit")
    v = w.setups.get(variant)
    if v is None:
        raise SKIP(f"{variant} does not run {workload}")
    try:
        ops = bench.load(v.library)
    except ImportError:
        raise SKIP(f"{v.library} is not installed")
    try:
        return v.setup(ops, w.make(ops), w.args)
    except bench.NotApplicable:
        raise SKIP(f"{variant} does not apply to {workload}")
