"""Differential operators, in autograd's and JAX's spellings.

Every operator is a few lines on one recording (fasttape._recording): ``record`` the
function once at the given arguments, then sweep the recording in reverse (grad, vjp,
jacrev: one sweep per output element), forward (jvp, jacfwd: one tangent sweep per
input direction) or forward over reverse (hessian, hvp). A recording goes on the
thread's pooled tape (grad and friends, reset when the operator returns), on a tape of
its own (make_vjp, make_jvp, jacobian: kept alive by the returned function), or, when
the arguments are Variables of an enclosing computation (grad of grad, hessian, jvp of
grad), on the enclosing tape itself, where its sweeps record their own operations.
"""
import contextlib
import functools
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

import fasttape.numpy as fnp
from fasttape import _recording
from fasttape._arrays import frozen, holds_variables
from fasttape._containers import flatten, tree_map
from fasttape._recording import (POOLED, SCRATCH, VARIABLE_TYPES, hessian_vectors,
                                 record, resolve_argnum, value_of)
from fasttape._references import find_global, load_global, reduce_by_reference
from fasttape._rule_nodes import rule_node
from fasttape._tape_pools import active_tape, pause_recording, resume_recording
from fasttape._tape_state import OperandSlot
from fasttape._scalar_recording_sweep import GradientFunction, nested_value_and_grad
from fasttape._variable import (JacobianFunction, Variable, is_leaf_input,
                                scalar_jacobian, scalar_value_and_grad)

#: which positional argument(s) to differentiate: an int, or a tuple of ints
ArgNums = int | Sequence[int]


# -- gradients ------------------------------------------------------------------------

def value_and_grad(fun: Callable[..., Any], argnum: ArgNums = 0, *,
                   argnums: ArgNums | None = None,
                   has_aux: bool = False) -> Callable[..., tuple[Any, Any]]:
    """Return a function computing ``(fun(*args), gradient)`` in one pass.

    Parameters
    ----------
    fun : callable
        Returns a scalar: a float, a Variable computed from its arguments, or a
        one-element array (with ``has_aux``, a pair ``(scalar, aux)``).
    argnum, argnums : int or tuple of int
        Which positional argument to differentiate (``argnums`` is JAX's name for
        it); a tuple gives a tuple of gradients. An argument may be a number, an
        array, or any container of them (tuples, lists, dicts, named tuples,
        dataclasses, ``None`` leaves, types registered with
        ``fasttape.register_pytree_node``); its gradient has the same structure,
        with float entries and float64 arrays of the same shapes.
    has_aux : bool
        ``fun`` returns ``(value, aux)``; the result is ``((value, aux), gradient)``
        as JAX's, aux with plain values in place of the Variables it held.

    Returns
    -------
    callable
        ``value_and_grad(fun)(*args, **kwargs) -> (value, gradient)``

    Examples
    --------
    >>> from fasttape import value_and_grad
    >>> value_and_grad(lambda p: (p["w"] ** 2, "aux"), has_aux=True)({"w": 3.0})
    ((9.0, 'aux'), {'w': 6.0})
    """
    argnum = resolve_argnum(argnum, argnums, "value_and_grad")
    argnums_fast, single = _normalized(argnum)

    if not has_aux:
        def recorded(args, kwargs):
            rec = record(fun, args, argnum, kwargs, POOLED)
            try:
                return rec.value_and_grad()
            finally:
                rec.release()
        return functools.update_wrapper(
            GradientFunction(fun, argnum, argnums_fast, single, recorded, True), fun)

    @functools.wraps(fun)
    def value_and_grad_fun(*args, **kwargs):
        f, aux = _split_aux(fun, args, "value_and_grad")
        result = scalar_value_and_grad(f, argnums_fast, single, args, kwargs)
        if result is NotImplemented and active_tape() is not None:
            result = nested_value_and_grad(f, argnum, argnums_fast, single, args, kwargs)
        if result is NotImplemented:
            rec = record(f, args, argnum, kwargs, POOLED)
            try:
                result = rec.value_and_grad()
            finally:
                rec.release()
        return (result[0], aux[-1]), result[1]
    return value_and_grad_fun


