"""grad, value_and_grad and jacobian of functions of floats and flat lists or tuples of
floats: the fast paths in C (_variable.scalar_value_and_grad, scalar_jacobian) give
the same results, in the same structures, as the general recording path, which an
integer among the inputs selects. Values against central differences."""
import gc
import math

import numpy as np
import pytest

import fasttape as ft
from support import assert_runs_cleanly


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


def many_outputs(z):
    """38 outputs of 5 inputs (more than one block of lanes of the one-pass sweep):
    recorded out of order, repeated, constants, a leaf itself among them."""
    a, b, c, d, e = z
    products = [a * b * (k + 1) + ft.sin(c * k) for k in range(12)]
    late = ft.exp(d) * e                     # recorded last, returned first
    out = [late, 2.5, a] + products[::-1] + [late, 0.0]
    out += [ft.log(b + k * e) - d for k in range(21)]
    return out


def many_outputs_plain(z):
    a, b, c, d, e = z
    products = [a * b * (k + 1) + math.sin(c * k) for k in range(12)]
    late = math.exp(d) * e
    return ([late, 2.5, a] + products[::-1] + [late, 0.0]
            + [math.log(b + k * e) - d for k in range(21)])


@pytest.mark.parametrize("operator", [ft.jacobian, ft.jacrev])
def test_jacobian_of_many_outputs_in_any_order_matches_differences(operator):
    point = [0.3, 1.7, -0.4, 0.2, 0.9]
    J = operator(many_outputs)(point)
    assert len(J) == 38 and all(len(row) == 5 for row in J)
    np.testing.assert_allclose(np.array(J), central_jacobian(many_outputs_plain, point),
                               rtol=1e-6, atol=1e-8)
    slow = operator(many_outputs)([1] + point[1:])
    fast = operator(many_outputs)([1.0] + point[1:])
    np.testing.assert_array_equal(np.array(fast), np.array(slow))
    assert J[1] == [0.0] * 5 and J[2] == [1.0, 0.0, 0.0, 0.0, 0.0]


def test_jacobian_of_a_long_function_matches_forward_mode():
    """A tape longer than the one-pass sweep takes (a sweep per output instead)."""
    def f(z):
        a, b = z
        s = a
        for _ in range(5000):
            s = s * 0.999 + b * 1e-3
        return [s, s * a, b]
    J = ft.jacobian(f)([0.4, 1.3])
    np.testing.assert_allclose(np.array(J), np.array(ft.jacfwd(f)([0.4, 1.3])),
                               rtol=1e-13)
    assert J[2] == [0.0, 1.0]


def test_jacobian_keeps_the_zero_adjoint_rule_per_output():
    """0 * log(x) at x = 0: a zero adjoint meets an infinite partial, and the
    derivative is 0 (not nan) in its row, whatever the other rows carry."""
    J = ft.jacobian(lambda z: [0.0 * ft.log(z[0]), z[0] * z[1], ft.log(z[0]) + z[2]])(
        [0.0, 2.0, 1.0])
    assert J[0] == [0.0, 0.0, 0.0] and J[1] == [2.0, 0.0, 0.0]
    assert J[2] == [math.inf, 0.0, 1.0]


def test_derivative_floats_keep_their_sign_and_value():
    """Entries 0.0, 1.0 and -1.0 are shared float objects; -0.0 keeps its sign."""
    J = ft.jacobian(lambda z: [z[0] * -0.0, z[0] - z[1], z[1] + 0.0 * z[0]])([1.5, 2.5])
    assert all(type(v) is float for row in J for v in row)
    assert J == [[0.0, 0.0], [1.0, -1.0], [0.0, 1.0]]
    assert math.copysign(1.0, J[0][0]) == -1.0
    assert math.copysign(1.0, J[2][0]) == 1.0
    assert ft.grad(lambda x: -x)(3.0) == -1.0


def test_result_lists_of_floats_are_untracked_by_the_garbage_collector():
    """Derivatives as lists of floats cannot be part of a cycle: untracked, they cost
    the garbage collector nothing when a loop keeps many (see _variable.floats_like)."""
    J = ft.jacobian(residual)(POINT)
    assert not gc.is_tracked(J) and not any(gc.is_tracked(row) for row in J)
    assert not gc.is_tracked(ft.grad(cost)(POINT))
    np.testing.assert_allclose(np.array(J), central_jacobian(residual_plain, POINT),
                               rtol=1e-6, atol=1e-8)
    J[0].append(J[1])                      # still ordinary lists
    assert J[0][-1] is J[1]


