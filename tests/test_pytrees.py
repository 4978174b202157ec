"""Containers (pytrees) as arguments and outputs: dataclasses, named tuples, ``None``
leaves, subclasses of dict, and types registered with ``fasttape.register_pytree_node``
or ``register_dataclass``. Derivatives are checked by fasttape.check_grads (central
differences, forward and reverse, to second order) and, where JAX is installed, the
structure of the results against JAX's."""
import collections
import dataclasses

import numpy as np
import optree
import pytest

import fasttape as ft
import fasttape.numpy as fnp


@dataclasses.dataclass
class Params:
    w: np.ndarray
    b: float


@dataclasses.dataclass(frozen=True)
class Frozen:
    scale: float
    shift: np.ndarray


Pair = collections.namedtuple("Pair", "left right")


class Box:
    """A user type registered by hand: one differentiable child, one constant."""

    def __init__(self, content, name):
        self.content = content
        self.name = name


ft.register_pytree_node(Box, lambda box: ((box.content,), box.name),
                        lambda name, children: Box(children[0], name))


@dataclasses.dataclass
class Layer:
    weights: np.ndarray
    activation: str


ft.register_dataclass(Layer, meta_fields=["activation"])


class Counts(dict):
    """A dict subclass optree does not know."""


def model(p):
    return fnp.sum(fnp.tanh(p.w) * p.b) + p.b ** 3


P0 = Params(w=np.array([0.3, -1.2, 0.8]), b=0.7)


def test_a_dataclass_argument_gives_a_dataclass_gradient():
    g = ft.grad(model)(P0)
    assert type(g) is Params
    np.testing.assert_allclose(g.w, P0.b / np.cosh(P0.w) ** 2, rtol=1e-14)
    assert g.b == pytest.approx(np.sum(np.tanh(P0.w)) + 3 * P0.b ** 2, rel=1e-14)
    ft.check_grads(model, modes=("fwd", "rev"), order=2)(P0)
    f = Frozen(scale=2.0, shift=np.array([1.0, -1.0]))
    g = ft.grad(lambda f: fnp.sum(f.scale * f.shift ** 2))(f)
    assert type(g) is Frozen and g.scale == 2.0
    np.testing.assert_allclose(g.shift, [4.0, -4.0])


def test_named_tuples_none_leaves_and_dict_subclasses():
    g = ft.grad(lambda p: p.left * p.right ** 2)(Pair(1.5, 2.0))
    assert type(g) is Pair and g == Pair(4.0, 6.0)
    g = ft.grad(lambda p: p["a"] ** 2)({"a": 3.0, "unused": None, "nested": [None]})
    assert g == {"a": 6.0, "unused": None, "nested": [None]}
    ordered = collections.OrderedDict([("z", 1.0), ("a", 2.0)])
    g = ft.grad(lambda d: d["z"] * d["a"] ** 2)(ordered)
    assert type(g) is collections.OrderedDict and list(g) == ["z", "a"]
    assert g == {"z": 4.0, "a": 4.0}
    g = ft.grad(lambda d: d["x"] * d["y"])(Counts(x=2.0, y=5.0))
    assert g == {"x": 5.0, "y": 2.0}
    with pytest.raises(TypeError, match="None"):
        ft.grad(lambda x: 1.0)(None)


def test_registered_types_and_dataclasses_with_constant_fields():
    g = ft.grad(lambda box: fnp.sum(box.content ** 2))(Box(np.array([1.0, 2.0]), "kept"))
    assert type(g) is Box and g.name == "kept"
    np.testing.assert_allclose(g.content, [2.0, 4.0])
    layer = Layer(np.array([0.5, -0.5]), "tanh")

    def apply(layer):
        return fnp.sum(getattr(fnp, layer.activation)(layer.weights))
    g = ft.grad(apply)(layer)
    assert type(g) is Layer and g.activation == "tanh"
    np.testing.assert_allclose(g.weights, 1 / np.cosh(layer.weights) ** 2)
    ft.check_grads(apply, modes=("fwd", "rev"), order=2)(layer)
    with pytest.raises(TypeError, match="str"):
        # an unregistered dataclass: every field is a child, a string cannot be one
        @dataclasses.dataclass
        class Named:
            x: float
            name: str
        ft.grad(lambda n: n.x ** 2)(Named(1.0, "a"))
    with pytest.raises(TypeError, match="object"):
        ft.grad(lambda o: 1.0)(object())


