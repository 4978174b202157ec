"""The batched compressed Hessian: every colour's forward-over-reverse sweep in one
pass over the tape (Tape.hessian_times_many), against one pass per colour and
against dense fasttape.hessian; and the replay and tangent steps the sparse Hessian
leans on (x**3 and x**4 by multiplication, sums and differences, a ** c) against
NumPy and central differences.
"""
import numpy as np
import pytest
from test_sparse import ARRAY_PROGRAMS, random_scalar_program

import fasttape
import fasttape.numpy as fnp
from fasttape import compressed
from fasttape._arrays import input_spec

# the programs whose Hessians are computed in C (linalg's node has Python rules)
IN_C = sorted(name for name in ARRAY_PROGRAMS if name != "linalg")


def per_colour(g, x, coloring="star"):
    """The sparse Hessian by one Hessian-vector product per colour (the path the
    batched one replaces)."""
    return compressed.sparse_hessian(g, (x,), g._flat_hvp_by_function, coloring,
                                     batched=False)


def scalar_of(f, weights):
    def scalar(v):
        out = f(v)
        return fnp.sum(fnp.sin(out) * weights) + fnp.sum(out ** 2)
    return scalar


@pytest.mark.parametrize("coloring", ["star", "acyclic"])
@pytest.mark.parametrize("name", IN_C)
def test_batched_equals_per_colour_and_dense_on_array_programs(name, coloring):
    f = ARRAY_PROGRAMS[name]
    rng = np.random.default_rng(5)
    x = rng.uniform(0.3, 2.0, 8)
    weights = rng.uniform(0.5, 1.5, np.size(f(x)))
    scalar = scalar_of(f, weights)
    g = fasttape.trace(scalar, x)
    at = x * rng.uniform(0.9, 1.1, 8)          # away from the trace point (a replay)
    if name in ("where", "max"):
        at = x                                 # (their branches pinned at x)
    batched = g.sparse_hessian(at, coloring=coloring)
    one_by_one = per_colour(g, at, coloring)
    assert (batched.indptr == one_by_one.indptr).all()
    assert (batched.indices == one_by_one.indices).all()
    np.testing.assert_allclose(batched.data, one_by_one.data, rtol=1e-14, atol=1e-15)
    dense = np.array(fasttape.hessian(scalar)(at))
    np.testing.assert_allclose(batched.toarray(), dense, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("seed", range(6))
def test_batched_equals_per_colour_and_dense_on_scalar_programs(seed):
    rng = np.random.default_rng(100 + seed)
    n = 7
    f = random_scalar_program(rng, n, 3)

    def scalar(v):
        out = f(v)
        return out[0] * out[1] + fasttape.sin(out[2])
    x = list(rng.uniform(0.5, 1.5, n))
    g = fasttape.trace(scalar, x)
    batched = g.sparse_hessian(x)
    np.testing.assert_allclose(batched.toarray(), per_colour(g, x).toarray(),
                               rtol=1e-14, atol=1e-15)
    dense = np.array(fasttape.hessian(lambda v: scalar(list(v)))(np.array(x)))
    np.testing.assert_allclose(batched.toarray(), dense, rtol=1e-10, atol=1e-10)


def test_arrowhead_batched_equals_dense():
    def f(x):
        return fnp.sum((x[1:] - x[0]) ** 4) + fnp.sum(x ** 2)
    x = np.linspace(-1.0, 1.0, 40)
    g = fasttape.trace(f, x)
    assert g.hessian_colors().max() + 1 <= 3
    np.testing.assert_allclose(g.sparse_hessian(x).toarray(),
                               np.array(fasttape.hessian(f)(x)), rtol=1e-12, atol=1e-12)


def test_hessian_times_many_columns_are_hessian_vector_products():
    """Each column of the batched product is hessian_vector_arrays' product along
    that direction, for 0 to 4 directions, on a tape of arrays and scalars."""
    def f(x, y):
        return fnp.sum(fnp.exp(x[:3]) * x[1:] ** 3) + fnp.sin(y) * fnp.sum(x) ** 2
    rng = np.random.default_rng(2)
    x, y = rng.uniform(0.2, 1.0, 4), 0.7
    g = fasttape.trace(f, x, y, argnum=(0, 1))
    rec = g._current
    leaves = list(rec.leaves[0]) + list(rec.leaves[1])
    spec = input_spec(leaves)
    index = np.array([i for _, i in spec], dtype=np.int64)
    is_array = np.array([a for a, _ in spec], dtype=np.uint8)
    out = rec.scalar_output()
    anode = rec.outputs[0].anode if out is None else -1
    out = -1 if out is None else out
    for k in range(5):
        directions = rng.normal(size=(k, 5))
        many = rec.tape.hessian_times_many(out, index, is_array, directions, anode)
        assert many.shape == (5, k)
        for c in range(k):
            _, single = rec.tape.hessian_vector_arrays(out, spec, directions[c], anode)
            np.testing.assert_allclose(many[:, c], single, rtol=1e-14, atol=1e-15)
    # every direction a unit vector: the dense Hessian
    many = rec.tape.hessian_times_many(out, index, is_array, np.eye(5), anode)
    dense = np.array(fasttape.hessian(lambda v: f(v[:4], v[4]))(np.append(x, y)))
    np.testing.assert_allclose(many, dense, rtol=1e-12, atol=1e-12)


def test_hessian_times_many_refuses_bad_leaves_and_directions():
    g = fasttape.trace(lambda x: fnp.sum(x ** 3), np.ones(3))
    rec = g._current
    (_, anode), = input_spec(list(rec.leaves[0]))
    out = rec.scalar_output()
    args = (-1 if out is None else out)
    anode_out = rec.outputs[0].anode if out is None else -1
    index, flags = np.array([anode], dtype=np.int64), np.ones(1, dtype=np.uint8)
    with pytest.raises(ValueError, match="directions of 2 values"):
        rec.tape.hessian_times_many(args, index, flags, np.ones((1, 2)), anode_out)
    with pytest.raises(ValueError, match="not an input"):
        rec.tape.hessian_times_many(args, np.array([99], dtype=np.int64), flags,
                                    np.ones((1, 3)), anode_out)
    with pytest.raises(ValueError, match="not an input"):
        rec.tape.hessian_times_many(args, np.array([-1], dtype=np.int64),
                                    np.zeros(1, dtype=np.uint8), np.ones((1, 1)),
                                    anode_out)
    with pytest.raises(ValueError, match="is_array"):
        rec.tape.hessian_times_many(args, index, np.ones(2, dtype=np.uint8),
                                    np.ones((1, 3)), anode_out)
    # a node with Python rules has no second derivatives in C
    h = fasttape.trace(lambda x: fnp.linalg.det(x.reshape(2, 2) + 3 * np.eye(2)),
                       np.ones(4))
    rec = h._current
    (_, anode), = input_spec(list(rec.leaves[0]))
    out = rec.scalar_output()
    with pytest.raises(NotImplementedError, match="Python"):
        rec.tape.hessian_times_many(-1 if out is None else out,
                                    np.array([anode], dtype=np.int64), flags,
                                    np.eye(4), rec.outputs[0].anode if out is None else -1)
    # ... and sparse_hessian takes the Python path for it, values still right
    x = np.array([1.0, 0.5, -0.2, 2.0])
    np.testing.assert_allclose(
        h.sparse_hessian(x).toarray(),
        np.array(fasttape.hessian(lambda x: fnp.linalg.det(x.reshape(2, 2)
                                                           + 3 * np.eye(2)))(x)),
        rtol=1e-10, atol=1e-12)


# -- the steps the arrowhead uses ---------------------------------------------------------

@pytest.mark.parametrize("power", [2.0, 3.0, 4.0, 2.5])
def test_replayed_small_powers_match_numpy(power):
    """x ** c replayed (by multiplication for c = 2, 3, 4) within two roundings of
    NumPy's power, at signed zeros, infinities and nan alike."""
    x = np.array([-3.0, -0.5, -0.0, 0.0, 1e-120, 0.3, 1.7, 1e80, np.inf, -np.inf,
                  np.nan])
    g = fasttape.trace(lambda v: v ** power, np.ones(x.size))
    with np.errstate(invalid="ignore", over="ignore"):
        got, expected = np.asarray(g(x)), x ** power
    finite = np.isfinite(expected) & (expected != 0)
    np.testing.assert_allclose(got[finite], expected[finite], rtol=4e-16, atol=0)
    assert (np.isnan(got) == np.isnan(expected)).all()
    assert (got[~finite & ~np.isnan(expected)] ==
            expected[~finite & ~np.isnan(expected)]).all()
    assert (np.signbit(got[~np.isnan(got)]) ==
            np.signbit(expected[~np.isnan(expected)])).all()


@pytest.mark.parametrize("name, f", [
    ("difference with a broadcast scalar", lambda x: fnp.sum((x[1:] - x[0]) ** 4)),
    ("sum with a broadcast scalar", lambda x: fnp.sum(fnp.sin(x[1:] + x[0]) * x[1:])),
    ("elementwise sum and difference", lambda x: fnp.sum(fnp.exp(x[1:] + x[:-1]) *
                                                         (x[1:] - x[:-1]) ** 3)),
    ("a ** c", lambda x: fnp.sum(x ** 3 * fnp.cos(x)) + fnp.sum(x ** 2.5)),
])
def test_fast_tangent_and_second_order_steps_match_differences(name, f):
    x = np.random.default_rng(4).uniform(0.2, 1.2, 6)
    fasttape.check_grads(f, modes=("fwd", "rev"), order=2)(x)
    g = fasttape.trace(f, x)
    h = np.array(fasttape.hessian(f)(x))
    np.testing.assert_allclose(g.sparse_hessian(x).toarray(), h, rtol=1e-10, atol=1e-12)
    for v in np.eye(6)[:2]:
        np.testing.assert_allclose(np.asarray(g.hvp((x,), v)), h @ v, rtol=1e-10,
                                   atol=1e-12)


# -- the batched compressed Jacobian (Tape.tangents_many) -------------------------------------

def _spec(variables):
    from fasttape._arrays import input_spec_arrays
    return input_spec_arrays(list(variables))


def test_tangents_many_columns_are_jacobian_vector_products():
    """Each column of the batched tangents is tangents_of's along that direction, for
    0 to 4 directions, on a tape of arrays and scalars with array and scalar
    outputs; unit directions give the dense Jacobian."""
    from fasttape._arrays import tangents_of

    def f(x, y):
        return fnp.exp(x[:3]) * x[1:] ** 3, fnp.sin(y) * fnp.sum(x) ** 2
    rng = np.random.default_rng(4)
    x, y = rng.uniform(0.2, 1.0, 4), 0.7
    g = fasttape.trace(f, x, y, argnum=(0, 1))
    rec = g._current
    leaves = list(rec.leaves[0]) + list(rec.leaves[1])
    index, is_array = _spec(leaves)
    out_index, out_is_array = _spec(rec.outputs)
    for k in range(5):
        directions = rng.normal(size=(k, 5))
        many = rec.tape.tangents_many(index, is_array, directions, out_index,
                                      out_is_array)
        assert many.shape == (4, k)
        for c in range(k):
            tangents = [directions[c, :4], directions[c, 4]]
            single = tangents_of(rec.tape, leaves, tangents, list(rec.outputs))
            np.testing.assert_allclose(many[:, c], np.concatenate(
                [np.ravel(single[0]), [single[1]]]), rtol=1e-14, atol=1e-15)
    many = rec.tape.tangents_many(index, is_array, np.eye(5), out_index, out_is_array)

    def flat(v):
        first, second = f(v[:4], v[4])
        return fnp.concatenate([first, fnp.reshape(second, (1,))])
    dense = np.array(fasttape.jacobian(flat)(np.append(x, y)))
    np.testing.assert_allclose(many, dense, rtol=1e-12, atol=1e-12)


def test_tangents_many_refuses_bad_leaves_outputs_and_directions():
    g = fasttape.trace(lambda x: x ** 3, np.ones(3))
    rec = g._current
    index, flags = _spec(rec.leaves[0])
    out_index, out_flags = _spec(rec.outputs)
    many = rec.tape.tangents_many
    with pytest.raises(ValueError, match="directions of 2 values"):
        many(index, flags, np.ones((1, 2)), out_index, out_flags)
    with pytest.raises(ValueError, match="not an input"):
        many(np.array([99]), flags, np.ones((1, 3)), out_index, out_flags)
    with pytest.raises(ValueError, match="not an input"):
        many(np.array([-1]), np.zeros(1), np.ones((1, 1)), out_index, out_flags)
    with pytest.raises(ValueError, match="no array node 99"):
        many(index, flags, np.ones((1, 3)), np.array([99]), out_flags)
    with pytest.raises(ValueError, match="no slot -5"):
        many(index, flags, np.ones((1, 3)), np.array([-5]), np.zeros(1))
    with pytest.raises(ValueError, match="is_array flag per output"):
        many(index, flags, np.ones((1, 3)), out_index, np.ones(2))
    np.testing.assert_allclose(many(index, flags, np.eye(3), out_index, out_flags),
                               np.diag(3 * np.ones(3)))


def test_tangents_many_of_a_one_value_array_node():
    """An array node whose one value lives in a scalar slot (a sum) as an output:
    its tangents are read from the scalar tangents, in every direction."""
    x = np.array([0.2, -0.4, 1.1])
    g = fasttape.trace(lambda v: fnp.sum(fnp.exp(v)) * v, x)
    rec = g._current
    index, flags = _spec(rec.leaves[0])
    total = rec.tape.node(2)[1]                 # node 2 (the sum)'s array node
    directions = np.random.default_rng(1).normal(size=(3, 3))
    many = rec.tape.tangents_many(index, flags, directions, np.array([total]),
                                  np.ones(1))
    np.testing.assert_allclose(many, (np.exp(x) @ directions.T)[None, :], rtol=1e-14)


def test_sparse_jacobian_with_constant_and_scalar_outputs_equals_dense():
    """Outputs that do not depend on x (rows of zeros), scalars and arrays, laid out
    in order."""
    def f(x):
        return [x[1:] * x[:-1], 2.5, x[0] ** 2 + x[1], -1.0, fnp.sin(x)]

    def flat(x):
        return fnp.concatenate([fnp.reshape(fnp.asarray(v), (-1,)) for v in f(x)])
    x = np.array([0.3, -1.2, 0.8, 2.0, 0.1, -0.4, 1.1, 0.6])
    g = fasttape.trace(f, x)
    sparse = g.sparse_jacobian(x).toarray()
    np.testing.assert_allclose(sparse, np.array(fasttape.jacobian(flat)(x)),
                               rtol=1e-13, atol=1e-14)
    assert g.jacobian_colors()[1]                  # compressed forward
