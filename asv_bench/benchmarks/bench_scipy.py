"""fasttape.scipy: the special functions and the multivariate normal density.

`SpecialFunctions` times gammaln and digamma on 10^6 values (SciPy's ufunc, the
baseline) and the gradient of their sum (one array node; its reverse step is the
derivative in C: digamma, trigamma), with their ratio. `MultivariateNormal` times
multivariate_normal.logpdf with a 100x100 covariance at 1,000 points (SciPy's, the
baseline) and its gradient in (x, mean, cov), against autograd's and PyTorch's
gradients of the same density (interleaved ratios: peer time / fasttape time).
"""
import numpy as np

from .common import SKIP, interleaved_ratio

try:
    from fasttape.scipy import stats as _stats
except ImportError:            # (a commit without fasttape.scipy.stats)
    _stats = None


def _require():
    if _stats is None:
        raise SKIP("fasttape.scipy.stats is not in this commit")


class SpecialFunctions:
    params = ["gammaln", "digamma"]
    param_names = ["function"]
    timeout = 120

    def setup(self, function):
        _require()
        import scipy.special

        import fasttape as ft
        import fasttape.numpy as fnp
        from fasttape.scipy import special
        self.x = np.random.default_rng(0).uniform(0.1, 20.0, 10 ** 6)
        ours = getattr(special, function)
        self.f = lambda: getattr(scipy.special, function)(self.x)
        grad = ft.grad(lambda v: fnp.sum(ours(v)))
        self.grad = lambda: grad(self.x)

    def time_f(self, function):
        self.f()

    def time_grad(self, function):
        self.grad()

    def track_grad_over_f(self, function):
        return interleaved_ratio(self.grad, self.f)
    track_grad_over_f.unit = "ratio"


class MultivariateNormal:
    timeout = 300

    def setup(self):
        _require()
        import scipy.stats

        import fasttape as ft
        import fasttape.numpy as fnp
        rng = np.random.default_rng(0)
        d, n = 100, 1000
        a = rng.standard_normal((d, d))
        self.args = (rng.standard_normal((n, d)), rng.standard_normal(d),
                     a @ a.T / d + np.eye(d))
        self.f = lambda: scipy.stats.multivariate_normal.logpdf(*self.args)
        grad = ft.grad(lambda x, m, c: fnp.sum(_stats.multivariate_normal.logpdf(x, m, c)),
                       argnum=(0, 1, 2))
        self.grad = lambda: grad(*self.args)

    def time_f(self):
        self.f()

    def time_grad(self):
        self.grad()

    def track_grad_over_f(self):
        return interleaved_ratio(self.grad, self.f)
    track_grad_over_f.unit = "ratio"

    def track_autograd_over_fasttape(self):
        import autograd
        import autograd.numpy as anp
        import autograd.scipy.stats.multivariate_normal as mvn
        grad = autograd.grad(lambda x, m, c: anp.sum(mvn.logpdf(x, m, c)), argnum=(0, 1, 2))
        return interleaved_ratio(lambda: grad(*self.args), self.grad)
    track_autograd_over_fasttape.unit = "ratio"

    def track_torch_over_fasttape(self):
        import torch
        torch.set_num_threads(1)
        tensors = [torch.from_numpy(v) for v in self.args]

        def grad():
            x, m, c = (t.clone().requires_grad_() for t in tensors)
            torch.distributions.MultivariateNormal(m, covariance_matrix=c).log_prob(
                x).sum().backward()
            return x.grad, m.grad, c.grad
        return interleaved_ratio(grad, self.grad)
    track_torch_over_fasttape.unit = "ratio"