def test_containers_as_outputs():
    j = ft.jacobian(lambda x: Params(w=fnp.sin(x), b=fnp.sum(x)))(np.array([0.2, 0.4]))
    assert type(j) is Params
    np.testing.assert_allclose(j.w, np.diag(np.cos([0.2, 0.4])))
    np.testing.assert_allclose(j.b, [1.0, 1.0])
    value, vjp_fun = ft.vjp(lambda x: Pair(x * 2.0, {"sq": x ** 2, "none": None}), 3.0)
    assert value == Pair(6.0, {"sq": 9.0, "none": None})
    (g,) = vjp_fun(Pair(1.0, {"sq": 1.0, "none": None}))
    assert g == 2.0 + 6.0
    _, t = ft.jvp(lambda b: Box(b * 3.0, "out"), (2.0,), (1.0,))
    assert type(t) is Box and t.content == 3.0 and t.name == "out"


def test_a_dataclass_of_variables_inside_another_differentiation():
    # the outer derivative flows through the dataclass the inner grad is taken in
    def outer(s):
        return ft.grad(lambda p: p.b ** 3 * s)(Params(w=np.zeros(1), b=s)).b
    # inner: 3 b^2 s with b = s: 3 s^3; its derivative 9 s^2
    assert ft.grad(outer)(1.5) == pytest.approx(9 * 1.5 ** 2)


JAX_REGISTERED = []


def test_structures_match_jax():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    if not JAX_REGISTERED:          # (JAX needs dataclasses registered; once)
        jax.tree_util.register_dataclass(Params, data_fields=["w", "b"], meta_fields=[])
        JAX_REGISTERED.append(Params)
    ours = ft.grad(model)(P0)
    theirs = jax.grad(lambda p: jnp.sum(jnp.tanh(p.w) * p.b) + p.b ** 3)(P0)
    assert type(theirs) is Params
    np.testing.assert_allclose(ours.w, theirs.w, rtol=1e-14)
    assert ours.b == pytest.approx(float(theirs.b), rel=1e-14)
    args = ({"a": 1.0, "b": None, "c": Pair(np.ones(2), 2.0)},)
    ours = ft.grad(lambda t: t["a"] * fnp.sum(t["c"].left) * t["c"].right)(*args)
    theirs = jax.grad(lambda t: t["a"] * jnp.sum(t["c"].left) * t["c"].right)(*args)
    assert optree.tree_structure(ours, none_is_leaf=False) == \
        optree.tree_structure(jax.tree_util.tree_map(np.asarray, theirs),
                              none_is_leaf=False)


def test_tree_util():
    tree = {"b": [1.0, None], "a": Pair(2.0, np.ones(2))}
    leaves, treedef = ft.tree_util.tree_flatten(tree)
    assert len(leaves) == 3 and ft.tree_util.tree_leaves(tree) == leaves
    assert ft.tree_util.tree_unflatten(treedef, leaves)["a"] == tree["a"]
    doubled = ft.tree_util.tree_map(lambda x, y: x + y, tree, tree)
    assert doubled["b"] == [2.0, None] and type(doubled["a"]) is Pair
    assert ft.tree_util.tree_structure(P0) == ft.tree_util.tree_structure(
        Params(np.zeros(3), 1.0))


def test_numerical_grad_takes_arrays_and_containers():
    x = np.array([[0.5, -1.0], [2.0, 0.25]])
    g = ft.numerical_grad(lambda x: np.sum(np.sin(x) * x), x)
    assert type(g) is np.ndarray and g.shape == x.shape
    np.testing.assert_allclose(g, np.cos(x) * x + np.sin(x), rtol=1e-8)
    g = ft.numerical_grad(lambda p: float(np.sum(np.tanh(p.w))) * p.b, P0)
    assert type(g) is Params
    np.testing.assert_allclose(g.w, ft.grad(lambda p: fnp.sum(fnp.tanh(p.w)) * p.b)(P0).w,
                               rtol=1e-8)


def test_misc_flatten_takes_the_same_containers():
    from fasttape.misc import flatten
    value = {"b": [1.0, np.array([2.0, 3.0])], "a": (4.0, None), "p": P0}
    vector, unflatten = flatten(value)
    # dicts in the order of their sorted keys (autograd's), then each container's order
    np.testing.assert_array_equal(vector, [4.0, 1.0, 2.0, 3.0, *P0.w, P0.b])
    back = unflatten(vector * 2.0)
    assert back["a"] == (8.0, None) and type(back["p"]) is Params
    np.testing.assert_array_equal(back["b"][1], [4.0, 6.0])

    def f(vector):
        tree = unflatten(vector)
        return fnp.sum(tree["b"][1] ** 2) * tree["p"].b + tree["a"][0]
    ft.check_grads(f, modes=("fwd", "rev"), order=2)(vector)
