"""Every elementary function and operator form, from the table in opspecs.py, checked
three ways: value against NumPy, gradient against central differences of the NumPy
reference, gradient against autograd. Then the awkward inputs (zeros, edges, huge
numbers, inf, nan), the documented conventions at non-differentiable points, the
aliases, the math-module mirror and NumPy ufunc dispatch."""
import itertools
import math
import warnings

import numpy as np
import pytest

import fasttape as ft
from fasttape import _optable
import fasttape.math as ftmath
from fasttape import Tape, Variable
from fasttape._tape import OP_TABLE

from opspecs import (BINARY_FUNCTION_SPECS, FUNCTION_SPECS, SPECIAL_PAIR_VALUES,
                     SPECIAL_VALUES, SPECS, UNARY_FUNCTION_SPECS, np_erf, np_sigmoid)
from support import assert_gradient_matches_differences, same_float

N_POINTS = 8


def ids(specs):
    return [s.name for s in specs]


def record(spec, args):
    """spec.fun applied to args, its differentiable arguments as Variables on a new
    tape. Returns (output, tape)."""
    tape = Tape()
    call = [Variable(a, tape=tape) if i in spec.argnums else a
            for i, a in enumerate(args)]
    return spec.fun(*call), tape


def reference(spec, args):
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(spec.ref(*[np.float64(a) for a in args]))


def fasttape_grad(spec, args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # constant outputs (sign) warn
        return ft.grad(spec.fun, argnum=spec.argnums)(*args)


def points(spec, rng, n=N_POINTS):
    return [tuple(float(v) for v in column) for column in spec.sample(rng, n).T]


# -- the table itself ------------------------------------------------------------------

@pytest.mark.parametrize("spec", SPECS, ids=ids(SPECS))
def test_spec_records_its_op_codes(spec, rng):
    """Each spec records exactly the op codes it claims (so the coverage check below
    means something)."""
    out, tape = record(spec, points(spec, rng, 1)[0])
    names = [OP_TABLE[code][0] for code in tape.arrays()["ops"]]
    assert names[:spec.arity] == ["LEAF"] * spec.arity
    assert tuple(names[spec.arity:]) == spec.ops
    assert isinstance(out, Variable)


def test_every_op_code_is_exercised_by_a_spec():
    covered = set().union(*(spec.ops for spec in SPECS))
    missing = [name for name, code, arity in OP_TABLE
               if name not in covered and name not in ("LEAF", "CONST", "ARRAY")]
    # (ARRAY is the tape node of every array operation: tests/test_arrays.py covers it)
    assert not missing, f"op codes without a spec in tests/opspecs.py: {missing}"
    assert covered <= {name for name, _, _ in OP_TABLE}


def test_every_public_elementary_function_has_a_spec():
    documented = ("sin cos tan arcsin arccos arctan sinh cosh tanh arcsinh arccosh "
                  "arctanh exp exp2 expm1 log log2 log10 log1p sqrt cbrt square "
                  "reciprocal sign abs power arctan2 hypot maximum minimum logaddexp "
                  "erf sigmoid").split()
    with_spec = {spec.fun for spec in SPECS}
    assert [name for name in documented if getattr(ft, name) not in with_spec] == []


# -- 1. values against NumPy -----------------------------------------------------------

@pytest.mark.parametrize("spec", SPECS, ids=ids(SPECS))
def test_value_matches_numpy(spec, rng):
    for args in points(spec, rng):
        expected = reference(spec, args)
        out, _ = record(spec, args)
        assert type(out) is Variable
        assert same_float(out.value, expected, spec.value_rtol), (args, out.value,
                                                                  expected)
        if spec.plain:
            plain = spec.fun(*args)
            assert type(plain) is float
            assert same_float(plain, expected, spec.value_rtol), (args, plain, expected)


# -- 2. gradients against central differences of the NumPy reference -------------------

@pytest.mark.parametrize("spec", SPECS, ids=ids(SPECS))
def test_gradient_matches_central_differences(spec, rng):
    for args in points(spec, rng):
        gradient = fasttape_grad(spec, args)
        assert isinstance(gradient, tuple) and len(gradient) == spec.arity
        assert all(type(g) is float for g in gradient)

        def f(z, args=args):
            call = list(args)
            for i, zi in zip(spec.argnums, z):
                call[i] = zi
            return reference(spec, call)

        x = [args[i] for i in spec.argnums]
        assert_gradient_matches_differences(f, x, gradient, rng, rtol=spec.grad_rtol,
                                            atol=spec.grad_atol)


def test_gradient_matches_numerical_grad_of_fasttape(rng):
    """fasttape.numerical_grad on the plain-float path agrees with reverse mode."""
    for spec in FUNCTION_SPECS:
        args = points(spec, rng, 1)[0]
        ad = fasttape_grad(spec, args)
        numeric = ft.numerical_grad(lambda a: spec.fun(*a), list(args))
        np.testing.assert_allclose(ad, numeric, rtol=1e-6, atol=1e-8,
                                   err_msg=spec.name)


# -- 3. gradients against autograd -----------------------------------------------------

@pytest.fixture(scope="module")
def autograd_modules():
    autograd = pytest.importorskip("autograd")
    import autograd.numpy as anp
    import autograd.scipy.special as special
    return autograd, anp, special


def autograd_grad(autograd_modules, spec, args):
    autograd, anp, special = autograd_modules
    fun = spec.autograd_fun(anp, special)
    out = []
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in spec.argnums:
            out.append(float(autograd.grad(fun, i)(*[float(a) for a in args])))
    return tuple(out)


@pytest.mark.parametrize("spec", SPECS, ids=ids(SPECS))
def test_gradient_matches_autograd(spec, rng, autograd_modules):
    if spec.ag is None:
        pytest.skip(f"autograd has no rule for {spec.name}")
    for args in points(spec, rng):
        ours = fasttape_grad(spec, args)
        theirs = autograd_grad(autograd_modules, spec, args)
        np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-14,
                                   err_msg=f"{spec.name} at {args}")


