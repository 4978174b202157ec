"""Complex numbers: values against NumPy, derivatives against central differences
along random complex directions (first and second order, forward and reverse), and
the conventions of grad / vjp / jvp / holomorphic_grad against autograd and JAX.

A complex function is checked as the real function of (real part, imaginary part)
that returns the stacked real and imaginary parts of its value: fasttape's own
check_grads then compares every mode and order with central differences.
"""
import numpy as np
import pytest

import fasttape
import fasttape.numpy as fnp
from fasttape import (ComplexArray, check_grads, grad, holomorphic_grad, jvp, make_jvp,
                      make_vjp, trace, value_and_grad, vjp)
from fasttape.errors import ComplexInputError


def complex_sample(rng, shape, low=0.3, high=1.5):
    """Complex numbers with moduli in [low, high] and angles away from the negative
    real axis (the branch cut of log, sqrt and angle)."""
    modulus = rng.uniform(low, high, shape)
    phase = rng.uniform(-2.5, 2.5, shape)
    return modulus * np.exp(1j * phase)


def as_real_function(f):
    """f of one complex array as a function of its real and imaginary parts, returning
    its value's real and imaginary parts stacked (a real function of real arrays)."""
    def on_parts(re, im):
        out = f(re + 1j * im)
        return fnp.stack([fnp.real(out), fnp.imag(out)])
    return on_parts


def check_both_orders(f, z):
    check_grads(as_real_function(f), modes=("fwd", "rev"), order=2)(z.real, z.imag)


def directional(f, z, v, eps=1e-6):
    """Central difference of f at z along the complex direction v."""
    return (np.asarray(f(z + eps * v)) - np.asarray(f(z - eps * v))) / (2 * eps)


# -- elementwise functions ---------------------------------------------------------------------

UNARY = [
    ("exp", np.exp), ("log", np.log), ("sqrt", np.sqrt), ("sin", np.sin),
    ("cos", np.cos), ("tan", np.tan), ("sinh", np.sinh), ("cosh", np.cosh),
    ("tanh", np.tanh), ("abs", np.abs), ("angle", np.angle), ("real", np.real),
    ("imag", np.imag), ("conj", np.conj), ("square", np.square),
    ("reciprocal", np.reciprocal), ("log10", np.log10), ("log2", np.log2),
    ("log1p", np.log1p), ("expm1", np.expm1), ("exp2", np.exp2),
    ("negative", np.negative), ("cube", lambda z: z ** 3),
    ("power 0.7", lambda z: z ** 0.7), ("power 1+0.5j", lambda z: z ** (1 + 0.5j)),
    ("base 2", lambda z: 2.0 ** z), ("one over", lambda z: 1.0 / z),
    ("abs method", lambda z: abs(z)), ("arcsin", np.arcsin), ("arccos", np.arccos),
    ("arctan", np.arctan), ("arcsinh", np.arcsinh), ("arccosh", np.arccosh),
    ("arctanh", np.arctanh), ("real_if_close", np.real_if_close),
]


