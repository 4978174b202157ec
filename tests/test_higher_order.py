"""Derivatives of derivatives, to any order.

Third and fourth derivatives of elementary functions against closed forms (by nested
grad, nested jvp and mixtures); compositions of the operators (grad of vjp, jvp of
grad, grad of jvp, jvp of jvp); hessian of scalar code (lists of floats, Python loops)
and of array code (matmul, indexing, where, logsumexp, linalg, einsum) against central
differences of gradients, autograd and JAX; hessian_vector_product on both of its paths
(the forward-over-reverse sweep in C for scalar code, a forward sweep over the recorded
gradient otherwise), which must agree for every op spec; and perturbation confusion.
"""
import math
import warnings

import numpy as np
import pytest

import fasttape as ft
import fasttape.numpy as fnp
from fasttape import (elementwise_grad, grad, hessian, hessian_vector_product, hvp,
                      jvp, make_jvp, make_vjp, vjp)
from fasttape._recording import hessian_vectors

from opspecs import SPECS
from support import (autograd_spelling, fasttape_spelling, jax_spelling,
                     numerical_jacobian, numpy_spelling, sample)


def assert_close(got, expected, rtol=1e-10, atol=1e-12, what=""):
    """Same shape, values to rtol (atol relative to the largest expected entry)."""
    assert np.shape(got) == np.shape(expected), (
        f"{what}: shape {np.shape(got)} != {np.shape(expected)}")
    expected = np.asarray(expected, dtype=float)
    scale = float(np.max(np.abs(expected), initial=1.0))
    np.testing.assert_allclose(np.asarray(got, dtype=float), expected, rtol=rtol,
                               atol=atol * scale, err_msg=what)


def quiet(fun):
    """fun with autograd's warnings silenced (constant outputs of linear parts)."""
    def wrapped(*args):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fun(*args)
    return wrapped


# -- third and fourth derivatives against closed forms ----------------------------------

def _tanh_derivatives(x):
    t = math.tanh(x)
    s = 1.0 - t * t
    return [s, -2.0 * t * s, (6.0 * t * t - 2.0) * s, 8.0 * t * s * (2.0 - 3.0 * t * t)]


def _sigmoid_derivatives(x):
    s = 1.0 / (1.0 + math.exp(-x))
    d = s * (1.0 - s)
    return [d, d * (1.0 - 2.0 * s), d * (1.0 - 6.0 * s + 6.0 * s * s),
            d * (1.0 - 2.0 * s) * (1.0 - 12.0 * s + 12.0 * s * s)]


def _arctan_derivatives(x):
    q = 1.0 + x * x
    return [1.0 / q, -2.0 * x / q ** 2, (6.0 * x * x - 2.0) / q ** 3,
            24.0 * x * (1.0 - x * x) / q ** 4]


# name: (function, [f', f'', f''', f''''] at x, points)
CLOSED_FORMS = {
    "sin": (ft.sin, lambda x: [math.cos(x), -math.sin(x), -math.cos(x), math.sin(x)],
            [-2.5, 0.3, 1.1]),
    "cos": (ft.cos, lambda x: [-math.sin(x), -math.cos(x), math.sin(x), math.cos(x)],
            [-0.7, 2.0]),
    "tanh": (ft.tanh, _tanh_derivatives, [-1.3, 0.2, 0.8]),
    "exp": (ft.exp, lambda x: [math.exp(x)] * 4, [-1.0, 0.5, 2.0]),
    "log": (ft.log, lambda x: [1 / x, -1 / x ** 2, 2 / x ** 3, -6 / x ** 4],
            [0.3, 1.0, 4.0]),
    "sqrt": (ft.sqrt, lambda x: [0.5 * x ** -0.5, -0.25 * x ** -1.5,
                                 0.375 * x ** -2.5, -0.9375 * x ** -3.5], [0.2, 2.5]),
    "arctan": (ft.arctan, _arctan_derivatives, [-2.0, 0.4, 1.5]),
    "sigmoid": (ft.sigmoid, _sigmoid_derivatives, [-3.0, 0.1, 2.2]),
    "x**3.5": (lambda x: x ** 3.5, lambda x: [3.5 * x ** 2.5, 8.75 * x ** 1.5,
                                              13.125 * x ** 0.5, 6.5625 * x ** -0.5],
               [0.4, 1.7]),
    "power(x, 3.5)": (lambda x: ft.power(x, 3.5),
                      lambda x: [3.5 * x ** 2.5, 8.75 * x ** 1.5, 13.125 * x ** 0.5,
                                 6.5625 * x ** -0.5], [0.9]),
    "1/x": (lambda x: 1.0 / x, lambda x: [-x ** -2, 2 * x ** -3, -6 * x ** -4,
                                          24 * x ** -5], [-1.5, 0.6]),
    "x*exp(-x*x)": (lambda x: x * ft.exp(-x * x),
                    lambda x: [(1 - 2 * x * x) * math.exp(-x * x),
                               (4 * x ** 3 - 6 * x) * math.exp(-x * x),
                               (-8 * x ** 4 + 24 * x * x - 6) * math.exp(-x * x),
                               (16 * x ** 5 - 80 * x ** 3 + 60 * x) * math.exp(-x * x)],
                    [-0.8, 0.35, 1.6]),
}
CLOSED_FORM_CASES = [(name, x) for name, (_, _, xs) in CLOSED_FORMS.items() for x in xs]


