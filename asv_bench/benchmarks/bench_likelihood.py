"""A small likelihood loop: the log-likelihood of a two-component 1-D Gaussian
mixture over n data points (about 10 ops per point, with exp, log1p, logaddexp)."""
from .common import FLOAT_OPS, TAPE_OPS, _Calls, _Sweep, require, workloads


def make(n):
    require()
    data = workloads.gmm_data(n)
    return (workloads.make_gmm(FLOAT_OPS, data), workloads.make_gmm(TAPE_OPS, data),
            list(workloads.GMM_POINT))


class GaussianMixture(_Calls):
    params = [100, 1000]
    make = staticmethod(make)


class GaussianMixtureSweep(_Sweep):
    params = [100, 1000]
    make = staticmethod(make)
