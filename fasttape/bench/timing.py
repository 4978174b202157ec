"""The timing loop: time-boxed repeats and their medians, interleaved ratios, the
single-thread settings every library runs under, and how times are printed.

Used by the side-by-side table, by the Foundation figures and by the asv suite's
``track_`` benchmarks (``asv_bench/benchmarks/common.py``, with shorter time boxes).
It imports no library.
"""
import gc
import statistics
import sys
import time
from dataclasses import dataclass
from typing import NamedTuple

# Threads: one per library, so that the columns compare like with like and a second
# process on a 2-core machine disturbs them less. The BLAS libraries read these when
# they load, before the benchmark starts: ``python -m fasttape.bench`` re-executes
# itself with them set when they are missing (an explicit setting is kept).
SINGLE_THREAD_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                     "MKL_NUM_THREADS": "1", "JAX_PLATFORMS": "cpu"}
XLA_SINGLE_THREAD = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


def single_thread_environ(environ):
    """``environ`` with the single-thread settings added where missing."""
    env = dict(environ)
    for key, value in SINGLE_THREAD_ENV.items():
        env.setdefault(key, value)
    if "xla_cpu_multi_thread_eigen" not in env.get("XLA_FLAGS", ""):
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " " + XLA_SINGLE_THREAD).strip()
    return env


@dataclass
class Timing:
    median: float
    min: float
    number: int               # calls per repeat
    repeats: int
    first: float              # the untimed first call (warm-up)
    result: object = None


def time_call(call, budget, min_repeats=3, max_repeats=51, repeat_target=0.01,
              first=None):
    """Median and min seconds per call of ``call()``, time-boxed by ``budget``.

    Repeats of ``number`` calls, ``number`` chosen so that a repeat lasts about
    ``repeat_target`` seconds, until ``budget`` seconds have passed and at least
    ``min_repeats`` repeats are done (at most ``max_repeats``). The garbage collector
    stays on (it is part of the cost of graph-building libraries) and runs first.
    ``first`` is the duration of a warm-up call already made; without it, one is
    made here (its result is returned in Timing.result).
    """
    gc.collect()
    result = None
    if first is None:
        t0 = time.perf_counter()
        result = call()
        first = time.perf_counter() - t0
    number = max(1, int(repeat_target / max(first, 1e-9)))
    times = []
    resized = 0
    start = time.perf_counter()
    while len(times) < max_repeats:
        t0 = time.perf_counter()
        for _ in range(number):
            call()
        dt = time.perf_counter() - t0
        if not times and dt < 0.5 * repeat_target and resized < 3:
            # the first call was slow (warm-up): re-size the repeats
            number = max(1, int(number * repeat_target / max(dt, 1e-9)))
            resized += 1
            continue
        times.append(dt / number)
        if len(times) >= min_repeats and time.perf_counter() - start >= budget:
            break
    return Timing(statistics.median(times), min(times), number, len(times), first,
                  result)


class Ratio(NamedTuple):
    median: float             # of time(num_call) / time(den_call) over the rounds
    min: float
    num_s: float              # median seconds per call of num_call
    den_s: float              # and of den_call
    rounds: int


def interleaved_ratio(num_call, den_call, budget, min_rounds=5, repeat_target=0.01):
    """Median over rounds of time(num_call)/time(den_call), the two timed
    alternately in each round so that machine noise hits both alike.

    At least ``min_rounds`` rounds, and rounds until ``budget`` seconds have passed
    (at most 200); each times about ``repeat_target`` seconds of calls of each.
    """
    gc.collect()
    num_call()
    den_call()

    def calls_for(call):
        t0 = time.perf_counter()
        call()
        return max(1, int(repeat_target / max(time.perf_counter() - t0, 1e-9)))
    n_num, n_den = calls_for(num_call), calls_for(den_call)
    ratios, t_num, t_den = [], [], []
    start = time.perf_counter()
    while len(ratios) < min_rounds or time.perf_counter() - start < budget:
        t0 = time.perf_counter()
        for _ in range(n_num):
            num_call()
        a = (time.perf_counter() - t0) / n_num
        t0 = time.perf_counter()
        for _ in range(n_den):
            den_call()
        b = (time.perf_counter() - t0) / n_den
        ratios.append(a / b)
        t_num.append(a)
        t_den.append(b)
        if len(ratios) >= 200:
            break
    return Ratio(statistics.median(ratios), min(ratios), statistics.median(t_num),
                 statistics.median(t_den), len(ratios))


def fmt_time(s):
    if s is None:
        return "-"
    if s < 1e-6:
        return f"{s * 1e9:.1f} ns"
    if s < 1e-3:
        return f"{s * 1e6:.3g} µs"
    if s < 1.0:
        return f"{s * 1e3:.3g} ms"
    return f"{s:.3g} s"


def fmt_ratio(r):
    if r is None:
        return "-"
    if r >= 100:
        return f"{r:,.0f}x"
    return f"{r:.3g}x"


def progress(msg):
    """A progress line, on stderr (the tables go to stdout)."""
    print(msg, file=sys.stderr, flush=True)
