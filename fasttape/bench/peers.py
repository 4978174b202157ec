"""The setups: how each library computes a derivative of a workload function.

A setup ``setup(ops, f, args) -> Case`` prepares one variant (one row of a table) of a
workload: ``ops`` is the library's namespace (``libraries``), ``f`` the workload made
with it, ``args`` its arguments. It builds what it needs once and returns a Case whose
``call`` is what gets timed and whose ``gradient`` turns a call's result into a flat
float64 array for the agreement check with fasttape's (None: nothing to check).

Most setups come from one of four shapes, each written once:

- ``transformed``: a differential operator applied to f once (``fasttape.hessian(f)``,
  ``autograd.grad(f)``...), the arguments converted once; the call is the operator's;
- ``jax_transformed``: the same for JAX, eager or compiled by ``jax.jit``;
- ``backward``: define-by-run libraries (PyTorch, mygrad, micrograd): a leaf per input,
  f, ``backward()``, the leaves' gradients, all in the call;
- ``per_point``: one call per point of the replay workloads, times per point.

Only what is particular to a library is written per library: its leaves, its way of
spelling a Hessian or a Hessian-vector product, its input conversion.
"""
import time
from dataclasses import dataclass
from collections.abc import Callable

import numpy as np

import fasttape as ft


class NotApplicable(Exception):
    """This variant does not apply to this workload (the row is left out)."""


@dataclass
class Case:
    call: Callable[[], object]
    gradient: Callable[[object], np.ndarray] | None = None
    compile_s: float | None = None         # one-off compilation, timed separately
    n_nodes: int | None = None             # fasttape nodes recorded by one call
    note: str = ""
    per: int = 1                           # items (points) per call: times are per item


def flat_floats(tree):
    """Every number of nested lists/tuples of numbers and arrays (NumPy's, or any
    that NumPy can convert: PyTorch tensors, JAX arrays), as one float64 array."""
    out = []

    def walk(t):
        if isinstance(t, (list, tuple)):
            for u in t:
                walk(u)
        elif isinstance(t, (int, float)):
            out.append(float(t))
        else:
            out.extend(np.asarray(t, dtype=np.float64).ravel().tolist())
    walk(tree)
    return np.asarray(out, dtype=np.float64)


def map_leaves(args, leaf):
    """args with every number or array replaced by leaf(it), keeping the list
    structure, and the new leaves in order."""
    leaves = []

    def convert(a):
        if isinstance(a, list):
            return [convert(v) for v in a]
        v = leaf(a)
        leaves.append(v)
        return v
    return tuple(convert(a) for a in args), leaves


def _argnum(args):
    return 0 if len(args) == 1 else tuple(range(len(args)))


def _has_arrays(args):
    return any(isinstance(a, np.ndarray) or (isinstance(a, list) and a
                                             and isinstance(a[0], np.ndarray))
               for a in args)


def ndarrays(args):
    """args with every list of floats an ndarray."""
    return tuple(np.array(a) if isinstance(a, list) else a for a in args)


def x_only(args):
    """(x,) of the second-order arguments (x,) or (x, v)."""
    return args[:1]


# -- the shapes ------------------------------------------------------------------------

def transformed(derivative, inputs=tuple):
    """A setup timing ``fun(*inputs(args))`` with ``fun = derivative(ops.module, f,
    args)``, built once, and the arguments converted once, outside the timed call."""
    def setup(ops, f, args):
        fun = derivative(ops.module, f, args)
        xs = inputs(args)
        return Case(call=lambda: fun(*xs), gradient=flat_floats)
    return setup


def _jax_compile(jitted, jargs):
    """(compiled function, seconds spent tracing, lowering and compiling)."""
    t0 = time.perf_counter()
    compiled = jitted.lower(*jargs).compile()
    return compiled, time.perf_counter() - t0


def jax_transformed(derivative, inputs, jit=False, note=""):
    """The JAX twin of ``transformed``: ``derivative(jax, f, args)`` run eagerly, or
    compiled by ``jax.jit`` for the converted arguments (compile time apart); every
    call waits for its result (``jax.block_until_ready``)."""
    def setup(ops, f, args):
        jax = ops.module
        fun = derivative(jax, f, args)
        xs = inputs(args)
        compile_s = None
        if jit:
            fun, compile_s = _jax_compile(jax.jit(fun), xs)
        ready = jax.block_until_ready
        return Case(call=lambda: ready(fun(*xs)), gradient=flat_floats,
                    compile_s=compile_s, note=note)
    return setup


