"""Differential operators, in autograd's and JAX's spellings.

Every operator records the function once at the given arguments and then sweeps the
tape: in reverse (grad, vjp, jacrev: one sweep per output element), or forward (jvp,
jacfwd: one tangent sweep per input direction). Three places to record:

- a pooled per-thread tape, reset when the operator returns (grad and friends);
- a tape of its own, kept alive by the returned function (vjp, make_vjp, make_jvp);
- when the arguments are Variables of an enclosing computation (grad of grad, hessian,
  jvp of grad), the enclosing tape itself: the derivative is then computed by a sweep
  that records its own operations (_recording_sweeps), so it can be differentiated
  again, to any order.
"""
import functools
import numbers
import warnings

import numpy as np

import fasttape.numpy as fnp
from fasttape._arrays import (ArrayVariable, holds_variables, input_spec,
                              leaf_gradients, make_array_leaf, output_refs,
                              sweep_gradients, tangents_of)
from fasttape._containers import (LEAF_STRUCTURE, Structure, flatten, joined,
                                 split_like)
from fasttape._recording_sweeps import reverse_recording, tangent_recording
from fasttape._references import find_global, load_global, reduce_by_reference
from fasttape._rule_nodes import rule_node
from fasttape._tape import Tape, pop_active, push_active
from fasttape._tape_pools import acquire_tape, active_tape, release_tape
from fasttape._tape_state import OperandSlot
from fasttape._variable import (Variable, make_leaf, make_leaves,
                                scalar_value_and_grad)
from fasttape.errors import TapeMismatchError

_VARIABLE_TYPES = (Variable, ArrayVariable)


# -- gradients ------------------------------------------------------------------------

def value_and_grad(fun, argnum=0):
    """Return a function computing ``(fun(*args), gradient)`` in one pass.

    Parameters
    ----------
    fun : callable
        Returns a scalar: a float, a Variable computed from its arguments, or a
        one-element array.
    argnum : int or tuple of int
        Which positional argument to differentiate; a tuple gives a tuple of
        gradients. An argument may be a number, an array, or a (nested) tuple, list or
        dict of them; its gradient has the same structure, with float entries and
        float64 arrays of the same shapes.

    Returns
    -------
    callable
        ``value_and_grad(fun)(*args, **kwargs) -> (value, gradient)``
    """
    argnums, single = _normalized(argnum)

    @functools.wraps(fun)
    def value_and_grad_fun(*args, **kwargs):
        result = scalar_value_and_grad(fun, argnums, single, args, kwargs)
        if result is NotImplemented:
            result = _value_and_grad(fun, argnum, args, kwargs, False)
        return result
    return value_and_grad_fun


def grad(fun, argnum=0):
    """Return a function computing the gradient of ``fun`` by reverse mode.

    ``grad(f)(x)`` is df/dx at x; see ``value_and_grad`` for the parameters. Integer
    inputs are differentiated as floats. A function whose result does not depend on
    its inputs has a zero gradient (with a warning, as autograd). Applied to
    Variables (inside another differentiation), the gradient is itself recorded and
    can be differentiated again: ``grad(grad(f))``.

    Examples
    --------
    >>> from fasttape import grad, sin
    >>> grad(lambda x, y: x * y + sin(x), argnum=(0, 1))(2.0, 3.0)
    (2.5838531634528574, 2.0)
    """
    argnums, single = _normalized(argnum)

    @functools.wraps(fun)
    def grad_fun(*args, **kwargs):
        result = scalar_value_and_grad(fun, argnums, single, args, kwargs)
        if result is NotImplemented:
            result = _array_value_and_grad(fun, argnum, args, kwargs)
        if result is NotImplemented:
            result = _value_and_grad(fun, argnum, args, kwargs, False)
        return result[1]
    return grad_fun


def _array_value_and_grad(fun, argnum, args, kwargs):
    """The fast path for one float64 array argument, outside other differentiations:
    no structure handling. NotImplemented (having run nothing) when it does not apply."""
    if type(argnum) is not int or not -len(args) <= argnum < len(args):
        return NotImplemented
    x = args[argnum]
    if type(x) is not np.ndarray or x.dtype != np.float64 or active_tape() is not None:
        return NotImplemented
    tape = acquire_tape()
    try:
        leaf = make_array_leaf(tape, x)
        call_args = list(args)
        call_args[argnum] = leaf
        out = fun(*call_args, **kwargs)
        if type(out) is not Variable and not (type(out) is ArrayVariable and
                                              out.size == 1):
            value = _finish_output(fun, out, tape, [leaf], True)
            return value
        value, flat = sweep_gradients(tape, out, [leaf])
        return value if type(value) is float else float(np.reshape(value, ())), flat[0]
    finally:
        release_tape(tape)


