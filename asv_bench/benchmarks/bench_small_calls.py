"""Small calls: functions of a few numbers called many times, traced once and
replayed one C call per derivative (fasttape.bench's "small calls" workloads): a
bundle-adjustment residual of one observation (17 numbers to 3) and the Jacobian of
an ODE right-hand side (Lorenz-96, 12 states), at 1000 points each; the eager
jacobian of the first, recorded per point; and a grad nested inside a grad.

time_* benchmarks evaluate all points per call; the track_ ratios are per point,
against f on Python floats. jax.jit and CasADi are left to ``python -m
fasttape.bench`` (their rows run there in the same process).
"""
from .common import bench_case, interleaved_ratio


class _SmallCalls:
    timeout = 300
    workload = None

    def setup(self):
        self.f = bench_case(self.workload, "python f").call
        self.call = bench_case(self.workload, "traced g(z)").call
        self.grad = bench_case(self.workload, "traced g.grad").call
        self.jacobian = bench_case(self.workload, "traced g.jacobian").call
        self.jacobian_out = bench_case(self.workload, "traced jacobian out=").call
        self.jacobian_many = bench_case(self.workload, "jacobian_many").call

    def time_f(self):
        self.f()

    def time_call(self):
        self.call()

    def time_grad(self):
        self.grad()

    def time_jacobian(self):
        self.jacobian()

    def time_jacobian_out(self):
        self.jacobian_out()

    def time_jacobian_many(self):
        self.jacobian_many()

    def track_call_over_f(self):
        """Replayed g(z) over f on floats."""
        return interleaved_ratio(self.call, self.f)
    track_call_over_f.unit = "ratio"

    def track_grad_over_f(self):
        """Replayed gradient (of half the squared residual) over f on floats."""
        return interleaved_ratio(self.grad, self.f)
    track_grad_over_f.unit = "ratio"

    def track_jacobian_over_f(self):
        """Replayed Jacobian over f on floats."""
        return interleaved_ratio(self.jacobian, self.f)
    track_jacobian_over_f.unit = "ratio"

    def track_jacobian_many_over_f(self):
        """jacobian_many per point over f on floats."""
        return interleaved_ratio(self.jacobian_many, self.f)
    track_jacobian_many_over_f.unit = "ratio"


class BundleAdjustmentResidual(_SmallCalls):
    workload = "ba-residual"


class OdeJacobian(_SmallCalls):
    workload = "ode-jacobian"


class EagerJacobian:
    """fasttape.jacobian(f)(z) recorded afresh per point (the eager fast path)."""
    timeout = 300

    def setup(self):
        self.f = bench_case("ba-residual", "python f").call
        self.eager = bench_case("ba-residual", "fasttape").call

    def time_eager_jacobian(self):
        self.eager()

    def track_eager_jacobian_over_f(self):
        return interleaved_ratio(self.eager, self.f)
    track_eager_jacobian_over_f.unit = "ratio"


class NestedGrad:
    """A grad inside a grad (fasttape.bench's "nested-grad"): the gradient of a sum of
    squared Lennard-Jones forces, each force fasttape.grad of the potential, against
    the same with the force written out by hand."""
    timeout = 300

    def setup(self):
        self.nested = bench_case("nested-grad", "fasttape").call
        self.by_hand = bench_case("nested-grad", "fasttape by hand").call

    def time_nested(self):
        self.nested()

    def time_by_hand(self):
        self.by_hand()

    def track_nested_over_by_hand(self):
        return interleaved_ratio(self.nested, self.by_hand)
    track_nested_over_by_hand.unit = "ratio"
