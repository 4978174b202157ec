"""Fan-out / fan-in: m products of pairs of 4 inputs, summed. Each input is used
m / 2 times, so the sweep piles its adjoint updates onto 4 slots."""
from .common import FLOAT_OPS, _Calls, _Sweep, require, workloads


def make(m):
    require()
    fan = workloads.make_fan(FLOAT_OPS, m)              # no elementary functions
    return fan, fan, workloads.uniform_point(4)


class FanOutFanIn(_Calls):
    params = [1000, 100_000]
    param_names = ["m"]
    make = staticmethod(make)


class FanOutFanInSweep(_Sweep):
    params = [1000, 100_000]
    param_names = ["m"]
    make = staticmethod(make)
