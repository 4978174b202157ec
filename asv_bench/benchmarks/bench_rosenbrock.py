"""Rosenbrock as a Python loop over n floats, the canonical scalar workload:
s += 100 * (x[i+1] - x[i]**2)**2 + (1 - x[i])**2; track_grad_over_f is the
gradient's cost in units of the plain float function's."""
from .common import FLOAT_OPS, _Calls, _Sweep, require, workloads


def make(n):
    require()
    rosenbrock = workloads.make_rosenbrock(FLOAT_OPS)   # no elementary functions
    return rosenbrock, rosenbrock, workloads.uniform_point(n)


class Rosenbrock(_Calls):
    params = [100, 1000, 10_000]
    make = staticmethod(make)


class RosenbrockSweep(_Sweep):
    params = [100, 1000, 10_000]
    make = staticmethod(make)