def grad(fun: Callable[..., Any], argnum: ArgNums = 0, *, argnums: ArgNums | None = None,
         has_aux: bool = False) -> Callable[..., Any]:
    """Return a function computing the gradient of ``fun`` by reverse mode.

    ``grad(f)(x)`` is df/dx at x; see ``value_and_grad`` for the parameters (with
    ``has_aux``, the result is ``(gradient, aux)``). Integer inputs are
    differentiated as floats. A function whose result does not depend on its inputs
    has a zero gradient (with a warning, as autograd). Applied to Variables (inside
    another differentiation), the gradient is itself recorded and can be
    differentiated again: ``grad(grad(f))``.

    Examples
    --------
    >>> from fasttape import grad, sin
    >>> grad(lambda x, y: x * y + sin(x), argnum=(0, 1))(2.0, 3.0)
    (2.5838531634528574, 2.0)
    """
    argnum = resolve_argnum(argnum, argnums, "grad")
    argnums_fast, single = _normalized(argnum)
    if has_aux:
        with_aux = value_and_grad(fun, argnum, has_aux=True)

        @functools.wraps(fun)
        def grad_and_aux_fun(*args, **kwargs):
            (_, aux), gradient = with_aux(*args, **kwargs)
            return gradient, aux
        return grad_and_aux_fun

    def recorded(args, kwargs):
        rec = record(fun, args, argnum, kwargs, POOLED)
        try:
            return rec.value_and_grad()[1]
        finally:
            rec.release()
    return functools.update_wrapper(
        GradientFunction(fun, argnum, argnums_fast, single, recorded, False), fun)


def _normalized(argnum):
    """(argnums tuple, single) for the fast path; an invalid argnum gives None, so
    that the general path reports it."""
    if type(argnum) is int:
        return (argnum,), True
    if isinstance(argnum, (tuple, list)) and all(type(i) is int for i in argnum):
        return tuple(argnum), False
    return None, False


def _split_aux(fun, args, operator):
    """For ``has_aux``: (a function returning the first of ``fun``'s pair, a list that
    receives the second at each call). Variables of the tape being recorded are
    replaced in aux by their values (that tape is reset when the operator returns);
    those of an enclosing differentiation stay, to be differentiated there."""
    enclosing = active_tape()
    if enclosing is None and holds_variables(args):
        tapes = [v.tape for v in flatten(args, variables=True)[0]
                 if type(v) in VARIABLE_TYPES]
        enclosing = tapes[0] if tapes else None
    box = []

    @functools.wraps(fun)
    def value_only(*args, **kwargs):
        out = fun(*args, **kwargs)
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise TypeError(f"{operator}(..., has_aux=True): "
                            f"{getattr(fun, '__name__', 'the function')} must return a "
                            f"pair (output, aux), not {type(out).__name__}")
        aux = out[1]
        tape = active_tape()
        if tape is not None and tape is not enclosing:
            aux = tree_map(lambda v: v.value if type(v) in VARIABLE_TYPES and
                           v.tape is tape else v, aux)
        box.append(aux)
        return out[0]
    return value_only, box


def elementwise_grad(fun: Callable[..., Any], argnum: ArgNums = 0, *,
                     argnums: ArgNums | None = None) -> Callable[..., Any]:
    """Return a function computing the sum over the outputs of their gradients: the
    vector-Jacobian product with a vector of ones. For a function that acts
    elementwise this is the derivative of each output element at its input element."""
    argnum = resolve_argnum(argnum, argnums, "elementwise_grad")

    @functools.wraps(fun)
    def elementwise_grad_fun(*args, **kwargs):
        rec = record(fun, args, argnum, kwargs, POOLED)
        try:
            return rec.value_and_grad(ones_seed=True)[1]
        finally:
            rec.release()
    return elementwise_grad_fun


# -- vector-Jacobian and Jacobian-vector products --------------------------------------

def make_vjp(fun: Callable[..., Any], argnum: ArgNums = 0, *,
             argnums: ArgNums | None = None) -> Callable[..., tuple[Callable[[Any], Any],
                                                                  Any]]:
    """autograd's ``make_vjp(fun, argnum)(*args) -> (vjp, value)``: the function is
    recorded once; ``vjp(cotangent)`` sweeps it in reverse and returns the gradient
    with respect to argument ``argnum`` of ``<cotangent, fun>``."""
    argnum = resolve_argnum(argnum, argnums, "make_vjp")

    def vjp_maker(*args, **kwargs):
        rec = record(fun, args, argnum, kwargs)
        return rec.vjp, rec.value()
    return vjp_maker