def backward(make_leaf):
    """A setup for a define-by-run library, timing what its users write: a leaf per
    input (``make_leaf(ops.module)(value)`` for every number of a list, or every
    array), f, ``backward()``, and the leaves' ``.grad``."""
    def setup(ops, f, args):
        leaf = make_leaf(ops.module)

        def call():
            vargs, leaves = map_leaves(args, leaf)
            f(*vargs).backward()
            return [v.grad for v in leaves]
        return Case(call=call, gradient=flat_floats)
    return setup


def per_point(fun, points, gradient=None, **case):
    """A Case calling fun at every point, timed per point."""
    return Case(call=lambda: [fun(p) for p in points], gradient=gradient,
                per=len(points), **case)


# -- the baseline: f itself (no derivative) --------------------------------------------

def setup_python(ops, f, args):
    return Case(call=lambda: f(*args))


def setup_python_x(ops, f, args):
    """f(x) of the second-order workloads, whose args are (x,) or (x, v)."""
    return setup_python(ops, f, x_only(args))


def setup_python_points(ops, f, args):
    return per_point(f, args[0])


# -- fasttape --------------------------------------------------------------------------

def recorder(tape, f, args):
    """A function of no arguments that records f(*args) on ``tape`` from a clean
    state and returns (output, leaves), the way users record:
    ``with tape: xs = [Variable(v) for v in x]; y = f(xs)``; an array argument (or a
    list of arrays) makes one array leaf per array.

    The common argument shapes get a closure without per-call bookkeeping, so that
    the time measured is fasttape's, not this helper's.
    """
    Variable = ft.Variable
    reset = tape.reset
    if _has_arrays(args):
        from fasttape._arrays import make_array_leaf

        def leaf(a):
            return make_array_leaf(tape, a)

        def record():
            reset()
            with tape:
                vargs, leaves = map_leaves(args, leaf)
                return f(*vargs), leaves
    elif len(args) == 1 and isinstance(args[0], list):
        x = args[0]

        def record():
            reset()
            with tape:
                xs = [Variable(v) for v in x]
                return f(xs), xs
    elif len(args) == 1:
        a = args[0]

        def record():
            reset()
            with tape:
                x = Variable(a)
                return f(x), [x]
    elif len(args) == 2 and not any(isinstance(a, list) for a in args):
        a, b = args

        def record():
            reset()
            with tape:
                x = Variable(a)
                y = Variable(b)
                return f(x, y), [x, y]
    else:
        def record():
            reset()
            with tape:
                vargs, leaves = map_leaves(args, Variable)
                return f(*vargs), leaves
    return record


setup_fasttape = transformed(lambda ft, f, args: ft.grad(f, argnum=_argnum(args)))


def setup_fasttape_by_hand(ops, f, args):
    """fasttape.grad of the nested-derivative workload with its inner derivative
    written out by hand (the reference of the nested grad)."""
    from fasttape.bench.workloads import make_nested_forces
    return setup_fasttape(ops, make_nested_forces(ops, by_hand=True), args)


def setup_fasttape_record(ops, f, args):
    tape = ft.Tape()
    record = recorder(tape, f, args)
    record()
    n_arrays = tape.n_array_nodes
    return Case(call=record, n_nodes=tape.n_nodes,
                note=f"{n_arrays} array nodes" if n_arrays else "")


def setup_fasttape_sweep(ops, f, args):
    tape = ft.Tape()
    y, leaves = recorder(tape, f, args)()
    y.backward()
    return Case(call=y.backward,
                gradient=lambda _: flat_floats([v.grad for v in leaves]),
                n_nodes=tape.n_nodes)


def setup_fasttape_x_record(ops, f, args):
    """Recording f(x) alone, for the second-order workloads."""
    return setup_fasttape_record(ops, f, x_only(args))


setup_fasttape_hessian = transformed(lambda ft, f, args: ft.hessian(f), x_only)
setup_fasttape_hessian_ndarray = transformed(lambda ft, f, args: ft.hessian(f),
                                             lambda args: ndarrays(x_only(args)))
setup_fasttape_hvp = transformed(lambda ft, f, args: ft.hvp(f))
setup_fasttape_hvp_ndarray = transformed(lambda ft, f, args: ft.hvp(f), ndarrays)


