"""The catalog: every workload with the variants that run it.

A ``Variant`` is one row of a workload's table: a library's way to compute the
derivative (or a part of it, or the plain function as the baseline), with its setup
(``peers``) and a note saying what exactly is timed. A ``Workload`` names the function
(a factory of ``workloads``), its arguments and its variants; the workloads of one
group share a set of variants and a summary table. ``python -m fasttape.bench`` runs
them (``run``); asv times the same setups (``asv_bench/benchmarks/common.py``).

Adding a workload: write its factory in ``workloads`` and add a row to ``WORKLOADS``
with the variants of its group; adding a library: its ``ops`` in ``libraries``, its
setups in ``peers``, and a ``Variant`` in the groups it can run.
"""
from dataclasses import dataclass, field
from collections.abc import Callable, Mapping

import numpy as np

from fasttape.bench import peers as p
from fasttape.bench import workloads as w


@dataclass(frozen=True)
class Variant:
    """One row of a workload's table: a way to compute (or part of) the gradient."""
    name: str
    library: str              # key of libraries.LIBRARIES that must be importable
    setup: Callable           # setup(ops, f, args) -> peers.Case
    kind: str = "grad"        # "baseline" (f, no derivative), "grad", or "part" (a
                              # piece or a one-off cost: no speed ratio)
    slow: bool = False        # skipped by --quick
    note: str = ""            # what exactly is timed (printed with the table)


def _variants(*variants):
    return {v.name: v for v in variants}


# Scalar Python code. Their notes are printed once, above the tables.
SCALAR_SETUPS = _variants(
    Variant("python f", "python", p.setup_python, kind="baseline",
            note="the function on Python floats (no derivative): the baseline"),
    Variant("fasttape", "fasttape", p.setup_fasttape,
            note="fasttape.grad(f)(x), the whole call (leaves, record, sweep, result)"),
    Variant("fasttape record", "fasttape", p.setup_fasttape_record, kind="part",
            note="record only: t.reset(); with t: Variable per input, f"),
    Variant("fasttape sweep", "fasttape", p.setup_fasttape_sweep, kind="part",
            note="reverse sweep only: y.backward() on the recorded tape"),
    Variant("autograd", "autograd", p.setup_autograd_ndarray,
            note="autograd.grad(f)(np.array(x)), f with autograd.numpy"),
    Variant("autograd list", "autograd", p.setup_autograd_list,
            note="autograd.grad(f)(x) with x a Python list"),
    Variant("torch", "torch", p.setup_torch,
            note="float64 0-d leaf tensors (requires_grad), f, backward, leaf .grad"),
    Variant("jax", "jax", p.setup_jax, slow=True,
            note="jax.grad(f)(x), eager (no jit), x a Python list"),
    Variant("jax.jit", "jax", p.setup_jax_jit, slow=True,
            note="compiled jax.jit(jax.grad(f))(jnp.asarray(x)); compile time apart"),
    Variant("micrograd", "micrograd", p.setup_micrograd,
            note="micrograd Value leaves, backward (sin/exp/log1p/logaddexp added)"),
)
VARIANTS = SCALAR_SETUPS          # the name asv_bench/benchmarks/bench_peers.py reads

ARRAY_SETUPS = _variants(
    Variant("numpy f", "python", p.setup_python, kind="baseline",
            note="f on NumPy arrays (no derivative): the baseline"),
    Variant("fasttape", "fasttape", p.setup_fasttape,
            note="fasttape.grad(f)(x), f with fasttape.numpy (one tape node per array "
                 "op)"),
    Variant("fasttape record", "fasttape", p.setup_fasttape_record, kind="part",
            note="record only: t.reset(); with t: an array leaf per input, f"),
    Variant("fasttape sweep", "fasttape", p.setup_fasttape_sweep, kind="part",
            note="reverse sweep only: y.backward() on the recorded tape"),
    Variant("autograd", "autograd", p.setup_autograd_arrays,
            note="autograd.grad(f)(x), f with autograd.numpy"),
    Variant("torch", "torch", p.setup_torch,
            note="leaves torch.from_numpy(x).requires_grad_() (float64), f, backward"),
    Variant("mygrad", "mygrad", p.setup_mygrad,
            note="leaves mygrad.tensor(x), f, backward, .grad"),
    Variant("jax", "jax", p.setup_jax_arrays,
            note="jax.grad(f)(x) eager (no jit), x jnp arrays"),
    Variant("jax.jit", "jax", p.setup_jax_jit_arrays,
            note="compiled jax.jit(jax.grad(f))(x); compile time apart"),
)