# -- awkward inputs --------------------------------------------------------------------

def special_arguments(spec):
    if spec.n_args == 1:
        return [(x,) for x in SPECIAL_VALUES]
    return list(itertools.product(SPECIAL_PAIR_VALUES, repeat=spec.n_args))


@pytest.mark.parametrize("spec", SPECS, ids=ids(SPECS))
def test_value_at_special_points_matches_numpy(spec):
    """0, -0, +-1, tiny, huge, overflow thresholds, inf and nan: the same value as
    NumPy's float64 ufunc (nan and inf propagate, nothing raises), both for Variables
    and for plain floats."""
    mismatches = []
    for args in special_arguments(spec):
        expected = reference(spec, args)
        got = record(spec, args)[0].value
        if not same_float(got, expected, 1e-13):
            mismatches.append(f"Variable {args}: {got!r}, NumPy {expected!r}")
        if spec.plain:
            got = spec.fun(*args)
            if not same_float(got, expected, 1e-13):
                mismatches.append(f"float {args}: {got!r}, NumPy {expected!r}")
    assert not mismatches, "\n".join(mismatches)


INF, NAN = math.inf, math.nan
LN2, LN10 = math.log(2.0), math.log(10.0)

# (function, x, d/dx at x) at awkward points: each expectation is the derivative's
# closed form, or its limit where the closed form is 0 * inf or inf / inf (e.g.
# arctan'(inf) = lim 1/(1 + x^2) = 0); nan where the function itself is undefined
# around x (sin at inf) or the input is nan.
UNARY_AWKWARD_GRADIENTS = [
    ("sin", 0.0, 1.0), ("sin", INF, NAN), ("sin", -INF, NAN),
    ("cos", 0.0, 0.0), ("cos", INF, NAN),
    ("tan", 0.0, 1.0), ("tan", INF, NAN),
    ("arcsin", 0.0, 1.0), ("arcsin", 1.0, INF), ("arcsin", -1.0, INF),
    ("arcsin", 0.5, 1.0 / math.sqrt(0.75)),
    ("arccos", 0.0, -1.0), ("arccos", 1.0, -INF), ("arccos", -1.0, -INF),
    ("arctan", 0.0, 1.0), ("arctan", INF, 0.0), ("arctan", -INF, 0.0),
    ("arctan", 1e300, 0.0),
    ("sinh", 0.0, 1.0), ("sinh", INF, INF), ("sinh", -INF, INF), ("sinh", 711.0, INF),
    ("cosh", 0.0, 0.0), ("cosh", INF, INF), ("cosh", -INF, -INF),
    ("tanh", 0.0, 1.0), ("tanh", INF, 0.0), ("tanh", -INF, 0.0), ("tanh", 1e300, 0.0),
    ("arcsinh", 0.0, 1.0), ("arcsinh", INF, 0.0), ("arcsinh", -INF, 0.0),
    ("arccosh", 1.0, INF), ("arccosh", 2.0, 1.0 / math.sqrt(3.0)),
    ("arccosh", INF, 0.0),
    ("arctanh", 0.0, 1.0), ("arctanh", 1.0, INF), ("arctanh", -1.0, INF),
    ("exp", 0.0, 1.0), ("exp", -INF, 0.0), ("exp", INF, INF), ("exp", 710.0, INF),
    ("exp", -746.0, 0.0),
    ("exp2", 0.0, LN2), ("exp2", -INF, 0.0), ("exp2", INF, INF),
    ("expm1", 0.0, 1.0), ("expm1", -INF, 0.0), ("expm1", INF, INF),
    ("log", 1.0, 1.0), ("log", 0.0, INF), ("log", INF, 0.0),
    ("log2", 1.0, 1.0 / LN2), ("log2", 0.0, INF), ("log2", INF, 0.0),
    ("log10", 1.0, 1.0 / LN10), ("log10", 0.0, INF), ("log10", INF, 0.0),
    ("log1p", 0.0, 1.0), ("log1p", -1.0, INF), ("log1p", INF, 0.0),
    ("sqrt", 4.0, 0.25), ("sqrt", 0.0, INF), ("sqrt", INF, 0.0),
    ("cbrt", 8.0, 1.0 / 12.0), ("cbrt", -8.0, 1.0 / 12.0), ("cbrt", 0.0, INF),
    ("cbrt", INF, 0.0), ("cbrt", -INF, 0.0),
    ("square", 0.0, 0.0), ("square", INF, INF), ("square", -INF, -INF),
    ("reciprocal", 0.0, -INF), ("reciprocal", -0.0, -INF), ("reciprocal", INF, 0.0),
    ("reciprocal", 2.0, -0.25),
    ("sign", 0.0, 0.0), ("sign", INF, 0.0), ("sign", -2.0, 0.0),
    ("abs", 0.0, 0.0), ("abs", INF, 1.0), ("abs", -INF, -1.0), ("abs", -1e-300, -1.0),
    ("erf", 0.0, 2.0 / math.sqrt(math.pi)), ("erf", INF, 0.0), ("erf", -INF, 0.0),
    ("erf", 30.0, 0.0),
    ("sigmoid", 0.0, 0.25), ("sigmoid", INF, 0.0), ("sigmoid", -INF, 0.0),
    ("sigmoid", -800.0, 0.0),
]


