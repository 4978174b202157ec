"""Custom primitives (fasttape.extend, autograd.extend's API) and check_grads.

A primitive is one tape node differentiated by its rules: ``defvjp`` takes one VJP
maker per argument, ``vjp_maker(ans, *args) -> (g -> cotangent)``; ``defjvp`` one JVP
rule per argument, ``jvp(g, ans, *args) -> output tangent``. Checked: scalar, array and
multi-argument primitives in grad, jvp, jacobians, hessian and nested differentiation
(rules written with fasttape.numpy are themselves differentiated), against closed
forms, central differences and the same primitive defined with autograd.extend; the
errors for missing rules; plain calls; and check_grads on correct functions and on
deliberately wrong rules, at first and second order, in both modes.
"""
import math
import re

import numpy as np
import pytest

import fasttape as ft
import fasttape.numpy as fnp
from fasttape import (GradientCheckError, check_grads, elementwise_grad, grad, hessian,
                      hvp, jacfwd, jacobian, jacrev, jvp, make_jvp, value_and_grad, vjp)
from fasttape.extend import defjvp, defvjp, primitive

from support import args_directional_derivative, autograd_spelling, numerical_jacobian


def assert_close(got, expected, rtol=1e-12, atol=1e-14, what=""):
    assert np.shape(got) == np.shape(expected), (
        f"{what}: shape {np.shape(got)} != {np.shape(expected)}")
    expected = np.asarray(expected, dtype=float)
    scale = float(np.max(np.abs(expected), initial=1.0))
    np.testing.assert_allclose(np.asarray(got, dtype=float), expected, rtol=rtol,
                               atol=atol * scale, err_msg=what)


# -- the primitives under test (each test builds fresh ones: rules are mutable state) ---

def make_logsumexp():
    """An array -> scalar primitive computed with plain NumPy; its rules are written
    with fasttape.numpy, so they can be differentiated again."""
    @primitive
    def logsumexp(x):
        m = np.max(x)
        return m + np.log(np.sum(np.exp(x - m)))

    defvjp(logsumexp, lambda ans, x: lambda g: g * fnp.exp(x - ans))
    defjvp(logsumexp, lambda g, ans, x: fnp.sum(g * fnp.exp(x - ans)))
    return logsumexp


def make_softplus():
    """A scalar primitive: log(1 + e^x), derivative sigmoid(x)."""
    @primitive
    def softplus(x):
        return math.log1p(math.exp(x)) if np.ndim(x) == 0 else np.log1p(np.exp(x))

    defvjp(softplus, lambda ans, x: lambda g: g * fnp.sigmoid(x))
    defjvp(softplus, lambda g, ans, x: g * fnp.sigmoid(x))
    return softplus


def make_weighted_distance():
    """Two arguments: d(x, y) = sum(w * (x - y)^2), with a keyword weight."""
    @primitive
    def distance(x, y, w=1.0):
        return np.sum(w * (x - y) ** 2)

    defvjp(distance,
           lambda ans, x, y, w=1.0: lambda g: g * 2.0 * w * (x - y),
           lambda ans, x, y, w=1.0: lambda g: -g * 2.0 * w * (x - y))
    defjvp(distance,
           lambda g, ans, x, y, w=1.0: fnp.sum(g * 2.0 * w * (x - y)),
           lambda g, ans, x, y, w=1.0: -fnp.sum(g * 2.0 * w * (x - y)))
    return distance


def softmax(x):
    e = np.exp(x - np.max(x))
    return e / np.sum(e)


def softplus_derivatives(x):
    s = 1.0 / (1.0 + math.exp(-x))
    return [s, s * (1 - s), s * (1 - s) * (1 - 2 * s)]


# -- primitives in every operator -------------------------------------------------------