_SECOND_ORDER_BASELINE = Variant(
    "python f", "python", p.setup_python_x, kind="baseline",
    note="f on a list of Python floats (no derivative): the baseline")

HESSIAN_SETUPS = _variants(
    _SECOND_ORDER_BASELINE,
    Variant("fasttape", "fasttape", p.setup_fasttape_hessian,
            note="fasttape.hessian(f)(x), x a list: one forward-over-reverse C sweep "
                 "per column on a tape recorded once"),
    Variant("fasttape ndarray", "fasttape", p.setup_fasttape_hessian_ndarray,
            note="fasttape.hessian(f)(np.array(x)): the same C sweeps over the tape "
                 "(the ndarray input is one array leaf)"),
    Variant("fasttape trace", "fasttape", p.setup_fasttape_hessian_traced,
            note="g = fasttape.trace(f, x) once (not timed), g.hessian(x)"),
    Variant("fasttape sparse", "fasttape", p.setup_fasttape_sparse_hessian,
            note="g.sparse_hessian(x): one forward-over-reverse sweep per colour of a "
                 "star colouring of the pattern read from the tape (both made once, "
                 "not timed), recovered into scipy.sparse CSR"),
    Variant("fasttape sparsity", "fasttape", p.setup_fasttape_sparsity, kind="part",
            note="the Hessian pattern from g's tape and its star colouring (the "
                 "one-off cost of g.sparse_hessian)"),
    Variant("autograd", "autograd", p.setup_autograd_hessian,
            note="autograd.hessian(f)(np.array(x))"),
    Variant("torch", "torch", p.setup_torch_hessian,
            note="torch.autograd.functional.hessian(f, x), x a float64 tensor"),
    Variant("jax", "jax", p.setup_jax_hessian,
            note="jax.hessian(f)(x) eager (jacfwd of jacrev), x a jnp array unpacked "
                 "by list(jnp.unstack(x))"),
    Variant("jax.jit", "jax", p.setup_jax_jit_hessian,
            note="compiled jax.jit(jax.hessian(f)), unpacked the same way (indexing "
                 "x[i] instead: 223 s to compile); compile time apart"),
)

HVP_SETUPS = _variants(
    _SECOND_ORDER_BASELINE,
    Variant("fasttape", "fasttape", p.setup_fasttape_hvp,
            note="fasttape.hvp(f)(x, v), lists: record, then one forward-over-reverse "
                 "sweep in C"),
    Variant("fasttape record", "fasttape", p.setup_fasttape_x_record, kind="part",
            note="record only: t.reset(); with t: Variable per input, f"),
    Variant("fasttape sweep", "fasttape", p.setup_fasttape_hvp_sweep, kind="part",
            note="the forward-over-reverse sweep alone (tape.hessian_vector_c)"),
    Variant("fasttape ndarray", "fasttape", p.setup_fasttape_hvp_ndarray,
            note="fasttape.hvp(f)(np.array(x), np.array(v)): the same C sweep (one "
                 "array leaf)"),
    Variant("fasttape trace", "fasttape", p.setup_fasttape_hvp_traced,
            note="g = fasttape.trace(f, x) once (not timed), g.hvp((x,), v)"),
    Variant("autograd", "autograd", p.setup_autograd_hvp,
            note="autograd.grad(lambda x: np.dot(autograd.grad(f)(x), v))(x)"),
    Variant("torch", "torch", p.setup_torch_hvp,
            note="torch.autograd.functional.hvp(f, x, v) (reverse over reverse)"),
    Variant("jax", "jax", p.setup_jax_hvp,
            note="jax.jvp(jax.grad(f), (x,), (v,)) eager (forward over reverse), x "
                 "unpacked by list(jnp.unstack(x))"),
    Variant("jax.jit", "jax", p.setup_jax_jit_hvp,
            note="the same, compiled with jax.jit; compile time apart"),
)