def _normalized(argnum):
    """(argnums tuple, single) for the fast path; an invalid argnum gives None, so
    that the general path reports it."""
    if type(argnum) is int:
        return (argnum,), True
    if isinstance(argnum, (tuple, list)) and all(type(i) is int for i in argnum):
        return tuple(argnum), False
    return None, False


def _finish_output(fun, out, tape, leaves, single):
    """The fast path's ending for an output that is not a Variable of its tape: an
    array, a constant, or an error (as the general path)."""
    if type(out) is ArrayVariable or type(out) is Variable:
        if type(out) is ArrayVariable and out.size != 1:
            _raise_not_scalar(fun, out)
        value, flat = sweep_gradients(tape, out, leaves)
        value = float(np.reshape(value, ()))
    else:
        value = _constant_output(fun, out, True)
        flat = [0.0] * len(leaves)
    return value, (flat[0] if single else tuple(flat))


def elementwise_grad(fun, argnum=0):
    """Return a function computing the sum over the outputs of their gradients: the
    vector-Jacobian product with a vector of ones. For a function that acts
    elementwise this is the derivative of each output element at its input element."""
    @functools.wraps(fun)
    def elementwise_grad_fun(*args, **kwargs):
        return _value_and_grad(fun, argnum, args, kwargs, True)[1]
    return elementwise_grad_fun


def _value_and_grad(fun, argnum, args, kwargs, ones_seed):
    argnums = _argnums(fun, argnum, args)
    if _enclosing_tape(args, argnums) is not None or active_tape() is not None:
        rec = _Recording(fun, argnum, args, kwargs)
        if not ones_seed:
            rec.require_scalar_output()
        return rec.out, rec.vjp(_ones_like(rec.out))
    tape = acquire_tape()
    try:
        call_args, structures, leaves = _record_inputs(tape, argnums, args)
        out = fun(*call_args, **kwargs)
        if type(out) is Variable or type(out) is ArrayVariable:
            if not ones_seed and type(out) is ArrayVariable and out.size != 1:
                _raise_not_scalar(fun, out)
            value, flat_grads = sweep_gradients(
                tape, out, leaves, np.ones(out.size) if ones_seed and
                type(out) is ArrayVariable else None)
            if not ones_seed and type(value) is not float:
                value = float(value.reshape(()))
        else:
            value = _constant_output(fun, out, not ones_seed)
            flat_grads = [0.0 if type(leaf) is Variable else np.zeros(leaf.shape)
                          for leaf in leaves]
    finally:
        release_tape(tape)
    return value, _rebuild(argnum, structures, flat_grads)


# -- vector-Jacobian and Jacobian-vector products --------------------------------------

def make_vjp(fun, argnum=0):
    """autograd's ``make_vjp(fun, argnum)(*args) -> (vjp, value)``: the function is
    recorded once; ``vjp(cotangent)`` sweeps it in reverse and returns the gradient
    with respect to argument ``argnum`` of ``<cotangent, fun>``."""
    def vjp_maker(*args, **kwargs):
        rec = _Recording(fun, argnum, args, kwargs)
        return rec.vjp, rec.out_value()
    return vjp_maker


def vjp(fun, *primals):
    """JAX's ``vjp(fun, *primals) -> (value, vjp_fun)``: ``vjp_fun(cotangent)`` returns
    a tuple with the cotangent of each primal."""
    rec = _Recording(fun, tuple(range(len(primals))), primals, {})
    return rec.out_value(), rec.vjp


def make_jvp(fun, argnum=0):
    """autograd's ``make_jvp(fun, argnum)(*args)(tangent) -> (value, jvp)``: the
    function is recorded once; each call with a tangent (of argument ``argnum``'s
    structure) runs one forward (tangent) sweep."""
    def jvp_maker(*args, **kwargs):
        rec = _Recording(fun, argnum, args, kwargs)

        def jvp_fun(tangent):
            return rec.out_value(), rec.jvp(tangent)
        return jvp_fun
    return jvp_maker