def nested(op, f, n):
    for _ in range(n):
        f = op(f)
    return f


def jvp_derivative(f):
    """x -> f'(x) by forward mode (recorded when x is a Variable)."""
    return lambda x: jvp(f, (x,), (1.0,))[1]


@pytest.mark.parametrize("name, x", CLOSED_FORM_CASES)
def test_derivatives_up_to_fourth_order_by_nested_grad(name, x):
    f, derivatives, _ = CLOSED_FORMS[name]
    expected = derivatives(x)
    for order in range(1, 5):
        got = nested(grad, f, order)(x)
        assert type(got) is float
        assert got == pytest.approx(expected[order - 1], rel=1e-12, abs=1e-14), (
            f"order {order}")


@pytest.mark.parametrize("name, x", CLOSED_FORM_CASES)
def test_derivatives_up_to_fourth_order_by_nested_jvp(name, x):
    f, derivatives, _ = CLOSED_FORMS[name]
    expected = derivatives(x)
    for order in range(1, 5):
        got = nested(jvp_derivative, f, order)(x)
        assert got == pytest.approx(expected[order - 1], rel=1e-12, abs=1e-14), (
            f"order {order}")


@pytest.mark.parametrize("name, x", CLOSED_FORM_CASES[::3])
@pytest.mark.parametrize("ops", ["rfrf", "frfr", "rrff", "ffrr"])
def test_fourth_derivatives_by_mixtures_of_forward_and_reverse(name, x, ops):
    f, derivatives, _ = CLOSED_FORMS[name]
    for op in ops:
        f = grad(f) if op == "r" else jvp_derivative(f)
    assert f(x) == pytest.approx(derivatives(x)[3], rel=1e-12, abs=1e-14)


def test_third_derivative_of_an_array_function_by_nested_elementwise_grad(rng):
    x = rng.uniform(-2, 2, 6)
    got = nested(elementwise_grad, fnp.tanh, 3)(x)
    t = np.tanh(x)
    assert_close(got, (6 * t * t - 2) * (1 - t * t), rtol=1e-12)


def test_fourth_derivative_at_several_points_inside_one_differentiation():
    """d4/dx4 sin at x, as a function of x, differentiated once more (fifth order)."""
    fifth = grad(nested(grad, ft.sin, 4))
    for x in (0.0, 0.4, -1.9):
        assert fifth(x) == pytest.approx(math.cos(x), rel=1e-12, abs=1e-15)


# -- compositions of the operators ------------------------------------------------------

B = np.random.default_rng(5).standard_normal((4, 3))


def g_vector(np, x):
    """R^3 -> R^4, nonlinear in every component."""
    return np.tanh(B @ x) * np.sum(x * x) + np.sin(B @ (x * x))


def f_scalar(np, x):
    return np.sum(np.sin(x) * np.cumsum(x)) + np.sum(np.exp(-x * x)) * x[0]


@pytest.fixture
def ag():
    autograd, anp = autograd_spelling()
    return autograd, anp


def test_grad_of_a_vjp_matches_autograd(rng, ag):
    autograd, anp = ag
    spelling = fasttape_spelling()
    x, u, w = rng.standard_normal(3), rng.standard_normal(4), rng.standard_normal(3)

    def h(x):       # <w, J(x)^T u>
        (cot,) = vjp(lambda z: g_vector(spelling, z), x)[1](u)
        return fnp.sum(cot * w)

    def h_make_vjp(x):
        vjp_fun, _ = make_vjp(lambda z: g_vector(spelling, z))(x)
        return fnp.sum(vjp_fun(u) * w)

    expected = autograd.grad(lambda x: anp.sum(
        autograd.make_vjp(lambda z: g_vector(anp, z))(x)[0](u) * w))(x)
    assert_close(grad(h)(x), expected)
    assert_close(grad(h_make_vjp)(x), expected)
    assert float(h(x)) == pytest.approx(float(u @ autograd.jacobian(
        lambda z: g_vector(anp, z))(x) @ w), rel=1e-12)


