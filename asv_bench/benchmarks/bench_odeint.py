"""fasttape.scipy.integrate.odeint: a 10-state recurrent network over 100 time points.

`time_f` is SciPy's odeint (the forward solve, the baseline), `time_grad` the gradient
of the sum of the solution with respect to y0, the time points and both arguments
(the adjoint solve), `track_grad_over_f` their interleaved ratio and `peakmem_grad`
the gradient's peak memory. tools/odeint_bench.py prints the same ratio and the peak
memory over spans of 10^3 and 10^5 solver steps.
"""
import numpy as np

from .common import SKIP, interleaved_ratio

try:
    from fasttape.scipy import integrate as _integrate
except ImportError:            # (a commit without fasttape.scipy.integrate)
    _integrate = None


def _network(y, t, W, c):
    import fasttape.numpy as fnp
    return fnp.tanh(W @ y + c) - 0.5 * y


class Odeint:
    timeout = 300

    def setup(self):
        if _integrate is None:
            raise SKIP("fasttape.scipy.integrate is not in this commit")
        import scipy.integrate

        import fasttape as ft
        import fasttape.numpy as fnp
        rng = np.random.default_rng(0)
        n = 10
        self.args = (rng.standard_normal(n), np.linspace(0.0, 10.0, 100),
                     0.8 * rng.standard_normal((n, n)) / np.sqrt(n),
                     rng.standard_normal(n))
        y0, t, W, c = self.args
        self.f = lambda: scipy.integrate.odeint(_network, y0, t, args=(W, c))
        grad = ft.grad(lambda y0, t, W, c: fnp.sum(
            _integrate.odeint(_network, y0, t, args=(W, c))), (0, 1, 2, 3))
        self.grad = lambda: grad(*self.args)

    def time_f(self):
        self.f()

    def time_grad(self):
        self.grad()

    def peakmem_grad(self):
        self.grad()

    def track_grad_over_f(self):
        return interleaved_ratio(self.grad, self.f)
    track_grad_over_f.unit = "ratio"
