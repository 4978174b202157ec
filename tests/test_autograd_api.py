"""autograd's public names with fasttape: the operators composed from grad and make_vjp
(fasttape.composed), fasttape.builtins, fasttape.misc (flatten, const_graph,
fixed_point, optimizers) and the rest of fasttape.extend (the *_argnum(s) rules,
def_linear, "same", notrace_primitive, vspace).

Each derivative is checked against central differences (tests/support.py,
fasttape.check_grads) and, where autograd is installed, against autograd's function
of the same name called the same way.
"""
import collections
import inspect

import numpy as np
import pytest

import fasttape as ft
import fasttape.numpy as fnp
from fasttape import (check_grads, grad, hessian, jacobian, make_jvp, make_vjp,
                      value_and_grad)
from fasttape.extend import (def_linear, defjvp, defjvp_argnum, defjvp_argnums,
                             defvjp, defvjp_argnum, defvjp_argnums, getval, isbox,
                             notrace_primitive, primitive, primitive_vjps, vspace)
from fasttape.misc import const_graph, fixed_point, flatten, flatten_func
from fasttape.misc.optimizers import adam, rmsprop, sgd

from support import numerical_jacobian


def assert_close(got, expected, rtol=1e-10, atol=1e-12, what=""):
    assert np.shape(got) == np.shape(expected), (
        f"{what}: shape {np.shape(got)} != {np.shape(expected)}")
    np.testing.assert_allclose(np.asarray(got, dtype=float),
                               np.asarray(expected, dtype=float), rtol=rtol, atol=atol,
                               err_msg=what)


def assert_same_tree(got, expected, rtol=1e-10, atol=1e-12):
    """Same nesting of tuples, lists and dicts, and close leaves."""
    if isinstance(expected, dict):
        assert isinstance(got, dict) and list(got) == list(expected)
        for k in expected:
            assert_same_tree(got[k], expected[k], rtol, atol)
    elif isinstance(expected, (tuple, list)):
        assert type(got) is type(expected) and len(got) == len(expected)
        for g, e in zip(got, expected):
            assert_same_tree(g, e, rtol, atol)
    else:
        assert_close(got, expected, rtol, atol)


def autograd_module():
    return pytest.importorskip("autograd")


def sin_cubic(x):
    """A scalar function of an array with a full (non-diagonal) Hessian."""
    return fnp.sum(fnp.sin(x) * x ** 2) + fnp.sum(x) ** 3 / 10.0


def sin_cubic_autograd(x):
    import autograd.numpy as anp
    return anp.sum(anp.sin(x) * x ** 2) + anp.sum(x) ** 3 / 10.0


def numerical_gradient(f, x):
    return numerical_jacobian(f, x)


def numerical_hessian(f, x):
    return numerical_jacobian(lambda y: numerical_jacobian(f, y), x, rel_step=1e-2)


# -- deriv, grad_named -----------------------------------------------------------------

def test_deriv_is_the_derivative_of_a_scalar_function():
    f = lambda x: fnp.sin(x ** 2) * x + fnp.exp(-x)
    for x in (0.3, 1.3, -2.0):
        expected = float(numerical_gradient(f, x))
        assert_close(ft.deriv(f)(x), expected, rtol=1e-8)
        assert_close(ft.deriv(f)(x), grad(f)(x), rtol=1e-13)


def test_deriv_of_an_array_function_is_the_jacobian_times_ones(rng):
    A = rng.standard_normal((3, 4))
    f = lambda x: fnp.tanh(fnp.dot(A, x))
    x = rng.standard_normal(4)
    assert_close(ft.deriv(f)(x), numerical_jacobian(f, x) @ np.ones(4), rtol=1e-7)
    autograd = autograd_module()
    import autograd.numpy as anp
    assert_close(ft.deriv(f)(x), autograd.deriv(lambda x: anp.tanh(anp.dot(A, x)))(x))


def test_deriv_with_argnum_and_inside_grad():
    f = lambda a, x: a * fnp.sin(a * x)
    # d/dx f = a^2 cos(a x); its derivative in a, by reverse over forward
    d = ft.deriv(f, 1)
    assert_close(d(1.5, 0.7), 1.5 ** 2 * np.cos(1.5 * 0.7))
    second = grad(lambda a: d(a, 0.7))(1.5)
    assert_close(second, float(numerical_gradient(lambda a: d(a, 0.7), 1.5)), rtol=1e-8)


def test_grad_named_by_position_keyword_and_default():
    def f(x, scale, offset=0.5):
        return fnp.sin(scale * x) + offset ** 2 * scale

    by_name = ft.grad_named(f, "scale")
    expected = 0.7 * np.cos(2.0 * 0.7) + 0.25
    assert_close(by_name(0.7, 2.0), expected)
    assert_close(by_name(0.7, scale=2.0), expected)
    assert_close(by_name(x=0.7, scale=2.0), expected)
    offset = ft.grad_named(f, "offset")
    assert_close(offset(0.7, 2.0), 2 * 0.5 * 2.0)           # left to its default
    assert_close(offset(0.7, 2.0, offset=1.5), 2 * 1.5 * 2.0)
    with pytest.raises(ValueError, match="no positional parameter named 'y'"):
        ft.grad_named(f, "y")
    autograd = autograd_module()
    import autograd.numpy as anp
    g = lambda x, scale, offset=0.5: anp.sin(scale * x) + offset ** 2 * scale
    assert_close(by_name(0.7, 2.0), autograd.grad_named(g, "scale")(0.7, 2.0))