def test_jvp_of_a_grad_is_a_hessian_vector_product(rng, ag):
    autograd, anp = ag
    spelling = fasttape_spelling()
    x, v = rng.standard_normal(5), rng.standard_normal(5)
    g, hv = jvp(grad(lambda z: f_scalar(spelling, z)), (x,), (v,))
    h = autograd.hessian(lambda z: f_scalar(anp, z))(x)
    assert_close(g, autograd.grad(lambda z: f_scalar(anp, z))(x))
    assert_close(hv, h @ v)
    _, hv2 = make_jvp(grad(lambda z: f_scalar(spelling, z)))(x)(v)
    assert_close(hv2, h @ v)


def test_grad_of_a_jvp(rng, ag):
    autograd, anp = ag
    spelling = fasttape_spelling()
    x, v, u = rng.standard_normal(3), rng.standard_normal(3), rng.standard_normal(4)
    # scalar function: the gradient of the directional derivative is H v
    got = grad(lambda z: jvp(lambda y: f_scalar(spelling, y), (z,), (v,))[1])(x)
    assert_close(got, autograd.hessian(lambda z: f_scalar(anp, z))(x) @ v)
    # vector function: d/dx <u, J(x) v>
    got = grad(lambda z: fnp.sum(u * jvp(lambda y: g_vector(spelling, y), (z,),
                                         (v,))[1]))(x)
    hessians = autograd.jacobian(autograd.jacobian(lambda z: g_vector(anp, z)))(x)
    assert_close(got, np.einsum("i,ijk,j->k", u, hessians, v))


def test_jvp_of_a_jvp_is_a_second_directional_derivative(rng, ag):
    autograd, anp = ag
    spelling = fasttape_spelling()
    x, v, w = rng.standard_normal(3), rng.standard_normal(3), rng.standard_normal(3)

    def directional(z):
        return jvp(lambda y: g_vector(spelling, y), (z,), (v,))[1]

    first, second = jvp(directional, (x,), (w,))
    jac = autograd.jacobian(lambda z: g_vector(anp, z))(x)
    hessians = autograd.jacobian(autograd.jacobian(lambda z: g_vector(anp, z)))(x)
    assert_close(first, jac @ v)
    assert_close(second, np.einsum("ijk,j,k->i", hessians, v, w))


@pytest.mark.parametrize("x", [1.0, -0.5])
def test_grad_of_a_hessian_of_scalar_code(x):
    """hessian applied to a Variable (inside grad or jvp): d/dx (x^4)'' = 24 x."""
    assert float(grad(lambda x: hessian(lambda y: y ** 4)(x))(x)) == pytest.approx(
        24.0 * x, rel=1e-14)
    assert float(jvp(hessian(lambda y: y ** 4), (x,), (1.0,))[1]) == pytest.approx(
        24.0 * x, rel=1e-14)


def test_grad_of_the_trace_of_a_hessian(rng, ag):
    """Third order through hessian applied to Variables (its general path)."""
    autograd, anp = ag
    spelling = fasttape_spelling()
    x = rng.standard_normal(3)

    def laplacian(z):
        h = hessian(lambda y: f_scalar(spelling, y))(z)
        return h[0, 0] + h[1, 1] + h[2, 2]

    expected = autograd.grad(lambda z: anp.trace(
        autograd.hessian(lambda y: f_scalar(anp, y))(z)))(x)
    assert_close(grad(laplacian)(x), expected)


# -- perturbation confusion -------------------------------------------------------------

@pytest.mark.parametrize("x", [1.0, -2.5, 0.0, 7.0])
def test_perturbation_confusion(x):
    """d/dx [x * d/dy (x + y)] = d/dx [x * 1] = 1 (2 if the inner derivative also
    saw the outer x's perturbation, as y is evaluated at x)."""
    assert grad(lambda x: x * grad(lambda y: x + y)(x))(x) == 1.0
    assert grad(lambda x: x * jvp(lambda y: x + y, (x,), (1.0,))[1])(x) == 1.0
    assert jvp(lambda x: x * grad(lambda y: x + y)(x), (x,), (1.0,))[1] == 1.0
    assert jvp(lambda x: x * jvp(lambda y: x + y, (x,), (1.0,))[1], (x,),
               (1.0,))[1] == 1.0


