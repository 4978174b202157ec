"""Side-by-side benchmarks: fasttape and the installed peers on the same workloads.

Run ``python -m fasttape.bench`` (``--help`` for the options). Four groups of
workloads, each with its own table:

- scalar Python code (textbook, Rosenbrock loop, chains, 1-D mixture): the plain-float
  function (the baseline), fasttape's whole ``grad`` call, its recording and its
  reverse sweep alone, autograd, PyTorch (eager, float64), JAX (eager and ``jit``)
  and micrograd;
- arrays (vectorised Rosenbrock, logistic regression, an MLP, 100 ops on arrays of
  10, ADBench's GMM objective): f on NumPy arrays (the baseline), fasttape.numpy
  (grad, record, sweep), autograd, PyTorch, mygrad, JAX eager and ``jax.jit``;
- second order (a Hessian and a Hessian-vector product of a scalar loop): fasttape
  on a list of floats, on an ndarray, and traced; autograd, PyTorch, JAX eager and
  ``jit``;
- replay (``fasttape.trace`` once, gradients at 100 points of a loop, at 32 points of
  vectorised code): the trace, replayed calls and gradients, ``grad_many`` on 1 and 2
  threads, ``jax.jit`` and CasADi.

Missing peers are skipped. Before timing, each peer's derivative is compared with
fasttape's (``np.allclose``, rtol 1e-6 unless the workload says otherwise); a
disagreement is marked MISMATCH in the table. It then prints the four Foundation
figures (grad/f ratio, textbook call latency, sweep time per node, tape bytes per
node) and the memory per recorded op of each library, measured in fresh subprocesses.

Timing is time-boxed: each cell runs one untimed call (whose result is checked),
then repeats of ``number`` calls (``number`` chosen so a repeat lasts >= 10 ms)
until ``--budget`` seconds have passed and at least three repeats are done. The
table gives the median and the minimum over repeats of the time per call (per point
for the replay workload, per op too for the small-array chain). One-off costs (JIT
compilation) are timed apart. The garbage collector stays on (it is part of the cost
of graph-building libraries) and is run before each cell. Ratios in the table come
from the same run. Every library runs on one thread (``timing.SINGLE_THREAD_ENV``;
``python -m fasttape.bench`` re-executes itself with them set).

The modules, each importing only those above it:

- ``workloads``: the functions differentiated, one factory ``make(ops) -> f`` each,
  and their inputs; ``timing``: the time-boxed loop, interleaved ratios, the
  single-thread settings (both used by the asv suite, ``asv_bench/``);
- ``libraries``: each library's ``ops`` namespace (sin, exp, ..., ``ops.arrays``);
- ``peers``: the setups, ``setup(ops, f, args) -> Case``, how each library computes
  a gradient, a Hessian, an HVP or a replay;
- ``catalog``: ``Variant`` and ``Workload``, every workload with its variants
  (``WORKLOADS``); ``run``: a workload's variants set up, checked and timed;
- ``foundation``: the Foundation figures and the memory probes;
- ``report``: the tables, JSON and PNG; ``cli``: the options; ``__main__``.

Adding a workload: its factory in ``workloads``, a ``Workload`` row in
``catalog.WORKLOADS`` with the variants of its group (``SCALAR_SETUPS``,
``ARRAY_SETUPS``, ``HESSIAN_SETUPS``/``HVP_SETUPS``, ``REPLAY_SETUPS``). asv times the
same setups through ``asv_bench/benchmarks/common.py``'s ``bench_case``.
"""
import importlib

# The public names, each from its module, imported when first asked for: importing
# ``fasttape.bench.workloads`` or ``.timing`` (as asv's scalar benchmarks do) must not
# build the catalog, whose workloads' data (~20 MB) would count in their peakmem_.
_PUBLIC = {
    "main": "cli", "parse_only": "cli",
    "WORKLOADS": "catalog", "VARIANTS": "catalog", "Workload": "catalog",
    "Variant": "catalog",
    "Case": "peers", "NotApplicable": "peers",
    "load": "libraries",
    "run_workload": "run",
    "time_call": "timing", "interleaved_ratio": "timing",
    "memory_probe": "foundation",
}
__all__ = list(_PUBLIC)


def __getattr__(name):
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


def __dir__():
    return sorted(set(globals()) | set(_PUBLIC))