# -- Hessian products ------------------------------------------------------------------

def test_make_hvp_gives_hessian_products_and_the_gradient(rng):
    x = rng.standard_normal(5)
    hvp, gradient = ft.make_hvp(sin_cubic)(x)
    H = hessian(sin_cubic)(x)
    assert_close(H, numerical_hessian(sin_cubic, x), rtol=1e-5, atol=1e-6)
    assert_close(gradient, grad(sin_cubic)(x))
    for _ in range(3):
        v = rng.standard_normal(5)
        assert_close(hvp(v), H @ v)
    autograd = autograd_module()
    a_hvp, a_gradient = autograd.make_hvp(sin_cubic_autograd)(x)
    v = rng.standard_normal(5)
    assert_close(hvp(v), a_hvp(v))
    assert_close(gradient, a_gradient)


def test_hessian_tensor_product_contracts_all_of_the_arguments_axes(rng):
    x = rng.standard_normal((3, 2))
    V = rng.standard_normal((3, 2))
    H = hessian(sin_cubic)(x)
    assert_close(ft.hessian_tensor_product(sin_cubic)(x, V),
                 np.tensordot(H, V, axes=2))
    assert ft.hessian_vector_product is ft.hessian_tensor_product

    # keyword arguments go to the function; argnum picks the argument
    def weighted(w, x, power=2.0):
        return fnp.sum(w * fnp.abs(x) ** power)

    w = rng.uniform(0.5, 1.5, 4)
    y = rng.uniform(0.5, 1.5, 4)
    v = rng.standard_normal(4)
    expected = w * 3.0 * 2.0 * y * v                      # diagonal Hessian, power 3
    assert_close(ft.hessian_tensor_product(weighted, 1)(w, y, v, power=3.0), expected)
    autograd = autograd_module()
    import autograd.numpy as anp
    got = autograd.hessian_tensor_product(
        lambda w, x, power=2.0: anp.sum(w * anp.abs(x) ** power), 1)(w, y, v, power=3.0)
    assert_close(ft.hessian_tensor_product(weighted, 1)(w, y, v, power=3.0), got)


def explicit_ggnvp(f, g, x, v):
    J = numerical_jacobian(f, x)
    H = numerical_hessian(g, f(x))
    return J.T @ (H @ (J @ v))


def test_make_ggnvp_default_and_custom_g(rng):
    A = rng.standard_normal((5, 4))
    x = rng.standard_normal(4)
    v = rng.standard_normal(4)
    f = lambda x: fnp.tanh(fnp.dot(A, x))
    J = jacobian(f)(x)
    # default g: half the sum of squares, Hessian the identity
    assert_close(ft.make_ggnvp(f)(x)(v), J.T @ (J @ v))
    g = lambda y: fnp.sum(2.0 * y ** 2 + y ** 4)
    assert_close(ft.make_ggnvp(f, g)(x)(v), explicit_ggnvp(f, g, x, v), rtol=1e-5,
                 atol=1e-6)
    # f_argnum: the product with respect to another argument of f
    h = lambda scale, x: fnp.tanh(scale * fnp.dot(A, x))
    assert_close(ft.make_ggnvp(h, g, f_argnum=1)(1.0, x)(v),
                 ft.make_ggnvp(f, g)(x)(v))
    autograd = autograd_module()
    import autograd.numpy as anp
    a_f = lambda x: anp.tanh(anp.dot(A, x))
    a_g = lambda y: anp.sum(2.0 * y ** 2 + y ** 4)
    assert_close(ft.make_ggnvp(f, g)(x)(v), autograd.make_ggnvp(a_f, a_g)(x)(v))
    assert_close(ft.make_ggnvp(f)(x)(v), autograd.make_ggnvp(a_f)(x)(v))


# -- Jacobian products -----------------------------------------------------------------

def test_tensor_jacobian_product_full_and_partial_contractions(rng):
    f = lambda a: fnp.roll(fnp.sin(a), 1) * fnp.sum(a)
    a = rng.standard_normal((3, 4))
    J = numerical_jacobian(f, a)                          # (3, 4, 3, 4)
    V = rng.standard_normal((3, 4))
    assert_close(ft.tensor_jacobian_product(f)(a, V), np.tensordot(V, J, axes=2),
                 rtol=1e-7, atol=1e-8)
    w = rng.standard_normal(3)                            # the leading axis only
    assert_close(ft.tensor_jacobian_product(f)(a, w), np.tensordot(w, J, axes=1),
                 rtol=1e-7, atol=1e-8)
    assert ft.vector_jacobian_product is ft.tensor_jacobian_product
    autograd = autograd_module()
    import autograd.numpy as anp
    a_f = lambda a: anp.roll(anp.sin(a), 1) * anp.sum(a)
    assert_close(ft.tensor_jacobian_product(f)(a, V),
                 autograd.tensor_jacobian_product(a_f)(a, V))
    assert_close(ft.vector_jacobian_product(f)(a, w),
                 autograd.vector_jacobian_product(a_f)(a, w))