def test_inner_derivative_with_respect_to_a_number_closing_over_an_outer_variable():
    """The inner function is differentiated at a plain number but uses the outer
    Variable x: d/dx [d/dy (x y)]_{y=2} = d/dx x = 1, and d/dx [d/dy x sin(x y)]_{y=0.5}
    = d/dx x^2 cos(x/2) (autograd and JAX give these)."""
    assert grad(lambda x: grad(lambda y: x * y)(2.0))(3.0) == 1.0
    x = 0.8
    expected = 2 * x * math.cos(x / 2) - 0.5 * x * x * math.sin(x / 2)
    got = grad(lambda x: grad(lambda y: x * ft.sin(x * y))(0.5))(x)
    assert got == pytest.approx(expected, rel=1e-14)


def test_perturbation_confusion_three_levels():
    # inner: d/dz xyz = xy; middle: d/dy (y * xy) = 2xy at y = x: 2x^2;
    # outer: d/dx (x * 2x^2) = 6x^2
    def outer(x):
        return x * grad(lambda y: y * grad(lambda z: x * y * z)(y))(x)

    for x in (1.5, -0.5):
        assert grad(outer)(x) == pytest.approx(6 * x * x, rel=1e-14)


def test_perturbation_confusion_with_arrays(rng):
    """d/dx sum(x * grad_y sum(x * y)) = d/dx sum(x * x) = 2x (confused: 4x)."""
    x = rng.standard_normal(4)

    def f(x):
        return fnp.sum(x * grad(lambda y: fnp.sum(x * y))(x))

    assert_close(grad(f)(x), 2.0 * x, rtol=1e-15)
    # the same through a vector-valued inner derivative taken by jvp
    v = rng.standard_normal(4)

    def f_fwd(x):
        return fnp.sum(x * jvp(lambda y: x * y, (x,), (v,))[1])     # = sum(x^2 v)

    assert_close(grad(f_fwd)(x), 2.0 * x * v, rtol=1e-15)
    # and the Hessian of the first: 2 I
    assert_close(hessian(f)(x), 2.0 * np.eye(4), rtol=1e-15)


# -- Hessians of scalar code ------------------------------------------------------------

def rosenbrock(p):
    total = 0.0
    for a, b in zip(p[:-1], p[1:]):
        total = total + 100.0 * (b - a * a) ** 2 + (1.0 - a) ** 2
    return total


def rosenbrock_gradient(p):
    p = np.asarray(p, dtype=float)
    g = np.zeros_like(p)
    a, b = p[:-1], p[1:]
    g[:-1] += -400.0 * a * (b - a * a) - 2.0 * (1.0 - a)
    g[1:] += 200.0 * (b - a * a)
    return g


def rosenbrock_hessian(p):
    p = np.asarray(p, dtype=float)
    n = p.size
    h = np.zeros((n, n))
    for i in range(n - 1):
        a, b = p[i], p[i + 1]
        h[i, i] += 1200.0 * a * a - 400.0 * b + 2.0
        h[i, i + 1] += -400.0 * a
        h[i + 1, i] += -400.0 * a
        h[i + 1, i + 1] += 200.0
    return h


def loopy(p):
    """A Python loop mixing most kinds of scalar operations."""
    total = 0.0
    for i in range(len(p) - 1):
        total = total + ft.sin(p[i] * p[i + 1]) + ft.exp(-p[i] ** 2) * p[-1]
        total = total + ft.log1p(p[i + 1] ** 2) / (2.0 + ft.cos(p[i]))
    return total + ft.sqrt(1.0 + p[0] ** 2) * ft.arctan(p[-1])


def loopy_anp(anp, p):
    total = 0.0
    for i in range(len(p) - 1):
        total = total + anp.sin(p[i] * p[i + 1]) + anp.exp(-p[i] ** 2) * p[-1]
        total = total + anp.log1p(p[i + 1] ** 2) / (2.0 + anp.cos(p[i]))
    return total + anp.sqrt(1.0 + p[0] ** 2) * anp.arctan(p[-1])


@pytest.mark.parametrize("n", [2, 5, 12])
def test_hessian_of_extended_rosenbrock_on_a_list(n, rng):
    p = [float(v) for v in rng.uniform(-1.5, 1.5, n)]
    h = hessian(rosenbrock)(p)
    assert h.shape == (n, n)
    assert_close(h, rosenbrock_hessian(p), rtol=1e-13)
    assert_close(numerical_jacobian(rosenbrock_gradient, np.array(p)), h, rtol=1e-7,
                 atol=1e-9, what="central differences of the gradient")