def jvp(fun, primals, tangents):
    """JAX's ``jvp(fun, primals, tangents) -> (value, tangent_out)``: forward mode, one
    tangent sweep. ``primals`` and ``tangents`` are tuples of the same structure."""
    primals = tuple(primals)
    tangents = tuple(tangents)
    if len(primals) != len(tangents):
        raise ValueError(f"jvp: {len(primals)} primals but {len(tangents)} tangents")
    rec = _Recording(fun, tuple(range(len(primals))), primals, {})
    return rec.out_value(), rec.jvp(tangents)


# -- Jacobians and Hessians ---------------------------------------------------------------

def jacrev(fun, argnum=0):
    """Jacobian by reverse mode: one reverse sweep per output element. Shape
    ``out.shape + x.shape`` (``J[i..., j...] = d out[i...] / d x[j...]``)."""
    @functools.wraps(fun)
    def jacrev_fun(*args, **kwargs):
        return _Recording(fun, _single(argnum), args, kwargs).jacobian("rev")
    return jacrev_fun


def jacfwd(fun, argnum=0):
    """Jacobian by forward mode: one tangent sweep per input element."""
    @functools.wraps(fun)
    def jacfwd_fun(*args, **kwargs):
        return _Recording(fun, _single(argnum), args, kwargs).jacobian("fwd")
    return jacfwd_fun


def jacobian(fun, argnum=0):
    """Return a function computing the Jacobian of ``fun`` with respect to argument
    ``argnum`` (a number or an array): shape ``out.shape + x.shape``.

    The function is recorded once, then swept forward once per input element or in
    reverse once per output element, whichever is fewer.
    """
    @functools.wraps(fun)
    def jacobian_fun(*args, **kwargs):
        return _Recording(fun, _single(argnum), args, kwargs).jacobian("auto")
    return jacobian_fun


def hessian(fun, argnum=0):
    """Return a function computing the Hessian of a scalar ``fun``: shape
    ``x.shape + x.shape``.

    The Hessian is assembled from forward-over-reverse sweeps in C, one per input
    element, over a tape recorded once (scalar and array operations). Otherwise
    (operations with Python rules: linalg, einsum, custom primitives, checkpoint;
    several array arguments; or inside another differentiation) the gradient is
    recorded (its own reverse sweep lands on the tape) and swept forward once per input
    element.
    """
    general = jacfwd(grad(fun, argnum), argnum)

    @functools.wraps(fun)
    def hessian_fun(*args, **kwargs):
        x = args[_single(argnum)]
        if not kwargs and not holds_variables(x) and active_tape() is None:
            flat, structure = flatten(x)
            if isinstance(x, np.ndarray):              # one array
                units = list(np.eye(x.size).reshape((x.size,) + x.shape))
            elif not any(isinstance(v, np.ndarray) for v in flat):   # numbers
                units = [structure.rebuild(list(row)) for row in np.eye(len(flat))]
            else:                                      # several arrays: general path
                units = None
            columns = None if units is None else \
                _fast_hessian_vectors(fun, argnum, args, units)
            if columns is not None:
                return np.stack([np.asarray(c, dtype=float).reshape(-1)
                                 for c in columns], axis=-1).reshape(
                                     np.shape(x) + np.shape(x))
        return general(*args, **kwargs)
    return hessian_fun


def hessian_vector_product(fun, argnum=0):
    """Return ``hvp(*args, vector)``: the Hessian of ``fun`` with respect to argument
    ``argnum`` times ``vector`` (of that argument's structure), without forming the
    Hessian.

    A forward-over-reverse pass in C records nothing beyond the function itself;
    functions with Python-rule operations (linalg, einsum, custom primitives,
    checkpoint), and calls inside another differentiation, take one forward sweep over
    the recorded gradient instead.
    """
    def hvp_fun(*args):
        *primals, vector = args
        primals = tuple(primals)
        fast = _fast_hessian_vectors(fun, argnum, primals, [vector])
        if fast is not None:
            return fast[0]
        rec = _Recording(grad(fun, argnum), argnum, primals, {})
        return rec.jvp(vector)
    return hvp_fun


