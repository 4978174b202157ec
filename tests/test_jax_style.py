"""JAX's spellings beside autograd's: ``argnums=``, ``has_aux=``, Jacobians structured
as ``jax.jacrev``'s, ``stop_gradient``; and JAX code run by changing its imports.

Values are checked against central differences (fasttape.check_grads, first and second
order, forward and reverse) and, where JAX is installed, the structure and values of the
results against JAX's own.
"""
import math

import numpy as np
import optree
import pytest

import fasttape as ft
import fasttape.numpy as fnp
from fasttape.composed import (deriv, grad_and_aux, make_hvp,
                               tensor_jacobian_product)


def jax_or_skip():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    return jax


def as_numpy(tree):
    """JAX's result with NumPy arrays for its leaves (same structure)."""
    return optree.tree_map(lambda v: np.asarray(v) * 1.0, tree, none_is_leaf=False)


def assert_same_tree(ours, theirs, rtol=1e-12, atol=1e-14):
    """Same structure (containers and their keys), and leaves equal in shape and value."""
    ours_leaves, ours_spec = optree.tree_flatten(
        optree.tree_map(lambda v: np.asarray(v) * 1.0, ours))
    theirs_leaves, theirs_spec = optree.tree_flatten(as_numpy(theirs))
    assert ours_spec == theirs_spec, (ours_spec, theirs_spec)
    for a, b in zip(ours_leaves, theirs_leaves):
        assert a.shape == b.shape, (a.shape, b.shape)
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


# -- argnums= on every operator ---------------------------------------------------------

def f2(x, y):
    return fnp.sum(fnp.sin(x) * y ** 2)


X = np.array([0.3, -1.1])
Y = np.array([0.7, 2.0])

# (name, call with a keyword argument naming the differentiated argument(s)); each is
# called with argnum= and with argnums= and must agree, and differ from argument 0's
OPERATORS = {
    "grad": lambda kw: ft.grad(f2, **kw)(X, Y),
    "value_and_grad": lambda kw: ft.value_and_grad(f2, **kw)(X, Y)[1],
    "elementwise_grad": lambda kw: ft.elementwise_grad(
        lambda x, y: fnp.sin(x) * y ** 2, **kw)(X, Y),
    "jacobian": lambda kw: ft.jacobian(lambda x, y: fnp.sin(x) * y ** 2, **kw)(X, Y),
    "jacfwd": lambda kw: ft.jacfwd(lambda x, y: fnp.sin(x) * y ** 2, **kw)(X, Y),
    "jacrev": lambda kw: ft.jacrev(lambda x, y: fnp.sin(x) * y ** 2, **kw)(X, Y),
    "hessian": lambda kw: ft.hessian(f2, **kw)(X, Y),
    "hvp": lambda kw: ft.hvp(f2, **kw)(X, Y, np.array([1.0, -2.0])),
    "hessian_vector_product": lambda kw: ft.hessian_vector_product(f2, **kw)(
        X, Y, np.array([0.5, 1.0])),
    "make_vjp": lambda kw: ft.make_vjp(lambda x, y: fnp.sin(x) * y ** 2, **kw)(X, Y)[0](
        np.array([1.0, 3.0])),
    "make_jvp": lambda kw: ft.make_jvp(lambda x, y: fnp.sin(x) * y ** 2, **kw)(X, Y)(
        np.array([1.0, 3.0]))[1],
    "deriv": lambda kw: deriv(lambda x, y: fnp.sin(x) * y ** 2, **kw)(X, Y),
    "make_hvp": lambda kw: make_hvp(f2, **kw)(X, Y)[0](np.array([1.0, 0.5])),
    "tensor_jacobian_product": lambda kw: tensor_jacobian_product(
        lambda x, y: fnp.sin(x) * y ** 2, **kw)(X, Y, np.array([1.0, 2.0])),
    "grad_and_aux": lambda kw: grad_and_aux(lambda x, y: (f2(x, y), 0.0), **kw)(X, Y)[0],
    "trace": lambda kw: ft.trace(f2, X, Y, **kw).grad(X, Y),
    "holomorphic_grad": lambda kw: ft.holomorphic_grad(
        lambda x, y: x * y ** 2, **kw)(0.5 + 0.2j, 1.0 - 0.3j),
}