@pytest.mark.parametrize("name, x, expected", UNARY_AWKWARD_GRADIENTS,
                         ids=[f"{n}({x})" for n, x, _ in UNARY_AWKWARD_GRADIENTS])
def test_unary_gradient_at_awkward_points(name, x, expected):
    got = g1(getattr(ft, name), x)
    assert type(got) is float
    assert same_float(got, expected, 1e-15), (f"d/dx {name}({x}) = {got!r}, "
                                              f"expected {expected!r}")


# (function, (x, y), (d/dx, d/dy)) for the binary functions, as above
BINARY_AWKWARD_GRADIENTS = [
    ("power", (2.0, 3.0), (12.0, 8.0 * LN2)),
    ("power", (0.0, 2.0), (0.0, 0.0)),            # convention: d/dy at x = 0 is 0
    ("power", (0.0, 0.5), (INF, 0.0)),
    ("power", (0.0, -1.0), (-INF, 0.0)),
    ("power", (0.0, 0.0), (0.0, 0.0)),            # convention: d/dx x**0 = 0
    ("power", (-2.0, 3.0), (12.0, NAN)),          # log of a negative base
    ("power", (1.0, 5.0), (5.0, 0.0)),
    ("arctan2", (0.0, 1.0), (1.0, 0.0)),
    ("arctan2", (1.0, 0.0), (0.0, -1.0)),
    ("arctan2", (0.0, -1.0), (-1.0, 0.0)),
    ("arctan2", (0.0, 0.0), (NAN, NAN)),          # documented: nan at the origin
    ("hypot", (3.0, 4.0), (0.6, 0.8)),
    ("hypot", (-3.0, 0.0), (-1.0, 0.0)),
    ("hypot", (0.0, 0.0), (NAN, NAN)),            # documented: nan at the origin
    ("hypot", (1e300, 1e300), (math.sqrt(0.5), math.sqrt(0.5))),
    ("maximum", (1.0, 1.0), (0.5, 0.5)),
    ("maximum", (-INF, 1.0), (0.0, 1.0)),
    ("maximum", (INF, INF), (0.5, 0.5)),
    ("minimum", (1.0, 1.0), (0.5, 0.5)),
    ("minimum", (-INF, 1.0), (1.0, 0.0)),
    ("logaddexp", (0.0, 0.0), (0.5, 0.5)),
    ("logaddexp", (-INF, 0.0), (0.0, 1.0)),
    ("logaddexp", (1000.0, 0.0), (1.0, 0.0)),
    ("logaddexp", (-1000.0, 1000.0), (0.0, 1.0)),
    ("logaddexp", (1e15, 1e15), (0.5, 0.5)),      # shift invariance: the partials
    ("logaddexp", (1e300, 1e300), (0.5, 0.5)),    # depend only on x - y
]