def _fast_hessian_vectors(fun, argnum, args, directions):
    """Hessian times each direction by the C forward-over-reverse sweep, or None when
    it does not apply (nested call, non-scalar output, operations with Python rules)."""
    argnums = _argnums(fun, argnum, args)
    if type(argnum) is not int or active_tape() is not None or \
            _enclosing_tape(args, argnums) is not None:
        return None
    tape = acquire_tape()
    try:
        call_args, structures, leaves = _record_inputs(tape, argnums, args)
        out = fun(*call_args)
        if type(out) is not Variable or out.tape is not tape:
            return None
        results = []
        if not tape.n_array_nodes:
            slots = [leaf.slot for leaf in leaves]
            for direction in directions:
                flat, _ = flatten(direction)
                flat = [float(v) for v in flat]
                if len(flat) != len(slots):
                    raise ValueError("the vector does not have the structure of the "
                                     "input")
                _, hv = tape.hessian_vector_c(out.node, slots, flat)
                results.append(structures[0].rebuild(hv))
            return results
        if tape.has_python_rules():
            return None
        spec = input_spec(leaves)
        shapes = [leaf.shape if type(leaf) is ArrayVariable else () for leaf in leaves]
        for direction in directions:
            flat, _ = flatten(direction)
            if len(flat) != len(leaves) or any(np.shape(v) != shape
                                               for v, shape in zip(flat, shapes)):
                raise ValueError("the vector does not have the structure of the input")
            _, hv = tape.hessian_vector_arrays(out.node, spec, joined(flat))
            results.append(structures[0].rebuild(split_like(hv, leaves)))
        return results
    finally:
        release_tape(tape)


hvp = hessian_vector_product


# -- the recording all operators share --------------------------------------------------

