"""The same scalar workloads with every installed peer, so fasttape's numbers have
context: the whole gradient call of each variant of fasttape.bench (autograd,
PyTorch, micrograd), at the sizes fasttape.bench uses. JAX is left to
``python -m fasttape.bench``: eager JAX takes seconds a call on these loops and
jax.jit tens of seconds to compile them. Variants whose library is not installed,
and commits without fasttape.bench, are skipped.
"""

SKIP = NotImplementedError              # asv's way to skip a parameter combination

try:
    from fasttape import bench as _bench
except ImportError:                     # a commit older than fasttape.bench
    _bench = None

if _bench is not None:
    # not "chain": its gradient is exactly 0 (the adjoint underflows); chain-live has
    # the same ops. The array, second-order and replay workloads have their own
    # modules (bench_arrays, bench_second_order, bench_replay).
    _WORKLOADS = [name for name, w in _bench.WORKLOADS.items() if name != "chain"
                  and getattr(w, "group", "scalar") == "scalar"]
    _VARIANTS = [name for name, v in _bench.VARIANTS.items()
                 if not v.slow and v.kind != "part"]
else:
    _WORKLOADS, _VARIANTS = ["none"], ["none"]


class Peers:
    params = [_WORKLOADS, _VARIANTS]
    param_names = ["workload", "variant"]
    timeout = 300
    repeat = (1, 5, 20.0)

    def setup(self, workload, variant):
        if _bench is None:
            raise SKIP("fasttape.bench is not in this commit")
        w = _bench.WORKLOADS[workload]
        v = w.setups.get(variant)
        if v is None:
            raise SKIP(f"{variant} does not run {workload}")
        try:
            ops = _bench.load(v.library)
        except ImportError:
            raise SKIP(f"{v.library} is not installed")
        try:
            self.case = v.setup(ops, w.make(ops), w.args)
        except _bench.NotApplicable:
            raise SKIP(f"{variant} does not apply to {workload}")

    def time_grad(self, workload, variant):
        self.case.call()
