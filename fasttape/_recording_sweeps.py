"""Reverse sweeps that record their own operations, for derivatives of derivatives.

When grad (or vjp, jacobian) is applied to a function of Variables of an enclosing
computation, the function is recorded on that same tape and swept here: adjoints are
Variables, each step applies the rules of _rules.py with fasttape operations, so the
sweep itself lands on the tape and the enclosing computation can differentiate it
again (PyTorch's create_graph=True). The sweep stops at the region's own inputs, so
nested differentiations never mix their perturbations.
"""
import numpy as np

import fasttape.numpy as fnp
from fasttape import _arrays, _optable
from fasttape._arrays import ArrayVariable, array_variable_at, variable_at
from fasttape._masks import ArrayMask
from fasttape._rules import (BINARY_PARTIALS, CONSTANT_OPERAND_PARTIALS, UNARY_PARTIALS,
                             constant_operand_partial, is_zero)
from fasttape._scalar_recording_sweep import scalar_region_adjoints
from fasttape._tape import ARRAY_OP_TABLE, OP_TABLE
from fasttape._variable import Variable, make_constant

OP_NAMES = {code: name for name, code, _ in OP_TABLE}
AOP_NAMES = {code: name for name, code in ARRAY_OP_TABLE}
OPERAND_ARRAY, OPERAND_SCALAR = 1, 2
# the constant-operand variants and which operand is the constant: 2 the second
# (*_VC: arg1 indexes the constants pool), 1 the first (*_CV)
VARIABLE_CONSTANT = {name: 2 if variant == "VC" else 1
                     for name, _, variant in _optable.expanded() if variant in ("VC", "CV")}


def rules_by_code():
    """The op table's rules keyed by op code, for the C sweep of scalar regions
    (fasttape._scalar_recording_sweep): unary, binary, and constant-operand ones with
    whether the Variable is the first operand."""
    codes = {name: code for name, code, _ in OP_TABLE}
    return ({codes[name]: rule for name, rule in UNARY_PARTIALS.items()},
            {codes[name]: rule for name, rule in BINARY_PARTIALS.items()},
            {codes[name]: (VARIABLE_CONSTANT[name] == 2, rule)
             for name, rule in CONSTANT_OPERAND_PARTIALS.items()})


def reverse_recording(tape, outputs, seeds, inputs):
    # derivative rules evaluate at the recorded values, nan and inf included, as the
    # C sweeps do: without NumPy's warnings
    with np.errstate(all="ignore"):
        adjoints = scalar_region_adjoints(tape, outputs, seeds, inputs)
        if adjoints is not None:
            return adjoints
        return _reverse_recording(tape, outputs, seeds, inputs)


def python_reverse_recording(tape, outputs, seeds, inputs):
    """The Python sweep alone (for regions the C one does not take, and for tests)."""
    with np.errstate(all="ignore"):
        return _reverse_recording(tape, outputs, seeds, inputs)


def _reverse_recording(tape, outputs, seeds, inputs):
    """Adjoints of `inputs` for outputs seeded with `seeds`, as recorded expressions.

    outputs and inputs are Variables/ArrayVariables of `tape`; the inputs were recorded
    before every node that depends on them and after which the sweep stops. Returns one
    adjoint per input: a Variable, an ArrayVariable, or a constant (0.0 or an array of
    zeros when the output does not depend on that input).
    """
    adjoints = {}

    def add(node, contribution):
        if is_zero(contribution):
            return
        previous = adjoints.get(node)
        adjoints[node] = contribution if previous is None else previous + contribution

    for out, seed in zip(outputs, seeds):
        add(out.node, seed)
    stop = max(x.node for x in inputs)
    last = max(out.node for out in outputs)
    for i in range(last, stop, -1):
        g = adjoints.pop(i, None)
        if g is None:
            continue
        op, a, b = tape.node(i)
        name = OP_NAMES[op]
        if name == "ARRAY":
            _array_step(tape, a, g, add)
        elif name in ("LEAF", "CONST"):
            continue
        elif name == "SELECT":
            if tape.replayable:        # the choice as recorded selects, replayed
                condition, first, second = tape.select_operands(i)
                add(first, _select(tape, condition, g, 0.0))
                add(second, _select(tape, condition, 0.0, g))
            else:
                add(tape.selected(i), g)
        elif name in VARIABLE_CONSTANT:
            y = variable_at(tape, i)
            if VARIABLE_CONSTANT[name] == 2:
                x, c = variable_at(tape, a), tape.constant(b)
            else:
                x, c = variable_at(tape, b), tape.constant(a)
            add(x.node, g * constant_operand_partial(name, x, c, y))
        elif name in UNARY_PARTIALS:
            x = variable_at(tape, a)
            partial = UNARY_PARTIALS[name](x, variable_at(tape, i))
            if not is_zero(partial):
                add(a, g * partial)
        else:
            x0, x1, y = variable_at(tape, a), variable_at(tape, b), variable_at(tape, i)
            d0, d1 = BINARY_PARTIALS[name](x0, x1, y)
            add(a, g * d0)
            add(b, g * d1)
    return [adjoints.get(x.node, _zeros_like(x)) for x in inputs]


