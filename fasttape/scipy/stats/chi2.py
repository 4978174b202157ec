"""The chi-squared distribution with df degrees of freedom (the gamma distribution
with shape df/2 and scale 2), differentiable in x, df, loc and scale (the cdf not in
df: the derivative of gammainc in its shape parameter is not given, as in autograd)."""
import numpy as np
import scipy.stats as _stats

import fasttape.numpy as fnp
from fasttape.scipy.stats._common import any_variable, gamma_cdf, gamma_logpdf, refuse_variable

__all__ = ["pdf", "cdf", "logpdf"]


def logpdf(x, df, loc=0.0, scale=1.0):
    """The gamma log density with shape df/2 and scale 2 * scale: (df/2 - 1) log z - z/2
    - gammaln(df/2) - (df/2) log 2 - log(scale), z = (x - loc)/scale; -inf below 0."""
    if not any_variable(x, df, loc, scale):
        return _stats.chi2.logpdf(x, df, loc, scale)
    return gamma_logpdf(x, 0.5 * df, loc, 2.0 * scale)


def pdf(x, df, loc=0.0, scale=1.0):
    if not any_variable(x, df, loc, scale):
        return _stats.chi2.pdf(x, df, loc, scale)
    return fnp.exp(logpdf(x, df, loc, scale))


def cdf(x, df, loc=0.0, scale=1.0):
    """gammainc(df/2, z/2); differentiable in x, loc and scale, not in df."""
    refuse_variable("chi2.cdf", "df", df)
    if not any_variable(x, loc, scale):
        return _stats.chi2.cdf(x, df, loc, scale)
    return gamma_cdf(x, 0.5 * np.asarray(df, dtype=float), loc, 2.0 * scale)
