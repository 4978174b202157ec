"""Workloads and measuring helpers shared by the benchmark modules.

The workloads are fasttape.bench's (``fasttape/bench/workloads.py``): each written once,
as a factory taking a namespace of elementary functions, here math's (``FLOAT_OPS``,
the baseline on Python floats) or fasttape's (``TAPE_OPS``). Medians and interleaved
ratios come from its timing loop (``fasttape/bench/timing.py``), with shorter time
boxes. The array, second-order and replay benchmarks time fasttape.bench's own setups
(``bench_case``), so that asv and ``python -m fasttape.bench`` measure the same calls.

Commits without the fasttape.bench package skip every benchmark: ``require()`` raises
asv's skip (SkipNotImplemented, a NotImplementedError: asv skips it raised from a
setup, and with asv >= 0.6 from a benchmark too).
"""
import fasttape as ft

try:
    from asv_runner.benchmarks.mark import SkipNotImplemented as SKIP
except ImportError:                     # asv < 0.6: a NotImplementedError from setup
    SKIP = NotImplementedError

try:
    from fasttape.bench import libraries, timing, workloads
except ImportError:                     # a commit older than the fasttape.bench package
    libraries = timing = workloads = None


def require():
    """Skip the calling benchmark on a commit without the fasttape.bench package."""
    if workloads is None:
        raise SKIP("fasttape.bench (a package) is not in this commit")


if workloads is not None:
    FLOAT_OPS, TAPE_OPS = libraries.FLOAT_OPS, libraries.FASTTAPE_OPS
    textbook = workloads.make_textbook(TAPE_OPS)    # fasttape.sin also takes floats
    textbook_float = workloads.make_textbook(FLOAT_OPS)
else:
    FLOAT_OPS = TAPE_OPS = None

    def textbook(*args):                # Textbook's setup calls it: the class skips
        require()
    textbook_float = textbook


# -- recording --------------------------------------------------------------------------

def record(tape, f, x0):
    """Reset ``tape`` and record f on a list of Variables made from the floats x0,
    the way users record: ``with tape: xs = [Variable(v) for v in x0]; y = f(xs)``.

    Returns (output, leaves). time_record times this very statement (fasttape.bench's
    ``peers.recorder`` prepares a closure per workload instead).
    """
    tape.reset()
    with tape:
        xs = [ft.Variable(v) for v in x0]
        return f(xs), xs


# -- measuring inside track_ benchmarks -------------------------------------------------

def median_time(fn, budget=0.2, min_repeats=5, repeat_target=0.005):
    """Median seconds per call of fn(), over repeats of enough calls to last
    ``repeat_target`` seconds, for at least ``budget`` seconds in all."""
    return timing.time_call(fn, budget, min_repeats=min_repeats, max_repeats=200,
                            repeat_target=repeat_target).median


def interleaved_ratio(num, den, budget=0.3, min_rounds=7, repeat_target=0.005):
    """Median over rounds of time(num())/time(den()), the two timed one after the
    other in every round so that a noisy machine slows both alike."""
    return timing.interleaved_ratio(num, den, budget, min_rounds=min_rounds,
                                    repeat_target=repeat_target).median


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


# -- the array, second-order and replay workloads: fasttape.bench's own setups ---------

def bench_catalog():
    """fasttape.bench's catalog (WORKLOADS, VARIANTS), or None on a commit without
    the package."""
    if workloads is None:
        return None
    from fasttape.bench import catalog
    return catalog


def bench_workloads(group):
    """The names of fasttape.bench's workloads of ``group`` (asv params), or
    ["none"] when this commit has none."""
    catalog = bench_catalog()
    if catalog is None:
        return ["none"]
    names = [name for name, w in catalog.WORKLOADS.items() if w.group == group]
    return names or ["none"]


def bench_case(workload, variant):
    """The Case (``.call``: what fasttape.bench times) of one variant of one of its
    workloads; SKIP if the workload, the variant or its library is missing."""
    require()
    from fasttape.bench import catalog, peers
    w = catalog.WORKLOADS.get(workload)
    if w is None:
        raise SKIP(f"fasttape.bench has no workload {workload!r} in this commit")
    v = w.setups.get(variant)
    if v is None:
        raise SKIP(f"{variant} does not run {workload}")
    try:
        ops = libraries.load(v.library)
    except ImportError:
        raise SKIP(f"{v.library} is not installed") from None
    try:
        return v.setup(ops, w.make(ops), w.args)
    except peers.NotApplicable:
        raise SKIP(f"{variant} does not apply to {workload}") from None
