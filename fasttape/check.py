"""Numerical derivatives by central differences, and a gradient checker built on them."""
import math

import numpy as np

from fasttape._containers import flatten
from fasttape.differential import jvp, value_and_grad, vjp
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
    x : number, array, or a container of them (tuples, lists, dicts, dataclasses...)
    eps : float
        Relative step.

    Returns
    -------
    The gradient, with the structure of ``x``: floats for numbers, float64 arrays of
    their shapes for arrays.
    """
    return _numeric_grad_any(fun, x, eps)


def _as_float(value):
    if hasattr(value, "value") and hasattr(value, "tape"):
        value = value.value
    return float(value)


def check_grads(fun, modes=("rev",), order=1, eps=1e-6, rtol=1e-5, atol=1e-6):
    """Return a checker that compares fasttape's derivatives of ``fun`` with central
    differences at given arguments, and raises if they disagree.

    ``check_grads(f, modes=("fwd", "rev"), order=2)(*args)`` differentiates with
    respect to every positional argument (numbers, arrays, or containers of them):

    - for a scalar function, the reverse-mode gradient is compared component by
      component with central differences (a readable report per component);
    - for every mode, the directional derivative ``<u, J v>`` along random directions
      is compared three ways: by jvp (``"fwd"``), by vjp (``"rev"``) and by central
      differences;
    - with ``order`` > 1, the same checks are applied to the derivative functions
      themselves, as functions of the point and the direction (``(x, u) -> vjp(f,
      x)(u)`` and ``(x, v) -> jvp(f, x, v)``), recursively.

    Each comparison must satisfy ``|ad - numeric| <= atol + rtol * |numeric|``.

    Raises
    ------
    GradientCheckError
        With one line per disagreement: what was compared, the values, the error
        against the tolerance.
    """
    modes = tuple(modes)
    unknown = [m for m in modes if m not in ("rev", "fwd")]
    if unknown:
        raise ValueError(f"unknown mode(s) {unknown}; the modes are 'rev' and 'fwd'")
    if type(order) is not int or order < 1:
        raise ValueError(f"order must be a positive int, got {order!r}")

    def checker(*args):
        if not args:
            raise TypeError("check_grads(f)(*args) needs at least one argument")
        problems = []
        rng = np.random.default_rng(0)
        if "rev" in modes and _scalar_output(fun, args):
            problems += _componentwise(fun, args, eps, rtol, atol)
        _directional(fun, args, modes, order, eps, rtol, atol, rng, problems, "")
        if problems:
            name = getattr(fun, "__name__", repr(fun))
            raise GradientCheckError(
                f"check_grads({name}) at {args!r}: {len(problems)} disagreement(s)\n"
                + "\n".join(problems))
        return True

    return checker


def _scalar_output(fun, args):
    out = _plain(fun(*args))
    return not isinstance(out, (list, tuple, dict)) and np.ndim(out) == 0


def _plain(x):
    if hasattr(x, "tape"):
        return x.value
    if isinstance(x, (list, tuple)):
        return type(x)(_plain(v) for v in x)
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    return x


def _componentwise(fun, args, eps, rtol, atol):
    problems = []
    argnums = tuple(range(len(args)))
    value, ad_grads = value_and_grad(fun, argnum=argnums)(*args)
    plain_value = _as_float(fun(*args))
    if not _close(float(value), plain_value, rtol, atol):
        problems.append(f"  value: recorded {value!r}, plain {plain_value!r}")
    for i in argnums:
        def partial(xi, i=i):
            call = list(args)
            call[i] = xi
            return fun(*call)
        numeric = _numeric_grad_any(partial, args[i], eps)
        ad_flat = _flat_values(ad_grads[i])
        num_flat = _flat_values(numeric)
        for k, (a, n) in enumerate(zip(ad_flat, num_flat)):
            if not _close(a, n, rtol, atol):
                where = f"argument {i}" + (f"[{k}]" if len(num_flat) > 1 else "")
                problems.append(
                    f"  {where}: reverse mode {a!r}, central differences {n!r}, "
                    f"|difference| {abs(a - n):.3g} > tolerance "
                    f"{atol + rtol * abs(n):.3g}")
    return problems


def _numeric_grad_any(fun, x, eps):
    """numerical_grad for numbers, arrays and containers of them."""
    flat, structure = flatten(x)
    vector = _to_vector(flat)

    def f(vec):
        return _as_float(fun(structure.rebuild(_from_vector(vec, flat))))
    grads = np.empty(vector.size)
    for j in range(vector.size):
        h = eps * max(1.0, abs(vector[j]))
        up = vector.copy()
        down = vector.copy()
        up[j] += h
        down[j] -= h
        grads[j] = (f(up) - f(down)) / (up[j] - down[j])
    return structure.rebuild(_from_vector(grads, flat))


def _to_vector(flat):
    return np.concatenate([np.ravel(np.asarray(_plain(v), dtype=float)) for v in flat]) \
        if flat else np.zeros(0)


def _from_vector(vec, like):
    out = []
    start = 0
    for v in like:
        n = int(np.size(_plain(v)))
        piece = vec[start:start + n]
        start += n
        out.append(float(piece[0]) if np.ndim(_plain(v)) == 0 and not isinstance(
            v, np.ndarray) else piece.reshape(np.shape(_plain(v))))
    return out


def _flat_values(x):
    flat, _ = flatten(_plain(x), variables=True)
    return [float(v) for part in flat for v in np.ravel(np.asarray(part, dtype=float))]


def _directional(fun, args, modes, order, eps, rtol, atol, rng, problems, label):
    """<u, J v> by each mode against central differences; then the same, one order
    up, for the derivative functions."""
    flat, structures = [], []
    for a in args:
        f_a, s_a = flatten(a, variables=True)
        flat.append(f_a)
        structures.append(s_a)
    lengths = [len(f) for f in flat]
    all_flat = [v for f in flat for v in f]
    x0 = _to_vector(all_flat)

    def unpack(vec):
        values = _from_vector(vec, all_flat)
        out, start = [], 0
        for s, n in zip(structures, lengths):
            out.append(s.rebuild(values[start:start + n]))
            start += n
        return out

    def f_vec(vec):
        return np.asarray(_flat_values(fun(*unpack(vec))), dtype=float)

    out0 = f_vec(x0)
    if out0.size == 0 or x0.size == 0:
        return
    v = rng.normal(size=x0.size)
    u = rng.normal(size=out0.size)
    h = eps * max(1.0, float(np.max(np.abs(x0))))
    numeric = float(u @ (f_vec(x0 + h * v) - f_vec(x0 - h * v)) / (2 * h))
    out_struct = flatten(_plain(fun(*args)), variables=True)
    tangents = unpack(v)
    cotangent = _rebuild_like(out_struct, u)
    for mode in modes:
        if mode == "fwd":
            _, t_out = jvp(fun, args, tangents)
            ad = float(u @ np.asarray(_flat_values(t_out)))
        else:
            _, vjp_fn = vjp(fun, *args)
            ad = float(v @ _to_vector([leaf for c in vjp_fn(cotangent)
                                       for leaf in flatten(_plain(c), variables=True)[0]]))
        if not _close(ad, numeric, rtol, atol):
            problems.append(
                f"  {label}<u, J v> by {'jvp' if mode == 'fwd' else 'vjp'}: {ad!r}, "
                f"central differences {numeric!r}, |difference| {abs(ad - numeric):.3g}"
                f" > tolerance {atol + rtol * abs(numeric):.3g}")
    if order > 1:
        # the derivative functions, differentiated in the point AND the direction
        # (the last argument): (x, v) -> J(x) v and (x, u) -> J(x)^T u
        for mode in modes:
            if mode == "fwd":
                def derivative(*a):
                    return jvp(fun, a[:-1], a[-1])[1]
                direction = tuple(tangents)
            else:
                def derivative(*a):
                    return vjp(fun, *a[:-1])[1](a[-1])
                direction = cotangent
            _directional(derivative, (*args, direction), modes, order - 1, eps, rtol,
                         atol, rng, problems, f"{label}d({mode}) ")


def _rebuild_like(out_struct, vector):
    flat, structure = out_struct
    return structure.rebuild(_from_vector(vector, flat))


def _close(a, b, rtol, atol):
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= atol + rtol * abs(b)