def test_a_primitive_records_one_node_and_its_vjp_gives_the_gradient(rng):
    logsumexp = make_logsumexp()
    x = rng.standard_normal(5)
    value, g = value_and_grad(logsumexp)(x)
    assert value == pytest.approx(float(np.log(np.sum(np.exp(x)))), rel=1e-14)
    assert_close(g, softmax(x))
    nodes = []

    def f(x):
        out = logsumexp(x)
        nodes.append(out.tape.n_array_nodes)
        return out

    grad(f)(x)
    assert nodes[0] <= 2         # the leaf and the primitive, nothing inside it


def test_a_primitive_in_forward_mode(rng):
    logsumexp = make_logsumexp()
    x, v = rng.standard_normal(5), rng.standard_normal(5)
    out, t = jvp(logsumexp, (x,), (v,))
    assert t == pytest.approx(float(softmax(x) @ v), rel=1e-13)
    assert make_jvp(logsumexp)(x)(v)[1] == pytest.approx(t, rel=1e-15)


def test_a_primitive_in_jacobians(rng):
    logsumexp = make_logsumexp()
    a = rng.standard_normal((3, 4))
    x = rng.standard_normal(4)

    def f(x):                      # R^4 -> R^3, through the primitive three times
        return fnp.stack([logsumexp(a[i] * x) for i in range(3)])

    expected = np.stack([softmax(a[i] * x) * a[i] for i in range(3)])
    for op in (jacobian, jacfwd, jacrev):
        assert_close(op(f)(x), expected)


def test_the_hessian_of_a_primitive(rng):
    logsumexp = make_logsumexp()
    x = rng.standard_normal(4)
    s = softmax(x)
    assert_close(hessian(logsumexp)(x), np.diag(s) - np.outer(s, s))
    v = rng.standard_normal(4)
    assert_close(hvp(logsumexp)(x, v), (np.diag(s) - np.outer(s, s)) @ v)


def test_nested_differentiation_through_a_scalar_primitive():
    softplus = make_softplus()
    for x in (-1.5, 0.0, 2.0):
        d1, d2, d3 = softplus_derivatives(x)
        assert grad(softplus)(x) == pytest.approx(d1, rel=1e-14)
        assert grad(grad(softplus))(x) == pytest.approx(d2, rel=1e-13)
        assert grad(grad(grad(softplus)))(x) == pytest.approx(d3, rel=1e-12, abs=1e-15)
        fwd = jvp(lambda y: jvp(softplus, (y,), (1.0,))[1], (x,), (1.0,))[1]
        assert fwd == pytest.approx(d2, rel=1e-13)
        mixed = grad(lambda y: jvp(softplus, (y,), (1.0,))[1])(x)
        assert mixed == pytest.approx(d2, rel=1e-13)
        assert float(hessian(softplus)(x)) == pytest.approx(d2, rel=1e-13)


def test_a_primitive_on_arrays_inside_composite_code(rng):
    softplus = make_softplus()
    x = rng.standard_normal(6)
    s = 1.0 / (1.0 + np.exp(-x))
    assert_close(elementwise_grad(softplus)(x), s)
    assert_close(elementwise_grad(elementwise_grad(softplus))(x), s * (1 - s))

    def f(x):
        return fnp.sum(softplus(fnp.sin(x)) * x)

    numeric = numerical_jacobian(lambda z: np.sum(np.log1p(np.exp(np.sin(z))) * z), x)
    assert_close(grad(f)(x), numeric, rtol=1e-8, atol=1e-10)
    h_numeric = numerical_jacobian(lambda z: grad(f)(z), x)
    assert_close(hessian(f)(x), h_numeric, rtol=1e-7, atol=1e-9)


def test_grad_of_grad_of_a_function_using_a_primitive(rng):
    """The VJP rule written with fasttape.numpy is recorded by the outer sweep."""
    logsumexp = make_logsumexp()
    x, v = rng.standard_normal(4), rng.standard_normal(4)

    def directional(x):
        return fnp.sum(grad(lambda z: logsumexp(z * z))(x) * v)

    # d/dx logsumexp(x^2) = 2 x s(x^2), s = softmax(x^2);
    # H = 2 diag(s) + 4 diag(x) (diag(s) - s s^T) diag(x)
    s = softmax(x * x)
    h = 2.0 * np.diag(s) + 4.0 * np.outer(x, x) * (np.diag(s) - np.outer(s, s))
    assert_close(grad(directional)(x), h @ v)
    assert_close(hessian(lambda z: logsumexp(z * z))(x), h)


