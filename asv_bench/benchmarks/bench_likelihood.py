"""A small likelihood loop: the log-likelihood of a two-component 1-D Gaussian
mixture over n data points (about 10 ops per point, with exp, log1p, logaddexp)."""
from .common import GMM_POINT, _Calls, _Sweep, gmm_data, gmm_fasttape, gmm_float


def make(n):
    data = gmm_data(n)
    return (lambda p: gmm_float(p, data), lambda p: gmm_fasttape(p, data),
            list(GMM_POINT))


class GaussianMixture(_Calls):
    params = [100, 1000]
    make = staticmethod(make)


class GaussianMixtureSweep(_Sweep):
    params = [100, 1000]
    make = staticmethod(make)
