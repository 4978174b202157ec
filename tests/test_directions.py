"""Directions that are themselves Variables (issue: drop-in for autograd, item 1).

``make_jvp``, ``make_vjp``, ``jvp``, ``vjp`` and ``hessian_vector_product`` give
results differentiable in the tangent or cotangent as well as in the point, whether the
derivative function was made inside the enclosing differentiation (a nested recording)
or before it (a recording whose Jacobian is a constant there: a linear node). Each
result is compared with central differences of the same map computed on plain
numbers, and forward over forward with JAX where it is installed.
"""
import numpy as np
import pytest

import fasttape as ft
import fasttape.numpy as fnp
from fasttape.check import check_grads
from fasttape.errors import GradientCheckError


def f_vector(x):
    return fnp.sin(x) * x[::-1] + fnp.exp(0.3 * x)


def f_scalar(x):
    return fnp.sum(fnp.tanh(x) * x ** 2) + x[0] * x[1]


def f_container(p):
    return {"a": fnp.cos(p[0]) * p[1], "b": fnp.sum(p[0] ** 3)}


X0 = np.array([0.3, -1.2, 0.7])
V0 = np.array([1.0, 2.0, -0.5])


def plain_jacobian(f, x, h=1e-6):
    """The Jacobian by central differences on plain arrays (columns)."""
    cols = []
    for j in range(x.size):
        e = np.zeros_like(x)
        e[j] = h
        cols.append((np.asarray(f(x + e)) - np.asarray(f(x - e))) / (2 * h))
    return np.stack(cols, axis=-1)


def central_gradient(f, x, h=1e-6):
    """The gradient of a scalar function of one array by central differences."""
    g = np.zeros_like(x)
    for j in range(x.size):
        e = np.zeros_like(x)
        e.flat[j] = h
        g.flat[j] = (float(f(x + e)) - float(f(x - e))) / (2 * h)
    return g


def assert_close(got, expected, rtol=1e-6, atol=1e-8):
    np.testing.assert_allclose(np.asarray(got, dtype=float), expected, rtol=rtol,
                               atol=atol)


@pytest.mark.parametrize("made", ["before", "inside"])
def test_the_tangent_of_make_jvp_is_differentiable(made):
    J = plain_jacobian(f_vector, X0)
    jvp_at_x0 = ft.make_jvp(f_vector)(X0)

    def loss(v):
        jvp_fun = jvp_at_x0 if made == "before" else ft.make_jvp(f_vector)(X0)
        return fnp.sum(jvp_fun(v)[1] ** 2)

    expected = 2 * J.T @ (J @ V0)                    # d/dv |J v|^2
    assert_close(ft.grad(loss)(V0), expected, rtol=1e-5)
    assert_close(ft.grad(loss)(V0), central_gradient(loss, V0), rtol=1e-5)


@pytest.mark.parametrize("made", ["before", "inside"])
def test_the_cotangent_of_make_vjp_is_differentiable(made):
    J = plain_jacobian(f_vector, X0)
    vjp_at_x0 = ft.make_vjp(f_vector)(X0)[0]

    def loss(u):
        vjp_fun = vjp_at_x0 if made == "before" else ft.make_vjp(f_vector)(X0)[0]
        return fnp.sum(vjp_fun(u) ** 2)

    expected = 2 * J @ (J.T @ V0)                    # d/du |J^T u|^2
    assert_close(ft.grad(loss)(V0), expected, rtol=1e-5)


def test_a_linear_node_differentiates_to_third_order():
    # v -> |J v|^4 / 4 through a jvp made before: its Hessian in v by grad of grad
    jvp_at_x0 = ft.make_jvp(f_vector)(X0)
    J = plain_jacobian(f_vector, X0)

    def quartic(v):
        return fnp.sum(jvp_at_x0(v)[1] ** 2) ** 2 / 4

    A = J.T @ J
    s = V0 @ A @ V0
    expected = 2 * np.outer(A @ V0, A @ V0) + s * A     # Hessian of (v'Av)^2 / 4
    assert_close(ft.hessian(quartic)(V0), expected, rtol=1e-5)
    assert_close(ft.jacobian(ft.grad(quartic))(V0), expected, rtol=1e-5)


def test_forward_mode_through_a_linear_node():
    vjp_at_x0 = ft.make_vjp(f_vector)(X0)[0]
    J = plain_jacobian(f_vector, X0)
    _, tangent = ft.jvp(lambda u: vjp_at_x0(u), (V0,), (np.array([0.5, 0.0, 1.0]),))
    assert_close(tangent, J.T @ np.array([0.5, 0.0, 1.0]), rtol=1e-5)
    # and forward over the reverse of the node (a Hessian of the quadratic form)
    quadratic = lambda u: fnp.sum(vjp_at_x0(u) ** 2)        # noqa: E731
    assert_close(ft.jacfwd(ft.grad(quadratic))(V0), 2 * J @ J.T, rtol=1e-5)