# -- several arguments, argnums, keywords -----------------------------------------------

def test_a_two_argument_primitive(rng):
    distance = make_weighted_distance()
    x, y, w = rng.standard_normal(3), rng.standard_normal(3), rng.uniform(0.5, 2, 3)
    gx, gy = grad(distance, argnum=(0, 1))(x, y, w=w)
    assert_close(gx, 2.0 * w * (x - y))
    assert_close(gy, -2.0 * w * (x - y))
    vx, vy = rng.standard_normal(3), rng.standard_normal(3)
    _, t = jvp(lambda a, b: distance(a, b, w=w), (x, y), (vx, vy))
    assert t == pytest.approx(float(2.0 * np.sum(w * (x - y) * (vx - vy))), rel=1e-13)
    # one argument a constant
    assert_close(grad(lambda b: distance(x, b, w=w))(y), -2.0 * w * (x - y))
    _, t = jvp(lambda a: distance(a, y, w=w), (x,), (vx,))
    assert t == pytest.approx(float(2.0 * np.sum(w * (x - y) * vx)), rel=1e-13)
    # second order across the two arguments: d2/dx dy = -2 diag(w)
    cross = jacobian(lambda b: grad(lambda a, b: distance(a, b, w=w),
                                    argnum=(0, 1))(x, b)[0])(y)
    assert_close(cross, -2.0 * np.diag(w))


def test_defvjp_and_defjvp_with_argnums_define_some_arguments_only(rng):
    @primitive
    def scale(a, x):
        return a * x

    defvjp(scale, lambda ans, a, x: lambda g: a * g, argnums=(1,))
    defjvp(scale, lambda g, ans, a, x: a * g, argnums=[1])
    x = rng.standard_normal(3)
    assert_close(grad(lambda x: fnp.sum(scale(2.0, x)))(x), np.full(3, 2.0))
    assert_close(jvp(lambda x: scale(2.0, x), (x,), (np.ones(3),))[1], np.full(3, 2.0))
    with pytest.raises(TypeError, match=r"argument 0 of scale.*defvjp"):
        grad(lambda a: fnp.sum(scale(a, x)))(2.0)
    with pytest.raises(TypeError, match=r"argument 0 of scale.*defjvp"):
        jvp(lambda a: scale(a, x), (2.0,), (1.0,))


def test_defvjp_skips_arguments_given_none():
    @primitive
    def mul(a, b):
        return a * b

    defvjp(mul, None, lambda ans, a, b: lambda g: g * a)
    assert grad(mul, 1)(3.0, 4.0) == 3.0
    with pytest.raises(TypeError, match="mul"):
        grad(mul, 0)(3.0, 4.0)


def test_rules_receive_keyword_arguments(rng):
    seen = []

    @primitive
    def power_sum(x, p=2.0):
        return np.sum(np.abs(x) ** p)

    def vjp_maker(ans, x, p=2.0):
        seen.append(p)
        return lambda g: g * p * fnp.sign(x) * fnp.abs(x) ** (p - 1.0)

    defvjp(power_sum, vjp_maker)
    x = rng.uniform(0.5, 2.0, 3)
    assert_close(grad(lambda x: power_sum(x, p=3.0))(x), 3.0 * x ** 2)
    assert seen == [3.0]


def test_a_primitive_with_array_output_and_scalar_input():
    @primitive
    def ramp(t):
        return t * np.arange(1.0, 4.0) ** 2

    defvjp(ramp, lambda ans, t: lambda g: fnp.sum(g * np.arange(1.0, 4.0) ** 2))
    defjvp(ramp, lambda g, ans, t: g * np.arange(1.0, 4.0) ** 2)
    expected = np.array([1.0, 4.0, 9.0])
    assert_close(jacfwd(ramp)(0.5), expected)
    assert_close(jacrev(ramp)(0.5), expected)
    assert grad(lambda t: fnp.sum(ramp(t) ** 2))(0.5) == pytest.approx(
        2 * 0.5 * float(expected @ expected), rel=1e-14)


