"""scipy.stats's distributions, differentiable: one module per distribution, as
autograd.scipy.stats (``fasttape.scipy.stats.norm.logpdf``), each holding SciPy's
function names with SciPy's arguments. The densities are compositions of
fasttape.numpy and fasttape.scipy.special, differentiable in every continuous
argument; the distribution functions (cdf, sf) of t, gamma, beta, chi2 and poisson
are not differentiable in their shape parameters (MissingRuleError names them)."""
from fasttape.scipy.stats import (beta, chi2, dirichlet, gamma, multivariate_normal,  # noqa: F401
                                  norm, poisson, t)

__all__ = ["beta", "chi2", "dirichlet", "gamma", "multivariate_normal", "norm",
           "poisson", "t"]
