"""The same scalar workloads with every installed peer, so fasttape's numbers have
context: the whole gradient call of each variant of fasttape.bench (autograd,
PyTorch, micrograd), at the sizes fasttape.bench uses. JAX is left to
``python -m fasttape.bench``: eager JAX takes seconds a call on these loops and
jax.jit tens of seconds to compile them. Variants whose library is not installed,
and commits without fasttape.bench, are skipped.
"""
from .common import bench_case, bench_catalog

_catalog = bench_catalog()
if _catalog is not None:
    # not "chain": its gradient is exactly 0 (the adjoint underflows); chain-live has
    # the same ops. The array, second-order and replay workloads have their own
    # modules (bench_arrays, bench_second_order, bench_replay).
    _WORKLOADS = [name for name, w in _catalog.WORKLOADS.items() if name != "chain"
                  and w.group == "scalar"]
    _VARIANTS = [name for name, v in _catalog.VARIANTS.items()
                 if not v.slow and v.kind != "part"]
else:
    _WORKLOADS, _VARIANTS = ["none"], ["none"]


class Peers:
    params = [_WORKLOADS, _VARIANTS]
    param_names = ["workload", "variant"]
    timeout = 300
    repeat = (1, 5, 20.0)

    def setup(self, workload, variant):
        self.case = bench_case(workload, variant)

    def time_grad(self, workload, variant):
        self.case.call()