# -- against autograd.extend ------------------------------------------------------------

def test_the_same_primitive_in_autograd_gives_the_same_derivatives(rng):
    autograd, anp = autograd_spelling()
    from autograd.extend import defjvp as ag_defjvp
    from autograd.extend import defvjp as ag_defvjp
    from autograd.extend import primitive as ag_primitive

    @ag_primitive
    def ag_logsumexp(x):
        m = np.max(x)
        return m + np.log(np.sum(np.exp(x - m)))

    ag_defvjp(ag_logsumexp, lambda ans, x: lambda g: g * anp.exp(x - ans))
    ag_defjvp(ag_logsumexp, lambda g, ans, x: anp.sum(g * anp.exp(x - ans)))
    logsumexp = make_logsumexp()
    a = rng.standard_normal((3, 4))

    def f(np, lse, x):
        return lse(np.tanh(a @ x)) * lse(x)

    x, v = rng.standard_normal(4), rng.standard_normal(4)
    assert_close(grad(lambda x: f(fnp, logsumexp, x))(x),
                 autograd.grad(lambda x: f(anp, ag_logsumexp, x))(x))
    assert_close(hessian(lambda x: f(fnp, logsumexp, x))(x),
                 autograd.hessian(lambda x: f(anp, ag_logsumexp, x))(x), rtol=1e-11)
    assert make_jvp(lambda x: f(fnp, logsumexp, x))(x)(v)[1] == pytest.approx(
        autograd.make_jvp(lambda x: f(anp, ag_logsumexp, x))(x)(v)[1], rel=1e-12)


# -- errors and plain calls -------------------------------------------------------------

def test_a_primitive_without_a_vjp_raises_a_type_error_naming_it():
    @primitive
    def only_forward(x):
        return x * x

    defjvp(only_forward, lambda g, ans, x: 2.0 * x * g)
    assert jvp(only_forward, (3.0,), (1.0,))[1] == 6.0
    with pytest.raises(TypeError, match=r"only_forward.*defvjp"):
        grad(only_forward)(3.0)
    with pytest.raises(TypeError, match="only_forward"):
        vjp(only_forward, 3.0)[1](1.0)


def test_a_primitive_without_a_jvp_raises_a_type_error_naming_it():
    @primitive
    def only_reverse(x):
        return x * x

    defvjp(only_reverse, lambda ans, x: lambda g: 2.0 * x * g)
    assert grad(only_reverse)(3.0) == 6.0
    with pytest.raises(TypeError, match=r"only_reverse.*defjvp"):
        jvp(only_reverse, (3.0,), (1.0,))
    with pytest.raises(TypeError, match="only_reverse"):
        make_jvp(only_reverse)(np.ones(2))(np.ones(2))


def test_a_primitive_with_no_rules_at_all_still_computes_its_value():
    @primitive
    def opaque(x):
        return x * 2.0

    assert opaque(3.0) == 6.0
    with pytest.raises(TypeError, match="opaque"):
        grad(opaque)(3.0)


def test_a_primitive_called_on_plain_values_runs_plainly():
    calls = []
    sentinel = object()

    @primitive
    def identity_ish(x, flag=None):
        calls.append((x, flag))
        return sentinel if flag else x

    defvjp(identity_ish, lambda ans, x, flag=None: lambda g: g)
    assert identity_ish(2.5) == 2.5 and type(identity_ish(2.5)) is float
    assert identity_ish(np.float32(1.0)).dtype == np.float32
    assert identity_ish(1.0, flag=True) is sentinel
    arr = np.arange(3.0)
    assert identity_ish(arr) is arr
    assert len(calls) == 5