def test_hessian_of_a_python_loop_matches_autograd_and_differences(rng, ag):
    autograd, anp = ag
    p = [float(v) for v in rng.uniform(-1.0, 1.0, 6)]
    h = hessian(loopy)(p)
    assert_close(h, autograd.hessian(lambda q: loopy_anp(anp, q))(np.array(p)))
    numeric = numerical_jacobian(lambda q: np.array(grad(loopy)(list(q))), np.array(p))
    assert_close(h, numeric, rtol=1e-7, atol=1e-9)
    assert_close(h, h.T, rtol=1e-14, atol=1e-15)


def test_hessian_of_a_tuple_and_of_a_number(rng):
    p = tuple(float(v) for v in rng.uniform(-1.0, 1.0, 4))
    assert_close(hessian(rosenbrock)(p), rosenbrock_hessian(p), rtol=1e-13)
    h = hessian(lambda x: ft.sin(x) * x)(0.7)
    assert np.shape(h) == ()
    assert float(h) == pytest.approx(2 * math.cos(0.7) - 0.7 * math.sin(0.7), rel=1e-14)


def test_hessian_of_a_list_input_to_code_with_array_operations():
    """A list of floats handed to code that builds an array (so the C path does not
    apply): the Hessian of sum(p^3) is diag(6 p), as hvp gives."""
    def f(p):
        return fnp.sum(fnp.array(p) ** 3)

    p = [1.0, 2.0]
    assert hvp(f)(p, [1.0, 0.0]) == [6.0, 0.0]
    assert_close(hessian(f)(p), np.diag([6.0, 12.0]), rtol=1e-15)


def test_hessian_with_respect_to_another_argument(rng):
    def f(scale, p):
        return scale * rosenbrock(p)

    p = [float(v) for v in rng.uniform(-1.0, 1.0, 4)]
    assert_close(hessian(f, 1)(3.0, p), 3.0 * rosenbrock_hessian(p), rtol=1e-13)


@pytest.mark.slow
def test_hessian_of_a_python_loop_matches_jax(rng):
    jax, jnp = jax_spelling()
    p = [float(v) for v in rng.uniform(-1.0, 1.0, 5)]
    expected = np.asarray(jax.hessian(lambda q: loopy_anp(jnp, q))(np.array(p)))
    assert_close(hessian(loopy)(p), expected)


# -- Hessian-vector products: the C path and the general path ---------------------------

def test_hvp_on_a_list_takes_the_c_path_and_matches_H_v(rng):
    p = [float(v) for v in rng.uniform(-1.5, 1.5, 8)]
    v = [float(t) for t in rng.standard_normal(8)]
    assert hessian_vectors(rosenbrock, 0, (p,), [v]) is not None
    hv = hessian_vector_product(rosenbrock)(p, v)
    assert type(hv) is list and len(hv) == 8
    assert_close(hv, rosenbrock_hessian(p) @ v, rtol=1e-13)
    assert hvp(loopy)(p, v) == pytest.approx(list(hessian(loopy)(p) @ v), rel=1e-12)


def rosenbrock_array(x):
    return fnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def test_hvp_on_an_array_takes_the_c_path_and_matches_H_v(rng):
    x = rng.uniform(-1.5, 1.5, 8)
    v = rng.standard_normal(8)
    fast = hessian_vectors(rosenbrock_array, 0, (x,), [v])
    assert fast is not None
    assert_close(fast[0], rosenbrock_hessian(x) @ v, rtol=1e-13)
    hv = hvp(rosenbrock_array)(x, v)
    assert type(hv) is np.ndarray and hv.shape == (8,)
    assert_close(hv, rosenbrock_hessian(x) @ v, rtol=1e-13)
    # scalar code handed an array also takes the general path
    assert_close(hvp(rosenbrock)(x, v), rosenbrock_hessian(x) @ v, rtol=1e-13)
    assert_close(hessian(rosenbrock_array)(x), rosenbrock_hessian(x), rtol=1e-13)


def test_hvp_through_python_rules_takes_the_general_path(rng):
    """linalg nodes have no second derivatives in C: the gradient is recorded."""
    def f(a):
        return fnp.sum(fnp.linalg.inv(a) * a) + fnp.sum(a ** 3)

    a = rng.standard_normal((3, 3)) + 3.0 * np.eye(3)
    v = rng.standard_normal((3, 3))
    assert hessian_vectors(f, 0, (a,), [v]) is None
    step = 1e-5                        # central differences of the gradient
    expected = (grad(f)(a + step * v) - grad(f)(a - step * v)) / (2 * step)
    assert_close(hvp(f)(a, v), expected, rtol=1e-6)


