"""Every public NumPy function handed Variables: a correct derivative (against central
differences) or a TypeError naming the function, never a derivative silently lost.

Each function runs on a scalar Variable, a vector and a matrix (ArrayVariables), a
list of scalar Variables, and (for two-argument functions) twice the same argument;
the calls that plain NumPy accepts on the plain values are differentiated with
``jacobian`` and compared with central differences of plain NumPy. Outputs may be
anything NumPy returns (arrays, object arrays of Variables, tuples, integers, ...): the
numbers among them are checked."""
import inspect
import warnings

import numpy as np
import pytest

import fasttape.numpy as fnp
from fasttape import Variable, grad, jacobian

# not functions of arrays (files, printing, error handling, iteration helpers, classes
# of another protocol, functions that write into their arguments)
NOT_ARRAY_FUNCTIONS = {
    "save", "savez", "savez_compressed", "savetxt", "load", "loadtxt", "fromfile",
    "genfromtxt", "fromregex", "frombuffer", "memmap", "info", "show_config",
    "show_runtime", "test", "set_printoptions", "get_printoptions", "printoptions",
    "seterr", "seterrcall", "geterr", "geterrcall", "setbufsize", "getbufsize", "errstate",
    "get_include", "nested_iters", "nditer", "ndindex", "ndenumerate", "place", "put",
    "putmask", "copyto", "put_along_axis", "fill_diagonal", "vectorize", "frompyfunc",
    "piecewise", "apply_along_axis", "apply_over_axes", "broadcast", "busday_count",
    "busday_offset", "is_busday", "datetime_as_string", "datetime_data", "add_docstring",
    "add_newdoc", "add_newdoc_ufunc", "from_dlpack", "asmatrix", "bmat", "matrix",
    "empty", "empty_like", "isfortran",
}

# (name, kind) whose derivatives are not compared: arccosh of points below 1 (nan
# both ways), and the exceptions below
UNDIFFERENTIABLE_POINTS = {("arccosh", "vector"), ("arccosh", "matrix"),
                           ("acosh", "vector"), ("acosh", "matrix"),
                           # an object array's logical_and / logical_or return one of
                           # the operands, as Python's `and` / `or` do (autograd's boxes
                           # too), not booleans
                           ("logical_and", "list of scalars"),
                           ("logical_or", "list of scalars")}
if int(np.__version__.split(".")[0]) < 2:
    # NumPy 1's any/all of an object array return an operand too (as `or`/`and`); its
    # functions removed in NumPy 2 (matrices, scalar types, string parsing) take no
    # arrays of numbers to differentiate
    UNDIFFERENTIABLE_POINTS |= {(name, "list of scalars") for name in
                                ("any", "all", "alltrue", "sometrue")}
    NOT_ARRAY_FUNCTIONS |= {"byte_bounds", "fromstring", "mat", "maximum_sctype",
                            "obj2sctype"}


def public_functions():
    names = []
    for name in sorted(n for n in dir(np) if not n.startswith("_")):
        f = getattr(np, name)
        if name in NOT_ARRAY_FUNCTIONS or not callable(f) or (
                inspect.isclass(f) and not isinstance(f, np.ufunc)):
            continue
        names.append(name)
    return names


POINTS = {
    "scalar": 0.37,
    "vector": np.array([0.61, 0.28, 0.83]),
    "matrix": np.array([[0.52, 0.74], [0.33, 0.45]]),
    "list of scalars": (0.46, 0.71),
}


def calls(f, kind):
    """(call, x0): call(x) runs f on x (a tuple of scalars for a list of them); with
    one argument and with the argument twice."""
    x0 = POINTS[kind]
    if kind == "list of scalars":
        yield (lambda t: f(list(t))), x0
        yield (lambda t: f(list(t), list(t))), x0
    else:
        yield (lambda x: f(x)), x0
        yield (lambda x: f(x, x)), x0


def numbers_of(out):
    """The numbers of an output as one flat float vector, or None when it holds
    something else (strings, dtypes, None, ...)."""
    if isinstance(out, (tuple, list)):
        parts = [numbers_of(o) for o in out]
        if any(p is None for p in parts):
            return None
        return np.concatenate(parts) if parts else np.zeros(0)
    try:
        a = np.asarray(out)
    except Exception:
        return None
    if a.dtype.kind not in "fiub" or a.dtype.kind == "f" and a.dtype != np.float64 \
            and a.dtype.itemsize < 8:
        return None
    return a.astype(float).ravel()


def jacobian_matrix(j, x0):
    """A Jacobian structured as JAX's (the output's structure of the input's structure
    of blocks) as one (output numbers, input numbers) matrix."""
    import optree
    x_sizes = [np.size(v) for v in optree.tree_leaves(x0)] if isinstance(
        x0, (tuple, list)) else [np.size(x0)]
    blocks = optree.tree_leaves(j)
    rows = []
    for k in range(0, len(blocks), len(x_sizes)):
        chunk = blocks[k:k + len(x_sizes)]
        rows.append(np.concatenate([np.reshape(b, (-1, n)) for b, n in
                                    zip(chunk, x_sizes)], axis=1))
    return np.concatenate(rows, axis=0) if rows else np.zeros((0, sum(x_sizes)))