def vjp(fun: Callable[..., Any], *primals: Any, has_aux: bool = False) -> tuple[Any, ...]:
    """JAX's ``vjp(fun, *primals) -> (value, vjp_fun)``: ``vjp_fun(cotangent)`` returns
    a tuple with the cotangent of each primal (the cotangent has the output's
    structure). With ``has_aux`` (``fun`` returns ``(output, aux)``): ``(value,
    vjp_fun, aux)``."""
    f, aux = _split_aux(fun, primals, "vjp") if has_aux else (fun, None)
    rec = record(f, primals, tuple(range(len(primals))))
    if has_aux:
        return rec.value(), rec.vjp, aux[-1]
    return rec.value(), rec.vjp


def make_jvp(fun: Callable[..., Any], argnum: ArgNums = 0, *,
             argnums: ArgNums | None = None) -> Callable[..., Callable[[Any], tuple[Any,
                                                                                  Any]]]:
    """autograd's ``make_jvp(fun, argnum)(*args)(tangent) -> (value, jvp)``: the
    function is recorded once; each call with a tangent (of argument ``argnum``'s
    structure) runs one forward (tangent) sweep."""
    argnum = resolve_argnum(argnum, argnums, "make_jvp")

    def jvp_maker(*args, **kwargs):
        rec = record(fun, args, argnum, kwargs)

        def jvp_fun(tangent):
            return rec.value(), rec.jvp(tangent)
        return jvp_fun
    return jvp_maker


def jvp(fun: Callable[..., Any], primals: Sequence[Any], tangents: Sequence[Any], *,
        has_aux: bool = False) -> tuple[Any, ...]:
    """JAX's ``jvp(fun, primals, tangents) -> (value, tangent_out)``: forward mode, one
    tangent sweep. ``primals`` and ``tangents`` are tuples of the same structure.
    With ``has_aux``: ``(value, tangent_out, aux)``."""
    primals = tuple(primals)
    tangents = tuple(tangents)
    if len(primals) != len(tangents):
        raise ValueError(f"jvp: {len(primals)} primals but {len(tangents)} tangents")
    f, aux = _split_aux(fun, primals, "jvp") if has_aux else (fun, None)
    rec = record(f, primals, tuple(range(len(primals))))
    if has_aux:
        return rec.value(), rec.jvp(tangents), aux[-1]
    return rec.value(), rec.jvp(tangents)


# -- Jacobians and Hessians ---------------------------------------------------------------

def _jacobian_operator(fun, argnum, argnums, has_aux, holomorphic, mode, name):
    argnum = resolve_argnum(argnum, argnums, name)
    argnums_fast, single = _normalized(argnum)
    if holomorphic:
        argnums_fast = None       # (the general path checks for complex inputs)
    by_rows, by_columns = mode != "fwd", mode != "rev"

    def recorded(f, args, kwargs):
        rec = record(f, args, argnum, kwargs, POOLED)
        try:
            return rec.jacobian(mode, holomorphic)
        finally:
            rec.release()
    if not has_aux:
        return functools.update_wrapper(
            JacobianFunction(fun, argnum, argnums_fast, single, by_rows, by_columns,
                             functools.partial(recorded, fun)), fun)

    @functools.wraps(fun)
    def jacobian_fun(*args, **kwargs):
        f, aux = _split_aux(fun, args, name)
        jac = scalar_jacobian(f, argnum, argnums_fast, single, args, kwargs, by_rows,
                              by_columns)
        if jac is NotImplemented:
            jac = recorded(f, args, kwargs)
        return jac, aux[-1]
    return jacobian_fun


def jacrev(fun: Callable[..., Any], argnum: ArgNums = 0, *, argnums: ArgNums | None = None,
           has_aux: bool = False, holomorphic: bool = False) -> Callable[..., Any]:
    """Jacobian by reverse mode: one reverse sweep per output element. See
    ``jacobian`` for the parameters and the result."""
    return _jacobian_operator(fun, argnum, argnums, has_aux, holomorphic, "rev",
                              "jacrev")