def setup_fasttape_hessian_traced(ops, f, args):
    x = args[0]
    g = ft.trace(f, x)
    return Case(call=lambda: g.hessian(x), gradient=flat_floats, n_nodes=g.n_nodes)


def setup_fasttape_sparse_hessian(ops, f, args):
    """g.sparse_hessian(x) on a trace whose pattern and colouring are made once."""
    x = args[0]
    g = ft.trace(f, x)
    g.sparse_hessian(x)
    return Case(call=lambda: g.sparse_hessian(x),
                gradient=lambda h: h.toarray().ravel(), n_nodes=g.n_nodes,
                note=f"{int(g.hessian_colors().max()) + 1} colours")


def setup_fasttape_sparsity(ops, f, args):
    """The Hessian's pattern from the tape and its star colouring, on a trace made
    once (the one-off cost of g.sparse_hessian)."""
    from fasttape import compressed
    x = args[0]
    g = ft.trace(f, x)

    def call():
        g.__dict__.pop("_sparse_plans", None)
        return compressed.hessian_plan(g)
    return Case(call=call, n_nodes=g.n_nodes)


def setup_fasttape_hvp_traced(ops, f, args):
    x, v = args
    g = ft.trace(f, x)
    return Case(call=lambda: g.hvp((x,), v), gradient=flat_floats, n_nodes=g.n_nodes)


def setup_fasttape_hvp_sweep(ops, f, args):
    """The forward-over-reverse sweep alone, on a tape recorded once."""
    x, v = args
    tape = ft.Tape()
    y, leaves = recorder(tape, f, (x,))()
    slots = [leaf.slot for leaf in leaves]
    node = y.node
    sweep = tape.hessian_vector_c
    return Case(call=lambda: sweep(node, slots, v)[1], gradient=flat_floats,
                n_nodes=tape.n_nodes)


# replay: args = (points,), a tuple of lists of floats or of arrays

def setup_fasttape_points(ops, f, args):
    return per_point(ft.grad(f), args[0], flat_floats)


def setup_fasttape_trace(ops, f, args):
    p = args[0][0]
    g = ft.trace(f, p)
    return Case(call=lambda: ft.trace(f, p), n_nodes=g.n_nodes)


def setup_traced_call(ops, f, args):
    points = args[0]
    return per_point(ft.trace(f, points[0]), points)


def setup_traced_grad(ops, f, args):
    points = args[0]
    return per_point(ft.trace(f, points[0]).grad, points, flat_floats)


def setup_grad_many(n_threads):
    def setup(ops, f, args):
        points = args[0]
        g = ft.trace(f, points[0])
        matrix = np.array(points)
        return Case(call=lambda: g.grad_many(matrix, n_threads=n_threads),
                    gradient=flat_floats, per=len(points))
    return setup


# -- autograd --------------------------------------------------------------------------

def _autograd_setup(to_input):
    """autograd.grad(f) called on ``to_input`` of each argument, converted in the
    timed call (as a user holding Python lists would); several arguments go in as one
    tuple (autograd.grad takes one argnum)."""
    def setup(ops, f, args):
        autograd = ops.module
        if len(args) == 1:
            g = autograd.grad(f)
            x = args[0]
            return Case(call=lambda: g(to_input(x)), gradient=flat_floats)
        g = autograd.grad(lambda t: f(*t))
        return Case(call=lambda: g(tuple(to_input(a) for a in args)),
                    gradient=flat_floats)
    return setup


setup_autograd_ndarray = _autograd_setup(
    lambda a: np.array(a) if isinstance(a, list) else a)
_setup_autograd_list = _autograd_setup(lambda a: list(a) if isinstance(a, list) else a)


def setup_autograd_list(ops, f, args):
    if not any(isinstance(a, list) for a in args):
        raise NotApplicable("no list argument")
    return _setup_autograd_list(ops, f, args)


def _autograd_hvp(autograd, f, args):
    import autograd.numpy as anp
    grad_f = autograd.grad(f)
    return autograd.grad(lambda x, v: anp.dot(grad_f(x), v))


setup_autograd_arrays = transformed(lambda autograd, f, args: autograd.grad(f))
setup_autograd_hessian = transformed(lambda autograd, f, args: autograd.hessian(f),
                                     lambda args: ndarrays(x_only(args)))
