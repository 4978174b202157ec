"""``fixed_point(f, a, x0, distance, tol)``: the fixed point x* = f(a)(x*) found by
iterating from x0, differentiable in ``a`` by the implicit function theorem (no
differentiation through the iterations).

With J_x and J_a the Jacobians of f(a)(x) at x*, dx*/da = (I - J_x)^-1 J_a. The
reverse rule solves w = g + J_x^T w and the forward rule u = J_a t + J_x u by the same
iteration (both converge where the forward one does: f(a) a contraction near x*);
each step is one vector-Jacobian (or Jacobian-vector) product of the recorded f.
"""
from fasttape._vspace import vspace
from fasttape.differential import make_jvp, make_vjp
from fasttape.extend import defjvp, defvjp, primitive
from fasttape.misc.flatten import flatten


def fixed_point(f, a, x0, distance, tol):
    """Iterate ``x = f(a)(x)`` from ``x0`` until ``distance(x, previous) <= tol``; the
    result is differentiable with respect to ``a`` (a number, array, or container of
    them) by the implicit function theorem. ``x`` is a number or an array. ``f`` must
    take what it differentiates through ``a`` (not close over Variables)."""
    flat_a, unflatten = flatten(a)
    return _fixed_point(f, unflatten, flat_a, x0, distance, tol)


def _iterate(step, x0, distance, tol):
    x, previous = step(x0), x0
    while distance(x, previous) > tol:
        x, previous = step(x), x
    return x


@primitive
def _fixed_point(f, unflatten, flat_a, x0, distance, tol):
    return _iterate(f(unflatten(flat_a)), x0, distance, tol)


def _fixed_point_vjp(ans, f, unflatten, flat_a, x0, distance, tol):
    a = unflatten(flat_a)
    vjp_x, _ = make_vjp(lambda x: f(a)(x))(ans)
    vjp_a, _ = make_vjp(lambda flat: f(unflatten(flat))(ans))(flat_a)
    zero = vspace(ans).zeros()

    def vjp(g):
        w = _iterate(lambda w: g + vjp_x(w), zero, distance, tol)
        return vjp_a(w)
    return vjp


def _fixed_point_jvp(t, ans, f, unflatten, flat_a, x0, distance, tol):
    a = unflatten(flat_a)
    _, jvp_a = make_jvp(lambda flat: f(unflatten(flat))(ans))(flat_a)(t)
    jvp_x = make_jvp(lambda x: f(a)(x))(ans)
    return _iterate(lambda u: jvp_a + jvp_x(u)[1], vspace(ans).zeros(), distance, tol)


def _zero_vjp(ans, f, unflatten, flat_a, x0, distance, tol):
    # the fixed point does not depend on where the iteration starts
    return lambda g: vspace(x0).zeros()


def _zero_jvp(t, ans, *args):
    return vspace(ans).zeros()


defvjp(_fixed_point, _fixed_point_vjp, _zero_vjp, argnums=(2, 3))
defjvp(_fixed_point, _fixed_point_jvp, _zero_jvp, argnums=(2, 3))