@pytest.mark.parametrize("name, args, expected", BINARY_AWKWARD_GRADIENTS,
                         ids=[f"{n}{a}" for n, a, _ in BINARY_AWKWARD_GRADIENTS])
def test_binary_gradient_at_awkward_points(name, args, expected):
    got = g2(getattr(ft, name), *args)
    assert all(same_float(a, b, 1e-15) for a, b in zip(got, expected)), (
        f"gradient of {name}{args} = {got}, expected {expected}")


@pytest.mark.parametrize("spec", UNARY_FUNCTION_SPECS, ids=ids(UNARY_FUNCTION_SPECS))
def test_unary_gradient_at_nan_is_nan(spec):
    # except where the derivative is a constant (sign' = 0, rad2deg' = 180/pi): that
    # constant, as autograd and JAX give (and as x * 2.0 gives 2.0 at nan)
    partial = _optable.OPS_BY_NAME[spec.ops[0]].partials[0]
    try:
        expected = float(partial)
    except ValueError:
        expected = NAN
    assert same_float(g1(spec.fun, NAN), expected)


@pytest.mark.parametrize("spec", BINARY_FUNCTION_SPECS, ids=ids(BINARY_FUNCTION_SPECS))
def test_binary_gradient_with_a_nan_operand_is_nan(spec, rng):
    """nan propagates into both partials (maximum/minimum included: a nan operand
    gets a nan adjoint, as documented in the reverse sweep), except a partial that is a
    constant (remainder's and fmod's d/dx = 1, as for x + nan) and fmax/fmin, which
    ignore a nan operand: their gradient goes to the other one (as autograd's)."""
    x, y = points(spec, rng, 1)[0]
    op = {name: op for name, op, _ in _optable.expanded()}[spec.ops[0]]
    constant = [_is_number(p) for p in op.partials]
    for args in [(NAN, y), (x, NAN), (NAN, NAN)]:
        got = g2(spec.fun, *args)
        if spec.name in ("fmax", "fmin") and not all(map(math.isnan, args)):
            assert got == ((0.0, 1.0) if math.isnan(args[0]) else (1.0, 0.0)), (args, got)
            continue
        for g, is_constant in zip(got, constant or [False, False]):
            assert g == 1.0 if is_constant else math.isnan(g), (args, got)