def plain(x):
    return tuple(float(v) for v in x) if isinstance(x, tuple) else np.copy(x) \
        if isinstance(x, np.ndarray) else x


def central_differences(call, x0, h=1e-6):
    flat = np.ravel(np.asarray(x0, dtype=float))
    columns = []
    for j in range(flat.size):
        values = []
        for sign in (1.0, -1.0):
            x = flat.copy()
            x[j] += sign * h
            x = tuple(x) if isinstance(x0, tuple) else x.reshape(np.shape(x0)) \
                if isinstance(x0, np.ndarray) else float(x[0])
            values.append(numbers_of(call(x)))
        columns.append((values[0] - values[1]) / (2 * h))
    return np.stack(columns, -1)


@pytest.mark.parametrize("name", public_functions())
def test_numpy_function_of_variables_differentiates_correctly_or_raises(name):
    f = getattr(np, name)
    checked = 0
    for kind in POINTS:
        for call, x0 in calls(f, kind):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    reference = call(plain(x0))
                except Exception:
                    continue                   # NumPy itself refuses this call
                if numbers_of(reference) is None:
                    continue
                try:
                    got = jacobian(call)(plain(x0))
                except (TypeError, AttributeError) as e:
                    if kind == "list of scalars":
                        # NumPy makes an object array of the list, which its ufunc
                        # loops refuse (naming the ufunc, or the method they miss)
                        continue
                    assert type(e) is TypeError, (kind, repr(e))
                    # refused: the message names the function (or the conversion
                    # that would have dropped the derivative)
                    message = str(e)
                    assert name in message or getattr(f, "__name__", name) in message \
                        or "would drop" in message or "of Variables" in message, (
                            kind, message)
                    continue
                expected = central_differences(call, x0)
            checked += 1
            got = jacobian_matrix(got, x0)
            assert got.size == expected.size, (kind, got.shape, expected.shape)
            if (name, kind) in UNDIFFERENTIABLE_POINTS:
                continue
            np.testing.assert_allclose(got.reshape(expected.shape), expected, rtol=1e-4,
                                       atol=1e-5, equal_nan=True,
                                       err_msg=f"np.{name} of a {kind}")


def test_the_sweep_covers_the_functions_of_issue_11():
    names = public_functions()
    for name in ["stack", "array", "append", "concatenate", "sort", "pad", "kron",
                 "diff", "gradient", "cross", "einsum", "select", "real", "angle"]:
        assert name in names


# -- object arrays of Variables (what plain NumPy makes of them) -----------------------------

def test_plain_numpy_builders_of_scalar_variables_keep_the_derivative():
    a0, b0 = 0.3, -1.2
    for build in [lambda a, b: np.stack([a, b * a]), lambda a, b: np.array([a, b * a]),
                  lambda a, b: np.r_[a, b * a], lambda a, b: np.append(a, b * a),
                  lambda a, b: np.hstack([a, b * a]), lambda a, b: np.asarray([a, b * a]),
                  lambda a, b: np.full(2, a) * [1.0, b]]:
        ja, jb = jacobian(build, argnums=(0, 1))(a0, b0)
        np.testing.assert_allclose(np.stack([ja, jb], axis=-1), [[1.0, 0.0], [b0, a0]])


def test_object_arrays_as_input_to_fasttape_numpy_are_recorded():
    def f(a, b):
        objects = np.array([a, b])            # plain NumPy: an object array
        assert objects.dtype == object
        return fnp.sum(fnp.sin(objects) * fnp.concatenate([objects, [1.0]])[:2])

    ga, gb = grad(f, argnum=(0, 1))(0.4, 1.1)
    assert ga == pytest.approx(np.cos(0.4) * 0.4 + np.sin(0.4))
    assert gb == pytest.approx(np.cos(1.1) * 1.1 + np.sin(1.1))


def test_object_arrays_of_other_objects_raise_type_error():
    with pytest.raises(TypeError, match="object array of"):
        jacobian(lambda x: np.array([x, "a"], dtype=object))(1.0)


def test_scalar_variables_answer_as_zero_dimensional_arrays():
    def f(x):
        assert type(x) is Variable
        assert (x.shape, x.ndim, x.size, x.dtype) == ((), 0, 1, np.float64)
        assert np.shape(x) == () and np.ndim(x) == 0 and np.size(x) == 1
        return x * x if x else -x
    assert grad(f)(3.0) == 6.0
    assert grad(f)(0.0) == -1.0
    assert grad(lambda x: 2.0 * x if not x else x)(0.0) == 2.0


def test_object_arrays_without_variables_are_numpy_s_business():
    strings = np.array(["a", 1.0], dtype=object)
    assert fnp.concatenate([strings, strings]).tolist() == ["a", 1.0, "a", 1.0]
    assert fnp.array(strings) is not strings
    with pytest.raises(TypeError, match="sin"):        # as NumPy's own
        fnp.sin(np.array([0.5, 1.0], dtype=object))