def test_a_primitive_keeps_the_name_and_doc_of_its_function():
    @primitive
    def documented(x):
        """Some documentation."""
        return x

    assert documented.__name__ == "documented"
    assert documented.__doc__ == "Some documentation."
    assert "documented" in repr(documented)


def test_a_primitive_returning_a_container_of_variables_is_refused():
    @primitive
    def pair(x):
        return (x, x)

    defvjp(pair, lambda ans, x: lambda g: g)
    with pytest.raises(TypeError, match="pair"):
        grad(lambda x: pair(x)[0])(1.0)


@pytest.mark.parametrize("define", [defvjp, defjvp])
def test_rules_can_only_be_given_to_primitives(define):
    with pytest.raises(TypeError, match="primitive"):
        define(lambda x: x, lambda *a: None)


def test_redefining_a_rule_replaces_it():
    @primitive
    def cube(x):
        return x ** 3

    defvjp(cube, lambda ans, x: lambda g: g * 0.0)
    assert grad(cube)(2.0) == 0.0
    defvjp(cube, lambda ans, x: lambda g: g * 3.0 * x * x)
    assert grad(cube)(2.0) == 12.0


# -- check_grads ------------------------------------------------------------------------

def scalar_function(x, y):
    return ft.sin(x * y) + ft.exp(-x * x) * ft.log1p(y * y)


def array_function(a, x):
    return fnp.tanh(a @ x) * fnp.sum(x * x) + fnp.cumsum(fnp.sin(x))[:3]


@pytest.mark.parametrize("modes", [("rev",), ("fwd",), ("fwd", "rev")])
@pytest.mark.parametrize("order", [1, 2])
def test_check_grads_passes_on_correct_functions(modes, order, rng):
    assert check_grads(scalar_function, modes=modes, order=order)(0.7, -1.2) is True
    a, x = rng.standard_normal((3, 4)), rng.standard_normal(4)
    assert check_grads(array_function, modes=modes, order=order)(a, x) is True
    assert check_grads(make_logsumexp(), modes=modes, order=order)(x) is True
    assert check_grads(make_weighted_distance(), modes=modes, order=order)(
        x, rng.standard_normal(4)) is True


def test_check_grads_at_third_order(rng):
    assert check_grads(make_softplus(), modes=("fwd", "rev"), order=3)(0.4) is True


def wrong_vjp_primitive():
    """sin with a VJP off by a factor 2 and a right JVP."""
    @primitive
    def wrong_sin(x):
        return np.sin(x)

    defvjp(wrong_sin, lambda ans, x: lambda g: 2.0 * g * fnp.cos(x))
    defjvp(wrong_sin, lambda g, ans, x: g * fnp.cos(x))
    return wrong_sin


def wrong_jvp_primitive():
    """sin with a right VJP and a JVP of the wrong sign."""
    @primitive
    def wrong_sin(x):
        return np.sin(x)

    defvjp(wrong_sin, lambda ans, x: lambda g: g * fnp.cos(x))
    defjvp(wrong_sin, lambda g, ans, x: -g * fnp.cos(x))
    return wrong_sin


def test_check_grads_catches_a_wrong_vjp_in_reverse_mode(rng):
    wrong_sin = wrong_vjp_primitive()
    x = rng.uniform(-1, 1, 3)
    assert check_grads(wrong_sin, modes=("fwd",))(x) is True     # forward is right
    for order in (1, 2):
        with pytest.raises(GradientCheckError) as info:
            check_grads(wrong_sin, modes=("fwd", "rev"), order=order)(x)
        report = str(info.value)
        assert "wrong_sin" in report and "by vjp" in report
        assert "by jvp" not in report
        assert "central differences" in report and "tolerance" in report