def _is_number(expr):
    try:
        float(expr)
        return True
    except ValueError:
        return False


def test_huge_finite_inputs_keep_accurate_derivatives():
    """Derivatives that are representable stay accurate when x * x would overflow:
    arcsinh'(x) = 1/sqrt(x^2 + 1) ~ 1/|x|, arccosh'(x) ~ 1/x, and the partials of
    arctan2 are ~1/(2x) on the diagonal."""
    for x in (1e160, 1e200, 1e300):
        assert g1(ft.arcsinh, x) == pytest.approx(1.0 / x, rel=1e-12, abs=0), x
        assert g1(ft.arcsinh, -x) == pytest.approx(1.0 / x, rel=1e-12, abs=0), -x
        assert g1(ft.arccosh, x) == pytest.approx(1.0 / x, rel=1e-12, abs=0), x
        dy, dx = g2(ft.arctan2, x, x)
        assert dy == pytest.approx(0.5 / x, rel=1e-12, abs=0), x
        assert dx == pytest.approx(-0.5 / x, rel=1e-12, abs=0), x


@pytest.mark.parametrize("spec", FUNCTION_SPECS, ids=ids(FUNCTION_SPECS))
def test_plain_inputs_of_other_types(spec, rng):
    """ints, bools and np.float64 take the plain path and give a float; other NumPy
    scalars go to NumPy."""
    args = points(spec, rng, 1)[0]
    expected = reference(spec, args)
    as_f64 = spec.fun(*[np.float64(a) for a in args])
    assert same_float(as_f64, expected, spec.value_rtol)
    ints = tuple(float(round(a)) or 1.0 for a in args)
    with np.errstate(all="ignore"):
        assert same_float(spec.fun(*[int(a) for a in ints]), reference(spec, ints),
                          spec.value_rtol)
    got32 = spec.fun(*[np.float32(a) for a in args])
    assert not isinstance(got32, Variable)
    assert same_float(float(got32), expected, 1e-5)


# -- documented conventions at non-differentiable points (as autograd) -----------------

def g1(f, x):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ft.grad(f)(x)


def g2(f, x, y):
    return ft.grad(f, argnum=(0, 1))(x, y)


@pytest.mark.parametrize("x", [0.0, -0.0])
def test_abs_derivative_is_zero_at_zero(x):
    assert g1(ft.abs, x) == 0.0
    assert g1(lambda v: abs(v), x) == 0.0
    assert g1(ft.abs, 2.0) == 1.0 and g1(ft.abs, -2.0) == -1.0


@pytest.mark.parametrize("x", [0.0, -0.0, 3.0, -3.0, 1e-300])
def test_sign_derivative_is_zero(x):
    assert g1(ft.sign, x) == 0.0
    assert g1(lambda v: ft.sign(v) * v, x) == ft.sign(x)   # only the v factor counts


@pytest.mark.parametrize("f", [ft.maximum, ft.minimum], ids=["maximum", "minimum"])
def test_maximum_minimum_split_a_tie_evenly(f):
    assert g2(f, 1.5, 1.5) == (0.5, 0.5)
    assert g2(f, -0.0, 0.0) == (0.5, 0.5)
    assert g1(lambda x: f(x, x), 2.0) == 1.0          # same Variable twice
    assert g1(lambda x: f(x, 1.5), 1.5) == 0.5          # tie with a constant