def test_tensor_jacobian_product_is_differentiable(rng):
    # x -> <v, J(x) u>-style quantities: the product recorded inside grad
    f = lambda x: fnp.sin(x) * fnp.sum(x ** 2)
    v = rng.standard_normal(3)
    u = rng.standard_normal(3)
    outer = lambda x: fnp.dot(ft.tensor_jacobian_product(f)(x, v), u)
    x = rng.standard_normal(3)
    expected = numerical_gradient(lambda x: float(numerical_jacobian(f, x).T @ v @ u), x)
    assert_close(grad(outer)(x), expected, rtol=1e-4, atol=1e-5)


# -- multigrad_dict, grad_and_aux, holomorphic_grad ------------------------------------

def test_multigrad_dict_names_every_argument():
    def f(a, b, *rest, c=2.0, **extra):
        return a * b + c * fnp.sin(a) + sum(r ** 2 for r in rest) + extra["d"] * b

    result = ft.multigrad_dict(f)(0.5, 1.5, 3.0, 4.0, d=0.25)
    assert isinstance(result, collections.OrderedDict)
    assert list(result) == ["a", "b", "rest", "c", "extra"]
    assert_close(result["a"], 1.5 + 2.0 * np.cos(0.5))
    assert_close(result["b"], 0.5 + 0.25)
    assert_same_tree(result["rest"], (6.0, 8.0))
    assert_close(result["c"], np.sin(0.5))                 # a default, differentiated too
    assert_same_tree(result["extra"], {"d": 1.5})
    # against central differences, argument by argument
    for name, shift in (("a", lambda e: f(0.5 + e, 1.5, 3.0, 4.0, d=0.25)),
                        ("c", lambda e: f(0.5, 1.5, 3.0, 4.0, c=2.0 + e, d=0.25))):
        assert_close(result[name], float(numerical_gradient(shift, 0.0)), rtol=1e-8)


def test_grad_and_aux_returns_the_gradient_and_plain_aux(rng):
    A = rng.standard_normal((5, 4))
    x = rng.standard_normal(4)

    def f(x):
        y = fnp.dot(A, x)
        return fnp.sum(fnp.tanh(y)), {"y": y, "squares": x ** 2, "label": "ok"}

    gradient, aux = ft.grad_and_aux(f)(x)
    assert_close(gradient, grad(lambda x: f(x)[0])(x))
    assert_close(gradient, numerical_gradient(lambda x: f(x)[0], x), rtol=1e-7)
    assert type(aux["y"]) is np.ndarray and type(aux["squares"]) is np.ndarray
    assert_close(aux["y"], A @ x)
    assert aux["label"] == "ok"
    autograd = autograd_module()
    import autograd.numpy as anp
    a_gradient, a_aux = autograd.grad_and_aux(
        lambda x: (anp.sum(anp.tanh(anp.dot(A, x))), x ** 2))(x)
    assert_close(gradient, a_gradient)
    assert_close(aux["squares"], a_aux)
    with pytest.raises(TypeError, match="pair"):
        ft.grad_and_aux(lambda x: fnp.sum(x))(x)


def test_grad_and_aux_nested_in_grad():
    # d/dx [ d/dy (x y^2) at y=x ] = d/dx [2 x^2] = 4x; the aux carries x y
    def inner(y, x):
        return x * y ** 2, x * y

    def outer(x):
        gradient, aux = ft.grad_and_aux(inner)(x, x)
        return gradient + 0.0 * aux

    assert_close(grad(outer)(1.3), 4 * 1.3)
    assert_close(grad(outer)(1.3), float(numerical_gradient(outer, 1.3)), rtol=1e-8)


def test_holomorphic_grad_of_a_real_input_warns_and_of_a_complex_one_is_f_prime():
    with pytest.warns(UserWarning, match="not complex"):
        assert_close(ft.holomorphic_grad(lambda x: x ** 3)(2.0), 12.0)
    z0 = 1.0 + 1.0j
    assert ft.holomorphic_grad(lambda z: z * z)(z0) == pytest.approx(2 * z0, rel=1e-14)


def test_primitive_is_the_extend_primitive():
    assert ft.primitive is primitive


# -- fasttape.builtins -----------------------------------------------------------------

def test_isinstance_and_type_see_through_variables(rng):
    seen = []

    def f(x, y):
        seen.append((ft.isinstance(x, float), ft.type(x), ft.isinstance(y, np.ndarray),
                     ft.type(y), ft.isinstance(x, ft.Variable), isinstance(x, float)))
        return x * fnp.sum(y)

    grad(f, (0, 1))(1.5, rng.standard_normal(3))
    assert seen == [(True, float, True, np.ndarray, True, False)]
    assert ft.type("name", (), {}).__name__ == "name"            # type's 3-argument form
    assert ft.isinstance(3, (str, int)) and not ft.isinstance(3.0, int)