@pytest.mark.parametrize("name", sorted(OPERATORS))
def test_argnums_is_argnum(name):
    call = OPERATORS[name]
    by_argnum = call({"argnum": 1})
    by_argnums = call({"argnums": 1})
    assert_same_tree(by_argnums, by_argnum, rtol=0, atol=0)
    assert_same_tree(call({"argnum": 1, "argnums": 1}), by_argnum, rtol=0, atol=0)
    first = call({"argnums": 0})
    assert not np.allclose(np.asarray(first), np.asarray(by_argnum))
    with pytest.raises(TypeError, match="argnums"):
        call({"argnum": 1, "argnums": 0})


def test_argnums_tuples_and_lists():
    g = ft.grad(f2, argnums=(0, 1))(X, Y)
    assert type(g) is tuple and len(g) == 2
    assert_same_tree(ft.grad(f2, argnums=[0, 1])(X, Y), g, rtol=0, atol=0)
    np.testing.assert_allclose(g[0], np.cos(X) * Y ** 2)
    np.testing.assert_allclose(g[1], np.sin(X) * 2 * Y)
    (gy,) = ft.grad(f2, argnums=(1,))(X, Y)
    np.testing.assert_allclose(gy, g[1])
    with pytest.raises(TypeError, match="argnum"):
        ft.grad(f2, argnums=(0, 5))(X, Y)


# -- Jacobians over several arguments, structured as JAX's ---------------------------------

def jacobian_cases(m):
    """(function, arguments) pairs written with the NumPy module m (fasttape.numpy or
    jax.numpy): containers in and out."""
    params = {"a": np.array([0.4, -0.3, 1.2]), "b": 0.7}
    return [
        ("dict in, dict out", lambda p: {"u": p["a"] * p["b"], "v": m.sin(p["a"])[:2]},
         (params,), 0),
        ("two arrays in, one out", lambda x, y: m.sin(x) * y[0] + y[1], (X, Y), (0, 1)),
        ("array and dict in, list out",
         lambda x, p: [m.sum(x * p["a"][:2]), x * p["b"]], (X, params), (0, 1)),
        ("array in, tuple out", lambda x: (m.exp(x), m.sum(x ** 3)), (X,), 0),
        ("number in, array out", lambda s: m.stack([s, s * s, m.sin(s)]), (0.8,), 0),
        ("list in, number out", lambda xs: xs[0] * xs[1] ** 2 + m.tanh(xs[2]),
         ([0.3, -0.8, 1.5],), 0),
        ("nested dict in and out",
         lambda p: {"outer": {"s": p["w"]["x"] ** 2, "t": (p["w"]["x"] * p["z"],)}},
         ({"w": {"x": np.array([1.0, 2.0])}, "z": np.array([[0.5], [1.5]])},), 0),
    ]


@pytest.mark.parametrize("k", range(7))
@pytest.mark.parametrize("operator", ["jacobian", "jacrev", "jacfwd"])
def test_jacobians_have_jaxs_structure_and_values(operator, k):
    jax = jax_or_skip()
    import jax.numpy as jnp
    label, ours_f, args, argnums = jacobian_cases(fnp)[k]
    _, theirs_f, _, _ = jacobian_cases(jnp)[k]
    ours = getattr(ft, operator)(ours_f, argnums=argnums)(*args)
    theirs = getattr(jax, operator if operator != "jacobian" else "jacrev")(
        theirs_f, argnums=argnums)(*args)
    assert_same_tree(ours, theirs)


@pytest.mark.parametrize("k", range(7))
def test_functions_of_containers_pass_the_gradient_checker(k):
    label, f, args, argnums = jacobian_cases(fnp)[k]
    ft.check_grads(f, modes=("fwd", "rev"), order=2)(*args)


def test_a_jacobian_with_respect_to_an_empty_container_or_of_a_constant_output():
    j = ft.jacobian(lambda x, p: x * 2.0, argnums=(0, 1))(X, {"none": None})
    np.testing.assert_array_equal(j[0], 2.0 * np.eye(2))
    assert j[1] == {"none": None}
    j = ft.jacobian(lambda x: {"c": np.ones(3), "x": x})(X)
    np.testing.assert_array_equal(j["c"], np.zeros((3, 2)))
    np.testing.assert_array_equal(j["x"], np.eye(2))


