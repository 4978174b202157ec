"""The sparse section of ``python -m fasttape.bench`` (``--only sparse``; not in the
default run): sparse Hessians of the arrowhead ``sum((x[1:] - x[0])**4) + sum(x**2)``
by compressed sweeps against f itself and against dense Hessians.

- n = 10^4, f on NumPy arrays and f as a Python loop on floats: f, the traced
  ``sparse_hessian``, pattern detection plus colouring (from the recording), and the
  number of colours (star and acyclic);
- n = 10^3: the same sparse Hessian against ``fasttape.hessian`` and
  ``jax.jit(jax.hessian)`` (when JAX is installed); at 10^4 the dense Hessians
  (800 MB each, n Hessian-vector products) are not run: their time is extrapolated
  from 10^3 by n^2 (n products of O(n) each), and labelled as such.
"""
import numpy as np

import fasttape as ft
import fasttape.numpy as fnp
from fasttape.bench.timing import interleaved_ratio, progress, time_call


def arrow_numpy(np_):
    def f(x):
        return np_.sum((x[1:] - x[0]) ** 4) + np_.sum(x ** 2)
    return f


def arrow_loop(x):
    total = 0.0
    x0 = x[0]
    for v in x[1:]:
        total = total + (v - x0) ** 4
    for v in x:
        total = total + v * v
    return total


def _pattern_and_coloring(traced):
    from fasttape.compressed import HessianPlan
    from fasttape.sparsity import hessian_sparsity
    return lambda: HessianPlan(hessian_sparsity(traced._current, traced.argnum))


def _case(label, f_plain, f_traced, x, budget):
    g = ft.trace(f_traced, x)
    h = g.sparse_hessian(x)
    med, lo, t_h, t_f, rounds = interleaved_ratio(lambda: g.sparse_hessian(x),
                                                  lambda: f_plain(x), budget)
    t_pc = time_call(_pattern_and_coloring(g), budget).median
    row = dict(label=label, n=len(x), f_s=t_f, sparse_hessian_s=t_h,
               sparse_hessian_over_f=med, sparse_hessian_over_f_min=lo,
               pattern_coloring_s=t_pc, pattern_coloring_over_f=t_pc / t_f,
               colors_star=int(g.hessian_colors().max()) + 1,
               colors_acyclic=int(g.hessian_colors(coloring="acyclic").max()) + 1,
               nnz=int(h.nnz))
    return row, g


def _dense(n, budget):
    """fasttape.hessian, jax.jit(jax.hessian) and the traced sparse Hessian at n."""
    x = np.linspace(-1.0, 1.0, n)
    f = arrow_numpy(fnp)
    g = ft.trace(f, x)
    row = dict(n=n, sparse_s=time_call(lambda: g.sparse_hessian(x), budget).median)
    dense = ft.hessian(f)
    row["fasttape_dense_s"] = time_call(lambda: dense(x), budget).median
    error = np.abs(np.asarray(dense(x)) - g.sparse_hessian(x).toarray()).max()
    row["sparse_vs_dense_max_abs_diff"] = float(error)
    try:
        import jax
        import jax.numpy as jnp
        jax.config.update("jax_enable_x64", True)
        jh = jax.jit(jax.hessian(arrow_numpy(jnp)))
        xj = jnp.asarray(x)
        jh(xj).block_until_ready()
        row["jax_jit_dense_s"] = time_call(lambda: jh(xj).block_until_ready(),
                                           budget).median
    except ImportError:
        row["jax_jit_dense_s"] = None
    return row


def sparse_section(budget):
    res = {"arrowhead": []}
    n = 10_000
    x = np.linspace(-1.0, 1.0, n)
    progress("  sparse: arrowhead n=10^4, f on NumPy arrays")
    row, _ = _case("NumPy", arrow_numpy(np), arrow_numpy(fnp), x, budget)
    res["arrowhead"].append(row)
    progress("  sparse: arrowhead n=10^4, f a Python loop on floats")
    xs = x.tolist()
    row, _ = _case("Python loop", arrow_loop, arrow_loop, xs, budget)
    res["arrowhead"].append(row)
    progress("  sparse: dense Hessians at n=10^3")
    small = _dense(1_000, budget)
    big = res["arrowhead"][0]
    scale = (n / 1_000) ** 2
    res["dense"] = dict(
        small=small, n_big=n, sparse_big_s=big["sparse_hessian_s"],
        fasttape_dense_big_extrapolated_s=small["fasttape_dense_s"] * scale,
        jax_jit_dense_big_extrapolated_s=(None if small["jax_jit_dense_s"] is None
                                          else small["jax_jit_dense_s"] * scale))
    return res


def print_sparse(res, out):
    from fasttape.bench.timing import fmt_ratio, fmt_time
    print("\n== Sparse Hessians: arrowhead sum((x[1:] - x[0])**4) + sum(x**2)", file=out)
    for r in res["arrowhead"]:
        print(f"   n={r['n']}, f as {r['label']}: f {fmt_time(r['f_s'])}; "
              f"g.sparse_hessian(x) {fmt_time(r['sparse_hessian_s'])} = "
              f"{fmt_ratio(r['sparse_hessian_over_f'])} f (min "
              f"{fmt_ratio(r['sparse_hessian_over_f_min'])}); pattern + colouring "
              f"{fmt_time(r['pattern_coloring_s'])} = "
              f"{fmt_ratio(r['pattern_coloring_over_f'])} f; colours: star "
              f"{r['colors_star']}, acyclic {r['colors_acyclic']}; nnz {r['nnz']}",
              file=out)
    d = res["dense"]
    s = d["small"]
    jax_s = s["jax_jit_dense_s"]
    print(f"   n={s['n']}: sparse {fmt_time(s['sparse_s'])}; fasttape.hessian "
          f"{fmt_time(s['fasttape_dense_s'])} "
          f"({fmt_ratio(s['fasttape_dense_s'] / s['sparse_s'])} the sparse); "
          f"jax.jit(jax.hessian) "
          + ("not installed" if jax_s is None else
             f"{fmt_time(jax_s)} ({fmt_ratio(jax_s / s['sparse_s'])} the sparse)")
          + f"; max |sparse - dense| {s['sparse_vs_dense_max_abs_diff']:.1e}", file=out)
    big = d["sparse_big_s"]
    jax_big = d["jax_jit_dense_big_extrapolated_s"]
    print(f"   n={d['n_big']}: sparse {fmt_time(big)}; dense extrapolated from "
          f"n={s['n']} by n^2 (not run: 800 MB per Hessian): fasttape.hessian "
          f"~{fmt_time(d['fasttape_dense_big_extrapolated_s'])} "
          f"(~{fmt_ratio(d['fasttape_dense_big_extrapolated_s'] / big)} the sparse)"
          + ("" if jax_big is None else
             f", jax.jit(jax.hessian) ~{fmt_time(jax_big)} "
             f"(~{fmt_ratio(jax_big / big)} the sparse)"), file=out)
