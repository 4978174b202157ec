"""Fan-out / fan-in: m products of pairs of 4 inputs, summed. Each input is used
m / 2 times, so the sweep piles its adjoint updates onto 4 slots."""
from .common import _Calls, _Sweep, fan, uniform_point


def make(m):
    x0 = uniform_point(4)
    return (lambda x: fan(x, m), lambda x: fan(x, m), x0)


class FanOutFanIn(_Calls):
    params = [1000, 100_000]
    param_names = ["m"]
    make = staticmethod(make)


class FanOutFanInSweep(_Sweep):
    params = [1000, 100_000]
    param_names = ["m"]
    make = staticmethod(make)