def test_hvp_with_other_arguments_and_argnum(rng):
    def f(scale, p, shift):
        return scale * loopy([q + shift for q in p])

    p = [float(v) for v in rng.uniform(-1.0, 1.0, 5)]
    v = [float(t) for t in rng.standard_normal(5)]
    expected = 2.5 * hessian(loopy)([q + 0.1 for q in p]) @ v
    assert hvp(f, 1)(2.5, p, 0.1, v) == pytest.approx(list(expected), rel=1e-12)


def test_hvp_of_a_matrix_argument(rng, ag):
    autograd, anp = ag
    a = rng.standard_normal((3, 2))
    v = rng.standard_normal((3, 2))

    def f(np, a):
        return np.sum(np.tanh(a @ np.transpose(a)) ** 2)

    spelling = fasttape_spelling()
    hv = hvp(lambda a: f(spelling, a))(a, v)
    h = autograd.hessian(lambda a: f(anp, a))(a)
    assert_close(hv, np.einsum("ijkl,kl->ij", h, v))


def test_hvp_inside_another_differentiation(rng, ag):
    """A third derivative: d/dx <w, H(x) v> with the hvp taken on Variables."""
    autograd, anp = ag
    spelling = fasttape_spelling()
    x, v, w = rng.standard_normal(4), rng.standard_normal(4), rng.standard_normal(4)

    def third(x):
        return fnp.sum(w * hvp(lambda z: f_scalar(spelling, z))(x, v))

    expected = autograd.grad(lambda x: anp.dot(w, anp.dot(autograd.hessian(
        lambda z: f_scalar(anp, z))(x), v)))(x)
    assert_close(grad(third)(x), expected)


# every scalar op: the second-derivative table of the C path against the recorded rules

def second_order_cases():
    return [pytest.param(spec, wrap, id=f"{spec.name}-{wrap}")
            for spec in SPECS for wrap in ("bare", "chained")]


def op_function(spec, args, wrap):
    """F(p): the spec's op with its differentiable arguments taken from the list p
    (bare), or the op fed by and feeding nonlinear functions of p (chained)."""
    def full(p):
        call = list(args)
        for i, q in zip(spec.argnums, p):
            call[i] = q
        return call

    if wrap == "bare":
        return lambda p: spec.fun(*full(p))

    def chained(p):
        # move each input along a nonlinear path that stays inside the op's domain at
        # the sampled point (q + 0.05 * (q - a)^2 equals q there, with derivative 1)
        moved = [q + 0.05 * (q - a) * (q - a) for q, a in
                 zip(p, [args[i] for i in spec.argnums])]
        y = spec.fun(*full(moved))
        return 0.5 * y * y + y * moved[0]
    return chained


@pytest.mark.parametrize("spec, wrap", second_order_cases())
def test_hvp_c_path_and_general_path_agree_for_every_op(spec, wrap, rng):
    for column in spec.sample(rng, 2).T:
        args = [float(a) for a in column]
        p = [args[i] for i in spec.argnums]
        F = op_function(spec, args, wrap)
        n = len(p)
        v = [float(t) for t in rng.standard_normal(n)]
        assert hessian_vectors(F, 0, (p,), [v]) is not None, "C path not taken"
        fast = hvp(F)(p, v)
        general = hvp(lambda x: F([x[i] for i in range(n)]))(np.array(p), np.array(v))
        # the recorded rules swept forward, on the same scalar leaves as the C path
        recorded = jvp(grad(F), (p,), (v,))[1]
        assert_close(fast, general, rtol=1e-11, atol=1e-12,
                     what=f"{spec.name} at {args}: C path vs general path")
        assert_close(fast, recorded, rtol=1e-11, atol=1e-12,
                     what=f"{spec.name} at {args}: C path vs jvp of grad")
        h = hessian(F)(p)
        assert_close(h, h.T, rtol=1e-12, atol=1e-13, what="symmetry")
        assert_close(h @ np.array(v), fast, rtol=1e-11, atol=1e-12,
                     what=f"{spec.name} at {args}: hessian")
        numeric = numerical_jacobian(lambda q: np.array(grad(F)(list(q))), np.array(p))
        assert_close(fast, numeric @ np.array(v), rtol=1e-6, atol=1e-8,
                     what=f"{spec.name} at {args}: central differences of the "
                          f"gradient")


# -- Hessians through array operations --------------------------------------------------

C3 = np.random.default_rng(7).standard_normal((3, 3))
A43 = np.random.default_rng(8).standard_normal((4, 3))
EYE3 = np.eye(3)


def well_conditioned(rng):
    return 2.0 * np.eye(3) + 0.3 * rng.standard_normal((3, 3))


