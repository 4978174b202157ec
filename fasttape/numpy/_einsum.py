"""einsum of Variables: one tape node whose reverse step is an einsum per operand.

Ellipses and implicit outputs are spelled out in letters first; a repeated index within
one operand (a diagonal) is taken by a gather before the node, and operands broadcast
along an ellipsis are broadcast first, so that the node's rules see distinct indices
of one length each.

Below fasttape.numpy (whose einsum calls this one for Variables), so its rules call
this module's einsum and _arrays' reshape and broadcast_to directly.
"""
import numpy as np

from fasttape import _arrays
from fasttape._arrays import ArrayVariable
from fasttape._rule_nodes import operand_slots, rule_node
from fasttape._variable import Variable


_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def from_sublists(args):
    """einsum(op0, sublist0, op1, sublist1, ..., [sublist_out]), NumPy's interleaved
    form, as (subscripts, operands): integers become letters, Ellipsis '...'."""
    args = list(args)
    output = args.pop() if len(args) % 2 else None
    operands, sublists = args[0::2], args[1::2]

    def term(sublist):
        return "".join("..." if k is Ellipsis else _LETTERS[k] for k in sublist)
    subscripts = ",".join(term(s) for s in sublists)
    if output is not None:
        subscripts += "->" + term(output)
    return subscripts, operands


def _parse(subscripts, shapes):
    """(input terms, output term) in letters only: each '...' replaced by letters of
    its own (the ellipsis dimensions, aligned on the right across operands as NumPy
    broadcasts them), and an implicit output made explicit."""
    subscripts = subscripts.replace(" ", "")
    inputs, arrow, output = subscripts.partition("->")
    inputs = inputs.split(",")
    if len(inputs) != len(shapes):
        raise ValueError(f"einsum: {len(inputs)} subscripts for {len(shapes)} operands")
    used = set(subscripts) - set(",->.")
    spare = [c for c in _LETTERS if c not in used]
    n_ellipsis = 0
    for term, shape in zip(inputs, shapes):
        if "..." in term:
            n_ellipsis = max(n_ellipsis, len(shape) - (len(term) - 3))
    if n_ellipsis > len(spare):
        raise ValueError("einsum: too many dimensions")
    ellipsis = "".join(spare[:n_ellipsis])
    terms = []
    for term, shape in zip(inputs, shapes):
        if "..." in term:
            k = len(shape) - (len(term) - 3)
            term = term.replace("...", ellipsis[n_ellipsis - k:] if k else "")
        if "." in term or len(term) != len(shape):
            raise ValueError(f"einsum: subscripts '{term}' do not match an operand of "
                             f"shape {shape}")
        terms.append(term)
    if arrow:
        if n_ellipsis and "..." not in output:
            raise ValueError("einsum: output has more dimensions than subscripts "
                             "given, but no '...' ellipsis provided to broadcast the "
                             "extra dimensions")
        output = output.replace("...", ellipsis)
    else:
        letters = "".join(terms)
        output = ellipsis + "".join(sorted(c for c in set(letters) if
                                           letters.count(c) == 1 and c not in ellipsis))
    return terms, output


def _distinct_indices(term, x):
    """(term without repeated indices, x reduced to match): a repeated index within one
    operand means its diagonal, taken first (a gather for a Variable)."""
    distinct = "".join(dict.fromkeys(term))
    if distinct == term:
        return term, x
    spec = f"{term}->{distinct}"
    if _is_variable(x):
        if type(x) is Variable:
            return distinct, x
        return distinct, _arrays.gather(x, np.einsum(spec, _arrays.positions(x)))
    return distinct, np.einsum(spec, np.asarray(x, dtype=np.float64))


def _broadcast_operands(terms, operands):
    """Operands whose dimensions of length 1 meet longer ones under the same index
    (ellipsis broadcasting) are broadcast first, so that every index has one length."""
    lengths = {}
    for term, x in zip(terms, operands):
        for c, n in zip(term, np.shape(_arrays_value(x))):
            if n != 1:                  # (a length 0 broadcasts as any other)
                lengths[c] = n
            lengths.setdefault(c, 1)
    out = []
    for term, x in zip(terms, operands):
        shape = np.shape(_arrays_value(x))
        full = tuple(lengths[c] for c in term)
        out.append(x if shape == full else _broadcast_to(x, full))
    return out


def einsum(subscripts, operands, **kwargs):
    if kwargs:
        raise TypeError(f"einsum of Variables takes no keyword arguments, got "
                        f"{sorted(kwargs)}")
    # NumPy's value, and its errors for operands that do not match the subscripts
    value = np.einsum(subscripts, *[_arrays_value(x) for x in operands])
    inputs, output = _parse(subscripts, [np.shape(_arrays_value(x)) for x in operands])
    inputs, operands = zip(*[_distinct_indices(t, x) for t, x in zip(inputs, operands)])
    inputs, operands = list(inputs), _broadcast_operands(inputs, operands)
    values = [_arrays_value(x) for x in operands]

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
        total = None
        spec = f"{','.join(inputs)}->{output}"
        for i, t in enumerate(tangents):
            if t is not None:
                args = list(xs)
                args[i] = t
                term = _einsum(spec, *args)
                total = term if total is None else total + term
        return np.zeros(np.shape(ans)) if total is None else total

    spec = f"{','.join(inputs)}->{output}"

    def einsum_value(*xs):
        return np.einsum(spec, *xs)

    return rule_node(list(operands), float(value) if np.ndim(value) == 0 else value,
                     reverse, forward, einsum_value,
                     (_einsum_of, (spec,) + operand_slots(len(operands)), {}))


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