@pytest.mark.parametrize("name, f", UNARY, ids=[u[0] for u in UNARY])
def test_elementwise_values_match_numpy(name, f, rng):
    z = complex_sample(rng, (4,))
    _, value = make_vjp(lambda z: f(z))(z)
    np.testing.assert_allclose(value, f(z), rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("name, f", UNARY, ids=[u[0] for u in UNARY])
def test_elementwise_derivatives_to_second_order(name, f, rng):
    check_both_orders(f, complex_sample(rng, (3,)))


@pytest.mark.parametrize("name, f", UNARY, ids=[u[0] for u in UNARY])
def test_elementwise_functions_of_a_complex_scalar(name, f, rng):
    z = complex(complex_sample(rng, ()))
    loss = lambda z: fnp.real(f(z) * (0.3 - 0.8j))            # noqa: E731
    g = grad(loss)(z)
    assert isinstance(g, complex)
    v = complex(complex_sample(rng, ()))
    # the gradient's convention: d loss along v is Re(g v)
    assert abs((g * v).real - directional(lambda z: np.real(f(z) * (0.3 - 0.8j)), z, v)) \
        < 1e-6


BINARY = [
    ("add", np.add), ("subtract", np.subtract), ("multiply", np.multiply),
    ("divide", np.divide), ("power", np.power),
]


@pytest.mark.parametrize("name, f", BINARY, ids=[b[0] for b in BINARY])
def test_binary_operations_of_two_complex_arrays(name, f, rng):
    z, w = complex_sample(rng, (3,)), complex_sample(rng, (3,)) * 0.5

    def on_parts(zr, zi, wr, wi):
        out = f(zr + 1j * zi, wr + 1j * wi)
        return fnp.stack([fnp.real(out), fnp.imag(out)])
    check_grads(on_parts, modes=("fwd", "rev"), order=2)(z.real, z.imag, w.real, w.imag)
    value = make_vjp(lambda z: f(z, w))(z)[1]
    np.testing.assert_allclose(value, f(z, w), rtol=1e-13)


@pytest.mark.parametrize("make_constant", [lambda: 1j, lambda: 2.0 - 0.5j,
                                           lambda: np.complex128(0.5 + 1j),
                                           lambda: np.array([1j, 2.0, 0.5 - 1j])],
                         ids=["1j", "python complex", "numpy scalar", "array"])
@pytest.mark.parametrize("op", ["mul", "rmul", "add", "sub", "rsub", "div", "rdiv"])
def test_real_variables_meet_complex_constants(make_constant, op, rng):
    c = make_constant()
    apply = {"mul": lambda x: x * c, "rmul": lambda x: c * x, "add": lambda x: x + c,
             "sub": lambda x: x - c, "rsub": lambda x: c - x, "div": lambda x: x / c,
             "rdiv": lambda x: c / x}[op]
    x = rng.uniform(0.5, 2.0, 3)

    def loss(x):
        return fnp.sum(fnp.abs(apply(x)) ** 2 + fnp.angle(apply(x)))
    g = grad(loss)(x)
    assert np.isrealobj(g)
    for v in rng.normal(size=(2, 3)):
        numeric = directional(lambda x: np.sum(np.abs(apply(x)) ** 2 + np.angle(apply(x))),
                              x, v)
        assert abs(g @ v - numeric) < 1e-6 * (1 + abs(numeric))
    # a scalar Variable too (the scalar path)
    xs = 0.7
    gs = grad(lambda x: fnp.abs(apply(x) if np.ndim(c) == 0 else fnp.sum(apply(x))))(xs)
    assert isinstance(gs, float)


def test_complex_intermediates_of_real_inputs_give_real_gradients(rng):
    x = rng.normal(size=5)

    def loss(x):
        phase = fnp.exp(1j * x)                      # np.exp of a complex value
        z = x.astype(complex) + 0j + phase * (0.5 + 2j)
        return fnp.sum(fnp.real(z * fnp.conj(z))) + fnp.sum(fnp.imag(z))
    g = grad(loss)(x)
    assert g.dtype == np.float64
    check_grads(loss, modes=("fwd", "rev"), order=2)(x)


def test_plain_numpy_functions_dispatch_to_complex_values(rng):
    x = rng.normal(size=4)

    def loss(x):
        z = np.exp(1j * x) * (1.0 + x)               # plain NumPy on Variables
        return np.sum(np.real(z) ** 2) + np.sum(np.angle(z)) + np.mean(np.abs(z))
    assert np.isclose(loss(x), value_and_grad(loss)(x)[0])
    check_grads(loss, modes=("fwd", "rev"), order=2)(x)


# -- reductions, shapes, products, linear algebra ----------------------------------------------

ARRAY_FUNCTIONS = [
    ("sum", lambda z: np.sum(z, axis=0), (3, 2)),
    ("mean", lambda z: np.mean(z), (3, 2)),
    ("prod", lambda z: np.prod(z, axis=1), (3, 2)),
    ("prod all", lambda z: np.prod(z), (3, 2)),
    ("max", lambda z: np.max(z, axis=0), (3, 2)),
    ("min", lambda z: np.min(z), (3, 2)),
    ("var", lambda z: np.var(z, axis=0), (3, 2)),
    ("std", lambda z: np.std(z, ddof=1), (3, 2)),
    ("scalar plus array", lambda z: z[0, 0] + np.arange(3.0), (3, 2)),
    ("method sum", lambda z: z.sum(axis=1, keepdims=True), (3, 2)),
    ("reshape", lambda z: np.reshape(z, (2, 3)), (3, 2)),
    ("transpose", lambda z: z.T, (3, 2)),
    ("index", lambda z: z[1:, 0], (3, 2)),
    ("fancy index", lambda z: z[[0, 2, 2]], (3, 2)),
    ("concatenate", lambda z: np.concatenate([z, 2.0 * z], axis=1), (3, 2)),
    ("stack", lambda z: np.stack([z, z * 1j]), (3, 2)),
    ("where", lambda z: np.where(np.array([True, False, True])[:, None], z, 1j), (3, 2)),
    ("roll", lambda z: np.roll(z, 1, axis=0), (3, 2)),
    ("matmul", lambda z: z @ z.T, (3, 2)),
    ("matmul constant", lambda z: np.array([[1.0, 2j], [0.5j, 1.0]]) @ z.T, (3, 2)),
    ("dot", lambda z: np.dot(z[:, 0], z[:, 1]), (3, 2)),
    ("vdot", lambda z: np.vdot(z[:, 0], z[:, 1]), (3, 2)),
    ("outer", lambda z: np.outer(z[:, 0], z[:, 1]), (3, 2)),
    ("einsum", lambda z: np.einsum("ij,kj->ik", z, z), (3, 2)),
    ("inv", lambda z: np.linalg.inv(z + 2.0 * np.eye(3)), (3, 3)),
    ("solve", lambda z: np.linalg.solve(z + 2.0 * np.eye(3), z[:, 0]), (3, 3)),
    ("solve matrix", lambda z: np.linalg.solve(z + 2.0 * np.eye(3), z), (3, 3)),
]


@pytest.mark.parametrize("name, f, shape", ARRAY_FUNCTIONS,
                         ids=[a[0] for a in ARRAY_FUNCTIONS])
def test_array_functions_values_and_derivatives(name, f, shape, rng):
    z = complex_sample(rng, shape)
    value = make_vjp(f)(z)[1]
    np.testing.assert_allclose(value, f(z), rtol=1e-12, atol=1e-13)
    check_both_orders(f, z)


# -- conventions: grad, holomorphic_grad, vjp, jvp -------------------------------------------

def test_the_gradient_of_the_squared_modulus_is_twice_the_conjugate():
    assert grad(lambda z: fnp.abs(z) ** 2)(1 + 2j) == 2 - 4j


def real_functions():
    return [lambda np_, z: np_.abs(z) ** 2, lambda np_, z: np_.real(np_.exp(z) * z),
            lambda np_, z: np_.angle(z * (1 + 1j)), lambda np_, z: np_.imag(np_.sin(z)),
            lambda np_, z: np_.abs(np_.sqrt(z) + 1j)]


@pytest.mark.parametrize("k", range(5))
def test_grad_of_a_real_function_matches_autograd_and_jax(k, rng):
    f = real_functions()[k]
    z = complex(complex_sample(rng, ()))
    ours = grad(lambda z: f(fnp, z))(z)
    autograd = pytest.importorskip("autograd")
    import autograd.numpy as anp
    assert np.isclose(ours, autograd.grad(lambda z: f(anp, z))(z), rtol=1e-12)
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    assert np.isclose(ours, complex(jax.grad(lambda z: f(jnp, z))(z)), rtol=1e-12)


def test_grad_of_complex_arrays_matches_autograd(rng):
    autograd = pytest.importorskip("autograd")
    import autograd.numpy as anp
    z = complex_sample(rng, (4,))
    w = complex_sample(rng, (4,))

    def f(np_, z):
        return np_.sum(np_.abs(np_.exp(z) - w) ** 2) + np_.real(np_.dot(z, z))
    np.testing.assert_allclose(grad(lambda z: f(fnp, z))(z),
                               autograd.grad(lambda z: f(anp, z))(z), rtol=1e-12)


@pytest.mark.parametrize("f, derivative", [(fnp.exp, np.exp), (fnp.sin, np.cos),
                                           (lambda z: z ** 3, lambda z: 3 * z ** 2),
                                           (fnp.log, lambda z: 1 / z),
                                           (fnp.tanh, lambda z: 1 - np.tanh(z) ** 2)])
def test_holomorphic_grad_is_the_complex_derivative(f, derivative, rng):
    z = complex(complex_sample(rng, ()))
    assert np.isclose(holomorphic_grad(f)(z), derivative(z), rtol=1e-12)


def test_holomorphic_grad_matches_jax_holomorphic(rng):
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    z = complex(complex_sample(rng, ()))
    ours = holomorphic_grad(lambda z: fnp.sin(z) * fnp.exp(z))(z)
    theirs = jax.grad(lambda z: jnp.sin(z) * jnp.exp(z), holomorphic=True)(z)
    assert np.isclose(ours, complex(theirs), rtol=1e-12)


def test_grad_of_a_complex_output_raises_naming_holomorphic_grad():
    with pytest.raises(TypeError, match="holomorphic_grad"):
        grad(fnp.exp)(1 + 1j)
    with pytest.raises(TypeError, match="holomorphic_grad"):
        grad(lambda x: x * 1j)(2.0)              # (the scalar fast path)
    with pytest.raises(TypeError, match="holomorphic_grad"):
        grad(lambda x: fnp.sum(x * 1j))(np.ones(3))


def test_vjp_and_jvp_follow_autograds_conventions(rng):
    autograd = pytest.importorskip("autograd")
    import autograd.numpy as anp
    z = complex_sample(rng, (3,))
    g = complex_sample(rng, (3,))
    t = complex_sample(rng, (3,))

    def f(np_, z):
        return np_.exp(z) * np_.conj(z) + np_.abs(z)
    ours_vjp, value = make_vjp(lambda z: f(fnp, z))(z)
    theirs_vjp, _ = autograd.make_vjp(lambda z: f(anp, z))(z)
    np.testing.assert_allclose(value, f(np, z), rtol=1e-13)
    np.testing.assert_allclose(ours_vjp(g), theirs_vjp(g), rtol=1e-12)
    _, tangent = make_jvp(lambda z: f(fnp, z))(z)(t)
    np.testing.assert_allclose(tangent, directional(lambda z: f(np, z), z, t), rtol=1e-6)
    # the vjp is the adjoint of the jvp under Re<a, b> = Re sum(conj(a) b), for
    # covectors (conjugates): Re<t, conj(vjp(conj g))> = Re<g, jvp(t)>
    assert np.isclose(np.real(np.vdot(t, np.conj(ours_vjp(np.conj(g))))),
                      np.real(np.vdot(g, tangent)))


def test_jax_style_vjp_and_jvp_with_a_real_and_a_complex_argument(rng):
    z = complex_sample(rng, (2,))
    x = rng.normal(size=2)
    f = lambda z, x: fnp.sum(fnp.abs(z * x) ** 2)         # noqa: E731
    value, pullback = vjp(f, z, x)
    gz, gx = pullback(1.0)
    assert np.iscomplexobj(gz) and np.isrealobj(gx)
    np.testing.assert_allclose(gz, 2 * np.conj(z) * x ** 2, rtol=1e-12)
    np.testing.assert_allclose(gx, 2 * np.abs(z) ** 2 * x, rtol=1e-12)
    t = complex_sample(rng, (2,))
    _, tangent = jvp(f, (z, x), (t, np.zeros(2)))
    assert np.isclose(tangent, directional(lambda z: np.sum(np.abs(z * x) ** 2), z, t))


def test_arguments_in_containers_and_python_complex_numbers(rng):
    params = {"a": 1.0 + 0.5j, "b": complex_sample(rng, (2,)), "c": 0.3}

    def loss(p):
        return fnp.abs(p["a"]) ** 2 + fnp.sum(fnp.real(p["b"] * p["c"]))
    g = grad(loss)(params)
    assert g["a"] == pytest.approx(2 * np.conj(params["a"]))
    np.testing.assert_allclose(g["b"], params["c"] * np.ones(2))
    assert isinstance(g["c"], float)


# -- higher order, replay ------------------------------------------------------------------

def test_grad_of_grad_of_a_complex_argument(rng):
    z = complex(complex_sample(rng, ()))
    inner = grad(lambda z: fnp.abs(z) ** 3)          # 3 |z| conj(z)
    np.testing.assert_allclose(inner(z), 3 * abs(z) * np.conj(z), rtol=1e-12)

    def outer(z):
        return fnp.real(inner(z) * (0.4 + 0.9j))
    g = grad(outer)(z)
    v = complex(complex_sample(rng, ()))
    numeric = directional(lambda z: np.real(3 * abs(z) * np.conj(z) * (0.4 + 0.9j)), z, v)
    assert abs((g * v).real - numeric) < 1e-6


def test_a_traced_function_with_complex_intermediates_replays(rng):
    x0, x1 = rng.normal(size=4), rng.normal(size=4)

    def loss(x):
        z = fnp.exp(1j * x) * (x + 2j)
        return fnp.sum(fnp.abs(z) ** 2 + fnp.real(z * z))
    traced = trace(loss, x0)
    assert np.isclose(traced(x1), loss(x1))
    np.testing.assert_allclose(traced.grad(x1), grad(loss)(x1), rtol=1e-12)


# -- errors ------------------------------------------------------------------------------------

def test_complex_values_refuse_silent_conversions():
    seen = {}

    def f(z):
        seen["z"] = z
        with pytest.raises(TypeError, match="derivative"):
            np.asarray(z)
        with pytest.raises(ComplexInputError):
            float(z)
        with pytest.raises(TypeError, match="imaginary"):
            z.astype(float)
        return fnp.abs(z)
    grad(f)(1 + 1j)
    assert type(seen["z"]) is ComplexArray


@pytest.mark.parametrize("f, word", [(lambda z: np.maximum(z, 1.0), "maximum"),
                                     (lambda z: np.arctan2(z, 1.0), "arctan2"),
                                     (lambda z: np.sort(z), "sort")])
def test_operations_without_a_complex_rule_raise_naming_them(f, word):
    with pytest.raises(TypeError, match=word):
        grad(lambda z: fnp.abs(f(z)))(1 + 1j)


def test_a_real_variable_with_a_complex_maximum_raises():
    with pytest.raises(TypeError, match="maximum"):
        grad(lambda x: fnp.sum(fnp.abs(fnp.maximum(x, np.array([1j, 2.0])))))(np.ones(2))


def test_is_exported():
    assert fasttape.ComplexArray is ComplexArray
    assert fasttape.holomorphic_grad is holomorphic_grad


@pytest.mark.parametrize("f", [
    lambda x: fnp.sum(fnp.linalg.solve(fnp.diag(x), np.array([1j, 2.0, 1.0]))),
    lambda x: fnp.sum(fnp.linalg.det(fnp.diag(x) + np.eye(3) * 1j)),
], ids=["solve", "det"])
def test_real_matrices_meeting_complex_constants_differentiate_as_complex(f):
    """(rather than dropping the constants' imaginary parts)"""
    x = np.arange(1.0, 4.0)
    loss = lambda x: fnp.abs(f(x))                                   # noqa: E731
    h = 1e-6
    numerical = [(loss(x + h * e) - loss(x - h * e)) / (2 * h) for e in np.eye(3)]
    assert np.allclose(grad(loss)(x), numerical, atol=1e-6)


@pytest.mark.parametrize("np", [np, fnp], ids=["numpy", "fasttape.numpy"])
def test_numpy_functions_of_real_variables_and_complex_values_are_complex(np, rng):
    x = rng.normal(size=3)
    c = 1j * rng.normal(size=3)

    def loss(x):
        z = x * (1 + 2j)
        joined = np.concatenate([x, z]) * np.stack([z, x]).sum(axis=0)[0]
        return np.sum(np.abs(joined) ** 2) + np.abs(np.einsum("i,i", x, z)) + \
            np.sum(np.abs(np.where(x > 0, x, z))) + np.abs(np.einsum("i,i", x, c)) + \
            np.sum(np.abs(np.concatenate([x, c]) * np.where(x > 0, c, x).sum()))
    check_grads(loss, modes=("fwd", "rev"), order=2)(x)