# (name, f(np, x) -> scalar, draw(rng) -> x)
ARRAY_HESSIANS = [
    ("matmul tanh sum", lambda np, x: np.sum(np.tanh(A43 @ x) ** 2),
     lambda rng: rng.standard_normal(3)),
    ("matrix argument", lambda np, x: np.sum(np.tanh(x @ np.transpose(x))),
     lambda rng: rng.standard_normal((2, 3))),
    ("indexing", lambda np, x: np.sum(x[1:] * x[:-1] ** 2) + x[0] ** 3 * x[-1],
     lambda rng: rng.standard_normal(5)),
    ("where", lambda np, x: np.sum(np.where(x > 0.0, x ** 3, np.sin(x))),
     lambda rng: rng.choice([-1.0, 1.0], 5) * rng.uniform(0.2, 2.0, 5)),
    ("logsumexp", lambda np, x: np.special.logsumexp(A43 @ x),
     lambda rng: rng.standard_normal(3)),
    ("cumsum", lambda np, x: np.sum(np.cumsum(x) ** 3),
     lambda rng: rng.standard_normal(4)),
    ("prod", lambda np, x: np.prod(x) + np.prod(x[:2] * x[1:3]),
     lambda rng: rng.uniform(0.5, 1.5, 4)),
    ("inv", lambda np, x: np.sum(np.linalg.inv(x) * C3), well_conditioned),
    ("det", lambda np, x: np.linalg.det(x), well_conditioned),
    ("slogdet", lambda np, x: np.linalg.slogdet(x)[1], well_conditioned),
    ("solve", lambda np, x: np.sum(np.linalg.solve(x, C3[0]) ** 2), well_conditioned),
    ("solve rhs", lambda np, x: np.sum(np.linalg.solve(C3 + 3.0 * EYE3, x * x) ** 2),
     lambda rng: rng.standard_normal(3)),
    ("cholesky", lambda np, x: np.sum(np.linalg.cholesky(
        x @ np.transpose(x) + 3.0 * EYE3) * C3),
     lambda rng: rng.standard_normal((3, 3))),
    ("einsum", lambda np, x: np.einsum("i,ij,j->", x, C3, np.sin(x)),
     lambda rng: rng.standard_normal(3)),
    ("einsum matrix", lambda np, x: np.sum(np.einsum("ij,jk->ik", x, x) ** 2),
     lambda rng: rng.standard_normal((2, 2))),
]
ARRAY_HESSIAN_IDS = [c[0] for c in ARRAY_HESSIANS]