def _select(tape, condition, a, b):
    """A recorded select between a and b (numbers or scalar Variables) on the
    condition slot of a SELECT node: re-evaluated by a replay."""
    a, b = _on_tape(tape, a), _on_tape(tape, b)
    value = a.value if tape.value_at(condition) > 0.0 else b.value
    return variable_at(tape, tape.select(condition, a.slot, b.slot, value))


def _on_tape(tape, x):
    if type(x) is Variable:
        return x
    return make_constant(tape, float(x))


def _where_mask(tape, info, shape):
    """The condition of a WHERE node: its recorded mask when the tape replays and
    the mask is a node (a comparison of arrays), else the constant booleans."""
    if tape.replayable and info.weights_node >= 0:
        node = tape.array_node(info.weights_node)
        mask = ArrayMask(tape, info.weights_node, node.value)
        return mask if np.shape(node.value) == tuple(shape) else \
            info.weights.reshape(shape) != 0.0
    return info.weights.reshape(shape) != 0.0


def _zeros_like(x):
    return 0.0 if type(x) is Variable else np.zeros(x.shape)


def _operand(tape, info):
    """A recorded handle (or the constant) for an array node's operand."""
    kind = info.kind
    if kind == OPERAND_ARRAY:
        node_info = tape.array_node(info.ref)
        return array_variable_at(tape, info.ref, node_info.node, node_info.value)
    if kind == OPERAND_SCALAR:
        return variable_at(tape, info.ref)
    return info.data


def _shape(x):
    return np.shape(x.value) if hasattr(x, "tape") else np.shape(x)


def unbroadcast(contribution, shape):
    """Sum a contribution of the broadcast output's shape down to an operand's shape."""
    c_shape = _shape(contribution)
    if c_shape == tuple(shape):
        return contribution
    if len(shape) == 0:
        return fnp.sum(contribution)
    lead = len(c_shape) - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + d for d, n in enumerate(shape) if n == 1 and c_shape[lead + d] != 1)
    return fnp.reshape(fnp.sum(contribution, axis=axes), shape)