def test_container_classes_are_their_python_builtins():
    assert ft.list((1, 2)) == [1, 2] and type(ft.list((1, 2))) is list
    assert type(ft.tuple([1])) is tuple and ft.tuple() == ()
    assert ft.dict([("a", 1)], b=2) == {"a": 1, "b": 2} and type(ft.dict()) is dict
    assert isinstance([], ft.list) and isinstance((), ft.tuple)
    assert isinstance({}, ft.dict)
    assert not isinstance((), ft.list) and not isinstance([], ft.dict)
    assert ft.isinstance([], (ft.tuple, ft.list))
    assert issubclass(list, ft.list)
    from fasttape import builtins
    assert builtins.list is ft.list and builtins.isinstance is ft.isinstance


def test_gradients_flow_through_the_containers(rng):
    def f(x):
        pair = ft.tuple((x, 2.0 * x))
        items = ft.list([fnp.sin(x), pair[1]])
        mapping = ft.dict([("a", items[0])], b=pair[0] * items[1])
        return mapping["a"] + mapping["b"]

    # sin x + 2 x^2
    assert_close(grad(f)(0.7), np.cos(0.7) + 4 * 0.7)
    check_grads(f, modes=("fwd", "rev"))(0.7)
    check_grads(f, modes=("rev",), order=2)(0.7)
    # a function returning a tuple made by fasttape.tuple: each element differentiated
    vjp, value = make_vjp(lambda x: ft.tuple((x ** 2, fnp.sin(x))))(0.7)
    assert_close(vjp((1.0, 0.5)), 2 * 0.7 + 0.5 * np.cos(0.7))
    _, tangent = make_jvp(lambda x: ft.list([x ** 2, 3.0 * x]))(0.7)(1.0)
    assert tangent == [2 * 0.7, 3.0] or np.allclose(tangent, [1.4, 3.0])


def test_grad_of_a_nested_grad_through_a_tuple():
    # d/dx of sum(sin(grad_y(y0 * y1) at (x, x))) = d/dx 2 sin(x) = 2 cos(x)
    def outer(x):
        inner = grad(lambda y: y[0] * y[1])(ft.tuple((x, x)))
        return fnp.sum(fnp.sin(fnp.array(inner)))

    assert_close(grad(outer)(0.4), 2 * np.cos(0.4))
    assert_close(grad(grad(outer))(0.4), -2 * np.sin(0.4))


def test_star_import_leaves_python_builtins_alone():
    namespace = {}
    exec("from fasttape import *", namespace)
    for name in ("list", "tuple", "dict", "isinstance", "type"):
        assert name not in namespace
        assert name not in ft.__all__
    for name in ("deriv", "grad_named", "make_hvp", "make_ggnvp", "multigrad_dict",
                 "grad_and_aux", "tensor_jacobian_product", "primitive"):
        assert name in namespace


# -- fasttape.misc.flatten -------------------------------------------------------------

def nested_value(rng):
    return (1.5, rng.standard_normal((2, 3)),
            [rng.standard_normal(4), {"y": 2.0, "x": rng.standard_normal(2)}])


def test_flatten_and_unflatten_round_trip(rng):
    value = nested_value(rng)
    vector, unflatten = flatten(value)
    assert vector.shape == (1 + 6 + 4 + 2 + 1,)
    assert vector[0] == 1.5
    # dicts by sorted key: x before y
    assert_close(vector[11:13], value[2][1]["x"])
    assert vector[13] == 2.0
    back = unflatten(vector)
    assert_same_tree(back, value, rtol=0, atol=0)
    assert type(back[0]) is float and list(back[2][1]) == ["y", "x"]
    assert_close(flatten(unflatten(2.0 * vector))[0], 2.0 * vector)
    with pytest.raises(ValueError, match="14 numbers"):
        unflatten(np.zeros(3))
    empty, unflatten_empty = flatten(((), [], {}))
    assert empty.shape == (0,) and unflatten_empty(empty) == ((), [], {})
    Point = collections.namedtuple("Point", "x y")
    point, unflatten_point = flatten(Point(1.0, np.ones(2)))
    assert type(unflatten_point(point)) is Point
    with pytest.raises(TypeError, match="str"):
        flatten(["a"])


def test_flatten_matches_autograd(rng):
    autograd_module()
    from autograd.misc import flatten as autograd_flatten
    value = nested_value(rng)
    assert_close(flatten(value)[0], autograd_flatten(value)[0], rtol=0, atol=0)
    vector = rng.standard_normal(14)
    assert_same_tree(flatten(value)[1](vector), autograd_flatten(value)[1](vector),
                     rtol=0, atol=0)


def test_flatten_and_unflatten_are_differentiable(rng):
    weights = rng.standard_normal(14)
    value = nested_value(rng)
    _, unflatten = flatten(value)

    def through_flatten(a, b, c):
        vector, _ = flatten([a, {"k": b, "j": c}])
        return fnp.sum(fnp.sin(vector) * weights[:vector.shape[0]])

    check_grads(through_flatten, modes=("fwd", "rev"))(0.3, rng.standard_normal(3),
                                                       rng.standard_normal((2, 2)))
    check_grads(through_flatten, modes=("rev",), order=2)(
        0.3, rng.standard_normal(3), rng.standard_normal((2, 2)))

    def through_unflatten(vector):
        s, m, (v, d) = unflatten(vector)
        return s * fnp.sum(m ** 2) + fnp.sum(fnp.cos(v)) * d["y"] + fnp.sum(d["x"])

    x = rng.standard_normal(14)
    assert_close(grad(through_unflatten)(x), numerical_gradient(through_unflatten, x),
                 rtol=1e-7, atol=1e-9)
    check_grads(through_unflatten, modes=("fwd", "rev"))(x)