setup_autograd_hvp = transformed(_autograd_hvp, ndarrays)


# -- PyTorch, mygrad, micrograd: define-by-run -----------------------------------------

def _torch_leaf(torch):
    f64 = torch.float64

    def leaf(v):
        if isinstance(v, np.ndarray):           # shares the array's memory
            return torch.from_numpy(v).requires_grad_(True)
        return torch.tensor(v, dtype=f64, requires_grad=True)     # a 0-d tensor
    return leaf


def _tensors(args):
    import torch
    return tuple(torch.tensor(a, dtype=torch.float64) for a in args)


def _torch_hessian(torch, f, args):
    hessian = torch.autograd.functional.hessian
    return lambda x: hessian(f, x).numpy()


def _torch_hvp(torch, f, args):
    hvp = torch.autograd.functional.hvp           # reverse over reverse
    return lambda x, v: hvp(f, x, v)[1].numpy()


setup_torch = backward(_torch_leaf)
setup_torch_hessian = transformed(_torch_hessian, lambda args: _tensors(x_only(args)))
setup_torch_hvp = transformed(_torch_hvp, _tensors)
setup_mygrad = backward(lambda mg: mg.tensor)
setup_micrograd = backward(lambda Value: Value)


# -- JAX -------------------------------------------------------------------------------

def _jax_lists(args):
    """args with every list of floats a jnp array (numbers stay Python floats)."""
    import jax.numpy as jnp
    return tuple(jnp.asarray(a) if isinstance(a, list) else a for a in args)


def _jax_arrays(args):
    """args with every array, every number and every list of floats a jnp array."""
    import jax.numpy as jnp
    if isinstance(args, list) and args and not isinstance(args[0], (list, np.ndarray)):
        return jnp.asarray(args)
    if isinstance(args, (list, tuple)):
        return type(args)(_jax_arrays(a) for a in args)
    return jnp.asarray(args)


def _jax_unstacked(f):
    """f taking a jnp array, unpacked into a list of scalars by one op (jnp.unstack).
    Indexing x[i] in the loop instead makes XLA compile for minutes: 223 s for the
    Hessian of the 100-variable loop (1.4 s unstacked), 22 s for the gradient of the
    1000-variable Rosenbrock (14 s unstacked, and 6x slower per call)."""
    import jax.numpy as jnp

    def f_unstacked(x):
        return f(list(jnp.unstack(x)))
    return f_unstacked


def _jax_grad(jax, f, args):
    return jax.grad(f, argnums=_argnum(args))


def _jax_hessian(jax, f, args):
    return jax.hessian(_jax_unstacked(f))


def _jax_hvp(jax, f, args):
    grad_f = jax.grad(_jax_unstacked(f))

    def hvp(x, v):                      # forward over reverse
        return jax.jvp(grad_f, (x,), (v,))[1]
    return hvp


# Python lists of floats in, as for fasttape; indexing a jnp array inside an eager
# Python loop is ~9x slower still (Rosenbrock n=1000: 44 s vs 5 s a call).
setup_jax = jax_transformed(_jax_grad, tuple, note="jax.grad, no jit; list inputs")
setup_jax_jit = jax_transformed(
    _jax_grad, _jax_lists, jit=True,
    note="jax.jit(jax.grad(f)) on jnp arrays; loop unrolled by tracing")
setup_jax_arrays = jax_transformed(_jax_grad, _jax_arrays)
setup_jax_jit_arrays = jax_transformed(_jax_grad, _jax_arrays, jit=True)
setup_jax_hessian = jax_transformed(_jax_hessian, lambda a: _jax_arrays(x_only(a)))
setup_jax_jit_hessian = jax_transformed(_jax_hessian, lambda a: _jax_arrays(x_only(a)),
                                        jit=True)
setup_jax_hvp = jax_transformed(_jax_hvp, _jax_arrays)
setup_jax_jit_hvp = jax_transformed(_jax_hvp, _jax_arrays, jit=True)


def setup_jax_jit_points(unstack):
    """Replay: the compiled jax.jit(jax.grad(f)) called per point, x a jnp array
    (unpacked by jnp.unstack before the loop if ``unstack``)."""
    def setup(ops, f, args):
        jax = ops.module
        points = [_jax_arrays(p) for p in args[0]]
        fun = _jax_unstacked(f) if unstack else f
        compiled, compile_s = _jax_compile(jax.jit(jax.grad(fun)), (points[0],))
        ready = jax.block_until_ready
        return per_point(lambda p: ready(compiled(p)), points, flat_floats,
                         compile_s=compile_s)
    return setup