def test_a_jacobian_holding_a_tracked_row_stays_tracked():
    """The rows' list is untracked only when no row is tracked: a constant output's
    row (built by the general ending) is an ordinary list, and so is the whole."""
    J = ft.jacobian(lambda z: [z[0] * z[1], 2.0])([1.5, 3.0])
    assert J == [[3.0, 1.5], [0.0, 0.0]]
    assert gc.is_tracked(J[1]) and gc.is_tracked(J)


OUTPUT_LIST_CHANGED_BY_A_RULE = """
import fasttape as ft
from fasttape.extend import defjvp, defvjp, primitive

kept = {}

@primitive
def doubled(x):
    return 2.0 * x

def derivative(g):
    out = kept.pop("out", None)
    if out is not None:            # the rule changes the list f returned
        if kept["what"] == "clear":
            out.clear()
        for k in range(1, len(out)):
            out[k] = {"int": 5, "none": None, "stale": kept["stale"]}[kept["what"]]
    return 2.0 * g

defvjp(doubled, lambda ans, x: derivative)
defjvp(doubled, lambda g, ans, x: derivative(g))

def f(x):
    out = [doubled(x[0]), x[1] * 3.0, x[0] * x[1]]
    kept["out"] = out
    return out

def long(x):                       # leaves a Variable of a pooled tape, stale after
    y = x[0]
    for _ in range(5000):
        y = y * 1.0
    kept["stale"] = y
    return y

for _ in range(3):
    ft.grad(long)([1.0])
for jac in (ft.jacrev, ft.jacfwd):
    for what in ("int", "none", "stale", "clear"):
        kept["what"] = what
        J = jac(f)([1.0, 2.0])
        assert J == [[2.0, 0.0], [0.0, 3.0], [2.0, 1.0]], (jac.__name__, what, J)
print("ok")
"""


def test_an_output_list_changed_during_the_sweeps_does_not_change_the_jacobian():
    """The fast path's sweeps can run user code (here a primitive's rule) that
    changes the list f returned: an int there was cast to a Variable (a segfault),
    a stale Variable swept at its old node (values read past the tape), a cleared
    list an IndexError. The Jacobian is of the outputs f returned."""
    assert_runs_cleanly(OUTPUT_LIST_CHANGED_BY_A_RULE, "ok")
    assert ft.jacobian(lambda z: [z[0] * 2.0, z[1] * 3.0, z[0] * z[1]])([1.0, 2.0]) \
        == [[2.0, 0.0], [0.0, 3.0], [2.0, 1.0]]


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



def test_repeated_and_reordered_argnums_match_the_general_path():
    """The fast paths build each argument's leaves in argnums order (an argument named
    twice gets two sets of leaves, the first unused by the function) and read the
    derivatives back from C by position: as the general path (an int selects it)."""
    f = lambda x: x * x * 3.0  # noqa: E731
    assert ft.grad(f, argnums=(0, 0))(2.0) == ft.grad(f, argnums=(0, 0))(2) == (0.0, 12.0)
    rows = lambda x: [x * x, x]  # noqa: E731
    assert ft.jacobian(rows, argnums=(0, 0))(2.0) == \
        ft.jacobian(rows, argnums=(0, 0))(2) == [(0.0, 4.0), (0.0, 1.0)]

    def g(x, ys):
        return [x * ys[0], ys[1] * ys[1] - x]
    for operator in (ft.jacfwd, ft.jacrev):
        fast = operator(g, argnums=(1, 0))(2.0, (1.0, 3.0))
        assert fast == operator(g, argnums=(1, 0))(2, (1, 3.0))
        assert fast == [((2.0, 0.0), 1.0), ((0.0, 6.0), -1.0)]
        assert type(fast[0][0]) is tuple


def test_many_differentiated_arguments_take_the_general_path():
    def energy(*xs):
        total = 0.0
        for k, x in enumerate(xs):
            total = total + k * x * x
        return total
    point = [0.5 * k for k in range(40)]
    g = ft.grad(energy, argnums=tuple(range(40)))(*point)
    assert g == tuple(2.0 * k * x for k, x in enumerate(point))