@pytest.mark.parametrize("f", [f_vector, f_scalar])
def test_the_map_point_and_direction_is_differentiable_in_both(f):
    def jv(x, v):
        return ft.make_jvp(f)(x)(v)[1]

    def vj(x, u):
        return ft.make_vjp(f)(x)[0](u)

    u0 = np.full(np.shape(f(X0)), 0.7)
    for fun, direction in ((jv, V0), (vj, u0)):
        for argnum, at in ((0, X0), (1, direction)):
            def scalar(z, argnum=argnum, fun=fun):
                args = [X0, direction]
                args[argnum] = z
                return fnp.sum(fun(*args) ** 2)
            assert_close(ft.grad(scalar)(at), central_gradient(scalar, at), rtol=1e-5,
                         atol=1e-7)


def test_forward_over_forward_matches_second_directional_differences():
    v, w = V0, np.array([-0.3, 0.8, 0.2])

    def first(x):
        return ft.make_jvp(f_vector)(x)(v)[1]

    second = ft.make_jvp(first)(X0)(w)[1]
    h = 1e-4
    plain = lambda x: np.asarray(ft.make_jvp(f_vector)(x)(v)[1])   # noqa: E731
    expected = (plain(X0 + h * w) - plain(X0 - h * w)) / (2 * h)
    assert_close(second, expected, rtol=1e-6, atol=1e-8)


def test_forward_over_forward_matches_jax():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    jnp = jax.numpy
    v, w = V0, np.array([-0.3, 0.8, 0.2])

    def jf(x):
        return jnp.sin(x) * x[::-1] + jnp.exp(0.3 * x)

    expected = jax.jvp(lambda x: jax.jvp(jf, (x,), (v,))[1], (X0,), (w,))[1]
    ours = ft.make_jvp(lambda x: ft.make_jvp(f_vector)(x)(v)[1])(X0)(w)[1]
    assert_close(ours, np.asarray(expected), rtol=1e-12, atol=1e-12)


def test_hessian_vector_product_is_differentiable_in_the_vector():
    hvp = ft.hessian_vector_product(f_scalar)
    H = ft.hessian(f_scalar)(X0)
    loss = lambda v: fnp.sum(hvp(X0, v) ** 2)                  # noqa: E731
    assert_close(ft.grad(loss)(V0), 2 * H @ H @ V0, rtol=1e-6)


def test_jax_style_jvp_and_vjp_with_variable_directions():
    J = plain_jacobian(f_vector, X0)
    tangent_sum = lambda v: fnp.sum(ft.jvp(f_vector, (X0,), (v,))[1])   # noqa: E731
    assert_close(ft.grad(tangent_sum)(V0), J.sum(axis=0), rtol=1e-5)
    _, vjp_fun = ft.vjp(f_vector, X0)
    cotangent_sum = lambda u: fnp.sum(vjp_fun(u)[0])                   # noqa: E731
    assert_close(ft.grad(cotangent_sum)(V0), J.sum(axis=1), rtol=1e-5)


def test_containers_as_directions():
    p0 = (np.array([0.4, -0.9]), 1.3)
    jvp_at_p0 = ft.make_jvp(f_container)(p0)

    def loss(t):
        out = jvp_at_p0(t)[1]
        return fnp.sum(out["a"] ** 2) + out["b"] ** 2

    t0 = (np.array([0.2, 0.5]), -1.1)
    grads = ft.grad(loss)(t0)
    assert_close(grads[0], central_gradient(lambda a: loss((a, t0[1])), t0[0]),
                 rtol=1e-5)
    assert_close(grads[1], central_gradient(lambda b: loss((t0[0], float(b))),
                                            np.array(t0[1])), rtol=1e-5)


@pytest.mark.parametrize("f", [f_vector, f_scalar, f_container],
                         ids=["vector", "scalar", "container"])
def test_check_grads_to_second_order_in_both_modes(f):
    arg = (np.array([0.4, -0.9]), 1.3) if f is f_container else X0
    assert check_grads(f, modes=("fwd", "rev"), order=2)(arg)


def test_check_grads_at_order_two_catches_a_wrong_rule_in_the_direction():
    # a primitive whose JVP ignores its tangent's size (wrong by a factor 2): the
    # first-order checks catch it, and so does each order-2 derivative function
    from fasttape.extend import defjvp, defvjp, primitive

    @primitive
    def twice(x):
        return 2.0 * x

    defvjp(twice, lambda ans, x: lambda g: 2.0 * g)
    defjvp(twice, lambda g, ans, x: 4.0 * g)
    with pytest.raises(GradientCheckError):
        check_grads(lambda x: fnp.sum(twice(x) ** 2), modes=("fwd",), order=2)(X0)


def test_directions_on_another_tape_are_refused():
    other = ft.Tape()
    with other:
        stranger = ft.Variable(1.0)

    def inner(x):
        return ft.make_jvp(lambda y: y * y)(x)(stranger)[1]

    with pytest.raises(ft.TapeMismatchError):
        ft.grad(inner)(2.0)