def _array_step(tape, r, g, add):
    info = tape.array_node(r)
    name = AOP_NAMES[info.aop]
    operands = [_operand(tape, o) for o in info.operands]
    nodes = [o.node if o.kind in (OPERAND_ARRAY, OPERAND_SCALAR) else None
             for o in info.operands]
    if info.out_slot >= 0:
        y = variable_at(tape, info.out_slot)
        out_shape = ()
    else:
        y = array_variable_at(tape, r, info.node, info.value)
        out_shape = y.shape
    layout = info.layout            # the geometry, decoded (decode_geometry)

    def give(j, contribution):
        if nodes[j] is not None and not is_zero(contribution):
            add(nodes[j], fnp.reshape(contribution, _shape(operands[j])))

    if name == "LEAF" or name == "MASK":     # (a mask has no derivative)
        return
    x = operands[0]
    x_shape = _shape(x)
    if name == "UNARY":
        partial = UNARY_PARTIALS[OP_NAMES[info.sop]](x, y)
        if not is_zero(partial):
            give(0, g * partial)
    elif name == "BINARY":
        d0, d1 = BINARY_PARTIALS[OP_NAMES[info.sop]](operands[0], operands[1], y)
        give(0, unbroadcast(g * d0, _shape(operands[0])))
        give(1, unbroadcast(g * d1, _shape(operands[1])))
    elif name in ("SUM", "WEIGHTED_SUM"):
        shape = layout.shape
        kept = tuple(n if s != 0 else 1 for n, s in zip(shape, layout.out_strides))
        spread = fnp.broadcast_to(fnp.reshape(g, kept), shape) * info.c
        if info.weights is not None:
            spread = spread * _reduce_weights(info, x, y, shape, kept)
        give(0, spread)
    elif name == "CUMSUM":
        outer, n, inner = layout
        lanes = fnp.reshape(g, (outer, n, inner))
        give(0, fnp.flip(fnp.cumsum(fnp.flip(lanes, axis=1), axis=1), axis=1))
    elif name == "MATMUL":
        batch, m, k, n, stride_a, stride_b = layout
        a3 = fnp.reshape(operands[0], (-1, m, k))
        b3 = fnp.reshape(operands[1], (-1, k, n))
        g3 = fnp.reshape(g, (batch, m, n))
        if nodes[0] is not None:
            ga = fnp.matmul(g3, fnp.swapaxes(b3, 1, 2))
            give(0, fnp.sum(ga, axis=0) if stride_a == 0 and batch > 1 else ga)
        if nodes[1] is not None:
            gb = fnp.matmul(fnp.swapaxes(a3, 1, 2), g3)
            give(1, fnp.sum(gb, axis=0) if stride_b == 0 and batch > 1 else gb)
    elif name == "RESHAPE":
        give(0, g)
    elif name == "GATHER":
        give(0, _scatter(g, info.index, int(np.prod(x_shape))))
    elif name == "SCATTER":
        give(0, _gather(g, info.index))
    elif name == "STRIDED":
        shape, strides, offset = layout
        size = int(np.prod(x_shape))
        index = np.lib.stride_tricks.as_strided(
            np.arange(size, dtype=np.int64)[offset:], shape,
            [8 * s for s in strides]).reshape(-1)
        give(0, _scatter(g, index, size))
    elif name == "CONCAT":
        flat = _as_array(g, out_shape)
        for j, o in enumerate(info.operands):
            if nodes[j] is not None:
                give(j, _gather(flat, o.index))
    elif name == "WHERE":
        mask = _where_mask(tape, info, out_shape)
        give(0, unbroadcast(fnp.where(mask, g, 0.0), _shape(operands[0])))
        give(1, unbroadcast(fnp.where(mask, 0.0, g), _shape(operands[1])))
    elif name == "PYFUNC":
        rule = getattr(info.pyfunc, "recording", None)
        if rule is None:
            raise TypeError(
                f"cannot differentiate the derivative of "
                f"{getattr(info.pyfunc, '__name__', 'a custom operation')}: it has no "
                f"rule for higher-order differentiation")
        for j, contribution in enumerate(rule(g, y, *operands)):
            if contribution is not None:
                give(j, contribution)
    else:
        raise TypeError(f"no recording rule for array op {name}")


def _reduce_weights(info, x, y, shape, kept):
    """The weights of a weighted sum as an expression: for prod (sop 1) the product of
    the other elements, prod / x, recorded so that its own derivative is right (where
    x has no zeros; with zeros, the products of the others); for max and min the
    selection weights: constants, or, on a tape recorded for replay, recorded from a
    mask of the elements equal to the result (split evenly among ties)."""
    axes = tuple(d for d, (n, k) in enumerate(zip(shape, kept)) if k == 1 and n != 1)
    if info.sop != 1:
        if not x.tape.replayable:
            return info.weights.reshape(shape)
        hits = fnp.where(x == fnp.reshape(y, kept), 1.0, 0.0)
        return hits / fnp.sum(hits, axis=axes, keepdims=True)
    nonzero = x != 0.0                 # (a mask read as booleans when tracing: guarded)
    if np.all(nonzero):
        return fnp.prod(x, axis=axes, keepdims=True) / x
    return _exclusive_products(x, shape, axes)


