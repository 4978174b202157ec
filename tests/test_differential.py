"""grad / value_and_grad (argnum forms, containers, number types, keyword arguments,
errors), and the gradient checker and central differences shipped with fasttape."""
import collections
import math
import warnings

import numpy as np
import pytest

import fasttape as ft
from fasttape import (FasttapeError, GradientCheckError, Variable, check_grads, grad,
                      numerical_grad, value_and_grad)


def f_xyz(x, y, z):
    return x * y * ft.exp(z) + ft.sin(x)


def df_xyz(x, y, z):
    return (y * math.exp(z) + math.cos(x), x * math.exp(z), x * y * math.exp(z))


# -- argnum ----------------------------------------------------------------------------

def test_grad_defaults_to_the_first_argument():
    assert grad(f_xyz)(0.5, 2.0, -1.0) == pytest.approx(df_xyz(0.5, 2.0, -1.0)[0],
                                                         rel=1e-15)


@pytest.mark.parametrize("argnum", [0, 1, 2, -1, -2, -3])
def test_grad_with_an_int_argnum(argnum):
    args = (0.5, 2.0, -1.0)
    got = grad(f_xyz, argnum=argnum)(*args)
    assert type(got) is float
    assert got == pytest.approx(df_xyz(*args)[argnum], rel=1e-15)


