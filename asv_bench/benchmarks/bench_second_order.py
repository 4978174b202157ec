"""Second order: the Hessian (100 x 100) and one Hessian-vector product of the
extended Rosenbrock function written as a Python loop over 100 floats (fasttape.bench's
"hessian" and "hvp" workloads).

A list of floats takes fasttape's fast path (the function recorded once, then
forward-over-reverse sweeps in C: one per Hessian column); an ndarray takes the
general path (the gradient recorded, then swept forward). `time_hvp_record` and
`time_hvp_sweep` split the fast HVP into recording and the C sweep.
"""
from .common import bench_case, interleaved_ratio

# autograd (~0.45 s a Hessian, like torch) and jax eager are left to fasttape.bench
PEERS = ["torch", "jax.jit"]


class SecondOrder:
    timeout = 300

    def setup(self):
        self.f = bench_case("hvp", "python f").call
        self.hessian = bench_case("hessian", "fasttape").call
        self.hessian_ndarray = bench_case("hessian", "fasttape ndarray").call
        self.hvp = bench_case("hvp", "fasttape").call
        self.hvp_record = bench_case("hvp", "fasttape record").call
        self.hvp_sweep = bench_case("hvp", "fasttape sweep").call
        self.hvp_ndarray = bench_case("hvp", "fasttape ndarray").call

    def time_f(self):
        self.f()

    def time_hessian(self):
        self.hessian()

    def time_hessian_ndarray(self):
        self.hessian_ndarray()

    def time_hvp(self):
        self.hvp()

    def time_hvp_record(self):
        self.hvp_record()

    def time_hvp_sweep(self):
        self.hvp_sweep()

    def time_hvp_ndarray(self):
        self.hvp_ndarray()

    def peakmem_hessian(self):
        self.hessian()

    def track_hessian_over_f(self):
        return interleaved_ratio(self.hessian, self.f)
    track_hessian_over_f.unit = "ratio"

    def track_hvp_over_f(self):
        return interleaved_ratio(self.hvp, self.f)
    track_hvp_over_f.unit = "ratio"


class SecondOrderPeers:
    """time(peer) / time(fasttape) for the Hessian and the HVP, interleaved."""
    params = [["hessian", "hvp"], PEERS]
    param_names = ["quantity", "peer"]
    timeout = 300

    def setup(self, quantity, peer):
        self.peer = bench_case(quantity, peer).call
        self.mine = bench_case(quantity, "fasttape").call

    def track_peer_over_fasttape(self, quantity, peer):
        # torch's Hessian takes ~0.45 s: few rounds
        return interleaved_ratio(self.peer, self.mine, min_rounds=3)
    track_peer_over_fasttape.unit = "ratio"
