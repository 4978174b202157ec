"""Running a workload: every selected variant set up, its derivative checked against
fasttape's, timed, and its ratios computed within the run; one row (a dict) each.
"""
import gc
import time

import numpy as np

from fasttape.bench.libraries import load
from fasttape.bench.peers import NotApplicable
from fasttape.bench.timing import fmt_time, progress, time_call


def run_workload(workload, variant_names, budget, quick=False):
    """Time every selected variant of one workload; returns a list of row dicts.

    Every variant is set up before any is timed (so that one-off costs such as JIT
    compilation are out of the way). Each timed cell starts with one call whose
    derivative is checked against fasttape's, then ``time_call`` with ``budget``.
    """
    rows = []
    reference = None            # fasttape's gradient, the reference for the checks
    for variant, case in set_up(workload, variant_names, quick):
        if isinstance(case, dict):          # failed in setup
            rows.append(case)
            continue
        row, reference = time_case(workload, variant, case, budget, reference)
        rows.append(row)
    add_ratios(workload, rows)
    return rows


def _failed(workload, variant, e):
    return dict(workload=workload.name, variant=variant.name, kind=variant.kind,
                library=variant.library, error=f"{type(e).__name__}: {e}")


def set_up(workload, variant_names, quick):
    """[(variant, Case or, if its setup failed, an error row)] of the selected
    variants whose library is installed and that apply to the workload."""
    cases = []
    selected = set(variant_names)
    for name, variant in workload.setups.items():
        if name not in selected or (quick and variant.slow):
            continue
        try:
            ops = load(variant.library)
        except ImportError as e:
            progress(f"  {workload.name} / {name}: skipped ({variant.library} not "
                     f"installed: {e})")
            continue
        try:
            progress(f"  {workload.name} / {name}: setting up")
            f = workload.make(ops)
            case = variant.setup(ops, f, workload.args)
        except NotApplicable:
            continue
        except Exception as e:          # a peer that cannot run this workload
            progress(f"  {workload.name} / {name}: FAILED in setup: "
                     f"{type(e).__name__}: {e}")
            cases.append((variant, _failed(workload, variant, e)))
            continue
        cases.append((variant, case))
    return cases


def time_case(workload, variant, case, budget, reference):
    """(row, reference): one variant checked and timed; its times per item (per point
    for the replay workloads). ``reference`` is fasttape's derivative (None before
    fasttape's row)."""
    name = variant.name
    if case.compile_s is not None:
        progress(f"  {workload.name} / {name}: compiled in {case.compile_s:.2f} s")
    row = dict(workload=workload.name, variant=name, kind=variant.kind,
               library=variant.library, compile_s=case.compile_s,
               n_nodes=case.n_nodes, note=case.note, check=None,
               max_abs_diff=None, per=case.per)
    try:
        # warm-up call, whose gradient is checked against fasttape's before timing
        gc.collect()
        t0 = time.perf_counter()
        result = case.call()
        first = time.perf_counter() - t0
        if case.gradient is not None:
            reference = check_gradient(row, case.gradient(result), reference,
                                       workload.rtol)
            progress(f"  {workload.name} / {name}: gradient {row['check']}")
        del result
        progress(f"  {workload.name} / {name}: timing")
        timing = time_call(case.call, budget, first=first)
    except Exception as e:
        progress(f"  {workload.name} / {name}: FAILED: {type(e).__name__}: {e}")
        return _failed(workload, variant, e), reference
    row.update(median_s=timing.median / case.per, min_s=timing.min / case.per,
               number=timing.number, repeats=timing.repeats, first_call_s=first)
    if workload.n_ops:
        row.update(median_per_op_s=row["median_s"] / workload.n_ops,
                   min_per_op_s=row["min_s"] / workload.n_ops)
    progress(f"  {workload.name} / {name}: {fmt_time(row['median_s'])} "
             f"{workload.unit} ({timing.repeats} x {timing.number} calls)")
    return row, reference


def add_ratios(workload, rows):
    """Each timed row's ratio to the baseline (f) and, for a whole derivative, to
    the workload's reference row (fasttape's), all from this run."""
    base = next((r["median_s"] for r in rows if r.get("kind") == "baseline"
                 and "median_s" in r), None)
    mine = next((r["median_s"] for r in rows if r.get("variant") == workload.reference
                 and "median_s" in r), None)
    for row in rows:
        if "median_s" not in row:
            continue
        row["ratio_to_f"] = row["median_s"] / base if base else None
        row["fasttape_speedup"] = (row["median_s"] / mine
                                   if mine and row["kind"] == "grad" else None)


def check_gradient(row, g, reference, rtol=1e-6):
    """Compare gradient g with fasttape's (np.allclose with ``rtol``) and note the
    outcome in row["check"]; fasttape's own row sets the reference. Returns the
    reference."""
    if row["variant"] == "fasttape":
        row["check"] = "reference"
        return g
    if reference is None:
        row["check"] = "no reference"
    elif g.shape != reference.shape:
        row["check"] = f"MISMATCH (shape {g.shape} vs {reference.shape})"
    else:
        row["max_abs_diff"] = float(np.max(np.abs(g - reference)))
        if np.allclose(g, reference, rtol=rtol):
            row["check"] = "ok"
        else:
            row["check"] = "MISMATCH"
            progress(f"  {row['workload']} / {row['variant']}: gradient DISAGREES with "
                     f"fasttape's (max abs diff {row['max_abs_diff']:.3g})")
    return reference
