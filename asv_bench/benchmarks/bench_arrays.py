"""Array workloads: fasttape.numpy records one tape node per array operation, and its
reverse sweep runs each node's derivative as a NumPy/BLAS call.

The workloads are fasttape.bench's "arrays" group (defined there once, written for
every library): vectorised Rosenbrock (n = 10,000), logistic regression (X 10000x100),
an MLP 784-256-10 (batch 256, softmax cross-entropy), a chain of 100 ops on arrays of
10 (the per-op overhead) and ADBench's GMM objective vectorised (K=5, d=10, n=1000).
`Arrays` times f on NumPy arrays (the baseline), recording, the whole grad call and
their ratio; `ArraysSweep` the reverse sweep of a recorded tape;
`SmallArrayOverhead` the time per op of the 100-op chain; `ArrayPeers` the speedup
of fasttape's grad over each peer's (peer time / fasttape time, interleaved).
"""
from .common import bench_case, bench_workloads, interleaved_ratio, median_time

WORKLOADS = bench_workloads("arrays")
# mygrad and jax eager are left to fasttape.bench: each asv process costs ~1-2 s
# (imports), and the whole --quick suite should stay near 3 minutes
PEERS = ["autograd", "torch", "jax.jit"]


class Arrays:
    params = WORKLOADS
    param_names = ["workload"]
    timeout = 300

    def setup(self, workload):
        self.f = bench_case(workload, "numpy f").call
        self.grad = bench_case(workload, "fasttape").call
        self.record = bench_case(workload, "fasttape record").call

    def time_f(self, workload):
        self.f()

    def time_record(self, workload):
        self.record()

    def time_grad(self, workload):
        self.grad()

    def peakmem_grad(self, workload):
        self.grad()

    def track_grad_over_f(self, workload):
        return interleaved_ratio(self.grad, self.f)
    track_grad_over_f.unit = "ratio"


class ArraysSweep:
    """The reverse sweep alone (y.backward() on a tape recorded in setup)."""
    params = WORKLOADS
    param_names = ["workload"]
    timeout = 300

    def setup(self, workload):
        self.sweep = bench_case(workload, "fasttape sweep").call

    def time_reverse(self, workload):
        self.sweep()


class SmallArrayOverhead:
    """Microseconds per array op of the 100-op chain on arrays of 10: what recording
    an op costs over NumPy's own call."""
    timeout = 120

    def setup(self):
        self.f = bench_case("small-arrays", "numpy f").call
        self.grad = bench_case("small-arrays", "fasttape").call
        from fasttape import bench
        self.n_ops = bench.WORKLOADS["small-arrays"].n_ops

    def track_f_us_per_op(self):
        return median_time(self.f) * 1e6 / self.n_ops
    track_f_us_per_op.unit = "us"

    def track_grad_us_per_op(self):
        return median_time(self.grad) * 1e6 / self.n_ops
    track_grad_us_per_op.unit = "us"


class ArrayPeers:
    """time(peer's gradient) / time(fasttape's), timed alternately in one process.
    (No peakmem_ for peers: a process's peak is dominated by importing torch/jax.)"""
    params = [WORKLOADS, PEERS]
    param_names = ["workload", "peer"]
    timeout = 300

    def setup(self, workload, peer):
        self.peer = bench_case(workload, peer).call
        self.grad = bench_case(workload, "fasttape").call

    def track_peer_over_fasttape(self, workload, peer):
        return interleaved_ratio(self.peer, self.grad)
    track_peer_over_fasttape.unit = "ratio"