def jacfwd(fun: Callable[..., Any], argnum: ArgNums = 0, *, argnums: ArgNums | None = None,
           has_aux: bool = False, holomorphic: bool = False) -> Callable[..., Any]:
    """Jacobian by forward mode: one tangent sweep per input element. See
    ``jacobian`` for the parameters and the result."""
    return _jacobian_operator(fun, argnum, argnums, has_aux, holomorphic, "fwd",
                              "jacfwd")


def jacobian(fun: Callable[..., Any], argnum: ArgNums = 0, *,
             argnums: ArgNums | None = None, has_aux: bool = False,
             holomorphic: bool = False) -> Callable[..., Any]:
    """Return a function computing the Jacobian of ``fun`` with respect to argument(s)
    ``argnum`` (or ``argnums``).

    For one array (or number) in and one out: an array of shape ``out.shape +
    x.shape`` (``J[i..., j...] = d out[i...] / d x[j...]``). For containers, or a
    tuple argnum, the structure of JAX's ``jacrev``: the output's structure, holding
    for each output array the input's structure (a tuple of the arguments' for a
    tuple argnum) of arrays of shape ``out.shape + x.shape`` (floats where both are
    numbers, as ``grad`` gives). With ``has_aux``
    (``fun`` returns ``(output, aux)``): ``(jacobian, aux)``.

    The function is recorded once, then swept forward once per input element or in
    reverse once per output element, whichever is fewer.

    Complex values (JAX's jacfwd/jacrev conventions, whichever the mode): for a
    complex input and a real output, each row is the gradient (df/dx - i df/dy, as
    ``grad``); for a real input and a complex output, each column is the complex
    tangent d Re f/dx + i d Im f/dx; a complex output of a complex input requires
    ``holomorphic=True`` (a TypeError otherwise) and gives df/dz. ``holomorphic=True``
    with a real input is a TypeError.
    """
    return _jacobian_operator(fun, argnum, argnums, has_aux, holomorphic, "auto",
                              "jacobian")


def hessian(fun: Callable[..., Any], argnum: ArgNums = 0, *,
            argnums: ArgNums | None = None, has_aux: bool = False,
            holomorphic: bool = False) -> Callable[..., Any]:
    """Return a function computing the Hessian of a scalar ``fun``: shape
    ``x.shape + x.shape`` for a number, an array or a flat list or tuple of numbers
    (as an array); for other containers, or a tuple argnum, the input's structure of
    the input's structure of blocks (JAX's ``hessian``). With ``has_aux``: ``(hessian,
    aux)``, aux from one more call of ``fun`` at the arguments.

    Complex arguments (JAX's conventions): with ``holomorphic=True``, a holomorphic
    ``fun`` of complex ``x`` with a complex output has the Hessian d^2 f/dz^2 (the
    Jacobian of ``holomorphic_grad``); otherwise a complex argument is a TypeError
    (the Hessian of a real function of complex z is not complex-linear:
    ``hessian_vector_product`` takes complex directions, or differentiate the real and
    imaginary parts as real arguments).

    The Hessian is assembled from forward-over-reverse sweeps in C, one per input
    element, over a tape recorded once (scalar and array operations). Otherwise
    (operations with Python rules: linalg, einsum, custom primitives, checkpoint;
    several array arguments; or inside another differentiation) the gradient is
    recorded (its own reverse sweep lands on the tape) and swept forward once per input
    element.
    """
    argnum = resolve_argnum(argnum, argnums, "hessian")
    if has_aux:
        return _hessian_with_aux(fun, argnum, holomorphic)
    if holomorphic:
        return jacobian(_recording.COMPLEX.holomorphic_grad(fun, argnum), argnum,
                        holomorphic=True)
    general = jacfwd(grad(fun, argnum), argnum)

    @functools.wraps(fun)
    def hessian_fun(*args, **kwargs):
        if type(argnum) is not int:
            return general(*args, **kwargs)
        x = args[argnum]
        if _recording.COMPLEX is not None and \
                _recording.COMPLEX.holds_complex(args, argnum):
            raise TypeError(
                f"hessian of {getattr(fun, '__name__', fun)} with respect to a complex "
                f"argument: pass holomorphic=True for a holomorphic function; for a "
                f"real function of complex values use hessian_vector_product (complex "
                f"directions) or take the real and imaginary parts as real arguments")
        if kwargs or holds_variables(x) or active_tape() is not None:
            return _as_matrix(general(*args, **kwargs), x)
        flat, structure = flatten(x)
        if isinstance(x, np.ndarray):              # one array
            units = list(np.eye(x.size).reshape((x.size,) + x.shape))
        elif structure.kind != "tree":             # a number, a flat list of numbers
            units = [structure.rebuild(list(row)) for row in np.eye(len(flat))]
        else:                                      # containers: the general path
            return general(*args, **kwargs)
        columns = hessian_vectors(fun, argnum, args, units)
        if columns is None:
            return _as_matrix(general(*args, **kwargs), x)
        if not columns:                            # an empty input
            return np.zeros(np.shape(x) + np.shape(x))
        return np.stack([np.asarray(c, dtype=float).reshape(-1)
                         for c in columns], axis=-1).reshape(np.shape(x) + np.shape(x))
    return hessian_fun