def test_flatten_func(rng):
    example = {"w": rng.standard_normal(3), "b": 0.5}
    func = lambda p, scale: {"w": scale * p["w"] ** 2, "b": p["b"] * scale}
    flat_func, unflatten, flat_example = flatten_func(func, example)
    assert_close(flat_example, flatten(example)[0])
    assert_close(flat_func(flat_example, 2.0), flatten(func(example, 2.0))[0])
    assert_same_tree(unflatten(flat_example), example)
    J = jacobian(flat_func)(flat_example, 2.0)
    assert_close(J, numerical_jacobian(lambda v: flat_func(v, 2.0), flat_example),
                 rtol=1e-7, atol=1e-9)


# -- const_graph -----------------------------------------------------------------------

def test_const_graph_replays_without_running_the_function():
    calls = []

    def f(x, y):
        calls.append(1)
        return grad(lambda t: fnp.sin(t) * t + 2.0 * t)(x * y)

    cached = const_graph(f)
    assert calls == []
    for x, y in ((0.5, 2.0), (1.0, 0.5), (-0.3, 1.7)):
        expected = f(x, y)
        assert_close(cached(x, y), expected, rtol=1e-13)
    # recorded at the first call only (the others: one direct call each)
    assert len(calls) == 3 + 1


def test_const_graph_binds_arguments_and_reruns_only_live_primitives():
    log = []

    @primitive
    def tagged(value, tag):
        log.append(tag)
        return value

    defvjp(tagged, lambda ans, value, tag: lambda g: g)

    def f(x, y, z):
        return tagged(x, "x") + 2.0 * tagged(y, "y") + 3.0 * tagged(z, "z")

    cached = const_graph(f, 1.0, z=3.0)
    assert_close(cached(2.0), 1.0 + 4.0 + 9.0)
    assert log == ["x", "y", "z"]
    log.clear()
    assert_close(cached(5.0), 1.0 + 10.0 + 9.0)
    assert log == ["y"]                  # the constants' primitives are not re-run


def test_const_graph_inside_a_differentiation_calls_the_function():
    cached = const_graph(lambda x: fnp.sin(x) * x)
    assert_close(grad(cached)(0.8), np.cos(0.8) * 0.8 + np.sin(0.8))


# -- fixed_point -----------------------------------------------------------------------

def babylonian(a):
    """x -> (x + a/x) / 2, whose fixed point is sqrt(a)."""
    return lambda x: 0.5 * (x + a / x)


def distance(x, y):
    return fnp.max(fnp.abs(x - y))


def test_fixed_point_value_and_derivative():
    root = lambda a: fixed_point(babylonian, a, 1.0, distance, 1e-12)
    assert_close(root(2.0), np.sqrt(2.0), rtol=1e-12)
    assert_close(grad(root)(2.0), 0.5 / np.sqrt(2.0), rtol=1e-9)
    assert_close(ft.deriv(root)(3.0), 0.5 / np.sqrt(3.0), rtol=1e-9)
    check_grads(root, modes=("fwd", "rev"))(2.0)
    check_grads(root, modes=("rev",), order=2)(2.0)


def test_fixed_point_of_arrays_and_containers(rng):
    # x = tanh(W x + b) / 2: a contraction; differentiated in (W, b) together
    n = 3
    W0 = 0.3 * rng.standard_normal((n, n))
    b0 = rng.standard_normal(n)

    def step(params):
        W, b = params["W"], params["b"]
        return lambda x: 0.5 * fnp.tanh(fnp.dot(W, x) + b)

    def solve(W, b):
        return fixed_point(step, {"W": W, "b": b}, np.zeros(n), distance, 1e-13)

    x_star = solve(W0, b0)
    assert_close(x_star, 0.5 * np.tanh(W0 @ x_star + b0), rtol=1e-11, atol=1e-12)
    u = rng.standard_normal(n)
    loss = lambda W, b: fnp.dot(u, solve(W, b))
    gW, gb = grad(loss, (0, 1))(W0, b0)
    assert_close(gb, numerical_gradient(lambda b: loss(W0, b), b0), rtol=1e-6, atol=1e-8)
    assert_close(gW, numerical_gradient(lambda W: loss(W, b0), W0), rtol=1e-6, atol=1e-8)
    check_grads(solve, modes=("fwd", "rev"))(W0, b0)
    autograd = autograd_module()
    import autograd.numpy as anp
    from autograd.misc.fixed_points import fixed_point as autograd_fixed_point

    def a_step(params):
        return lambda x: 0.5 * anp.tanh(anp.dot(params[0], x) + params[1])

    a_loss = lambda W, b: anp.dot(u, autograd_fixed_point(
        a_step, (W, b), np.zeros(n), lambda x, y: anp.max(anp.abs(x - y)), 1e-13))
    aW, ab = autograd.grad(a_loss, (0, 1))(W0, b0)
    assert_close(gW, aW, rtol=1e-8, atol=1e-10)
    assert_close(gb, ab, rtol=1e-8, atol=1e-10)


