"""Numerical derivatives by central differences, and a gradient checker built on them."""
import math

import numpy as np

from fasttape._containers import flatten
from fasttape.errors import GradientCheckError


def numerical_grad(fun, x, eps=1e-6):
    """Gradient of ``fun`` at ``x`` by central differences.

    Each component is (f(x + h e_i) - f(x - h e_i)) / 2h with h = eps * max(1, |x_i|):
    2 evaluations per input number, error O(h^2) from truncation plus O(ulp / h) from
    rounding (eps near the cube root of machine epsilon balances them).

    Parameters
    ----------
    fun : callable
        Takes ``x`` and returns a real scalar.
    x : number, or (nested) tuple, list or dict of numbers
    eps : float
        Relative step.

    Returns
    -------
    The gradient, with the structure of ``x`` and float entries.
    """
    flat, structure = flatten(x)
    flat = [float(v) for v in flat]
    grads = []
    for i, xi in enumerate(flat):
        h = eps * max(1.0, abs(xi))
        up = list(flat)
        down = list(flat)
        up[i] = xi + h
        down[i] = xi - h
        f_up = _as_float(fun(structure.rebuild(up)))
        f_down = _as_float(fun(structure.rebuild(down)))
        grads.append((f_up - f_down) / (up[i] - down[i]))
    return structure.rebuild(grads)


def _as_float(value):
    if hasattr(value, "value") and hasattr(value, "tape"):
        value = value.value
    return float(value)


def check_grads(fun, modes=("rev",), order=1, eps=1e-6, rtol=1e-5, atol=1e-6):
    """Return a checker that compares fasttape's gradient of ``fun`` with central
    differences at given arguments, and raises if they disagree.

    ``check_grads(f)(*args)`` differentiates with respect to every positional argument.
    Each component must satisfy ``|ad - numeric| <= atol + rtol * |numeric|``; the
    value of the recorded function must match ``fun`` on floats the same way.

    Parameters
    ----------
    fun : callable
    modes : sequence of str
        Which AD modes to check; "rev" (reverse mode) is available.
    order : int
        Highest derivative order to check; 1 is available.
    eps, rtol, atol : float
        Finite-difference step and tolerances.

    Raises
    ------
    GradientCheckError
        With one line per disagreeing component: argument, index, AD and numerical
        values, and the error against the tolerance.
    """
    from fasttape.differential import value_and_grad

    modes = tuple(modes)
    unknown = [m for m in modes if m not in ("rev", "fwd")]
    if unknown:
        raise ValueError(f"unknown mode(s) {unknown}; the modes are 'rev' and 'fwd'")
    if "fwd" in modes:
        raise NotImplementedError("forward-mode checks need forward mode, which "
                                  "fasttape does not have yet; use modes=('rev',)")
    if order != 1:
        raise NotImplementedError("only first-order derivatives can be checked so far")

    def checker(*args):
        if not args:
            raise TypeError("check_grads(f)(*args) needs at least one argument")
        argnums = tuple(range(len(args)))
        value, ad_grads = value_and_grad(fun, argnum=argnums)(*args)
        problems = []
        plain_value = _as_float(fun(*args))
        if not _close(value, plain_value, rtol, atol):
            problems.append(f"  value: recorded {value!r}, plain {plain_value!r}")
        for i in argnums:
            def partial(xi, i=i):
                call = list(args)
                call[i] = xi
                return fun(*call)
            numeric = numerical_grad(partial, args[i], eps=eps)
            ad_flat, _ = flatten(ad_grads[i])
            num_flat, _ = flatten(numeric)
            for k, (a, n) in enumerate(zip(ad_flat, num_flat)):
                if not _close(a, n, rtol, atol):
                    where = f"argument {i}" + (f"[{k}]" if len(num_flat) > 1 else "")
                    problems.append(
                        f"  {where}: reverse mode {a!r}, central differences {n!r}, "
                        f"|difference| {abs(a - n):.3g} > tolerance "
                        f"{atol + rtol * abs(n):.3g}")
        if problems:
            name = getattr(fun, "__name__", repr(fun))
            raise GradientCheckError(
                f"check_grads({name}) at {args!r}: {len(problems)} disagreement(s)\n"
                + "\n".join(problems))
        return True

    return checker


def _close(a, b, rtol, atol):
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= atol + rtol * abs(b)