REPLAY_SETUPS = _variants(
    Variant("python f", "python", p.setup_python_points, kind="baseline",
            note="f on a list of floats, per point (no derivative): the baseline"),
    Variant("fasttape", "fasttape", p.setup_fasttape_points,
            note="fasttape.grad(f)(x) per point: records every time"),
    Variant("fasttape trace", "fasttape", p.setup_fasttape_trace, kind="part",
            note="g = fasttape.trace(f, x): the one-off recording, per trace"),
    Variant("traced g(x)", "fasttape", p.setup_traced_call, kind="part",
            note="g(x): forward replay in C, value only"),
    Variant("traced g.grad", "fasttape", p.setup_traced_grad,
            note="g.grad(x) per point: replay and reverse sweep in C"),
    Variant("grad_many x1", "fasttape", p.setup_grad_many(1),
            note="g.grad_many(points, n_threads=1), per point"),
    Variant("grad_many x2", "fasttape", p.setup_grad_many(2),
            note="g.grad_many(points, n_threads=2), per point"),
    Variant("jax.jit", "jax", p.setup_jax_jit_points(False), slow=True,
            note="compiled jax.jit(jax.grad(f))(x) per point, x a jnp array indexed "
                 "x[i] in the loop; compile time apart"),
    Variant("jax.jit unstack", "jax", p.setup_jax_jit_points(True), slow=True,
            note="the same with x unpacked by list(jnp.unstack(x)) before the loop"),
    Variant("casadi build", "casadi", p.setup_casadi_build, kind="part",
            note="f on casadi.SX symbols, casadi.gradient, casadi.Function: per build"),
    Variant("casadi", "casadi", p.setup_casadi_points,
            note="the casadi.Function of the gradient, called per point (ndarray in, "
                 ".full() out)"),
    Variant("casadi map", "casadi", p.setup_casadi_map(1),
            note="Function.map(100) on the 1000x100 matrix of points, per point"),
    Variant("casadi map x2", "casadi", p.setup_casadi_map(2),
            note="Function.map(100, 'thread', 2), per point"),
)

REPLAY_ARRAY_SETUPS = _variants(
    Variant("numpy f", "python", p.setup_python_points, kind="baseline",
            note="f on NumPy arrays, per point (no derivative): the baseline"),
    *(REPLAY_SETUPS[name] for name in (
        "fasttape", "fasttape trace", "traced g(x)", "traced g.grad", "grad_many x1",
        "grad_many x2")),
    Variant("jax.jit", "jax", p.setup_jax_jit_points(False),
            note="compiled jax.jit(jax.grad(f))(x) per point, x a jnp array; compile "
                 "time apart"),
)