def test_variables_come_from_their_own_allocator_and_survive_its_free_list():
    """Variable's allocator (_variable.pyx) is installed (its layout check passed), and
    more Variables alive at once than its free list holds are all intact."""
    from fasttape._variable import uses_own_allocator
    assert uses_own_allocator()

    def f(z):
        kept = [z[0] * (k + 1.0) for k in range(3000)]     # 3000 alive at once
        total = 0.0
        for k, v in enumerate(kept):
            total = total + v * z[1] if k % 2 else total - v
        return total
    for _ in range(2):
        g = ft.grad(f)([0.5, 2.0])
        expected = central_jacobian(lambda z: [f_plain(z)], [0.5, 2.0])[0]
        np.testing.assert_allclose(g, expected, rtol=1e-7)


def f_plain(z):
    total = 0.0
    for k in range(3000):
        v = z[0] * (k + 1.0)
        total = total + v * z[1] if k % 2 else total - v
    return total

# -- grad inside another differentiation (_scalar_recording_sweep) ------------------------

from fasttape._recording_sweeps import python_reverse_recording  # noqa: E402
from fasttape._scalar_recording_sweep import scalar_region_adjoints  # noqa: E402

# one function per kind of step: the written-out ones, then ops that use the rules
NESTED_CASES = {
    "add sub neg": lambda x: (x + 2.0) - (3.0 - x) + (-x) - x * 0.5 + (x - 1.5),
    "mul div": lambda x: x * x / (1.0 + x) + 2.0 / x - x / 3.0,
    "pow constant": lambda x: x ** 3 + x ** -2.5 + x ** 1.0 + x ** 0.0 + x ** 2,
    "exp log sqrt": lambda x: ft.exp(0.3 * x) * ft.log(x) + ft.sqrt(x),
    "sin cos tanh square": lambda x: ft.sin(x) * ft.cos(2.0 * x) + ft.tanh(x) +
    ft.square(x),
    "rules": lambda x: ft.arctan2(x, 1.0 + x) + ft.hypot(x, 2.0) + ft.logaddexp(x, 0.5)
    + x ** x + 2.0 ** x + ft.sigmoid(x) + ft.erf(x) + ft.maximum(x, 0.9) + abs(x),
}


def central(f, x, step=1e-5):
    return (f(x + step) - f(x - step)) / (2 * step)


@pytest.mark.parametrize("name", sorted(NESTED_CASES))
def test_second_and_third_derivatives_through_the_nested_fast_path(name):
    f = NESTED_CASES[name]
    for x in (0.7, 1.3):
        d2 = ft.grad(ft.grad(f))(x)
        assert d2 == pytest.approx(central(ft.grad(f), x), rel=1e-7, abs=1e-7)
        d3 = ft.grad(ft.grad(ft.grad(f)))(x)
        assert d3 == pytest.approx(central(ft.grad(ft.grad(f)), x), rel=1e-6, abs=1e-6)


@pytest.mark.parametrize("name", sorted(NESTED_CASES))
def test_the_c_recording_sweep_records_what_the_python_sweep_records(name):
    f = NESTED_CASES[name]
    tape = ft.Tape()
    with tape:
        x = ft.Variable(1.1)
        copy = x + 0.0
        y = f(copy)
        ours = scalar_region_adjoints(tape, [y], [1.0], [copy])[0]
        theirs = python_reverse_recording(tape, [y], [1.0], [copy])[0]
    if name == "add sub neg":            # (linear: the adjoint is a constant)
        assert type(ours) is float and ours == theirs
        return
    assert ours.value == pytest.approx(theirs.value, rel=1e-15)
    # and the recorded adjoints differentiate alike (second derivatives)
    ours.backward()
    ours_second = x.grad
    theirs.backward()
    assert ours_second == pytest.approx(x.grad, rel=1e-13)


def test_a_region_with_array_nodes_is_left_to_the_python_sweep():
    fnp = ft.numpy
    tape = ft.Tape()
    with tape:
        x = ft.Variable(0.4)
        copy = x + 0.0
        y = fnp.sum(fnp.stack([copy, copy * 2.0]) ** 2)
        assert scalar_region_adjoints(tape, [y], [1.0], [copy]) is None
    assert ft.grad(ft.grad(lambda v: fnp.sum(fnp.stack([v, v * 2.0]) ** 2)))(0.4) == \
        pytest.approx(10.0, rel=1e-14)


def test_no_perturbation_confusion():
    # d/dx [x * d/dy (x * y)] = d/dx x^2 = 2x: the inner derivative treats x as a
    # constant of its own differentiation
    def outer(x):
        return x * ft.grad(lambda y: x * y)(1.0)
    assert ft.grad(outer)(3.0) == 6.0
    assert ft.grad(lambda x: x * ft.grad(lambda y: x * y)(x))(3.0) == 6.0