def test_hessian_of_a_dict_has_jaxs_structure():
    jax = jax_or_skip()
    import jax.numpy as jnp
    p = {"a": np.array([0.4, -0.3]), "b": 0.7}
    ours = ft.hessian(lambda p: fnp.sum(fnp.sin(p["a"]) * p["b"] ** 2))(p)
    theirs = jax.hessian(lambda p: jnp.sum(jnp.sin(p["a"]) * p["b"] ** 2))(p)
    assert_same_tree(ours, theirs)
    # a flat list of numbers stays one (n, n) array (autograd's meaning)
    h = ft.hessian(lambda v: v[0] ** 2 * v[1])([1.5, 2.0])
    np.testing.assert_allclose(h, [[4.0, 3.0], [3.0, 0.0]])
    # several arguments: a tuple of tuples
    hh = ft.hessian(lambda x, y: fnp.sum(x ** 2 * y), argnums=(0, 1))(X, Y)
    theirs = jax.hessian(lambda x, y: jnp.sum(x ** 2 * y), argnums=(0, 1))(X, Y)
    assert_same_tree(hh, theirs)


# -- has_aux ----------------------------------------------------------------------------------

def loss_with_aux(w, x):
    pred = fnp.tanh(x * w)
    value = fnp.sum(pred ** 2)
    return value, {"pred": pred, "label": "batch 1", "first": pred[0]}


def plain_loss(w, x):
    return float(np.sum(np.tanh(x * w) ** 2))


W = np.array([0.5, -1.5, 2.0])
XB = np.array([1.0, 0.3, -0.2])


def check_aux(aux):
    np.testing.assert_allclose(aux["pred"], np.tanh(XB * W), rtol=1e-15)
    assert type(aux["pred"]) is np.ndarray and isinstance(aux["first"], float)
    assert aux["label"] == "batch 1"


def test_has_aux_on_grad_and_value_and_grad():
    g, aux = ft.grad(loss_with_aux, has_aux=True)(W, XB)
    check_aux(aux)
    np.testing.assert_allclose(g, ft.numerical_grad(lambda w: plain_loss(w, XB), W),
                               rtol=1e-7)
    (value, aux), g2 = ft.value_and_grad(loss_with_aux, has_aux=True)(W, XB)
    check_aux(aux)
    assert value == pytest.approx(plain_loss(W, XB), rel=1e-15)
    np.testing.assert_array_equal(g2, g)
    # float arguments (grad's fast path)
    (v, aux), gs = ft.value_and_grad(lambda x, y: (x * y, {"x": x}), argnums=(0, 1),
                                     has_aux=True)(2.0, 3.0)
    assert (v, gs, aux) == (6.0, (3.0, 2.0), {"x": 2.0}) and type(aux["x"]) is float


def test_has_aux_on_jacobians_vjp_jvp_and_hessian():
    for operator in (ft.jacobian, ft.jacfwd, ft.jacrev):
        j, aux = operator(lambda w, x: (fnp.tanh(x * w), loss_with_aux(w, x)[1]),
                          has_aux=True)(W, XB)
        check_aux(aux)
        np.testing.assert_allclose(j, np.diag(XB / np.cosh(XB * W) ** 2), rtol=1e-13)
    value, vjp_fun, aux = ft.vjp(loss_with_aux, W, XB, has_aux=True)
    check_aux(aux)
    gw, gx = vjp_fun(2.0)
    np.testing.assert_allclose(gw, 2.0 * ft.grad(lambda w: loss_with_aux(w, XB)[0])(W))
    value, tangent, aux = ft.jvp(loss_with_aux, (W, XB), (np.ones(3), np.zeros(3)),
                                 has_aux=True)
    check_aux(aux)
    assert tangent == pytest.approx(float(np.sum(gw)) / 2.0)
    h, aux = ft.hessian(loss_with_aux, has_aux=True)(W, XB)
    check_aux(aux)
    np.testing.assert_allclose(h, ft.hessian(lambda w: loss_with_aux(w, XB)[0])(W))


def test_has_aux_matches_jax():
    jax = jax_or_skip()
    import jax.numpy as jnp

    def loss(m):
        def f(p, x):
            pred = m.tanh(x @ p["w"] + p["b"])
            return m.mean(pred ** 2), {"pred": pred}
        return f

    p = {"w": np.arange(6.0).reshape(3, 2) / 10, "b": np.array([0.1, -0.2])}
    x = np.arange(12.0).reshape(4, 3) / 5
    ours = ft.value_and_grad(loss(fnp), has_aux=True)(p, x)
    theirs = jax.value_and_grad(loss(jnp), has_aux=True)(p, x)
    assert_same_tree(ours, theirs)
    ours = ft.jacrev(loss(fnp), has_aux=True)(p, x)
    theirs = jax.jacrev(loss(jnp), has_aux=True)(p, x)
    assert_same_tree(ours, theirs)