def test_fixed_point_does_not_depend_on_the_start():
    start_gradient = grad(lambda x0: fixed_point(babylonian, 2.0, x0, distance, 1e-12))
    assert start_gradient(1.0) == 0.0


# -- optimizers ------------------------------------------------------------------------

def quadratic_gradient(target):
    def gradient(params, i):
        return {"w": 2.0 * (params["w"] - target) * (1.0 + 0.1 * i % 3),
                "b": [2.0 * (params["b"][0] + 1.0)]}
    return gradient


@pytest.mark.parametrize("name, kwargs", [
    ("sgd", dict(num_iters=300, step_size=0.1, mass=0.9)),
    ("rmsprop", dict(num_iters=300, step_size=0.01, gamma=0.9)),
    ("adam", dict(num_iters=500, step_size=0.05)),
])
def test_optimizers_on_containers_match_autograd(rng, name, kwargs):
    target = rng.standard_normal(3)
    x0 = {"w": np.zeros(3), "b": [0.5]}
    ours = {"sgd": sgd, "rmsprop": rmsprop, "adam": adam}[name]
    seen = []

    def callback(x, i, g):
        assert set(x) == {"w", "b"} and isinstance(g["b"], list)
        seen.append(i)

    result = ours(quadratic_gradient(target), x0, callback, **kwargs)
    assert seen == list(range(kwargs["num_iters"]))
    assert isinstance(result, dict) and isinstance(result["b"], list)
    assert_close(result["w"], target, rtol=1e-2, atol=1e-2)
    assert_close(result["b"][0], -1.0, rtol=1e-2, atol=1e-2)
    autograd_module()
    from autograd.misc import optimizers
    theirs = getattr(optimizers, name)(quadratic_gradient(target), x0, None, **kwargs)
    assert_close(result["w"], theirs["w"], rtol=1e-12, atol=1e-14)
    assert_close(result["b"][0], theirs["b"][0], rtol=1e-12, atol=1e-14)


def test_optimizer_signatures_are_autograds():
    def defaults(f):
        return {name: p.default for name, p in inspect.signature(f).parameters.items()}

    common = {"grad": inspect.Parameter.empty, "x": inspect.Parameter.empty,
              "callback": None}
    assert defaults(sgd) == {**common, "num_iters": 200, "step_size": 0.1, "mass": 0.9}
    assert defaults(rmsprop) == {**common, "num_iters": 100, "step_size": 0.1,
                                 "gamma": 0.9, "eps": 1e-8}
    assert defaults(adam) == {**common, "num_iters": 100, "step_size": 0.001,
                              "b1": 0.9, "b2": 0.999, "eps": 1e-8}


def test_an_optimizer_is_differentiable_in_its_step_size():
    # gradient descent on (x - 3)^2 from 0: x_n = 3 (1 - (1 - 2 s)^n) for plain steps;
    # sgd with mass 0 takes exactly those steps
    def final(step_size):
        return sgd(lambda x, i: 2.0 * (x - 3.0), np.zeros(1), num_iters=5,
                   step_size=step_size, mass=0.0)[0]

    s = 0.1
    assert_close(final(s), 3.0 * (1 - (1 - 2 * s) ** 5))
    assert_close(grad(final)(s), 3.0 * 5 * 2 * (1 - 2 * s) ** 4, rtol=1e-12)


# -- fasttape.extend: autograd's other rule forms --------------------------------------

def make_product():
    @primitive
    def product(a, b, c):
        return a * b * c
    return product


PRODUCT_PARTIALS = (lambda a, b, c: b * c, lambda a, b, c: a * c, lambda a, b, c: a * b)


def check_product(product):
    f = lambda a, b, c: fnp.sin(product(a, b, c))
    point = (0.7, -1.2, 0.4)
    gradients = grad(f, (0, 1, 2))(*point)
    expected = [np.cos(0.7 * -1.2 * 0.4) * p(*point) for p in PRODUCT_PARTIALS]
    assert_close(np.array(gradients), expected)
    return f, point


def test_defvjp_argnum_and_defjvp_argnum():
    product = make_product()
    calls = []

    def vjp_maker(argnum, ans, args, kwargs):
        calls.append(argnum)
        return lambda g: g * PRODUCT_PARTIALS[argnum](*args)

    defvjp_argnum(product, vjp_maker)
    defjvp_argnum(product, lambda argnum, g, ans, args, kwargs:
                  g * PRODUCT_PARTIALS[argnum](*args))
    f, point = check_product(product)
    assert sorted(calls) == [0, 1, 2]
    check_grads(f, modes=("fwd", "rev"))(*point)
    check_grads(f, modes=("rev",), order=2)(*point)


def test_defvjp_argnums_and_defjvp_argnums_see_all_arguments_at_once():
    product = make_product()
    seen = []

    def vjp_maker(argnums, ans, args, kwargs):
        seen.append(argnums)
        return lambda g: tuple(g * PRODUCT_PARTIALS[i](*args) for i in argnums)

    def jvp_rule(argnums, gs, ans, args, kwargs):
        return sum(g * PRODUCT_PARTIALS[i](*args) for i, g in zip(argnums, gs))

    defvjp_argnums(product, vjp_maker)
    defjvp_argnums(product, jvp_rule)
    f, point = check_product(product)
    assert seen == [(0, 1, 2)]
    grad(lambda b: product(1.0, b, 2.0))(3.0)
    assert seen[-1] == (1,)
    check_grads(f, modes=("fwd", "rev"))(*point)