def test_maximum_minimum_send_the_gradient_to_the_selected_operand():
    assert g2(ft.maximum, 1.0, 2.0) == (0.0, 1.0)
    assert g2(ft.maximum, 3.0, 2.0) == (1.0, 0.0)
    assert g2(ft.minimum, 1.0, 2.0) == (1.0, 0.0)
    assert g2(ft.minimum, 3.0, -math.inf) == (0.0, 1.0)


def test_sqrt_and_cbrt_derivatives_are_inf_at_zero():
    assert g1(ft.sqrt, 0.0) == math.inf
    assert g1(ft.cbrt, 0.0) == math.inf
    assert g1(ft.cbrt, -0.0) == math.inf


def test_power_derivative_in_the_exponent_is_zero_at_base_zero():
    assert g2(ft.power, 0.0, 2.0) == (0.0, 0.0)                 # d/dx 2 x = 0 at 0
    assert g1(lambda y: 0.0 ** y, 2.0) == 0.0                   # POW_CV
    assert g1(lambda y: ft.power(0.0, y), 3.0) == 0.0
    assert g2(lambda x, y: x ** y, 0.0, 3.0) == (0.0, 0.0)      # POW_VV


def test_power_derivative_of_x_to_the_zero_is_zero():
    for x in (0.0, -0.0, 2.0, -3.0, math.inf):
        assert g1(lambda v: v ** 0, x) == 0.0
        assert g1(lambda v: v ** 0.0, x) == 0.0
        assert g1(lambda v: ft.power(v, 0.0), x) == 0.0
    assert g2(ft.power, 0.0, 0.0) == (0.0, 0.0)


def test_hypot_gradient_is_nan_at_the_origin():
    dx, dy = g2(ft.hypot, 0.0, 0.0)
    assert math.isnan(dx) and math.isnan(dy)
    assert math.isnan(ft.grad(lambda x: ft.hypot(x, 0.0))(0.0))


def test_power_derivative_in_the_base_where_the_exponent_makes_it_singular():
    assert g1(lambda x: x ** 0.5, 0.0) == math.inf
    assert g1(lambda x: x ** -1.0, 0.0) == -math.inf
    assert g1(lambda x: x ** 1, 0.0) == 1.0
    assert g1(lambda x: x ** 3, 0.0) == 0.0
    assert math.isnan(g1(lambda x: x ** 0.5, -1.0))


def test_division_by_zero_is_ieee_without_exception():
    assert ft.grad(lambda x: x / 0.0)(1.0) == math.inf
    tape = Tape()
    x = Variable(1.0, tape=tape)
    assert (x / 0.0).value == math.inf
    assert (-x / 0.0).value == -math.inf
    assert math.isnan((Variable(0.0, tape=tape) / 0.0).value)
    assert (1.0 / Variable(0.0, tape=tape)).value == math.inf
    assert (1.0 / Variable(-0.0, tape=tape)).value == -math.inf
    assert ft.reciprocal(0.0) == math.inf
    assert (Variable(0.0, tape=tape) ** -1).value == math.inf


# -- aliases, the math-module mirror, NumPy ufuncs -------------------------------------

@pytest.mark.parametrize("alias, name", [
    ("asin", "arcsin"), ("acos", "arccos"), ("atan", "arctan"), ("atan2", "arctan2"),
    ("asinh", "arcsinh"), ("acosh", "arccosh"), ("atanh", "arctanh"),
    ("fabs", "abs"), ("pow", "power")])
def test_top_level_aliases(alias, name):
    assert getattr(ft, alias) is getattr(ft, name)