def test_has_aux_requires_a_pair():
    with pytest.raises(TypeError, match="pair"):
        ft.grad(lambda x: x * 2.0, has_aux=True)(1.0)
    with pytest.raises(TypeError, match="pair"):
        ft.jacobian(lambda x: (x, x, x), has_aux=True)(X)


def test_aux_inside_another_differentiation_keeps_the_outer_variables():
    # the inner aux holds the outer Variable: differentiable by the outer grad
    def outer(s):
        g, aux = ft.grad(lambda x: (x ** 3 * s, s * s), has_aux=True)(2.0)
        return g + aux
    # g = 3 x^2 s = 12 s; aux = s^2: d/ds = 12 + 2 s
    assert ft.grad(outer)(1.5) == pytest.approx(15.0)


# -- stop_gradient ----------------------------------------------------------------------------

def test_stop_gradient_first_and_second_order():
    sg = ft.stop_gradient
    assert ft.grad(lambda x: x * sg(x))(3.0) == 3.0
    # d/dx x^2 sg(x) = 2 x sg(x); again: 2 sg(x)
    assert ft.grad(lambda x: x ** 2 * sg(x))(1.5) == pytest.approx(2 * 1.5 * 1.5)
    assert float(ft.hessian(lambda x: x ** 2 * sg(x))(1.5)) == pytest.approx(3.0)
    assert ft.grad(ft.grad(lambda x: x ** 2 * sg(x)))(1.5) == pytest.approx(3.0)
    x = np.array([0.5, -2.0])
    np.testing.assert_allclose(ft.grad(lambda x: fnp.sum(fnp.sin(x) * sg(x)))(x),
                               np.cos(x) * x)
    # forward mode
    _, t = ft.jvp(lambda x: x * sg(x), (x,), (np.ones(2),))
    np.testing.assert_allclose(t, x)
    # plain values and containers
    assert sg(2.5) == 2.5 and sg(None) is None
    g = ft.grad(lambda p: p["a"] * sg(p)["a"] + sg(p)["b"])({"a": 2.0, "b": 1.0})
    assert g == {"a": 2.0, "b": 0.0}


def test_stop_gradient_matches_jax():
    jax = jax_or_skip()
    import jax.numpy as jnp

    def f(m, stop):
        return lambda x: m.sum(m.exp(stop(x) * x) * m.sin(x))

    x = np.array([0.3, 0.9, -0.4])
    np.testing.assert_allclose(ft.grad(f(fnp, ft.stop_gradient))(x),
                               jax.grad(f(jnp, jax.lax.stop_gradient))(x), rtol=1e-13)
    np.testing.assert_allclose(ft.hessian(f(fnp, ft.stop_gradient))(x),
                               jax.hessian(f(jnp, jax.lax.stop_gradient))(x), rtol=1e-12)


def test_stop_gradient_replays_with_new_values():
    traced = ft.trace(lambda x: x * ft.stop_gradient(x), 2.0)
    assert traced(3.0) == 9.0
    assert traced.grad(3.0) == 3.0
    traced = ft.trace(lambda x: fnp.sum(x * ft.stop_gradient(x)), np.array([1.0, 2.0]))
    np.testing.assert_allclose(traced.grad(np.array([3.0, -1.0])), [3.0, -1.0])


# -- JAX code with its imports changed ----------------------------------------------------------

JAX_SNIPPET = '''
import numpy as onp

def init(n_in, n_hidden):
    return {"w1": onp.linspace(-1, 1, n_in * n_hidden).reshape(n_in, n_hidden),
            "b1": onp.zeros(n_hidden), "w2": onp.linspace(0.5, -0.5, n_hidden),
            "b2": 0.1}

def loss(params, batch):
    x, y = batch
    hidden = jnp.tanh(x @ params["w1"] + params["b1"])
    pred = hidden @ params["w2"] + params["b2"]
    err = pred - y
    return jnp.mean(err ** 2), {"pred": pred, "max_err": jnp.max(jnp.abs(err))}

params = init(3, 4)
batch = (onp.arange(15.0).reshape(5, 3) / 10, onp.linspace(0, 1, 5))
(value, aux), grads = jax.value_and_grad(loss, has_aux=True)(params, batch)
new_params = jax.tree_util.tree_map(lambda a, b: a - 0.1 * b, params, grads)
(new_value, _), _ = jax.value_and_grad(loss, has_aux=True)(new_params, batch)
'''


def run_snippet(jax, jnp):
    namespace = {"jax": jax, "jnp": jnp}
    exec(JAX_SNIPPET, namespace)
    return namespace