def test_same_and_def_linear_for_linear_arguments(rng):
    @primitive
    def scaled_sum(x, w):
        return np.sum(x * w)                     # linear in x, and in w

    defvjp(scaled_sum, lambda ans, x, w: lambda g: g * w,
           lambda ans, x, w: lambda g: g * x)
    defjvp(scaled_sum, "same", "same")
    x, w = rng.standard_normal(4), rng.standard_normal(4)
    check_grads(scaled_sum, modes=("fwd", "rev"))(x, w)
    _, tangent = make_jvp(scaled_sum)(x, w)(np.ones(4))
    assert_close(tangent, np.sum(w))

    @primitive
    def bilinear(x, w):
        return np.sum(x * w)

    defvjp(bilinear, lambda ans, x, w: lambda g: g * w, lambda ans, x, w: lambda g: g * x)
    def_linear(bilinear)
    check_grads(bilinear, modes=("fwd", "rev"))(x, w)
    _, tangent = ft.jvp(bilinear, (x, w), (w, x))
    assert_close(tangent, np.sum(w * w) + np.sum(x * x))
    with pytest.raises(TypeError, match="neither a function nor 'same'"):
        defjvp(bilinear, "linear")


def test_missing_rules_raise_type_and_not_implemented_errors():
    bare = primitive(lambda x: 2.0 * x)
    with pytest.raises(NotImplementedError, match="no VJP"):
        grad(bare)(1.0)
    with pytest.raises(TypeError, match="no JVP"):
        ft.deriv(bare)(1.0)
    assert issubclass(ft.MissingRuleError, TypeError)
    # the rules live in primitive_vjps: removing the entry removes them
    product = make_product()
    defvjp(product, *[(lambda i: lambda ans, a, b, c: lambda g: g *
                       PRODUCT_PARTIALS[i](a, b, c))(i) for i in range(3)])
    assert_close(grad(product)(1.0, 2.0, 3.0), 6.0)
    rules = primitive_vjps.pop(product)
    with pytest.raises(ft.MissingRuleError):
        grad(product)(1.0, 2.0, 3.0)
    primitive_vjps[product] = rules
    assert_close(grad(product)(1.0, 2.0, 3.0), 6.0)


def test_deprecated_primitive_methods_still_define_rules(rng):
    a, b = rng.standard_normal((2, 2)), rng.standard_normal((2, 2))
    for define in ("defgrad", "defvjp"):
        mul = make_product()
        with pytest.warns(DeprecationWarning):
            if define == "defgrad":
                mul.defgrad(lambda ans, x, y, z: lambda g: y * z * g)
                mul.defgrad(lambda ans, x, y, z: lambda g: x * z * g, argnum=1)
            else:
                mul.defvjp(lambda g, ans, vs, gvs, x, y, z: y * z * g)
                mul.defvjp(lambda g, ans, vs, gvs, x, y, z: x * z * g, argnum=1)
        gx, gy = grad(lambda x, y: fnp.sum(mul(x, y, 2.0)), (0, 1))(a, b)
        assert_close(gx, 2.0 * b)
        assert_close(gy, 2.0 * a)
    zero = primitive(lambda x, y: 0.0 * x * y)
    with pytest.warns(DeprecationWarning):
        zero.defvjp_is_zero([0, 1])
    assert_close(grad(lambda x: fnp.sum(zero(x, b)))(a), np.zeros((2, 2)))


def test_notrace_primitive_getval_isbox(rng):
    seen = []

    @notrace_primitive
    def describe(x):
        seen.append((type(x), isbox(x)))
        return np.shape(x)

    def f(x):
        assert isbox(x) and not isbox(getval(x))
        shape = describe(x)
        return fnp.sum(x) * shape[0]

    x = rng.standard_normal(3)
    assert_close(grad(f)(x), np.full(3, 3.0))
    assert seen == [(np.ndarray, False)]
    assert not isbox(value_and_grad(f)(x)[0])


# -- vspace ----------------------------------------------------------------------------

@pytest.mark.parametrize("value", [
    np.zeros((3, 2)), 0.0, [1.0, np.zeros((2, 1))], (1.0, np.zeros((2, 1))),
    {"a": 1.0, "b": np.zeros((2, 1))}, {"x": [0.0, np.zeros((3, 1))], "y": ({"a": 0.0},)},
], ids=["array", "float", "list", "tuple", "dict", "mixed"])
def test_vspace_is_a_vector_space_with_an_inner_product(value):
    vs = vspace(value)
    basis = list(vs.standard_basis())
    assert len(basis) == vs.size == flatten(value)[0].size
    gram = np.array([[vs.inner_prod(e, f) for f in basis] for e in basis])
    assert_close(gram, np.eye(vs.size))
    x, y = vs.randn(), vs.randn()
    assert vspace(x) == vs and vspace(vs.zeros()) == vs and vspace(vs.ones()) == vs
    assert_close(flatten(vs.add(x, y))[0], flatten(x)[0] + flatten(y)[0])
    assert_close(flatten(vs.scalar_mul(x, -2.5))[0], -2.5 * flatten(x)[0])
    assert_close(vs.inner_prod(x, y), flatten(x)[0] @ flatten(y)[0])
    assert_close(flatten(vs.ones())[0], np.ones(vs.size))
    assert_close(flatten(vs.zeros())[0], np.zeros(vs.size))
    assert_close(flatten(vs.mut_add(None, x))[0], flatten(x)[0])
    # the operations are differentiable
    check_grads(vs.inner_prod, modes=("fwd", "rev"))(x, y)
    check_grads(lambda x, a: vs.scalar_mul(x, a), modes=("fwd", "rev"))(x, 0.7)