MATH_UNARY = [("sin", -3, 3), ("cos", -3, 3), ("tan", -1.4, 1.4), ("asin", -0.9, 0.9),
              ("acos", -0.9, 0.9), ("atan", -5, 5), ("sinh", -3, 3), ("cosh", -3, 3),
              ("tanh", -3, 3), ("asinh", -5, 5), ("acosh", 1.1, 5),
              ("atanh", -0.9, 0.9), ("exp", -3, 3), ("exp2", -3, 3),
              ("expm1", -3, 3), ("log", 0.1, 5), ("log2", 0.1, 5), ("log10", 0.1, 5),
              ("log1p", -0.9, 5), ("sqrt", 0.1, 5), ("cbrt", 0.1, 5), ("fabs", 0.1, 5),
              ("erf", -2, 2), ("degrees", -5, 5), ("radians", -5, 5),
              ("erfc", -2, 2), ("gamma", 0.2, 6), ("lgamma", 0.2, 30)]


@pytest.mark.parametrize("name, lo, hi", MATH_UNARY, ids=[m[0] for m in MATH_UNARY])
def test_math_mirror_unary(name, lo, hi, rng):
    if not hasattr(math, name):
        pytest.skip(f"this Python's math module has no {name}")
    ours = getattr(ftmath, name)
    theirs = getattr(math, name)
    for x in rng.uniform(lo, hi, 5):
        x = float(x)
        assert same_float(ours(x), theirs(x), 1e-14)
        assert same_float(ours(Variable(x, tape=Tape())).value, theirs(x), 1e-14)
        h = 1e-6 * max(1.0, abs(x))
        numeric = (theirs(x + h) - theirs(x - h)) / (2 * h)
        assert ft.grad(ours)(x) == pytest.approx(numeric, rel=1e-6, abs=1e-8)


def test_math_mirror_binary_and_constants(rng):
    for _ in range(5):
        x, y = (float(v) for v in rng.uniform(0.2, 3, 2))
        assert same_float(ftmath.atan2(y, x), math.atan2(y, x))
        assert same_float(ftmath.pow(x, y), math.pow(x, y))
        assert same_float(ftmath.log(x, y), math.log(x, y), 1e-13)
        dx, dbase = ft.grad(ftmath.log, argnum=(0, 1))(x, y)
        assert dx == pytest.approx(1 / (x * math.log(y)), rel=1e-12)
        assert dbase == pytest.approx(-math.log(x) / (y * math.log(y) ** 2), rel=1e-12)
    assert ftmath.pi == math.pi and ftmath.e == math.e and ftmath.tau == math.tau
    assert ftmath.inf == math.inf and math.isnan(ftmath.nan)


def test_math_mirror_hypot_of_any_number_of_coordinates(rng):
    for n in range(0, 5):
        coords = [float(v) for v in rng.uniform(-3, 3, n)]
        assert same_float(ftmath.hypot(*coords), math.hypot(*coords), 1e-14)
        if n:
            g = ft.grad(lambda c: ftmath.hypot(*c))(coords)
            np.testing.assert_allclose(g, np.array(coords) / math.hypot(*coords),
                                       rtol=1e-12)


def test_math_mirror_fsum_isnan_isinf_isfinite(rng):
    values = [float(v) for v in rng.uniform(-1e10, 1e10, 20)] + [1e-10]
    assert ftmath.fsum(values) == math.fsum(values)
    assert ft.grad(lambda v: ftmath.fsum(v))(values) == [1.0] * len(values)
    tape = Tape()
    for x in (0.0, math.inf, -math.inf, math.nan):
        for arg in (x, Variable(x, tape=tape)):
            assert ftmath.isnan(arg) is math.isnan(x)
            assert ftmath.isinf(arg) is math.isinf(x)
            assert ftmath.isfinite(arg) is math.isfinite(x)
    n = tape.n_nodes
    ftmath.isnan(Variable(1.0, tape=tape))
    assert tape.n_nodes == n + 1 and tape.n_guards == 0   # records nothing


def test_math_mirror_follows_numpy_not_math_exceptions():
    assert math.isnan(ftmath.log(-1.0))
    assert ftmath.log(0.0) == -math.inf
    assert math.isnan(ftmath.sqrt(-1.0))
    assert ftmath.exp(1000.0) == math.inf
    assert math.isnan(ftmath.asin(2.0))