@pytest.mark.parametrize("name, f, draw", ARRAY_HESSIANS, ids=ARRAY_HESSIAN_IDS)
def test_hessian_through_array_operations_matches_autograd(name, f, draw, rng, ag):
    autograd, anp = ag
    spelling = fasttape_spelling()
    x = draw(rng)
    h = hessian(lambda z: f(spelling, z))(x)
    assert h.shape == x.shape + x.shape
    expected = quiet(autograd.hessian(lambda z: f(anp, z)))(x)
    assert_close(h, expected, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("name, f, draw", ARRAY_HESSIANS, ids=ARRAY_HESSIAN_IDS)
def test_hessian_through_array_operations_matches_differences_of_the_gradient(
        name, f, draw, rng):
    spelling, ref = fasttape_spelling(), numpy_spelling()
    x = draw(rng)
    h = hessian(lambda z: f(spelling, z))(x)
    numeric = numerical_jacobian(lambda z: grad(lambda y: f(spelling, y))(z), x)
    assert_close(h, numeric, rtol=1e-6, atol=1e-8)
    # hvp (general path) agrees with the Hessian
    v = rng.standard_normal(x.shape)
    hv = hvp(lambda z: f(spelling, z))(x, v)
    assert_close(hv, np.tensordot(h, v, axes=v.ndim), rtol=1e-11, atol=1e-12)
    assert float(f(ref, x)) == pytest.approx(float(f(spelling, x)), rel=1e-13)


def test_second_derivatives_of_odd_powers_at_negative_entries_do_not_warn():
    """x**3 at x < 0 is ordinary arithmetic (NumPy does not warn); its Hessian must
    not warn either (e.g. from a log(x) for the derivative with respect to the
    constant exponent, which nothing needs)."""
    x = np.array([-1.0, 2.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert_close(grad(lambda z: fnp.sum(z ** 3))(x), 3.0 * x * x, rtol=1e-15)
        assert_close(hessian(lambda z: fnp.sum(z ** 3))(x), np.diag(6.0 * x),
                     rtol=1e-15)
        assert grad(grad(lambda z: z ** 3))(-1.0) == -6.0


@pytest.mark.slow
@pytest.mark.parametrize("name, f, draw", ARRAY_HESSIANS, ids=ARRAY_HESSIAN_IDS)
def test_hessian_through_array_operations_matches_jax(name, f, draw, rng):
    jax, jnp = jax_spelling()
    spelling = fasttape_spelling()
    x = draw(rng)
    expected = np.asarray(jax.hessian(lambda z: f(jnp, z))(x))
    assert_close(hessian(lambda z: f(spelling, z))(x), expected, rtol=1e-9,
                 atol=1e-11)


def test_one_hessian_against_jax(rng):
    """JAX in the default run once (it compiles each operation, slowly): the
    log-determinant plus a softmax-weighted sum."""
    jax, jnp = jax_spelling()
    spelling = fasttape_spelling()

    def f(np, x):
        return np.linalg.slogdet(x)[1] + np.special.logsumexp(np.sin(x) @ A43[0, :3])

    x = well_conditioned(rng)
    expected = np.asarray(jax.hessian(lambda z: f(jnp, z))(x))
    assert_close(hessian(lambda z: f(spelling, z))(x), expected, rtol=1e-9, atol=1e-11)


def test_second_derivatives_by_sampling_shapes(rng, ag):
    """A function of a matrix and a vector, differentiated twice with respect to each
    and across (grad of grad with argnums)."""
    autograd, anp = ag
    spelling = fasttape_spelling()

    def f(np, a, b):
        return np.sum(np.tanh(a @ b) * b[0]) + np.sum(np.exp(-a * a))

    a, b = sample(rng, (3, 2)), sample(rng, (2,))
    v_a = rng.standard_normal((3, 2))

    def directional_grad_b(a, b):      # <grad_a f, v_a>, as a function of (a, b)
        return fnp.sum(grad(lambda a_: f(spelling, a_, b))(a) * v_a)

    got_a, got_b = grad(directional_grad_b, argnum=(0, 1))(a, b)

    def directional_ag(a, b):
        return anp.sum(autograd.grad(lambda a_: f(anp, a_, b))(a) * v_a)

    assert_close(got_a, autograd.grad(directional_ag, 0)(a, b))
    assert_close(got_b, autograd.grad(directional_ag, 1)(a, b))


@pytest.mark.parametrize("p", [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 2.5])
def test_small_integer_powers_first_and_second_derivatives(p):
    # the derivatives of x**p at small integer p are computed by multiplication; they
    # equal p x^(p-1) and p (p-1) x^(p-2) (0 where p is 0 or 1), on scalars, on arrays
    # (traced Hessian-vector products) and at a negative or zero base
    xs = [-1.7, 0.0, 0.6, 2.3] if p != 2.5 else [0.6, 2.3]
    for x in xs:
        d1 = p * x ** (p - 1.0) if p else 0.0
        d2 = p * (p - 1.0) * x ** (p - 2.0) if p not in (0.0, 1.0) else 0.0
        assert grad(lambda v: v ** p)(x) == pytest.approx(d1, rel=1e-14, abs=1e-14)
        assert hessian(lambda v: v ** p)(x) == pytest.approx(d2, rel=1e-14, abs=1e-14)
    a = np.array(xs)
    g = ft.trace(lambda v: fnp.sum(v ** p), a)
    direction = np.linspace(0.5, 1.5, a.size)
    expected = (p * (p - 1.0) * a ** (p - 2.0) if p not in (0.0, 1.0)
                else np.zeros(a.size)) * direction
    np.testing.assert_allclose(g.hvp((a,), direction), expected, rtol=1e-13, atol=1e-14)


def test_powers_of_arrays_with_constant_and_varying_exponents():
    # a constant exponent array broadcast over rows (its partials are skipped) and an
    # exponent that is itself differentiated (every partial is needed)
    X = np.array([[0.7, -1.2, 1.5], [1.1, 0.4, -0.8]])
    p = np.array([2.0, 3.0, 4.0])
    g = ft.trace(lambda v: fnp.sum(v ** p), X)
    direction = np.linspace(-1.0, 1.0, X.size).reshape(X.shape)
    expected = p * (p - 1.0) * X ** (p - 2.0) * direction
    np.testing.assert_allclose(g.hvp((X,), direction), expected, rtol=1e-13)
    np.testing.assert_allclose(g.grad(X), p * X ** (p - 1.0), rtol=1e-13)
    z = np.array([0.7, 1.3, 0.9, 1.6])
    ft.check_grads(lambda v: fnp.sum(v[:2] ** v[2:]), modes=("fwd", "rev"), order=2)(z)
    ft.check_grads(lambda v: fnp.sum(v ** p[:1]) * fnp.sum(v), modes=("fwd", "rev"),
                   order=2)(z)