def _hessian_with_aux(fun, argnum, holomorphic):
    """hessian(..., has_aux=True): (the Hessian of fun's first output, its aux), the
    aux from one more call of fun at the arguments."""
    plain = hessian(lambda *a, **k: fun(*a, **k)[0], argnum, holomorphic=holomorphic)

    @functools.wraps(fun)
    def hessian_and_aux_fun(*args, **kwargs):
        f, aux = _split_aux(fun, args, "hessian")
        f(*args, **kwargs)
        return plain(*args, **kwargs), aux[-1]
    return hessian_and_aux_fun


def _as_matrix(h, x):
    """The Hessian from the general path for a flat list or tuple of numbers x (a list
    of lists of blocks) as one array of shape (n, n), as the fast path gives it; other
    arguments' as they are."""
    if not (type(x) is list or type(x) is tuple) or not all(
            type(v) is Variable or is_leaf_input(v) for v in x):
        return h
    rows = [flatten(row, variables=True)[0] for row in h]
    if any(type(v) in VARIABLE_TYPES for row in rows for v in row):
        return fnp.reshape(fnp.stack([fnp.reshape(v, ()) for row in rows for v in row]),
                           (len(x), len(x)))
    return np.array([[float(np.reshape(v, ())) for v in row] for row in rows],
                    dtype=float).reshape(len(x), len(x))


def hessian_vector_product(fun: Callable[..., Any], argnum: ArgNums = 0, *,
                           argnums: ArgNums | None = None) -> Callable[..., Any]:
    """Return ``hvp(*args, vector, **kwargs)``: the Hessian of ``fun`` with respect to
    argument ``argnum`` times ``vector`` (of that argument's structure), without
    forming the Hessian (autograd's ``hessian_tensor_product``: for an array argument,
    ``tensordot(H, vector, vector.ndim)``).

    A forward-over-reverse pass in C records nothing beyond the function itself;
    functions with Python-rule operations (linalg, einsum, custom primitives,
    checkpoint), and calls inside another differentiation, take one forward sweep over
    the recorded gradient instead. A complex argument takes that path too: the result
    is the derivative of ``grad(fun)`` along the complex ``vector`` (JAX's
    ``jvp(grad(fun), (z,), (vector,))``).
    """
    argnum = resolve_argnum(argnum, argnums, "hessian_vector_product")

    def hvp_fun(*args, **kwargs):
        if not args:
            raise TypeError("hessian_vector_product: call with the function's "
                            "arguments followed by the vector")
        *primals, vector = args
        primals = tuple(primals)
        if kwargs:
            return hessian_vector_product(functools.partial(fun, **kwargs), argnum)(
                *primals, vector)
        fast = hessian_vectors(fun, argnum, primals, [vector])
        if fast is not None:
            return fast[0]
        return record(grad(fun, argnum), primals, argnum).jvp(vector)
    return hvp_fun


hvp = hessian_vector_product


# -- values that are not differentiated ----------------------------------------------------

def stop_gradient(x: Any) -> Any:
    """``x`` with a zero derivative: the same value (numbers, arrays, or containers of
    them), through which no derivative flows, as JAX's ``stop_gradient`` (PyTorch's
    ``detach``). Variables become nodes with a zero derivative, so that a traced
    function replays with their new values; plain values are returned as they are.
    (``x.value`` is the plain value of one Variable, outside any recording.)"""
    return tree_map(_stopped, x)