def test_check_grads_catches_a_wrong_jvp_in_forward_mode(rng):
    wrong_sin = wrong_jvp_primitive()
    assert check_grads(wrong_sin)(0.3) is True                   # reverse is right
    with pytest.raises(GradientCheckError) as info:
        check_grads(wrong_sin, modes=("fwd",))(0.3)
    report = str(info.value)
    assert "wrong_sin" in report and "by jvp" in report
    # the report gives both numbers: -cos(0.3) <u, v> by jvp against +cos(0.3) <u, v>
    ad, numeric = re.search(r"by jvp: (\S+), central differences (\S+),",
                            report).groups()
    assert float(ad) == pytest.approx(-float(numeric), rel=1e-6)


def test_check_grads_catches_a_gradient_component_of_a_scalar_primitive():
    @primitive
    def mul(a, b):
        return a * b

    defvjp(mul, lambda ans, a, b: lambda g: g * b, lambda ans, a, b: lambda g: g * b)
    with pytest.raises(GradientCheckError, match=r"argument 1") as info:
        check_grads(mul)(2.0, 3.0)
    assert "argument 0:" not in str(info.value)


def rule_right_to_first_order_only(mode):
    """x^3 whose rule for `mode` has the right value 3x^2 but is written so that its
    own derivative is 3x (half of 6x): only a second-order check can see it."""
    @primitive
    def cube(x):
        return x ** 3

    def plain(x):
        return x.value if hasattr(x, "tape") else x

    right_vjp = lambda ans, x: lambda g: g * 3.0 * x * x               # noqa: E731
    right_jvp = lambda g, ans, x: g * 3.0 * x * x                       # noqa: E731
    if mode == "rev":
        defvjp(cube, lambda ans, x: lambda g: g * 3.0 * x * plain(x))
        defjvp(cube, right_jvp)
    else:
        defvjp(cube, right_vjp)
        defjvp(cube, lambda g, ans, x: g * 3.0 * x * plain(x))
    return cube


@pytest.mark.parametrize("mode", ["rev", "fwd"])
def test_check_grads_at_second_order_catches_a_rule_that_is_wrong_to_differentiate(mode):
    cube = rule_right_to_first_order_only(mode)
    assert check_grads(cube, modes=(mode,), order=1)(1.3) is True
    with pytest.raises(GradientCheckError) as info:
        check_grads(cube, modes=(mode,), order=2)(1.3)
    assert f"d({mode})" in str(info.value), "the report names the derivative checked"
    # the primitive's second derivative as computed: 3x, not 6x
    second = grad(grad(cube))(1.3) if mode == "rev" else jvp(
        lambda y: jvp(cube, (y,), (1.0,))[1], (1.3,), (1.0,))[1]
    assert second == pytest.approx(3.0 * 1.3, rel=1e-14)


def test_check_grads_catches_a_wrong_rule_in_a_function_of_several_arrays(rng):
    @primitive
    def dot(a, b):
        return np.dot(a, b)

    defvjp(dot, lambda ans, a, b: lambda g: g * b,
           lambda ans, a, b: lambda g: g * b)            # the second should be g * a
    defjvp(dot, lambda g, ans, a, b: fnp.sum(g * b),
           lambda g, ans, a, b: fnp.sum(g * a))
    a, b = rng.standard_normal(3), rng.standard_normal(3)
    with pytest.raises(GradientCheckError, match=r"argument 1\[") as info:
        check_grads(dot, modes=("fwd", "rev"))(a, b)
    assert "argument 0[" not in str(info.value)
    # jvp does not use the wrong rule
    assert "by jvp" not in str(info.value)


def test_wrong_rules_are_seen_by_central_differences_directly(rng):
    """The same disagreement without check_grads: a sanity check of the helpers."""
    wrong_sin = wrong_vjp_primitive()
    x = rng.uniform(-1, 1, 3)
    v = rng.standard_normal(3)
    numeric = args_directional_derivative(np.sin, [x], [v])
    assert_close(jvp(wrong_sin, (x,), (v,))[1], numeric, rtol=1e-8, atol=1e-10)
    (ct,) = vjp(wrong_sin, x)[1](np.ones(3))
    assert_close(ct, 2.0 * np.cos(x))