SMALL_CALL_SETUPS = _variants(
    Variant("python f", "python", p.setup_python_points, kind="baseline",
            note="f on a list of Python floats, per point (no derivative): the baseline"),
    Variant("fasttape", "fasttape", p.setup_fasttape_jacobian_points,
            note="fasttape.jacobian(f)(z) per point: records every time"),
    Variant("traced g(z)", "fasttape", p.setup_traced_call, kind="part",
            note="g = fasttape.trace(f, z0) once; g(z): replay in C, the value"),
    Variant("traced g.grad", "fasttape", p.setup_traced_half_squares_grad, kind="part",
            note="g.grad(z) of 0.5 * sum(f(z)**2) traced (one output): replay and "
                 "reverse sweep in one C call"),
    Variant("traced g.jacobian", "fasttape", p.setup_traced_jacobian,
            note="g.jacobian(z): one replay, then one sweep per output (reverse) or "
                 "per input (tangent), whichever are fewer, in one C call"),
    Variant("traced jacobian out=", "fasttape", p.setup_traced_jacobian_out,
            kind="part", note="g.jacobian(z, out=J), J preallocated"),
    Variant("jacobian_many", "fasttape", p.setup_jacobian_many,
            note="g.jacobian_many(Z) on the matrix of points, per point (one C loop)"),
    Variant("jax.jit", "jax", p.setup_jax_jit_jacobian_points,
            note="compiled jax.jit(jax.jacrev(f))(z) per point, z a jnp array "
                 "unstacked; compile time apart"),
    Variant("casadi", "casadi", p.setup_casadi_jacobian_points,
            note="casadi.Function of casadi.jacobian on SX symbols, called per point "
                 "(ndarray in, .full() out)"),
    Variant("casadi map", "casadi", p.setup_casadi_jacobian_map,
            note="that Function's map over the matrix of points (serial), per point"),
)


NESTED_SETUPS = _variants(
    Variant("python f", "python", p.setup_python, kind="baseline",
            note="f on Python floats, the force written out by hand: the baseline"),
    Variant("fasttape", "fasttape", p.setup_fasttape,
            note="fasttape.grad(f)(x), the force fasttape.grad of the potential (each "
                 "inner grad records on the outer tape)"),
    Variant("fasttape by hand", "fasttape", p.setup_fasttape_by_hand,
            note="fasttape.grad(f)(x), the force written out by hand: the cost a "
                 "nested grad is measured against"),
    Variant("jax.jit", "jax", p.setup_jax_jit,
            note="jax.jit(jax.grad(f)), the force jax.grad of the potential; compile "
                 "time apart"),
)


@dataclass(frozen=True)
class Workload:
    name: str
    title: str
    make: Callable            # make(ops) -> f
    args: tuple               # the point: numbers or lists of numbers, or arrays
    setups: Mapping[str, Variant] = field(default_factory=lambda: SCALAR_SETUPS)
    group: str = "scalar"     # workloads of a group share a summary table
    rtol: float = 1e-6        # of the agreement check with fasttape's derivative
    n_ops: int | None = None       # ops per call: the table adds a time per op
    reference: str = "fasttape"    # the row the 'fasttape faster' ratios divide by
    unit: str = "per call"


