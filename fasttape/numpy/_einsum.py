"""einsum of Variables: one tape node whose reverse step is an einsum per operand.

Below fasttape.numpy (whose einsum calls this one for Variables), so its rules call
this module's einsum and _arrays' reshape and broadcast_to directly.
"""
import numpy as np

from fasttape import _arrays
from fasttape._arrays import ArrayVariable
from fasttape._rule_nodes import operand_slots, rule_node
from fasttape._variable import Variable


def _parse(subscripts, n_operands):
    subscripts = subscripts.replace(" ", "")
    if "." in subscripts:
        raise NotImplementedError("fasttape's einsum of Variables does not support '...'")
    if "->" in subscripts:
        inputs, output = subscripts.split("->")
    else:
        inputs = subscripts
        letters = inputs.replace(",", "")
        output = "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    inputs = inputs.split(",")
    if len(inputs) != n_operands:
        raise ValueError(f"einsum: {len(inputs)} subscripts for {n_operands} operands")
    for term in inputs:
        if len(set(term)) != len(term):
            raise NotImplementedError("fasttape's einsum of Variables does not support a "
                                      "repeated index within one operand (diagonals); "
                                      "use np.diagonal")
    return inputs, output


def einsum(subscripts, operands, **kwargs):
    if kwargs:
        raise TypeError(f"einsum of Variables takes no keyword arguments, got "
                        f"{sorted(kwargs)}")
    inputs, output = _parse(subscripts, len(operands))
    values = [_arrays_value(x) for x in operands]
    value = np.einsum(f"{','.join(inputs)}->{output}", *values)

    def reverse(g, ans, *xs):
        cotangents = []
        for i, term in enumerate(inputs):
            others = [(t, xs[j]) for j, t in enumerate(inputs) if j != i]
            available = set(output).union(*[set(t) for t, _ in others])
            kept = "".join(c for c in term if c in available)
            partial = _einsum(",".join([output] + [t for t, _ in others]) + "->" + kept,
                              g, *[x for _, x in others])
            # indices only in this operand were summed away: broadcast back over them
            shape = np.shape(values[i])
            expanded = _reshape(partial, [shape[k] if c in available else 1
                                          for k, c in enumerate(term)])
            cotangents.append(_broadcast_to(expanded, shape))
        return cotangents

    def forward(tangents, ans, *xs):
        total = 0.0
        spec = f"{','.join(inputs)}->{output}"
        for i, t in enumerate(tangents):
            if t is not None:
                args = list(xs)
                args[i] = t
                total = total + _einsum(spec, *args)
        return total

    spec = f"{','.join(inputs)}->{output}"

    def einsum_value(*xs):
        return np.einsum(spec, *xs)

    return rule_node(list(operands), float(value) if np.ndim(value) == 0 else value,
                     reverse, forward, einsum_value,
                     (_einsum_of, (subscripts,) + operand_slots(len(operands)), {}))


def _einsum_of(subscripts, *operands):
    """einsum(subscripts, operands): a recipe's builder (see fasttape._arrays.pyfunc)."""
    return einsum(subscripts, operands)


def _is_variable(x):
    return type(x) is Variable or type(x) is ArrayVariable


# the rules' operations: recorded for Variables (a derivative differentiated again),
# NumPy's for numbers (as fasttape.numpy's functions do)

def _einsum(spec, *operands):
    if any(_is_variable(x) for x in operands):
        return einsum(spec, operands)
    return np.einsum(spec, *operands)


def _reshape(x, shape):
    return _arrays.reshape(x, shape) if _is_variable(x) else np.reshape(x, shape)


def _broadcast_to(x, shape):
    return _arrays.broadcast_to(x, shape) if _is_variable(x) else \
        np.broadcast_to(x, shape)


def _arrays_value(x):
    if hasattr(x, "tape"):
        return np.asarray(x.value, dtype=np.float64)
    return np.asarray(x, dtype=np.float64)
