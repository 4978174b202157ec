"""Record once, replay in C: the Rosenbrock loop over n = 1000 floats traced once
(``g = fasttape.trace(f, x)``) and its gradient evaluated at 100 points
(fasttape.bench's "replay" workload); the vectorised Rosenbrock (n = 10,000) at 32
points ("replay-vec": array code replayed).

time_* benchmarks evaluate all 100 points per call (time_trace: one trace); the
track_ ratios are per point. CasADi (when installed) builds the same function on SX
symbols and calls the casadi.Function of its gradient. jax.jit is left to
``python -m fasttape.bench``: compiling the unrolled loop takes 13 to 22 s.
"""
from .common import bench_case, interleaved_ratio


class Replay:
    timeout = 300

    def setup(self):
        self.f = bench_case("replay", "python f")
        self.n_points = self.f.per
        self.f = self.f.call
        self.trace = bench_case("replay", "fasttape trace").call
        self.call = bench_case("replay", "traced g(x)").call
        self.grad = bench_case("replay", "traced g.grad").call
        self.grad_many_1 = bench_case("replay", "grad_many x1").call
        self.grad_many_2 = bench_case("replay", "grad_many x2").call

    def time_f(self):
        self.f()

    def time_trace(self):
        self.trace()

    def time_call(self):
        self.call()

    def time_grad(self):
        self.grad()

    def time_grad_many_1_thread(self):
        self.grad_many_1()

    def time_grad_many_2_threads(self):
        self.grad_many_2()

    def peakmem_trace(self):
        self.trace()

    def track_trace_over_f(self):
        """One trace, in units of one call of f (per point)."""
        return interleaved_ratio(self.trace, self.f) * self.n_points
    track_trace_over_f.unit = "ratio"

    def track_grad_over_f(self):
        """Replayed gradient per point over f per point."""
        return interleaved_ratio(self.grad, self.f)
    track_grad_over_f.unit = "ratio"

    def track_grad_many_2_threads_speedup(self):
        """time(grad_many, 1 thread) / time(grad_many, 2 threads)."""
        return interleaved_ratio(self.grad_many_1, self.grad_many_2)
    track_grad_many_2_threads_speedup.unit = "ratio"


class ReplayCasadi:
    timeout = 300

    def setup(self):
        self.build = bench_case("replay", "casadi build").call
        self.casadi = bench_case("replay", "casadi").call
        self.grad = bench_case("replay", "traced g.grad").call

    def time_build(self):
        self.build()

    def track_casadi_over_traced_grad(self):
        """CasADi's gradient Function per point over fasttape's replayed grad."""
        return interleaved_ratio(self.casadi, self.grad)
    track_casadi_over_traced_grad.unit = "ratio"


class ReplayArrays:
    """Array code replayed: the tape's nodes re-evaluate in their own arrays."""
    timeout = 300

    def setup(self):
        f = bench_case("replay-vec", "numpy f")
        self.n_points = f.per
        self.f = f.call
        self.fresh = bench_case("replay-vec", "fasttape").call
        self.trace = bench_case("replay-vec", "fasttape trace").call
        self.call = bench_case("replay-vec", "traced g(x)").call
        self.grad = bench_case("replay-vec", "traced g.grad").call
        self.grad_many_1 = bench_case("replay-vec", "grad_many x1").call
        self.grad_many_2 = bench_case("replay-vec", "grad_many x2").call

    def time_call(self):
        self.call()

    def time_grad(self):
        self.grad()

    def time_grad_many_1_thread(self):
        self.grad_many_1()

    def time_grad_many_2_threads(self):
        self.grad_many_2()

    def track_grad_over_f(self):
        """Replayed gradient per point over NumPy f per point."""
        return interleaved_ratio(self.grad, self.f)
    track_grad_over_f.unit = "ratio"

    def track_grad_over_fresh_grad(self):
        """Replayed gradient over fasttape.grad recording each time."""
        return interleaved_ratio(self.grad, self.fresh)
    track_grad_over_fresh_grad.unit = "ratio"

    def track_grad_many_2_threads_speedup(self):
        """time(grad_many, 1 thread) / time(grad_many, 2 threads)."""
        return interleaved_ratio(self.grad_many_1, self.grad_many_2)
    track_grad_many_2_threads_speedup.unit = "ratio"