class _Recording:
    """``fun`` recorded once at ``args``, with ``argnum`` marking the inputs."""

    def __init__(self, fun, argnum, args, kwargs, pooled=False):
        self.fun = fun
        self.argnum = argnum
        argnums = _argnums(fun, argnum, args)
        enclosing = _enclosing_tape(args, argnums)
        if enclosing is None and not pooled:
            # inside another differentiation (even with plain-number arguments, fun
            # may close over its Variables): record on that tape, as a nested one
            enclosing = active_tape()
        self.nested = enclosing is not None
        self.pooled = pooled and not self.nested
        if self.nested:
            self.tape = enclosing
        elif self.pooled:             # borrowed from the thread's pool: release() it
            self.tape = acquire_tape()
            pop_active(self.tape)
        else:                         # kept alive by whoever holds this recording
            self.tape = Tape()
        push_active(self.tape)
        try:
            if self.nested:
                call_args, self.structures, self.leaves = _copy_inputs(
                    self.tape, argnums, args)
            else:
                call_args, self.structures, self.leaves = _record_inputs(
                    self.tape, argnums, args)
            self.out = fun(*call_args, **kwargs)
        finally:
            pop_active(self.tape)
        self.out_flat, self.out_structure = flatten(self.out, variables=True)
        self.out_variables = [i for i, o in enumerate(self.out_flat)
                              if type(o) in _VARIABLE_TYPES and o.tape is self.tape]

    def release(self):
        """Give a pooled tape back (its Variables become stale)."""
        if self.pooled:
            release_tape(self.tape)
            self.pooled = False

    def require_scalar_output(self):
        o = self.out
        if type(o) is ArrayVariable and o.size == 1 or type(o) is Variable:
            return
        if isinstance(o, numbers.Real) or isinstance(o, np.ndarray) and o.size == 1:
            return
        if type(o) is ArrayVariable:
            _raise_not_scalar(self.fun, o)
        _constant_output(self.fun, o, True)

    def out_value(self):
        """The output with plain values (Variables of an enclosing tape stay)."""
        if self.nested:
            return self.out
        return self.out_structure.rebuild([
            o.value if type(o) in _VARIABLE_TYPES else o for o in self.out_flat])

    def vjp(self, cotangent):
        """Gradient of <cotangent, out> with respect to the inputs."""
        seeds, _ = flatten(cotangent, variables=True)
        if len(seeds) != len(self.out_flat):
            raise ValueError("the cotangent does not have the structure of the output")
        outputs = [self.out_flat[i] for i in self.out_variables]
        seeds = [seeds[i] for i in self.out_variables]
        for o, s in zip(outputs, seeds):
            if np.shape(s.value if type(s) in _VARIABLE_TYPES else s) != _shape(o):
                raise ValueError(f"cotangent of shape {np.shape(s)} for an output of "
                                 f"shape {_shape(o)}")
        if self.nested:
            flat = reverse_recording(self.tape, outputs, seeds, self.leaves) \
                if outputs else [_zeros_of(x) for x in self.leaves]
        elif outputs:
            slots, anodes = output_refs(outputs)
            self.tape.seed_and_sweep(slots, anodes, seeds)
            flat = leaf_gradients(self.tape, self.leaves)
        else:
            flat = [_zeros_of(x) for x in self.leaves]
        return _rebuild(self.argnum, self.structures, flat)

    def jvp(self, tangent):
        """Directional derivative of the output along `tangent` (the inputs' structure)."""
        if type(self.argnum) is int:
            flat, _ = flatten(tangent)
        else:
            flat = []
            for t in tangent:
                flat.extend(flatten(t)[0])
        if len(flat) != len(self.leaves):
            raise ValueError("the tangent does not have the structure of the inputs")
        if self.nested:
            flat = [t for t in flat]
        else:
            flat = [t.value if type(t) in _VARIABLE_TYPES else t for t in flat]
        outputs = [self.out_flat[i] for i in self.out_variables]
        if not outputs:
            result = []
        elif self.nested:
            result = tangent_recording(self.tape, self.leaves, flat, outputs)
        else:
            result = tangents_of(self.tape, self.leaves, flat, outputs)
        out = [np.zeros(np.shape(o)) if np.ndim(o) else 0.0 for o in self.out_flat]
        for i, t in zip(self.out_variables, result):
            out[i] = t
        return self.out_structure.rebuild(out)

    def jacobian(self, mode):
        """Jacobian of the output(s) with respect to the input(s) argnum. For one array
        (or number) out and in: shape out.shape + x.shape; when either side is a
        container, its numbers are laid out flat."""
        out_shapes = [_shape(o) for o in self.out_flat]
        x_shapes = [_shape(x) for x in self.leaves]
        single = len(self.out_flat) == 1 and len(self.leaves) == 1 and \
            self.out_structure is LEAF_STRUCTURE and self.structures[0] is LEAF_STRUCTURE
        n_out = sum(int(np.prod(s)) for s in out_shapes)
        n_in = sum(int(np.prod(s)) for s in x_shapes)
        shape = out_shapes[0] + x_shapes[0] if single else (n_out, n_in)
        if not self.out_variables:
            return np.zeros(shape)
        if self.nested or mode == "rev" or mode == "auto" and n_out <= n_in:
            rows = []
            for i in range(n_out):
                row = self.vjp(self.out_structure.rebuild(_unit(i, out_shapes)))
                rows.append(_flat_row(row, self.nested))
            if self.nested:
                return fnp.reshape(fnp.stack(rows), shape)
            return np.asarray(rows, dtype=float).reshape(shape)
        columns = []
        for j in range(n_in):
            unit = _unit(j, x_shapes)
            tangent = self.structures[0].rebuild(unit) if type(self.argnum) is int \
                else unit
            columns.append(np.asarray(_flat_row(self.jvp(tangent), False), dtype=float))
        return np.stack(columns, axis=-1).reshape(shape)


def _unit(i, shapes):
    """The i-th unit vector of the flat layout of `shapes`, as one entry per shape."""
    out = []
    start = 0
    for s in shapes:
        n = int(np.prod(s))
        block = np.zeros(n)
        if start <= i < start + n:
            block[i - start] = 1.0
        out.append(block.reshape(s) if s else float(block[0]))
        start += n
    return out


def _flat_row(x, recorded):
    """The numbers of a (structured) derivative, flat: an array, or a recorded 1-d
    array when they are Variables."""
    flat, _ = flatten(x, variables=True)
    if recorded and any(type(v) in _VARIABLE_TYPES for v in flat):
        parts = [fnp.reshape(v, (-1,)) if type(v) is ArrayVariable else
                 fnp.reshape(v, (1,)) if type(v) is Variable else
                 np.ravel(np.asarray(v, dtype=float)) for v in flat]
        return parts[0] if len(parts) == 1 else fnp.concatenate(parts)
    return np.concatenate([np.ravel(np.asarray(_value_of(v), dtype=float))
                           for v in flat]) if flat else np.zeros(0)