UFUNC_SPECS = [s for s in FUNCTION_SPECS if isinstance(s.ref, np.ufunc)]


@pytest.mark.parametrize("spec", UFUNC_SPECS, ids=ids(UFUNC_SPECS))
def test_numpy_ufunc_on_variables_records_the_same_op(spec, rng):
    args = points(spec, rng, 1)[0]
    tape = Tape()
    call = [Variable(a, tape=tape) for a in args]
    out = spec.ref(*call)
    assert type(out) is Variable
    assert same_float(out.value, reference(spec, args), spec.value_rtol)
    names = [OP_TABLE[c][0] for c in tape.arrays()["ops"]]
    assert tuple(names[spec.arity:]) == spec.ops
    assert ft.grad(lambda *a: spec.ref(*a), argnum=spec.argnums)(*args) == \
        ft.grad(spec.fun, argnum=spec.argnums)(*args)


def test_numpy_ufunc_with_a_constant_operand(rng):
    x = Variable(0.7, tape=Tape())
    for expr, expected in [(np.add(x, 2.0), 2.7), (np.multiply(3.0, x), 2.1),
                           (np.power(x, 3.0), 0.7 ** 3), (np.power(x, x), 0.7 ** 0.7),
                           (np.power(2.0, x), 2.0 ** 0.7), (np.maximum(x, 1.0), 1.0),
                           (np.arctan2(1.0, x), math.atan2(1.0, 0.7)),
                           (np.subtract(1.0, x), 0.3)]:
        assert type(expr) is Variable
        assert expr.value == pytest.approx(expected, rel=1e-15)


def test_numpy_sign_and_comparison_ufuncs_on_variables():
    tape = Tape()
    x = Variable(0.7, tape=tape)
    assert np.negative(x).value == -0.7 and np.positive(x) is x
    assert np.absolute(-x).value == 0.7 and np.fabs(-x).value == 0.7
    assert np.square(x).value == 0.7 * 0.7
    assert np.float_power(x, 2.0).value == pytest.approx(0.49, rel=1e-15)
    n = tape.n_guards
    assert np.less(x, 1.0) is True and np.greater_equal(x, 1.0) is False
    assert np.equal(x, 0.7) is True and np.not_equal(x, x) is False
    assert tape.n_guards == n + 4


@pytest.mark.parametrize("ufunc", [np.spacing, np.nextafter, np.copysign,
                                   np.floor_divide, np.isnan, np.heaviside,
                                   np.logical_and])
def test_unsupported_numpy_ufunc_raises_type_error_naming_it(ufunc):
    x = Variable(0.7, tape=Tape())
    args = (x,) * ufunc.nin
    with pytest.raises(TypeError, match=ufunc.__name__):
        ufunc(*args)


def test_numpy_ufunc_methods_and_keywords_are_refused():
    x = Variable(0.7, tape=Tape())
    with pytest.raises(TypeError, match="add.reduce"):
        np.add.reduce(x)
    with pytest.raises(TypeError, match="keyword"):
        np.sin(x, out=np.empty(()))
    with pytest.raises(TypeError, match="spacing"):
        np.spacing(x)
    # an array operand takes the array layer: one node over the block
    y = np.add(x, np.ones(3))
    assert type(y).__name__ == "ArrayVariable"
    np.testing.assert_array_equal(y.value, np.full(3, 1.7))


def test_erf_and_sigmoid_references_are_sane():
    """The hand-written references used for erf and sigmoid, against closed forms."""
    assert np_erf(np.array([0.0, math.inf, -math.inf])).tolist() == [0.0, 1.0, -1.0]
    x = np.array([-800.0, -30.0, 0.0, 2.0, 40.0])
    np.testing.assert_allclose(np_sigmoid(x)[1:], 1 / (1 + np.exp(-x[1:])), rtol=1e-14)
    assert 0.0 <= np_sigmoid(-800.0) < 1e-300