def test_a_jax_snippet_runs_with_its_imports_changed():
    import fasttape as jax
    import fasttape.numpy as jnp
    ours = run_snippet(jax, jnp)
    assert ours["new_value"] < ours["value"]
    assert set(ours["grads"]) == {"w1", "b1", "w2", "b2"}
    assert type(ours["grads"]["b2"]) is float
    reference = jax_or_skip()
    import jax.numpy as real_jnp
    theirs = run_snippet(reference, real_jnp)
    assert_same_tree((ours["value"], ours["aux"], ours["grads"]),
                     (theirs["value"], theirs["aux"], theirs["grads"]))
    assert math.isclose(ours["new_value"], float(theirs["new_value"]), rel_tol=1e-12)


# -- no_grad ----------------------------------------------------------------------------------

def test_no_grad_returns_plain_values_and_records_nothing():
    x = ft.Variable(2.0)
    n_nodes = x.tape.n_nodes
    with ft.no_grad():
        y = x * 3.0 + ft.sin(x) - 1.0 / x + x * x + abs(-x) + 2.0 ** x
    assert type(y) is float
    assert y == pytest.approx(6.0 + math.sin(2.0) - 0.5 + 4.0 + 2.0 + 4.0, rel=1e-15)
    assert x.tape.n_nodes == n_nodes          # (scalar operations: nothing recorded)
    z = x * 3.0                               # recording again after the block
    assert type(z) is ft.Variable
    z.backward()
    assert x.grad == 3.0
    with ft.Tape():
        a = fnp.array([1.0, 2.0]) * ft.Variable(1.0)
        with ft.no_grad():
            b = fnp.sum(fnp.exp(a) * 2.0)
            c = a[0] * a
        assert isinstance(b, float) and b == pytest.approx(2 * (math.e + math.e ** 2))
        assert type(c) is np.ndarray
        np.testing.assert_array_equal(c, [1.0, 2.0])


def test_no_grad_nests_restores_after_errors_and_is_per_thread():
    import threading
    x = ft.Variable(1.5)
    with ft.no_grad():
        with ft.no_grad():
            assert type(x * 2.0) is float
        assert type(x * 2.0) is float
    assert type(x * 2.0) is ft.Variable
    with pytest.raises(ZeroDivisionError):
        with ft.no_grad():
            raise ZeroDivisionError
    assert type(x * 2.0) is ft.Variable
    inside, results = threading.Event(), []

    def other_thread():
        inside.wait()
        v = ft.Variable(2.0)
        results.append(type(v * v))
    worker = threading.Thread(target=other_thread)
    worker.start()
    with ft.no_grad():
        inside.set()
        worker.join()
    assert results == [ft.Variable]


def test_operators_inside_no_grad_still_differentiate():
    with ft.no_grad():
        assert ft.grad(lambda x: x ** 3)(2.0) == 12.0
        np.testing.assert_allclose(ft.grad(lambda x: fnp.sum(fnp.sin(x)))(X), np.cos(X))
        assert float(ft.hessian(lambda x: x ** 3)(2.0)) == pytest.approx(12.0)
        value, g = ft.value_and_grad(lambda p: p["a"] * p["b"])({"a": 2.0, "b": 5.0})
        assert (value, g) == (10.0, {"a": 5.0, "b": 2.0})


def test_no_grad_for_a_pytorch_style_update():
    w = ft.Variable(1.0)
    loss = (w * 3.0 - 1.0) ** 2
    loss.backward()
    with ft.no_grad():
        new_w = w - 0.1 * w.grad
    assert type(new_w) is float and new_w == pytest.approx(1.0 - 0.1 * 12.0)


def test_structured_jacobians_inside_another_differentiation():
    # the Jacobian's blocks are recorded, and differentiated by the outer grad
    def f(s):
        j = ft.jacobian(lambda p: {"u": p["a"] * s * s, "v": fnp.sum(p["a"]) * s})(
            {"a": np.ones(2)})
        return fnp.sum(j["u"]["a"]) + fnp.sum(j["v"]["a"])      # 2 s^2 + 2 s
    assert ft.grad(f)(2.0) == pytest.approx(4 * 2.0 + 2.0)

    def g(s):
        jx, jy = ft.jacobian(lambda x, y: x * y * s, argnums=(0, 1))(np.ones(2), 3.0)
        return fnp.sum(jx) * fnp.sum(jy)                      # (6 s) (2 s)
    assert ft.grad(g)(2.0) == pytest.approx(24 * 2.0)