def _stopped(v):
    if type(v) not in VARIABLE_TYPES:
        return v
    value = v.value
    return rule_node([v], value if type(value) is float else np.array(value),
                     _no_cotangent, _zero_tangent, _identity)


@contextlib.contextmanager
def no_grad() -> Iterator[None]:
    """A block in which operations on Variables record nothing and return plain
    values (floats and arrays), as PyTorch's ``torch.no_grad()``; in this thread
    only. For updates of parameters held as Variables, and for evaluating without
    derivatives. The differential operators (``grad`` & co.) called inside still
    record what they differentiate (as ``torch.func.grad``). An array operation
    still appends its node to the tape (nothing refers to it; the tape's next reset
    frees it).

    Examples
    --------
    >>> from fasttape import Variable, no_grad
    >>> x = Variable(2.0)
    >>> with no_grad():
    ...     y = x * 3.0
    >>> y
    6.0
    """
    pause_recording()
    try:
        yield
    finally:
        resume_recording()


def _no_cotangent(g, ans, x):
    return [None]


def _zero_tangent(tangents, ans, x):
    return 0.0 if np.ndim(ans) == 0 else np.zeros(np.shape(ans))


def _identity(x):
    return x


# -- checkpointing -------------------------------------------------------------------------

def checkpoint(fun):
    """Return ``fun`` rematerialised: called on Variables, it records ONE node instead
    of every operation inside; the reverse (or tangent) sweep re-runs ``fun`` on a
    temporary tape when it reaches that node. Trades time (``fun`` runs twice) for
    memory (its intermediates are never kept), as ``jax.checkpoint``.

    ``fun`` takes numbers, arrays or Variables as positional arguments (keyword
    arguments are passed on as constants, as autograd's checkpoint does) and returns
    one number or array.
    """
    return Checkpointed(fun)


class Checkpointed:
    """A function checkpointed by ``checkpoint``; pickles by reference (to ``fun``
    where a module binds it, else to itself, as with ``@checkpoint``)."""

    def __init__(self, fun):
        functools.update_wrapper(self, fun)
        self.fun = fun

    def __call__(self, *args, **kwargs):
        fun = self.fun
        variables = [a for a in args if type(a) in VARIABLE_TYPES]
        if not variables:
            return fun(*args, **kwargs)
        if holds_variables(kwargs):
            raise TypeError("checkpoint: pass the values to differentiate as positional "
                            "arguments (keyword arguments are constants)")
        positions = [i for i, a in enumerate(args) if type(a) in VARIABLE_TYPES]
        plain = [a.value if type(a) in VARIABLE_TYPES else a for a in args]
        value = fun(*plain, **kwargs)
        # the sweeps call fun again: with the plain arguments as they are now
        plain = [p if type(a) in VARIABLE_TYPES else frozen(p)
                 for a, p in zip(args, plain)]
        kwargs = frozen(kwargs)
        if isinstance(value, (tuple, list, dict)):
            raise TypeError("checkpoint: the function must return one number or array")
        value = float(value) if np.ndim(value) == 0 else np.asarray(value, dtype=float)

        def call(*operands):
            full = list(plain)
            for i, o in zip(positions, operands):
                full[i] = o
            return fun(*full, **kwargs)

        argnums = tuple(range(len(variables)))

        def reverse(g, ans, *operands):
            rec = record(call, operands, argnums, None, SCRATCH)
            try:
                return list(rec.vjp(g))
            finally:
                rec.release()

        def forward(tangents, ans, *operands):
            zeros = [np.zeros_like(np.asarray(value_of(o), dtype=float)) if t is None
                     else t for t, o in zip(tangents, operands)]
            rec = record(call, operands, argnums, None, SCRATCH)
            try:
                return rec.jvp(tuple(zeros))
            finally:
                rec.release()

        call.__name__ = f"checkpoint({getattr(fun, '__name__', 'a function')})"
        slots = dict(zip(positions, range(len(positions))))
        recipe = (self, tuple(OperandSlot(slots[i]) if i in slots else a
                              for i, a in enumerate(args)), kwargs)
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