def _exclusive_products(x, shape, axes):
    """For each element, the product of the others of its reduction group, as a
    recorded expression without division (exact where x has zeros): the group is laid
    out n times with a 1 in place of each element in turn."""
    rest = [d for d in range(len(shape)) if d not in axes]
    order = rest + list(axes)
    n = int(np.prod([shape[d] for d in axes]))
    lanes = fnp.reshape(fnp.transpose(x, order), (-1, n))            # (groups, n)
    eye = np.eye(n, dtype=bool)
    spread = fnp.where(eye[None, :, :], 1.0, fnp.expand_dims(lanes, 1))  # (g, n, n)
    others = fnp.prod(spread, axis=2)                                 # (g, n)
    back = fnp.reshape(others, [shape[d] for d in order])
    return fnp.transpose(back, list(np.argsort(order)))


def _as_array(g, shape):
    """g as a recorded array of `shape` (a scalar Variable or a constant becomes one)."""
    if type(g) is ArrayVariable:
        return g
    if type(g) is Variable:
        return fnp.reshape(g, shape if shape else (1,))
    return np.broadcast_to(np.asarray(g, dtype=float), shape if shape else (1,))


def _gather(x, index):
    """x.ravel()[index], recorded when x is a Variable."""
    if type(x) is ArrayVariable:
        return _arrays.gather(fnp.reshape(x, (-1,)), index)
    if type(x) is Variable:
        return _arrays.gather(fnp.reshape(x, (1,)), index)
    return np.ravel(np.asarray(x, dtype=float))[np.asarray(index)]


def _scatter(g, index, size):
    index = np.asarray(index, dtype=np.int64).reshape(-1)
    if type(g) in (Variable, ArrayVariable):
        return _arrays.scatter(fnp.reshape(g, (-1,)), index, size)
    g = np.asarray(g, dtype=float)
    g = g.reshape(-1) if g.size == index.size else np.broadcast_to(g, index.shape)
    return np.bincount(index, weights=g, minlength=size)


def tangent_recording(tape, inputs, tangents, outputs):
    with np.errstate(all="ignore"):
        return _tangent_recording(tape, inputs, tangents, outputs)


def _tangent_recording(tape, inputs, tangents, outputs):
    """Forward mode over the nodes after `inputs`, recording its operations: the
    tangents of `outputs` as Variables (or constants) when the inputs move along
    `tangents`."""
    tan = {}
    for x, t in zip(inputs, tangents):
        if not is_zero(t):
            tan[x.node] = t
    first = max(x.node for x in inputs) + 1
    last = max(out.node for out in outputs)
    for i in range(first, last + 1):
        op, a, b = tape.node(i)
        name = OP_NAMES[op]
        if name == "ARRAY":
            t = _array_tangent(tape, a, tan)
        elif name in ("LEAF", "CONST"):
            t = None
        elif name == "SELECT":
            if tape.replayable:
                condition, first, second = tape.select_operands(i)
                t_first, t_second = tan.get(first), tan.get(second)
                t = None if t_first is None and t_second is None else _select(
                    tape, condition, 0.0 if t_first is None else t_first,
                    0.0 if t_second is None else t_second)
            else:
                t = tan.get(tape.selected(i))
        elif name in VARIABLE_CONSTANT:
            x_node, c_index = (a, b) if VARIABLE_CONSTANT[name] == 2 else (b, a)
            tx = tan.get(x_node)
            t = None if tx is None else tx * constant_operand_partial(
                name, variable_at(tape, x_node), tape.constant(c_index),
                variable_at(tape, i))
        elif name in UNARY_PARTIALS:
            tx = tan.get(a)
            t = None if tx is None else tx * UNARY_PARTIALS[name](
                variable_at(tape, a), variable_at(tape, i))
        else:
            ta, tb = tan.get(a), tan.get(b)
            if ta is None and tb is None:
                t = None
            else:
                d0, d1 = BINARY_PARTIALS[name](variable_at(tape, a), variable_at(tape, b),
                                               variable_at(tape, i))
                t = _sum_terms(None if ta is None else ta * d0,
                               None if tb is None else tb * d1)
        if t is not None and not is_zero(t):
            tan[i] = t
    return [tan.get(out.node, _zeros_like(out)) for out in outputs]


