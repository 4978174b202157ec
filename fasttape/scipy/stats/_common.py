"""What the distributions share: telling Variables from constants, standardizing by
loc and scale, x log y with SciPy's 0 log 0 = 0, the refusal of parameters whose
derivative fasttape does not give, and the gamma distribution's log density and cdf
(chi2's too: chi2(df) is gamma(df/2) with twice the scale)."""
import numpy as np

import fasttape.numpy as fnp
from fasttape._arrays import ArrayVariable
from fasttape._variable import Variable
from fasttape.errors import MissingRuleError
from fasttape.scipy.special import gammainc, gammaln


def is_variable(x):
    return type(x) is Variable or type(x) is ArrayVariable


def any_variable(*xs):
    return any(is_variable(x) for x in xs)


def value(x):
    return x.value if is_variable(x) else x


def refuse_variable(function, argument, x):
    """MissingRuleError when x, argument `argument` of `function`, is a Variable: its
    derivative there is not given (a discrete argument, or a shape parameter of a
    distribution function written with gammainc/betainc)."""
    if is_variable(x):
        raise MissingRuleError(
            f"fasttape.scipy.stats.{function} is not differentiable in {argument}: pass "
            f"it as a constant (autograd gives no derivative there either)")


def xlogy(a, x, log=fnp.log):
    """a * log(x), and 0 where a == 0 (also where log(x) is -inf), as scipy.special.xlogy;
    log=log1p gives xlog1py. With a a Variable the product is taken as it is (a == 0 at
    x == 0 is then nan): a Variable exponent meets x == 0 only at a density's edge."""
    if is_variable(a):
        return a * log(x)
    a = np.asarray(a, dtype=float)
    zero = a == 0.0
    if not zero.any():
        return a * log(x)
    if not is_variable(x):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(zero, 0.0, a * log(x))
    safe = fnp.where(np.broadcast_to(zero, np.broadcast(zero, value(x)).shape), 0.5, x)
    return fnp.where(zero, 0.0, a * log(safe))


def log1m(x):
    return fnp.log1p(-x)


def inside_support(z, mask_source, safe):
    """z with the points where the constant mask is True replaced by `safe`, a point of
    the support: the density's formula then meets no log of a negative number there
    (outside() puts the value those points take)."""
    mask = np.asarray(mask_source)
    if not mask.any():
        return z
    return fnp.where(mask, safe, z)


def outside(mask_source, out, fill):
    """out where the constant condition mask_source is False, fill where it is True
    (outside a distribution's support: 0 for densities, -inf for their logs)."""
    mask = np.asarray(mask_source)
    if not mask.any():
        return out
    return fnp.where(mask, fill, out)


def gamma_logpdf(x, a, loc, scale):
    """The gamma distribution's log density, recorded: (a - 1) log z - z - gammaln(a)
    - log(scale), z = (x - loc)/scale; -inf below 0."""
    z = (x - loc) / scale
    below = np.asarray(value(z)) < 0
    z = inside_support(z, below, 1.0)
    out = xlogy(a - 1.0, z) - z - gammaln(a) - fnp.log(scale)
    return outside(below, out, -np.inf)


def gamma_cdf(x, a, loc, scale):
    """The gamma distribution's cdf, recorded: gammainc(a, z), z = (x - loc)/scale
    (0 below 0); a a constant (gammainc's derivative in a is not given)."""
    z = (x - loc) / scale
    return gammainc(a, fnp.maximum(z, 0.0) if np.any(np.asarray(value(z)) < 0) else z)