# -- CasADi (replay only: a symbolic graph built once, then called) --------------------

def casadi_gradient_function(ops, f, n):
    """f on n casadi SX symbols, and the casadi.Function of its gradient."""
    casadi = ops.module
    x = casadi.SX.sym("x", n)
    y = f([x[i] for i in range(n)])
    return casadi.Function("grad_f", [x], [casadi.gradient(y, x)])


def setup_casadi_build(ops, f, args):
    n = len(args[0][0])
    return Case(call=lambda: casadi_gradient_function(ops, f, n))


def setup_casadi_points(ops, f, args):
    points = [np.array(p) for p in args[0]]
    grad_f = casadi_gradient_function(ops, f, len(points[0]))
    return per_point(lambda p: grad_f(p).full(), points, flat_floats)


def setup_casadi_map(n_threads):
    def setup(ops, f, args):
        matrix = np.array(args[0]).T                    # one column per point
        grad_f = casadi_gradient_function(ops, f, matrix.shape[0])
        mapped = grad_f.map(matrix.shape[1], *(("thread", n_threads) if n_threads > 1
                                               else ("serial",)))
        return Case(call=lambda: mapped(matrix).full().T, gradient=flat_floats,
                    per=matrix.shape[1])
    return setup


# -- small calls: a vector function of a few numbers, per point ------------------------
#
# The workloads' f maps a list of n floats to a list of m; the derivative checked is
# its (m, n) Jacobian, the reference fasttape.jacobian(f) recording at every point.

def setup_fasttape_jacobian_points(ops, f, args):
    return per_point(ft.jacobian(f), args[0], flat_floats)


def setup_traced_jacobian(ops, f, args):
    points = args[0]
    return per_point(ft.trace(f, points[0]).jacobian, points, flat_floats)


def setup_traced_jacobian_out(ops, f, args):
    """g.jacobian(z, out=J) into one preallocated J (no check: J is overwritten)."""
    points = args[0]
    g = ft.trace(f, points[0])
    out = np.empty(np.shape(g.jacobian(points[0])))
    return per_point(lambda z: g.jacobian(z, out=out), points)


def setup_traced_half_squares_grad(ops, f, args):
    """g.grad of half the squared norm of f (one output): a gradient per point."""
    points = args[0]

    def half_squares(z):
        return 0.5 * sum(r * r for r in f(z))
    return per_point(ft.trace(half_squares, points[0]).grad, points)


def setup_jacobian_many(ops, f, args):
    points = args[0]
    g = ft.trace(f, points[0])
    matrix = np.array(points)
    return Case(call=lambda: g.jacobian_many(matrix), gradient=flat_floats,
                per=len(points))


def setup_jax_jit_jacobian_points(ops, f, args):
    """The compiled jax.jit(jax.jacrev(f)) per point, f on the unstacked jnp array,
    its outputs stacked."""
    jax = ops.module
    import jax.numpy as jnp
    points = [jnp.asarray(p) for p in args[0]]

    def stacked(x):
        return jnp.stack(f(list(jnp.unstack(x))))
    compiled, compile_s = _jax_compile(jax.jit(jax.jacrev(stacked)), (points[0],))
    ready = jax.block_until_ready
    return per_point(lambda p: ready(compiled(p)), points, flat_floats,
                     compile_s=compile_s)


def casadi_jacobian_function(ops, f, n):
    casadi = ops.module
    x = casadi.SX.sym("x", n)
    y = casadi.vertcat(*f([x[i] for i in range(n)]))
    return casadi.Function("jac_f", [x], [casadi.jacobian(y, x)])


def setup_casadi_jacobian_points(ops, f, args):
    points = [np.array(p) for p in args[0]]
    jac_f = casadi_jacobian_function(ops, f, len(points[0]))
    return per_point(lambda p: jac_f(p).full(), points, flat_floats)


def setup_casadi_jacobian_map(ops, f, args):
    matrix = np.array(args[0]).T                        # one column per point
    jac_f = casadi_jacobian_function(ops, f, matrix.shape[0])
    mapped = jac_f.map(matrix.shape[1], "serial")
    return Case(call=lambda: mapped(matrix).full(), per=matrix.shape[1])