# -- inputs and outputs -------------------------------------------------------------------

def _argnums(fun, argnum, args):
    if type(argnum) is int:
        argnums = (argnum,)
    elif isinstance(argnum, (tuple, list)):
        argnums = tuple(argnum)
    else:
        raise TypeError(f"argnum must be an int or a tuple of ints, not {argnum!r}")
    n_args = len(args)
    for i in argnums:
        if type(i) is not int or not -n_args <= i < n_args:
            raise TypeError(f"argnum {i!r} does not name one of the {n_args} positional "
                            f"arguments of {getattr(fun, '__name__', fun)!r}")
    return argnums


def _single(argnum):
    if type(argnum) is not int:
        raise TypeError("a Jacobian is taken with respect to one argument (an int argnum)")
    return argnum


def _enclosing_tape(args, argnums):
    """The tape of the Variables among the differentiated arguments, if any."""
    tape = None
    for i in argnums:
        x = args[i]
        if type(x) is float or type(x) is int or not holds_variables(x):
            continue
        for v in flatten(x, variables=True)[0]:
            if type(v) in _VARIABLE_TYPES:
                if tape is None:
                    tape = v.tape
                elif v.tape is not tape:
                    raise TapeMismatchError("the arguments hold Variables of two tapes")
    return tape


def _record_inputs(tape, argnums, args):
    """Leaves on `tape` for the differentiated arguments: (call arguments,
    structures, flat leaves)."""
    call_args = list(args)
    structures = []
    leaves = []
    for i in argnums:
        x = args[i]
        if type(x) is float:
            # the fast paths: a number, or a flat list or tuple of numbers
            arg_leaves = [make_leaf(tape, x)]
            structure = LEAF_STRUCTURE
        elif (type(x) is list or type(x) is tuple) and (
                arg_leaves := make_leaves(tape, x)) is not None:
            structure = Structure.flat(type(x), len(x))
        else:
            flat, structure = flatten(x)
            arg_leaves = [make_array_leaf(tape, v) if isinstance(v, np.ndarray)
                          else make_leaf(tape, float(v)) for v in flat]
        call_args[i] = structure.rebuild(arg_leaves)
        structures.append(structure)
        leaves.extend(arg_leaves)
    return call_args, structures, leaves


def _copy_inputs(tape, argnums, args):
    """For differentiation inside another: fresh nodes on the enclosing tape that equal
    the arguments (and pass derivatives on to them), so that the inner sweep can stop
    at them."""
    call_args = list(args)
    structures = []
    leaves = []
    for i in argnums:
        flat, structure = flatten(args[i], variables=True)
        copies = []
        for v in flat:
            if type(v) is Variable:
                copies.append(v + 0.0)
            elif type(v) is ArrayVariable:
                copies.append(fnp.reshape(v, v.shape))
            elif isinstance(v, np.ndarray):
                copies.append(make_array_leaf(tape, v))
            else:
                copies.append(make_leaf(tape, float(v)))
        call_args[i] = structure.rebuild(copies)
        structures.append(structure)
        leaves.extend(copies)
    return call_args, structures, leaves


def _rebuild(argnum, structures, flat_grads):
    if type(argnum) is int:
        return structures[0].rebuild(flat_grads)
    grads = []
    start = 0
    for structure in structures:
        grads.append(structure.rebuild(flat_grads[start:start + structure.n_leaves]))
        start += structure.n_leaves
    return tuple(grads)


def _shape(x):
    if type(x) is Variable:
        return ()
    if type(x) is ArrayVariable:
        return x.shape
    return np.shape(x)


def _zeros_of(x):
    return 0.0 if type(x) is Variable else np.zeros(_shape(x))


def _ones_like(out):
    if type(out) is ArrayVariable:
        return np.ones(out.shape)
    if isinstance(out, np.ndarray):
        return np.ones(out.shape)
    return 1.0


def _raise_not_scalar(fun, out):
    name = getattr(fun, "__name__", repr(fun))
    raise TypeError(
        f"grad requires {name} to return a scalar; it returned an array of shape "
        f"{out.shape}. Use elementwise_grad or jacobian, or reduce it (e.g. .sum()).")