@pytest.mark.parametrize("argnum", [(0, 1, 2), (2, 0), (1,), (-1, 0), ()])
def test_grad_with_a_tuple_argnum_returns_a_tuple(argnum):
    args = (0.5, 2.0, -1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")        # argnum=() makes the output constant
        got = grad(f_xyz, argnum=argnum)(*args)
    assert type(got) is tuple and len(got) == len(argnum)
    expected = df_xyz(*args)
    for g, i in zip(got, argnum):
        assert type(g) is float
        assert g == pytest.approx(expected[i], rel=1e-15)


def test_value_and_grad():
    args = (0.5, 2.0, -1.0)
    value, gradient = value_and_grad(f_xyz, argnum=(0, 1, 2))(*args)
    assert type(value) is float
    assert value == pytest.approx(0.5 * 2.0 * math.exp(-1.0) + math.sin(0.5), rel=1e-15)
    assert gradient == pytest.approx(df_xyz(*args), rel=1e-15)
    value, gradient = value_and_grad(f_xyz, argnum=1)(*args)
    assert gradient == pytest.approx(df_xyz(*args)[1], rel=1e-15)


@pytest.mark.parametrize("argnum", [3, -4, 1.0, "0", None, (0, 5), (0, 1.0)])
def test_bad_argnum_raises_type_error(argnum):
    with pytest.raises(TypeError, match="argnum"):
        grad(f_xyz, argnum=argnum)(0.5, 2.0, -1.0)


def test_grad_keeps_the_function_name_and_doc():
    def my_function(x):
        """doc"""
        return x * x
    assert grad(my_function).__name__ == "my_function"
    assert value_and_grad(my_function).__doc__ == "doc"


@pytest.mark.parametrize("operator", [ft.grad, ft.jacobian, ft.jacrev, ft.jacfwd])
def test_derivative_functions_keep_the_name_and_copy(operator):
    """grad(f) and jacobian(f) (compiled callables) carry f's name and docstring, bind
    as methods, and copy.copy / copy.deepcopy give a function that computes the same
    (as when they were Python functions)."""
    import copy

    def my_function(x):
        """doc"""
        return [x[0] * x[1], ft.sin(x[1])] if operator is not ft.grad else x[0] * x[1]
    d = operator(my_function)
    assert d.__name__ == "my_function" and d.__doc__ == "doc"
    assert d.__wrapped__ is my_function
    point = [0.5, 2.0]
    for other in (copy.copy(d), copy.deepcopy(d)):
        assert other(point) == d(point)

    class Holder:
        scale = 3.0

        def method(self, x):
            return self.scale * x * x
        derivative = operator(method, 1)
    assert Holder().derivative(2.0) == pytest.approx(12.0)


# -- argument types --------------------------------------------------------------------

@pytest.mark.parametrize("x", [3, True, np.int64(3), np.float64(3.0), np.float32(3.0),
                               3.0], ids=["int", "bool", "np.int64", "np.float64",
                                          "np.float32", "float"])
def test_inputs_of_any_real_type_are_differentiated_as_floats(x):
    got = grad(lambda v: v * v * v)(x)
    assert type(got) is float
    assert got == 3.0 * float(x) ** 2


def test_integer_arithmetic_is_not_integer_division():
    assert grad(lambda x: x / 2)(3) == 0.5
    assert value_and_grad(lambda x: x / 2)(3) == (1.5, 0.5)


def test_non_differentiated_arguments_and_keywords_pass_through_unchanged():
    seen = {}

    def f(x, label, table, *, scale, shift=0.0):
        seen.update(label=label, table=table, scale=scale)
        return scale * x + shift

    table = np.arange(3.0)
    assert grad(f)(2.0, "hello", table, scale=4.0, shift=1.0) == 4.0
    assert seen["label"] == "hello" and seen["table"] is table and seen["scale"] == 4.0
    assert value_and_grad(f)(2.0, None, None, scale=-1.0) == (-2.0, -1.0)


@pytest.mark.parametrize("bad", ["1.0", None, object(), {1.0}])   # (complex: test_complex)
def test_differentiating_with_respect_to_a_non_number_raises(bad):
    with pytest.raises(TypeError):
        grad(lambda x: 1.0)(bad)


# -- containers ------------------------------------------------------------------------

def sum_of_squares(tree):
    """sum of x^2 over a nested tuple/list/dict of numbers (works on Variables)."""
    if isinstance(tree, dict):
        return sum_of_squares(list(tree.values()))
    if isinstance(tree, (list, tuple)):
        total = 0.0
        for item in tree:
            total = total + sum_of_squares(item)
        return total
    return tree * tree


def doubled(tree):
    """The expected gradient of sum_of_squares: the same structure, 2 x as float."""
    if isinstance(tree, dict):
        return {k: doubled(v) for k, v in tree.items()}
    if hasattr(tree, "_fields"):
        return type(tree)(*[doubled(v) for v in tree])
    if isinstance(tree, (list, tuple)):
        return type(tree)(doubled(v) for v in tree)
    return 2.0 * float(tree)


def assert_same_structure(got, expected):
    assert type(got) is type(expected), (got, expected)
    if isinstance(expected, dict):
        assert list(got) == list(expected)          # same keys, same order
        for k in expected:
            assert_same_structure(got[k], expected[k])
    elif isinstance(expected, (list, tuple)):
        assert len(got) == len(expected)
        for a, b in zip(got, expected):
            assert_same_structure(a, b)
    else:
        assert got == expected


Point = collections.namedtuple("Point", "x y")

CONTAINERS = {
    "tuple": (1.0, -2.0, 3.5),
    "list": [1.0, -2.0, 3.5],
    "list of ints": [1, 2, -3],
    "mixed number types": [1, 2.5, np.float64(-1.0), True],
    "empty list": [],
    "dict": {"b": 1.0, "a": -2.0},
    "nested": {"w": [1.0, (2.0, 3.0)], "b": 0.5, "deep": [[[-1.0]]]},
    "list of tuples": [(1.0, 2.0), (3.0, 4.0)],
    "namedtuple": Point(1.5, -0.5),
    "namedtuple in a list": [Point(1.0, 2.0), Point(3.0, 4.0)],
    "dict of namedtuples": {"p": Point(1.0, 2.0), "q": [Point(0.5, 0.25)]},
    "single-element tuple": (4.0,),
}


@pytest.mark.parametrize("name", list(CONTAINERS))
def test_container_arguments_give_gradients_of_the_same_structure(name):
    tree = CONTAINERS[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # the empty list gives a constant output
        got = grad(sum_of_squares)(tree)
    assert_same_structure(got, doubled(tree))


def test_containers_are_rebuilt_for_the_function():
    seen = []

    def f(params):
        seen.append(params)
        return params["w"][0] * params["w"][1] + params["p"].x * params["p"].y

    g = grad(f)({"w": [2.0, 3.0], "p": Point(5.0, 7.0)})
    params = seen[0]
    assert type(params["w"]) is list and type(params["p"]) is Point
    assert all(type(v) is Variable for v in params["w"] + list(params["p"]))
    assert g == {"w": [3.0, 2.0], "p": Point(7.0, 5.0)}


def test_containers_and_numbers_in_several_argnums():
    def f(w, x, b):
        return sum(wi * xi for wi, xi in zip(w, x)) + b["bias"]

    w, x, b = [1.0, 2.0], (3.0, 4.0), {"bias": 0.5}
    gw, gx, gb = grad(f, argnum=(0, 1, 2))(w, x, b)
    assert gw == [3.0, 4.0] and gx == (1.0, 2.0) and gb == {"bias": 1.0}
    value, (gb2, gw2) = value_and_grad(f, argnum=(2, 0))(w, x, b)
    assert value == 11.5 and gb2 == gb and gw2 == gw


def test_container_gradients_against_central_differences(rng):
    def f(p):
        return ft.tanh(p["a"][0] * p["a"][1]) + ft.exp(p["b"]) * p["a"][0]

    p = {"a": [float(v) for v in rng.uniform(-1, 1, 2)], "b": float(rng.uniform())}
    ad = grad(f)(p)
    numeric = numerical_grad(f, p)
    assert ad["a"] == pytest.approx(numeric["a"], rel=1e-7)
    assert ad["b"] == pytest.approx(numeric["b"], rel=1e-7)


def test_the_caller_s_containers_are_not_modified():
    p = {"a": [1.0, 2.0]}
    grad(lambda q: q["a"][0] * q["a"][1])(p)
    assert p == {"a": [1.0, 2.0]} and all(type(v) is float for v in p["a"])


# -- outputs ---------------------------------------------------------------------------

@pytest.mark.parametrize("out", [2.0, 3, np.float64(1.5), np.array(2.5)],
                         ids=["float", "int", "np.float64", "0-d array"])
def test_constant_output_gives_zero_gradient_with_a_warning(out):
    with pytest.warns(UserWarning, match="independent"):
        value, g = value_and_grad(lambda x: out)(1.0)
    assert (value, g) == (float(out), 0.0)
    assert type(value) is float
    with pytest.warns(UserWarning):
        g = grad(lambda x, y: out, argnum=(0, 1))(1.0, [2.0, 3.0])
    assert g == (0.0, [0.0, 0.0])


def test_output_that_ignores_the_differentiated_argument_warns():
    with pytest.warns(UserWarning):
        assert grad(lambda x, y: y * 2.0)(1.0, 3.0) == 0.0


def test_output_that_is_an_input_has_gradient_one():
    assert grad(lambda x: x)(3.0) == 1.0
    assert grad(lambda x, y: y, argnum=(0, 1))(3.0, 4.0) == (0.0, 1.0)


def test_returning_an_input_gives_zero_gradient_to_the_inputs_after_it():
    # a previous call leaves nonzero adjoints behind in the pooled tape's buffer
    assert grad(lambda p: p[0] * p[1] * p[2])([1.0, 2.0, 3.0]) == [6.0, 3.0, 2.0]
    assert grad(lambda p: p[0])([1.0, 2.0, 3.0]) == [1.0, 0.0, 0.0]
    assert grad(lambda x, y: x * y, argnum=(0, 1))(2.0, 3.0) == (3.0, 2.0)
    assert grad(lambda x, y: x, argnum=(0, 1))(2.0, 3.0) == (1.0, 0.0)
    assert value_and_grad(lambda d: d["a"])({"a": 1.0, "b": 2.0}) == (
        1.0, {"a": 1.0, "b": 0.0})


@pytest.mark.parametrize("out, what", [
    (lambda x: [x, x], "list"), (lambda x: (x,), "tuple"),
    (lambda x: np.array([1.0, 2.0]), "ndarray"), (lambda x: {"a": x}, "dict")])
def test_non_scalar_output_raises_type_error_saying_what_was_returned(out, what):
    with pytest.raises(TypeError, match=what) as info:
        grad(out)(1.0)
    assert "scalar" in str(info.value)


@pytest.mark.parametrize("out, what", [(lambda x: None, "NoneType"),
                                       (lambda x: "1.0", "str"),
                                       (lambda x: 1j, "complex")])
def test_non_number_output_raises_type_error(out, what):
    with pytest.raises(TypeError, match=what):
        grad(out)(1.0)


def test_zero_dimensional_array_holding_a_variable_is_refused():
    with pytest.raises(TypeError, match="0-d"):
        grad(lambda x: np.array(x, dtype=object))(1.0)


def test_exceptions_from_the_function_propagate_and_leave_grad_usable():
    def boom(x):
        x * x
        raise KeyError("boom")

    for _ in range(10):                    # more than the tape pool holds
        with pytest.raises(KeyError):
            grad(boom)(1.0)
    assert grad(lambda x: x * x)(3.0) == 6.0


def test_grad_of_grad_differentiates_the_derivative():
    # d2/dx2 x^3 = 6x
    assert grad(grad(lambda x: x * x * x))(2.0) == pytest.approx(12.0, rel=1e-14)


@pytest.mark.parametrize("make, take", [(lambda v: v, lambda g: g),
                                         (lambda v: [1.0, v], lambda g: g[1]),
                                         (lambda v: {"a": v}, lambda g: g["a"])],
                         ids=["Variable", "list holding one", "dict holding one"])
def test_gradient_with_respect_to_variables_is_recorded(make, take):
    """grad of a function of Variables records its result on their tape, so it can be
    differentiated again: d/dv of grad(x -> x^3)(v) = 6 v."""
    tape = ft.Tape()
    v = Variable(2.0, tape=tape)
    g = take(grad(lambda x: (x["a"] if isinstance(x, dict) else x[1] if
                             isinstance(x, list) else x) ** 3)(make(v)))
    assert type(g) is Variable and g.tape is tape
    assert g.value == pytest.approx(12.0, rel=1e-14)
    g.backward()
    assert v.grad == pytest.approx(12.0, rel=1e-14)


def test_grad_called_inside_a_differentiated_function_on_plain_numbers():
    # the inner grad works on its own tape and returns a float: a constant outside
    def outer(x):
        return x * grad(lambda y: y * y)(3.0)
    assert grad(outer)(1.0) == 6.0


def test_variables_created_inside_the_function_are_constants(tape_blocks):
    assert grad(lambda x: x * Variable(2.0) + Variable(1.0))(3.0) == 2.0


# -- numerical_grad --------------------------------------------------------------------

@pytest.mark.parametrize("f, df, x", [
    (math.exp, math.exp, 1.0), (math.sin, math.cos, 2.0),
    (lambda x: x ** 3, lambda x: 3 * x ** 2, 100.0),
    (math.log, lambda x: 1 / x, 0.1), (math.atan, lambda x: 1 / (1 + x * x), -5.0)])
def test_numerical_grad_accuracy(f, df, x):
    assert numerical_grad(f, x) == pytest.approx(df(x), rel=1e-8)


def test_numerical_grad_structure_and_step(rng):
    def f(p):
        return p[0] ** 2 * p[1] + math.sin(p[1])

    p = [float(v) for v in rng.uniform(-1, 1, 2)]
    g = numerical_grad(f, p)
    assert type(g) is list and len(g) == 2
    exact = [2 * p[0] * p[1], p[0] ** 2 + math.cos(p[1])]
    assert g == pytest.approx(exact, rel=1e-8)
    coarse = numerical_grad(f, p, eps=1e-1)            # O(eps^2) truncation error
    assert coarse == pytest.approx(exact, rel=1e-1)
    assert numerical_grad(lambda d: d["a"] * 3.0, {"a": 2.0}) == {
        "a": pytest.approx(3.0)}


def test_numerical_grad_accepts_functions_returning_variables():
    assert numerical_grad(ft.sin, 0.3) == pytest.approx(math.cos(0.3), rel=1e-8)


# -- check_grads -----------------------------------------------------------------------

def test_check_grads_passes_on_correct_functions(rng):
    def f(x, p):
        return ft.sigmoid(x * p["w"]) * ft.log1p(p["b"] ** 2) + ft.arctan2(x, p["b"])

    for _ in range(3):
        x = float(rng.uniform(-2, 2))
        p = {"w": float(rng.uniform(-2, 2)), "b": float(rng.uniform(0.5, 2))}
        assert check_grads(f)(x, p) is True
    assert check_grads(f, modes=("rev",), order=1)(0.3, {"w": 1.0, "b": 1.0}) is True


def drops_a_derivative(x):
    # uses .value inside, so the recorded gradient is x instead of 2x
    v = x.value if isinstance(x, Variable) else x
    return x * v


def test_check_grads_catches_a_dropped_derivative():
    with pytest.raises(GradientCheckError) as info:
        check_grads(drops_a_derivative)(1.5)
    report = str(info.value)
    assert "drops_a_derivative" in report
    assert "argument 0" in report
    assert "1.5" in report and "3.0" in report        # AD and numerical values
    assert isinstance(info.value, AssertionError) and isinstance(info.value,
                                                                 FasttapeError)


def test_check_grads_names_the_wrong_component_of_a_container():
    def f(p):
        return drops_a_derivative(p[1]) + p[0] * p[2]

    with pytest.raises(GradientCheckError, match=r"argument 0\[1\]") as info:
        check_grads(f)([1.0, 2.0, 3.0])
    assert "argument 0[0]" not in str(info.value)
    assert "argument 0[2]" not in str(info.value)


def test_check_grads_catches_a_recorded_value_that_differs_from_the_plain_one():
    def two_faced(x):
        return x * 2.0 if isinstance(x, Variable) else x * 2.0 + 1.0

    with pytest.raises(GradientCheckError, match="value"):
        check_grads(two_faced)(1.0)


def test_check_grads_tolerances():
    def slightly_off(x):
        return x * (x.value * (1 + 1e-7)) if isinstance(x, Variable) else x * x

    # AD gives x(1 + 1e-7) where the truth is 2x: far outside any tolerance ...
    with pytest.raises(GradientCheckError):
        check_grads(slightly_off)(1.0)
    # ... while a correct function passes at a tight tolerance
    assert check_grads(lambda x: x * x, rtol=1e-8, atol=0.0)(1.0) is True


@pytest.mark.parametrize("kwargs", [{"modes": ("fwd",)}, {"modes": ("fwd", "rev")},
                                    {"order": 2}, {"modes": ("fwd", "rev"), "order": 3}])
def test_check_grads_forward_mode_and_higher_orders_pass_on_correct_functions(kwargs):
    assert check_grads(lambda x: ft.sin(x) * x * x, **kwargs)(1.3) is True


@pytest.mark.parametrize("kwargs, error", [({"modes": ("sideways",)}, ValueError),
                                           ({"order": 0}, ValueError)])
def test_check_grads_bad_options(kwargs, error):
    with pytest.raises(error):
        check_grads(lambda x: x * x, **kwargs)(1.0)


def test_check_grads_second_order_catches_a_wrong_second_derivative():
    """A primitive whose first derivative is right but whose derivative rule is not
    itself differentiable correctly: only order=2 sees it."""
    from fasttape.extend import defvjp, primitive

    @primitive
    def cube(x):
        return x ** 3

    # right value of 3x^2, but written so that its own derivative is 3x (not 6x)
    defvjp(cube, lambda ans, x: lambda g: g * 3.0 * x * (x.value if hasattr(x, "tape")
                                                         else x))
    assert check_grads(cube)(1.5) is True
    with pytest.raises(GradientCheckError):
        check_grads(cube, modes=("rev",), order=2)(1.5)


def test_check_grads_needs_arguments():
    with pytest.raises(TypeError):
        check_grads(lambda: 1.0)()