WORKLOADS = {wl.name: wl for wl in [
    Workload("textbook", "grad(lambda x, y: x*y + sin(x), argnum=(0, 1))(2.0, 3.0)",
             w.make_textbook, (2.0, 3.0)),
    Workload("rosenbrock", "Rosenbrock as a Python loop over n=1000 floats",
             w.make_rosenbrock, (w.uniform_point(1000),)),
    Workload("chain", "x = sin(x)*1.0001 + x*0.5 repeated 1000 times (4000 ops); "
             "the adjoint underflows: gradient 0.0, fasttape's sweep skips most nodes",
             lambda ops: w.make_chain(ops, 1000), (0.3,)),
    Workload("chain-live", "x = sin(x)*0.5 + x*0.5 repeated 1000 times (4000 ops), "
             "every adjoint nonzero", lambda ops: w.make_chain(ops, 1000, 0.5), (0.3,)),
    # 100 points: jax.jit's XLA compile of the unrolled loop grows superlinearly
    # (25 points 3 s, 50 points 6 s, 100 points 23 s, 300 points > 10 min)
    Workload("gmm", "2-component 1-D Gaussian mixture log-likelihood, 100 points",
             lambda ops: w.make_gmm(ops, w.gmm_data(100)), (list(w.GMM_POINT),)),
    Workload("rosenbrock-vec", "Rosenbrock with array slices, n=10,000: "
             "sum(100*(x[1:]-x[:-1]**2)**2 + (1-x[:-1])**2)",
             w.make_rosenbrock_vec, (w.rosenbrock_vec_point(10_000),), ARRAY_SETUPS,
             group="arrays"),
    Workload("logreg", "logistic regression, X 10000x100: sum(logaddexp(0, X@w) - "
             "y*(X@w)), gradient w.r.t. w (100,)",
             w.make_logreg, (w.logreg_data()[2],), ARRAY_SETUPS, group="arrays"),
    Workload("mlp", "MLP 784-256-10, tanh, batch 256, mean softmax cross-entropy "
             "(max-shifted logsumexp); gradient w.r.t. [W1, b1, W2, b2]",
             w.make_mlp, (w.mlp_data()[2],), ARRAY_SETUPS, group="arrays"),
    Workload("small-arrays", "x = sin(x)*1.01 + x on an array of 10, 33 times, then "
             "sum: 100 array ops (the per-op overhead)",
             w.make_small_chain, (np.linspace(0.1, 1.0, 10),), ARRAY_SETUPS,
             group="arrays", n_ops=w.SMALL_CHAIN_OPS),
    Workload("gmm-arrays", f"ADBench-style GMM objective, vectorised: K={w.GMM_K}, "
             f"d={w.GMM_D}, n={w.GMM_N}, diagonal precisions; gradient w.r.t. [alphas, "
             f"means, icf]", w.make_gmm_arrays, (w.gmm_arrays_data()[1],), ARRAY_SETUPS,
             group="arrays"),
    Workload("hessian", "Hessian (100x100) of the extended Rosenbrock loop over 100 "
             "floats (50 pairs)", w.make_rosenbrock_pairs, (w.second_order_point()[0],),
             HESSIAN_SETUPS, group="second order"),
    Workload("hvp", "one Hessian-vector product of the extended Rosenbrock loop over "
             "100 floats", w.make_rosenbrock_pairs, w.second_order_point(), HVP_SETUPS,
             group="second order"),
    Workload("replay", f"Rosenbrock loop over n={w.REPLAY_N} floats at "
             f"{w.REPLAY_POINTS} points: record once (trace), replay in C",
             w.make_rosenbrock, (w.replay_points(),), REPLAY_SETUPS, group="replay",
             reference="traced g.grad", unit="per point (trace, build: per call)"),
    Workload("replay-vec", f"Rosenbrock with array slices, n={w.REPLAY_VEC_N:,}, at "
             f"{w.REPLAY_VEC_POINTS} points: record once (trace), replay in C",
             w.make_rosenbrock_vec, (w.replay_vec_points(),), REPLAY_ARRAY_SETUPS,
             group="replay", reference="traced g.grad",
             unit="per point (trace: per call)"),
    Workload("ba-residual", "bundle adjustment, one observation's residual: 17 numbers "
             "(angle-axis rotation, translation, focal length, 2 distortion terms, "
             "principal point, 3-D point, observed 2-D point and depth) to 3, at 1000 "
             "points", w.make_ba_residual, (w.ba_points(),), SMALL_CALL_SETUPS,
             group="small calls", reference="traced g.jacobian", unit="per point"),
    Workload("nested-grad", f"a grad inside a grad: the gradient of the sum of the "
             f"squared forces between {w.NESTED_PARTICLES} particles on a line, each "
             f"force the grad of a Lennard-Jones potential", w.make_nested_forces,
             (w.nested_point(),), NESTED_SETUPS, group="nested"),
    Workload("ode-jacobian", f"the Jacobian of an ODE right-hand side: Lorenz-96 with "
             f"{w.LORENZ96_N} states, at 1000 points", w.make_lorenz96,
             (w.lorenz96_points(),), SMALL_CALL_SETUPS, group="small calls",
             reference="traced g.jacobian", unit="per point"),
]}


def all_variants():
    """Every variant name of every workload, with its Variant (first seen)."""
    out = dict(VARIANTS)
    for workload in WORKLOADS.values():
        for name, v in workload.setups.items():
            out.setdefault(name, v)
    return out
