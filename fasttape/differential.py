"""Differential operators: grad, value_and_grad, elementwise_grad, jacobian
(autograd's spelling).

Each call records the function once on a tape from this thread's pool, sweeps it in
reverse (once per output element for jacobian), reads the gradients and resets the
tape for the next call.
"""
import functools
import numbers
import warnings

import numpy as np

from fasttape._arrays import ArrayVariable, make_array_leaf, sweep_gradients
from fasttape._containers import LEAF_STRUCTURE, Structure, flatten
from fasttape._tape import acquire_tape, release_tape
from fasttape._variable import Variable, make_leaf, make_leaves


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
    @functools.wraps(fun)
    def value_and_grad_fun(*args, **kwargs):
        return _value_and_grad(fun, argnum, args, kwargs, None)
    return value_and_grad_fun


def grad(fun, argnum=0):
    """Return a function computing the gradient of ``fun`` by reverse mode.

    ``grad(f)(x)`` is df/dx at x; see ``value_and_grad`` for the parameters. Integer
    inputs are differentiated as floats. A function whose result does not depend on
    its inputs has a zero gradient (with a warning, as autograd).

    Examples
    --------
    >>> from fasttape import grad, sin
    >>> grad(lambda x, y: x * y + sin(x), argnum=(0, 1))(2.0, 3.0)
    (2.5838531634528574, 2.0)
    """
    @functools.wraps(fun)
    def grad_fun(*args, **kwargs):
        return _value_and_grad(fun, argnum, args, kwargs, None)[1]
    return grad_fun


def elementwise_grad(fun, argnum=0):
    """Return a function computing the sum over the outputs of their gradients: the
    vector-Jacobian product with a vector of ones. For a function that acts
    elementwise this is the derivative of each output element at its input element."""
    @functools.wraps(fun)
    def elementwise_grad_fun(*args, **kwargs):
        return _value_and_grad(fun, argnum, args, kwargs, "ones")[1]
    return elementwise_grad_fun


def jacobian(fun, argnum=0):
    """Return a function computing the Jacobian of ``fun``: an array of shape
    ``out.shape + x.shape`` with ``J[i..., j...] = d out[i...] / d x[j...]``.

    The function is recorded once and swept in reverse once per output element.
    """
    @functools.wraps(fun)
    def jacobian_fun(*args, **kwargs):
        if type(argnum) is not int:
            raise TypeError("jacobian takes a single argnum")
        tape = acquire_tape()
        try:
            call_args, structures, leaves = _record_inputs(tape, fun, argnum, args)
            if structures[0] is not LEAF_STRUCTURE:
                raise TypeError("jacobian differentiates with respect to one number or "
                                "array, not a container")
            out = fun(*call_args, **kwargs)
            x_shape = np.shape(args[argnum])
            if type(out) is Variable:
                return np.asarray(sweep_gradients(tape, out, leaves)[1][0]).reshape(x_shape)
            if type(out) is not ArrayVariable:
                return np.zeros(np.shape(out) + x_shape)
            rows = np.empty((out.size,) + x_shape)
            seed = np.zeros(out.size)
            for i in range(out.size):
                seed[i] = 1.0
                rows[i] = sweep_gradients(tape, out, leaves, seed)[1][0]
                seed[i] = 0.0
            return rows.reshape(out.shape + x_shape)
        finally:
            release_tape(tape)
    return jacobian_fun


def _record_inputs(tape, fun, argnum, args):
    """Leaves on `tape` for the differentiated arguments: (call arguments,
    structures, flat leaves)."""
    single = type(argnum) is int
    if not single and not isinstance(argnum, (tuple, list)):
        raise TypeError(f"argnum must be an int or a tuple of ints, not {argnum!r}")
    argnums = (argnum,) if single else tuple(argnum)
    n_args = len(args)
    for i in argnums:
        if type(i) is not int or not -n_args <= i < n_args:
            raise TypeError(f"argnum {i!r} does not name one of the {n_args} positional "
                            f"arguments of {getattr(fun, '__name__', fun)!r}")
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


def _value_and_grad(fun, argnum, args, kwargs, seed):
    tape = acquire_tape()
    try:
        call_args, structures, leaves = _record_inputs(tape, fun, argnum, args)
        out = fun(*call_args, **kwargs)
        if type(out) is Variable or type(out) is ArrayVariable:
            if seed is None and type(out) is ArrayVariable and out.size != 1:
                _raise_not_scalar(fun, out)
            value, flat_grads = sweep_gradients(
                tape, out, leaves, None if seed is None else np.ones(out.size)
                if type(out) is ArrayVariable else 1.0)
            if seed is None and type(value) is not float:
                value = float(value.reshape(()))
        else:
            value = _constant_output(fun, out, seed is None)
            flat_grads = [0.0 if type(leaf) is Variable else np.zeros(leaf.shape)
                          for leaf in leaves]
    finally:
        release_tape(tape)
    if type(argnum) is int:
        return value, structures[0].rebuild(flat_grads)
    grads = []
    start = 0
    for structure in structures:
        grads.append(structure.rebuild(flat_grads[start:start + structure.n_leaves]))
        start += structure.n_leaves
    return value, tuple(grads)


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