def _sum_terms(*terms):
    total = None
    for term in terms:
        if term is not None and not is_zero(term):
            total = term if total is None else total + term
    return total


def _array_tangent(tape, r, tan):
    info = tape.array_node(r)
    name = AOP_NAMES[info.aop]
    if name == "LEAF" or name == "MASK":
        return None
    ops = info.operands
    nodes = [o.node if o.kind in (OPERAND_ARRAY, OPERAND_SCALAR) else None
             for o in ops]
    ts = [tan.get(n) if n is not None else None for n in nodes]
    if all(t is None for t in ts):
        return None
    operands = [_operand(tape, o) for o in ops]
    if info.out_slot >= 0:
        y = variable_at(tape, info.out_slot)
        out_shape = ()
    else:
        y = array_variable_at(tape, r, info.node, info.value)
        out_shape = y.shape
    layout = info.layout            # the geometry, decoded (decode_geometry)
    t0 = ts[0]

    def shaped(t):
        return fnp.reshape(t, out_shape)

    if name == "UNARY":
        return t0 * UNARY_PARTIALS[OP_NAMES[info.sop]](operands[0], y)
    if name == "BINARY":
        d0, d1 = BINARY_PARTIALS[OP_NAMES[info.sop]](operands[0], operands[1], y)
        t = _sum_terms(None if ts[0] is None else ts[0] * d0,
                       None if ts[1] is None else ts[1] * d1)
        return None if t is None else fnp.broadcast_to(t, out_shape) \
            if _shape(t) != out_shape else t
    if name in ("SUM", "WEIGHTED_SUM"):
        shape = layout.shape
        axes = tuple(d for d, s in enumerate(layout.out_strides) if s == 0)
        kept = tuple(n if s != 0 else 1 for n, s in zip(shape, layout.out_strides))
        t = fnp.reshape(t0, shape) * info.c
        if info.weights is not None:
            t = t * _reduce_weights(info, operands[0], y, shape, kept)
        return shaped(fnp.sum(t, axis=axes, keepdims=True))
    if name == "CUMSUM":
        outer, n, inner = layout
        return shaped(fnp.cumsum(fnp.reshape(t0, (outer, n, inner)), axis=1))
    if name == "MATMUL":
        batch, m, k, n, stride_a, stride_b = layout
        terms = []
        if ts[0] is not None:
            terms.append(fnp.matmul(fnp.reshape(ts[0], (-1, m, k)),
                                    fnp.reshape(operands[1], (-1, k, n))))
        if ts[1] is not None:
            terms.append(fnp.matmul(fnp.reshape(operands[0], (-1, m, k)),
                                    fnp.reshape(ts[1], (-1, k, n))))
        return shaped(_sum_terms(*terms))
    if name == "RESHAPE":
        return shaped(t0)
    if name == "GATHER":
        return shaped(_gather(t0, info.index))
    if name == "SCATTER":
        return shaped(_scatter(t0, info.index, info.size))
    if name == "STRIDED":
        size = int(np.prod(_shape(operands[0])))
        index = np.lib.stride_tricks.as_strided(
            np.arange(size, dtype=np.int64)[layout.offset:], layout.shape,
            [8 * s for s in layout.strides])
        return shaped(_gather(t0, np.ascontiguousarray(index)))
    if name == "CONCAT":
        total = info.size
        return shaped(_sum_terms(*[
            _scatter(t, o.index, total) for t, o in zip(ts, ops) if t is not None]))
    if name == "WHERE":
        mask = _where_mask(tape, info, out_shape)
        return fnp.where(mask, 0.0 if ts[0] is None else ts[0],
                         0.0 if ts[1] is None else ts[1])
    if name == "PYFUNC":
        rule = getattr(info.pyfunc_jvp, "recording", None)
        if rule is None:
            raise TypeError("forward mode inside another differentiation reached an "
                            "operation without a rule for it")
        return shaped(rule(ts, y, *operands))
    raise TypeError(f"no forward recording rule for array op {name}")