def test_nested_grad_of_lists_and_several_arguments():
    def energy(p, q):
        return p[0] * p[1] * q + ft.sin(p[0]) * q * q

    def outer(z):
        gp, gq = ft.grad(energy, argnums=(0, 1))([z[0], z[1]], z[2])
        assert type(gp) is list and len(gp) == 2
        return gp[0] * gp[1] + gq * gq
    z = [0.3, -0.8, 1.7]
    g = ft.grad(outer)(z)
    expected = central_jacobian(lambda v: [outer_plain(v)], z)[0]
    np.testing.assert_allclose(g, expected, rtol=1e-6, atol=1e-8)


def outer_plain(z):
    p0, p1, q = z
    gp0 = p1 * q + math.cos(p0) * q * q
    gp1 = p0 * q
    gq = p0 * p1 + 2.0 * math.sin(p0) * q
    return gp0 * gp1 + gq * gq


def test_nested_value_and_grad_and_constant_inner_outputs():
    def outer(x):
        value, slope = ft.value_and_grad(lambda y: y * y * x)(x)
        return value + slope
    # value x^3, slope 2x^2: d/dx (x^3 + 2x^2) = 3x^2 + 4x
    assert ft.grad(outer)(1.5) == pytest.approx(3 * 1.5 ** 2 + 4 * 1.5, rel=1e-15)

    def constant_inside(x):
        return x + ft.grad(lambda y: 2.0)(x)
    assert ft.grad(constant_inside)(1.0) == 1.0


def test_nested_fast_path_is_not_taken_inside_no_grad_or_without_a_tape():
    from fasttape._scalar_recording_sweep import nested_value_and_grad
    square = lambda y: y * y  # noqa: E731
    assert nested_value_and_grad(square, 0, (0,), True, (2.0,), {}) is NotImplemented
    tape = ft.Tape()
    with tape:
        x = ft.Variable(2.0)
        value, slope = nested_value_and_grad(square, 0, (0,), True, (x,), {})
        assert (value.value, slope.value) == (4.0, 4.0)
        with ft.no_grad():
            assert nested_value_and_grad(square, 0, (0,), True, (x,), {}) is \
                NotImplemented


def test_one_element_containers_keep_their_type():
    assert ft.grad(lambda z: z[0] * z[0])([3.0]) == [6.0]
    assert ft.grad(lambda z: z[0] * z[0])((3.0,)) == (6.0,)
    assert ft.grad(lambda x, z: x * z[0], argnums=(0, 1))(2.0, [3.0]) == (3.0, [2.0])
    assert ft.jacobian(lambda z: [z[0] * z[0]])([3.0]) == [[6.0]]


def test_gradient_functions_behave_as_the_functions_they_wrap():
    """grad and value_and_grad return a C-level callable: it carries the function's
    name, docstring and signature, and binds as a method."""
    import inspect

    def energy(x, scale=2.0):
        """An energy."""
        return scale * x * x
    for made in (ft.grad(energy), ft.value_and_grad(energy)):
        assert made.__name__ == "energy" and made.__doc__ == "An energy."
        assert made.__wrapped__ is energy
        assert list(inspect.signature(made).parameters) == ["x", "scale"]
        assert "energy" in repr(made)

    class Spring:
        stiffness = 3.0
        force = ft.grad(lambda self, x: 0.5 * self.stiffness * x * x, argnum=1)
        energy_and_force = ft.value_and_grad(
            lambda self, x: 0.5 * self.stiffness * x * x, argnum=1)
    assert Spring().force(2.0) == 6.0
    assert Spring().energy_and_force(2.0) == (6.0, 6.0)
    assert Spring.force(Spring(), 2.0) == 6.0

    # a repeated argnum: the last position's value is the one used, as in autograd
    # (the other entry is zero), on the fast path (floats) and the general one (an int)
    assert ft.grad(lambda x, y: x * y, argnum=(0, 0))(3.0, 2.0) == (0.0, 2.0)
    assert ft.grad(lambda x, y: x * y, argnum=(0, 0))(3, 2.0) == (0.0, 2.0)

    def outer(x):
        first, second = ft.grad(lambda a: a * a * x, argnum=(0, 0))(x)
        return first + second
    # d/da (a^2 x) = 2 a x at a = x: d/dx of 2 x^2 is 4 x
    assert ft.grad(outer)(1.5) == pytest.approx(6.0, rel=1e-15)