def test_vspace_attributes_of_arrays_numbers_and_variables(rng):
    vs = vspace(np.zeros((3, 2)))
    assert vs.shape == (3, 2) and vs.size == 6 and vs.ndim == 2
    assert vs.dtype == np.float64 and not vs.iscomplex
    assert vs.zeros().shape == (3, 2) and vs.randn().shape == (3, 2)
    scalar = vspace(2.5)
    assert scalar.shape == () and scalar.size == 1 and type(scalar.zeros()) is float
    assert vspace(3) == scalar and vspace(np.float32(1.0)).dtype == np.float32
    assert vspace(np.zeros((2,), complex)).size == 4
    assert vspace([1.0, np.zeros(2)]).shape == [scalar, vspace(np.zeros(2))]
    assert vspace({"a": 1.0}) != vspace({"b": 1.0})

    def f(x):
        assert vspace(x) == vspace(np.zeros(4)) and vspace(x).shape == (4,)
        return fnp.sum(x * vspace(x).ones())

    assert_close(grad(f)(rng.standard_normal(4)), np.ones(4))
    with pytest.raises(TypeError, match="no vector space"):
        vspace("text")
    autograd_module()                  # (skips without autograd)
    from autograd.extend import vspace as autograd_vspace
    for value in (np.zeros((3, 2)), [1.0, np.zeros(2)], {"a": np.ones(3)}):
        assert vspace(value).size == autograd_vspace(value).size


def test_rules_written_with_vspace():
    @primitive
    def clipped_identity(x, limit):
        return np.clip(x, -limit, limit)

    # the limit's derivative is zero by fiat here: vspace(limit).zeros()
    defvjp(clipped_identity,
           lambda ans, x, limit: lambda g: g * (np.abs(x) < limit),
           lambda ans, x, limit: lambda g: vspace(limit).zeros())
    x = np.array([-2.0, 0.5, 3.0])
    gx, glimit = grad(lambda x, lim: fnp.sum(clipped_identity(x, lim)), (0, 1))(x, 1.0)
    assert_close(gx, [0.0, 1.0, 0.0])
    assert glimit == 0.0


def test_fasttape_misc_flatten_is_the_function_and_its_module_imports():
    import sys

    import fasttape.misc
    module = sys.modules["fasttape.misc.flatten"]
    assert fasttape.misc.flatten is module.flatten is flatten      # as in autograd.misc
    assert module.flatten_func is flatten_func


def test_checkpoint_passes_keyword_arguments_as_constants(rng):
    def layer(x, w, power=2.0):
        return fnp.sum(fnp.abs(fnp.dot(w, x)) ** power)

    remat = ft.checkpoint(layer)
    x, w = rng.standard_normal(3), rng.standard_normal((2, 3))
    loss = lambda x, w: remat(x, w, power=3.0)
    for got, expected in zip(grad(loss, (0, 1))(x, w),
                             grad(lambda x, w: layer(x, w, power=3.0), (0, 1))(x, w)):
        assert_close(got, expected)
    check_grads(loss, modes=("fwd", "rev"))(x, w)
    # (no Variable among the positional arguments: a plain call, recorded as usual)
    assert_close(grad(lambda p: remat(x, w, power=p))(3.0),
                 float(numerical_gradient(lambda p: layer(x, w, power=p), 3.0)),
                 rtol=1e-8)
    with pytest.raises(TypeError, match="positional"):
        grad(lambda x: remat(x, w, power=x[0] + 2.0))(x)


# -- autograd.core / wrap_util names (fasttape.core) ---------------------------------

def test_core_make_vjp_and_unary_to_nary_build_an_operator():
    import fasttape.core as core

    @core.unary_to_nary
    def my_grad(fun, x):
        vjp, _ = core.make_vjp(fun, x)
        return vjp(1.0)

    def f(x, y):
        return x ** 2 * ft.sin(y)

    x, y = 0.7, 1.8
    assert my_grad(f)(x, y) == pytest.approx(2 * x * np.sin(y), rel=1e-14)
    assert my_grad(f, 1)(x, y) == pytest.approx(x ** 2 * np.cos(y), rel=1e-14)
    both = my_grad(f, (0, 1))(x, y)
    np.testing.assert_allclose(both, ft.grad(f, argnum=(0, 1))(x, y), rtol=1e-14)
    assert my_grad(f).__name__ == "f"
    value, tangent = core.make_jvp(lambda v: v ** 3, 2.0)(1.0)
    assert (value, tangent) == (8.0, 12.0)