def _constant_output(fun, out, scalar_required):
    """The value of an output that is not a Variable, or a TypeError saying why not."""
    name = getattr(fun, "__name__", repr(fun))
    if isinstance(out, np.ndarray) and out.shape == ():
        out = out[()]
        if type(out) is Variable:
            raise TypeError(f"{name} returned a 0-d array holding a Variable; return "
                            f"the Variable itself")
    if isinstance(out, numbers.Real) or not scalar_required and isinstance(out, np.ndarray):
        warnings.warn(f"Output of {name} seems independent of its input: "
                      f"the gradient is zero", stacklevel=4)
        return float(out) if isinstance(out, numbers.Real) else out
    if isinstance(out, (list, tuple, dict, np.ndarray)):
        size = len(out) if not isinstance(out, np.ndarray) else out.shape
        raise TypeError(
            f"grad requires {name} to return a scalar; it returned a "
            f"{type(out).__name__} of {'shape' if isinstance(out, np.ndarray) else 'length'} "
            f"{size}. Differentiate one output at a time (or sum them).")
    raise TypeError(f"grad requires {name} to return a real scalar (a float or a "
                    f"Variable); it returned {type(out).__name__}")


# -- checkpointing -------------------------------------------------------------------------

def checkpoint(fun):
    """Return ``fun`` rematerialised: called on Variables, it records ONE node instead
    of every operation inside; the reverse (or tangent) sweep re-runs ``fun`` on a
    temporary tape when it reaches that node. Trades time (``fun`` runs twice) for
    memory (its intermediates are never kept), as ``jax.checkpoint``.

    ``fun`` takes numbers, arrays or Variables as positional arguments and returns one
    number or array.
    """
    return Checkpointed(fun)


class Checkpointed:
    """A function checkpointed by ``checkpoint``; pickles by reference (to ``fun``
    where a module binds it, else to itself, as with ``@checkpoint``)."""

    def __init__(self, fun):
        functools.update_wrapper(self, fun)
        self.fun = fun

    def __call__(self, *args):
        fun = self.fun
        variables = [a for a in args if type(a) in _VARIABLE_TYPES]
        if not variables:
            return fun(*args)
        positions = [i for i, a in enumerate(args) if type(a) in _VARIABLE_TYPES]
        plain = [a.value if type(a) in _VARIABLE_TYPES else a for a in args]
        value = fun(*plain)
        if isinstance(value, (tuple, list, dict)):
            raise TypeError("checkpoint: the function must return one number or array")
        value = float(value) if np.ndim(value) == 0 else np.asarray(value, dtype=float)

        def call(*operands):
            full = list(plain)
            for i, o in zip(positions, operands):
                full[i] = o
            return fun(*full)

        argnums = tuple(range(len(variables)))

        def reverse(g, ans, *operands):
            rec = _Recording(call, argnums, operands, {}, pooled=True)
            try:
                return list(rec.vjp(g))
            finally:
                rec.release()

        def forward(tangents, ans, *operands):
            zeros = [np.zeros_like(np.asarray(_value_of(o), dtype=float)) if t is None
                     else t for t, o in zip(tangents, operands)]
            rec = _Recording(call, argnums, operands, {}, pooled=True)
            try:
                return rec.jvp(tuple(zeros))
            finally:
                rec.release()

        call.__name__ = f"checkpoint({getattr(fun, '__name__', 'a function')})"
        slots = dict(zip(positions, range(len(positions))))
        recipe = (self, tuple(OperandSlot(slots[i]) if i in slots else a
                              for i, a in enumerate(args)), {})
        return rule_node(variables, value, reverse, forward, call, recipe)

    def __reduce__(self):
        found = find_global(self.fun)
        if found is not None:
            return _checkpoint_of_global, found
        return reduce_by_reference(self, f"the checkpointed function "
                                         f"{getattr(self.fun, '__name__', '')}")

    def __repr__(self):
        return f"<fasttape checkpoint of {self.fun!r}>"


def _checkpoint_of_global(module, name):
    """checkpoint(module.name): how a pickled checkpointed function loads."""
    return checkpoint(load_global(module, name))


def _value_of(x):
    return x.value if type(x) in _VARIABLE_TYPES else x
