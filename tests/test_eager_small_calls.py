"""grad, value_and_grad and jacobian of functions of floats and flat lists or tuples of
floats: the fast paths in C (_variable.scalar_value_and_grad, scalar_jacobian) give
the same results, in the same structures, as the general recording path, which an
integer among the inputs selects. Values against central differences."""
import math

import numpy as np
import pytest

import fasttape as ft


def residual(z):
    """Three outputs of five inputs, nonlinear in each."""
    a, b, c, d, e = z
    return [a * b + ft.sin(c), ft.exp(d) / (1.0 + e * e), a * c * e - ft.sqrt(b)]


def residual_plain(z):
    a, b, c, d, e = z
    return [a * b + math.sin(c), math.exp(d) / (1.0 + e * e), a * c * e - math.sqrt(b)]


def cost(z):
    r0, r1, r2 = residual(z)
    return 0.5 * (r0 * r0 + r1 * r1 + r2 * r2)


def central_jacobian(f, z, step=1e-6):
    z = np.asarray(z, dtype=float)
    columns = []
    for j in range(len(z)):
        e = np.zeros_like(z)
        e[j] = step
        columns.append((np.asarray(f(list(z + e))) - np.asarray(f(list(z - e))))
                       / (2 * step))
    return np.stack(columns, axis=-1)


POINT = [0.3, 1.7, -0.4, 0.2, 0.9]


def general(z):
    """The same point with an int in it: the general path (ints are not floats)."""
    return [int(z[0]) if z[0] == int(z[0]) else z[0]] + list(z[1:])


@pytest.mark.parametrize("container", [list, tuple])
def test_grad_of_a_flat_container_of_floats_matches_differences(container):
    z = container(POINT)
    g = ft.grad(cost)(z)
    assert type(g) is container and all(type(v) is float for v in g)
    expected = central_jacobian(lambda x: [cost(x)], POINT)[0]
    np.testing.assert_allclose(g, expected, rtol=1e-7, atol=1e-9)


def test_grad_fast_path_equals_general_path():
    z = [1.0] + POINT[1:]           # (an int 1 in its place selects the general path)
    fast = ft.value_and_grad(cost)(z)
    slow = ft.value_and_grad(cost)([1] + POINT[1:])
    assert fast[0] == slow[0]
    assert fast[1] == slow[1] and type(fast[1]) is type(slow[1])


def test_grad_of_several_arguments_numbers_and_lists():
    def f(x, ys, s):
        return x * ys[0] + s * ys[1] * ys[1] - x * s
    value, (gx, gys, gs) = ft.value_and_grad(f, argnums=(0, 1, 2))(2.0, (3.0, -1.5), 0.5)
    assert value == f(2.0, (3.0, -1.5), 0.5)
    assert (gx, gys, gs) == (3.0 - 0.5, (2.0, 2 * 0.5 * -1.5), (-1.5) ** 2 - 2.0)
    assert type(gys) is tuple


def test_grad_of_a_list_with_a_constant_output_is_zero_with_a_warning():
    with pytest.warns(UserWarning, match="independent"):
        assert ft.grad(lambda z: 3.0)([1.0, 2.0]) == [0.0, 0.0]


def test_grad_of_a_list_with_an_array_output_goes_through_the_general_ending():
    g = ft.grad(lambda z: ft.numpy.sum(ft.numpy.stack(z) ** 2))([1.0, 2.0, 3.0])
    assert g == [2.0, 4.0, 6.0]


@pytest.mark.parametrize("operator", [ft.jacobian, ft.jacrev, ft.jacfwd])
@pytest.mark.parametrize("container", [list, tuple])
def test_jacobian_of_a_list_matches_differences_and_the_general_path(operator,
                                                                      container):
    def f(z):
        return container(residual(z))
    J = operator(f)(container(POINT))
    assert type(J) is container and len(J) == 3
    assert all(type(row) is container and all(type(v) is float for v in row)
               for row in J)
    np.testing.assert_allclose(np.array(J), central_jacobian(residual_plain, POINT),
                               rtol=1e-7, atol=1e-9)
    slow = operator(f)(container([1] + POINT[1:]))
    fast = operator(f)(container([1.0] + POINT[1:]))
    np.testing.assert_allclose(np.array(fast), np.array(slow), rtol=1e-15, atol=0)
    assert type(slow) is container and type(slow[0]) is container


def test_jacobian_fast_path_keeps_the_single_number_case_an_array():
    J = ft.jacobian(lambda x: x * ft.sin(x))(0.7)
    assert type(J) is np.ndarray and J.shape == ()
    assert float(J) == pytest.approx(math.sin(0.7) + 0.7 * math.cos(0.7), rel=1e-15)


def test_jacobian_of_several_arguments_is_structured_per_output():
    def f(x, ys):
        return [x * ys[0], ys[1] - x, 4.0]          # a constant output: a zero row
    J = ft.jacobian(f, argnums=(0, 1))(2.0, [3.0, 5.0])
    assert J == [(3.0, [2.0, 0.0]), (-1.0, [0.0, 1.0]), (0.0, [0.0, 0.0])]
    Jf = ft.jacfwd(f, argnums=(0, 1))(2.0, [3.0, 5.0])
    assert Jf == J


def test_jacobian_of_one_output_of_a_list_is_grad():
    assert ft.jacobian(cost)(POINT) == pytest.approx(ft.grad(cost)(POINT), rel=1e-15)


def test_jacobian_with_an_array_output_goes_through_the_general_ending():
    fnp = ft.numpy
    J = ft.jacobian(lambda z: fnp.stack(z) * fnp.stack(z))([1.0, 2.0])
    assert len(J) == 2
    np.testing.assert_array_equal(np.stack(J, axis=-1), np.diag([2.0, 4.0]))
    J_general = ft.jacobian(lambda z: fnp.stack(z) * fnp.stack(z))([1, 2.0])
    np.testing.assert_array_equal(np.stack(J_general, axis=-1), np.stack(J, axis=-1))


def test_jacobian_with_aux_on_the_fast_path():
    J, aux = ft.jacobian(lambda z: (residual(z), "aux"), has_aux=True)(POINT)
    assert aux == "aux"
    np.testing.assert_allclose(np.array(J), central_jacobian(residual_plain, POINT),
                               rtol=1e-7, atol=1e-9)


def test_nested_derivatives_take_the_general_path():
    # the Jacobian of a gradient: the inner grad records on the outer tape
    H = ft.jacobian(ft.grad(cost))(POINT)
    H_ref = central_jacobian(lambda z: ft.grad(cost)(z), POINT)
    np.testing.assert_allclose(np.array(H), H_ref, rtol=1e-6, atol=1e-8)


def test_a_function_that_raises_leaves_the_pool_clean():
    def broken(z):
        raise ValueError("inside")
    with pytest.raises(ValueError, match="inside"):
        ft.jacobian(broken)([1.0, 2.0])
    with pytest.raises(ValueError, match="inside"):
        ft.grad(broken)([1.0, 2.0])
    assert ft.jacobian(residual)(POINT) == ft.jacobian(residual)(POINT)


def test_nan_propagates_through_the_fast_paths():
    J = ft.jacobian(lambda z: [z[0] * z[1]])([float("nan"), 2.0])
    assert math.isnan(J[0][1]) and J[0][0] == 2.0
