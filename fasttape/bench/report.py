"""The report: the header, a table per workload, the summary tables, the Foundation
figures and the memory table (on stdout), the machine's description, and the JSON
and PNG outputs.
"""
import datetime
import json
import math
import os
import platform
import subprocess
import sys
import textwrap

import numpy as np

import fasttape as ft
from fasttape.bench.catalog import SCALAR_SETUPS, VARIANTS, WORKLOADS
from fasttape.bench.libraries import LIBRARIES, library_version
from fasttape.bench.timing import SINGLE_THREAD_ENV, fmt_ratio, fmt_time


def print_header(info, workloads, variants, out=sys.stdout):
    """The machine, the peers, the threads, what the columns mean and, when scalar
    workloads run, what each of their variants times."""
    print(f"fasttape {info['fasttape']} ({info['fasttape_git_commit'] or 'no git'}) | "
          f"Python {info['python']} | NumPy {info['numpy']} | {info['cpu_model']} x "
          f"{info['cpu_count']} | {info['platform']} | {info['date']}", file=out)
    print("peers: " + ", ".join(f"{k} {v or 'not installed'}"
                                for k, v in info["peers"].items()), file=out)
    print("threads: " + ", ".join(f"{k}={v}" for k, v in info["threads"].items()) +
          " (torch.set_num_threads(1))", file=out)
    print("times: median (and min) seconds per call over time-boxed repeats; "
          "'/ f' = time / time of f (no derivative); 'fasttape faster' = time / "
          "fasttape's.", file=out)
    if any(WORKLOADS[w].setups is SCALAR_SETUPS for w in workloads):
        print("scalar workloads:", file=out)
        for v in variants:
            if v in VARIANTS:
                print(f"   {v:<16} {VARIANTS[v].note}", file=out)


def print_workload_table(workload, rows, out=sys.stdout):
    print(f"\n== {workload.name}: {workload.title}", file=out)
    nodes = next((r for r in rows if r.get("n_nodes")), None)
    if nodes:
        extra = f" ({nodes['note']})" if nodes.get("note") else ""
        print(f"   fasttape tape: {nodes['n_nodes']} nodes{extra}", file=out)
    if workload.unit != "per call":
        print(f"   times {workload.unit}", file=out)
    per_op = workload.n_ops is not None
    faster = "fasttape faster" if workload.reference == "fasttape" else \
        f"/ {workload.reference}"
    header = (f"   {'variant':<16} {'median':>10} {'min':>10} "
              + (f"{'per op':>10} " if per_op else "")
              + f"{'/ f':>9} {faster:>15}  {'gradient':<9} {'compile':>8}  calls")
    print(header, file=out)
    print("   " + "-" * (len(header) - 3), file=out)
    for r in rows:
        if "error" in r:
            print(f"   {r['variant']:<16} failed: {r['error']}", file=out)
            continue
        speed = r["fasttape_speedup"]
        speed_s = "-" if speed is None else (
            "1 (this)" if r["variant"] == workload.reference else fmt_ratio(speed))
        check = r["check"] or "-"
        if check == "reference":
            check = "ref"
        op_s = f"{fmt_time(r['median_per_op_s']):>10} " if per_op else ""
        print(f"   {r['variant']:<16} {fmt_time(r['median_s']):>10} "
              f"{fmt_time(r['min_s']):>10} {op_s}{fmt_ratio(r['ratio_to_f']):>9} "
              f"{speed_s:>15}  {check:<9} {fmt_time(r['compile_s']):>8}  "
              f"{r['repeats']}x{r['number']}", file=out)
    if workload.setups is not SCALAR_SETUPS:     # those notes are in the header
        for r in rows:
            note = workload.setups[r["variant"]].note
            if note:
                print(f"     {r['variant'] + ':':<17} {note}", file=out)


def print_summary(all_rows, out=sys.stdout):
    """Workloads by variants: median times, one line per workload; one table per
    group of workloads (scalar, arrays, ...) that has more than one workload."""
    groups = {}
    for r in all_rows:
        w = WORKLOADS.get(r["workload"])
        groups.setdefault(w.group if w else "", []).append(r)
    for group, rows in groups.items():
        if len(dict.fromkeys(r["workload"] for r in rows)) > 1:
            _print_summary_group(group, rows, out)


def _print_summary_group(group, all_rows, out):
    workloads = list(dict.fromkeys(r["workload"] for r in all_rows))
    variants = list(dict.fromkeys(r["variant"] for r in all_rows
                                  if "median_s" in r))
    if not workloads or not variants:
        return
    width = max(10, max(len(v) for v in variants) + 1)
    first = max(11, max(len(w) for w in workloads) + 1)
    print(f"\n== summary ({group} workloads): median time per call (x = fasttape's "
          f"speedup over it)", file=out)
    print("   " + f"{'workload':<{first}}" + "".join(f"{v:>{width}}" for v in variants),
          file=out)
    for w in workloads:
        cells = []
        for v in variants:
            r = next((r for r in all_rows if r["workload"] == w and r["variant"] == v
                      and "median_s" in r), None)
            cells.append("-" if r is None else fmt_time(r["median_s"]))
        print("   " + f"{w:<{first}}" + "".join(f"{c:>{width}}" for c in cells),
              file=out)
        cells = []
        for v in variants:
            r = next((r for r in all_rows if r["workload"] == w and r["variant"] == v
                      and "median_s" in r), None)
            s = None if r is None else r.get("fasttape_speedup")
            cells.append("" if s is None or v == "fasttape" else fmt_ratio(s))
        print("   " + f"{'':<{first}}" + "".join(f"{c:>{width}}" for c in cells),
              file=out)


def print_foundation(res, mem, out=sys.stdout):
    if res is not None:
        print_foundation_figures(res, mem, out)
    if mem:
        print_memory(mem, out)


def print_foundation_figures(res, mem, out=sys.stdout):
    print("\n== Foundation figures (fasttape, this machine, this run)", file=out)
    a = res["a_rosenbrock1000_grad_over_f"]
    print(f"   (a) Rosenbrock loop n=1000, time(grad(f)(x)) / time(f(x) on floats): "
          f"{a['ratio_median']:.2f}  (min {a['ratio_min']:.2f}; grad "
          f"{fmt_time(a['grad_s'])}, f {fmt_time(a['f_s'])}; median of "
          f"{a['rounds']} interleaved rounds)", file=out)
    b = res["b_textbook_grad_us"]
    print(f"   (b) textbook grad(lambda x, y: x*y + sin(x), argnum=(0, 1))(2.0, 3.0): "
          f"{b['median_us']:.2f} µs per call (min {b['min_us']:.2f} µs; "
          f"{b['calls']} calls)", file=out)
    for label, c in res["c_sweep_ns_per_node"].items():
        print(f"   (c) reverse sweep, {label} ({c['n_nodes']} nodes): "
              f"{c['sweep_ns_per_node']:.2f} ns/node (min "
              f"{c['sweep_ns_per_node_min']:.2f}); recording "
              f"{c['record_ns_per_node']:.0f} ns/node", file=out)
    d = res["d_memory"]
    print(f"   (d) tape bytes per scalar node: bytes_per_node = {d['bytes_per_node']} "
          f"(op + 2 int32 operands + value + adjoint); nbytes/n_nodes = "
          f"{d['nbytes_per_node']:.1f} on a {d['n_nodes']}-node chain tape "
          f"(allocated capacity after a sweep, incl. doubling slack and constants)",
          file=out)
    m = mem.get("fasttape")
    if m and "error" not in m:
        print(f"       fresh process, chain of {m['n_nodes']} nodes: tracemalloc "
              f"{m['tracemalloc_per_op']:.1f} B/node after recording, "
              f"{m['tracemalloc_per_node_after_sweep']:.1f} after the sweep; RSS "
              f"growth {_fmt_b(m['rss_per_op'])}/node, "
              f"{_fmt_b(m['rss_per_node_after_sweep'])} after the sweep; peak RSS "
              f"growth {_fmt_b(m['peak_rss_per_op'])}/node", file=out)


def print_memory(mem, out=sys.stdout):
    print("\n== memory per recorded scalar op (chain workload, 4 ops per "
          "iteration, graph held alive, fresh process)", file=out)
    print(f"   {'library':<10} {'ops':>9} {'RSS growth':>11} {'peak RSS':>10} "
          f"{'tracemalloc':>12}   (bytes per op)", file=out)
    for lib, m in mem.items():
        if "error" in m:
            print(f"   {lib:<10} failed: {m['error']}", file=out)
            continue
        print(f"   {lib:<10} {m['ops']:>9} {_fmt_b(m['rss_per_op']):>11} "
              f"{_fmt_b(m['peak_rss_per_op']):>10} "
              f"{_fmt_b(m['tracemalloc_per_op']):>12}", file=out)
    print("   (tracemalloc sees Python-allocator memory only: it misses torch's "
          "and XLA's C++ buffers; RSS sees everything but is coarse)", file=out)


def _fmt_b(x):
    return "-" if x is None else f"{x:.1f}"


def machine_info():
    cpu = None
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info = dict(
        date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        platform=platform.platform(), machine=platform.machine(),
        cpu_model=cpu or platform.processor() or None, cpu_count=os.cpu_count(),
        python=platform.python_version(),
        python_implementation=platform.python_implementation(),
        numpy=np.__version__, fasttape=ft.__version__,
        fasttape_path=os.path.dirname(os.path.abspath(ft.__file__)),
        fasttape_git_commit=_git_commit(),
        peers={lib: library_version(lib) for lib in LIBRARIES
               if lib not in ("python", "fasttape")},
        threads={k: os.environ.get(k) for k in list(SINGLE_THREAD_ENV) + ["XLA_FLAGS"]},
    )
    return info


def _git_commit():
    root = os.path.dirname(os.path.dirname(os.path.abspath(ft.__file__)))
    try:
        p = subprocess.run(["git", "-C", root, "rev-parse", "HEAD"],
                           capture_output=True, text=True, timeout=10)
        if p.returncode == 0:
            dirty = subprocess.run(["git", "-C", root, "status", "--porcelain",
                                    "--untracked-files=no"], capture_output=True,
                                   text=True, timeout=10).stdout.strip()
            return p.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return None


# The version of the JSON's layout (``JSON_FIELDS`` at the top, the rows' keys): a
# reader checks it before trusting the fields. Raise it when a field is renamed,
# removed or changes its meaning; added fields keep it.
SCHEMA_VERSION = 1
JSON_FIELDS = ("schema_version", "machine", "settings", "results", "foundation",
               "memory", "elapsed_s")

# The chart's colours: bars of a whole derivative call by library, and the lighter,
# hatched bars of the parts (record only, sweep only, one-off costs), drawn apart.
_BASELINE, _FASTTAPE, _PEER = "tab:gray", "tab:blue", "tab:orange"
_FASTTAPE_PART, _PEER_PART = "#9ecae9", "#fdc58c"


def save_png(path, all_rows, info=None, settings=None):
    """Write ``chart(all_rows, info, settings)`` to ``path`` (a PNG); a note instead when
    matplotlib is not installed."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"\n(--png: matplotlib is not installed; no chart written to {path})")
        return
    fig = chart(all_rows, info, settings)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(f"\nchart written to {path}")


def chart(all_rows, info=None, settings=None):
    """A bar chart of the median times (a matplotlib Figure), one panel per workload:
    the whole calls (the plain function first, then fasttape's and the peers'
    derivatives) above a dashed line, the parts (record only, sweep only, a trace or
    a build, each timed alone) below it; a legend on top and, when ``info``
    (``machine_info()``) is given, a caption with the versions, the machine, the
    date and the run's ``settings``."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    workloads = list(dict.fromkeys(r["workload"] for r in all_rows))
    n_cols = 2 if len(workloads) > 3 else 1
    n_rows = math.ceil(len(workloads) / n_cols)
    # (the caption's monospaced 7-point characters: about 16 to the inch)
    caption = chart_caption(info, settings, width=16 * 8 * n_cols - 4) if info else ""
    caption_in = 0.05 + 0.16 * len(caption.splitlines()) if caption else 0.0
    legend_in = 0.5
    height = 0.6 + 3.4 * n_rows + caption_in + legend_in
    fig, axes = plt.subplots(n_rows, n_cols, squeeze=False,
                             figsize=(8 * n_cols, height))
    for ax in axes.ravel()[len(workloads):]:
        ax.set_visible(False)
    for ax, w in zip(axes.ravel(), workloads):
        _workload_panel(ax, w, [r for r in all_rows
                                if r["workload"] == w and "median_s" in r])
    fig.legend(handles=[
        Patch(color=_BASELINE, label="f, no derivative (the baseline)"),
        Patch(color=_FASTTAPE, label="fasttape, whole call"),
        Patch(color=_PEER, label="peer, whole call"),
        Patch(facecolor=_FASTTAPE_PART, hatch="//", edgecolor="white",
              label="fasttape, part (record only, sweep only, trace, replayed value)"),
        Patch(facecolor=_PEER_PART, hatch="//", edgecolor="white",
              label="peer, part (build)"),
    ], loc="upper center", ncol=3, fontsize=8, frameon=False)
    if caption:
        fig.text(0.01, 0.005, caption, fontsize=7, va="bottom", ha="left",
                 family="monospace")
    fig.tight_layout(rect=(0, caption_in / height, 1, 1 - legend_in / height))
    return fig


def _workload_panel(ax, name, rows):
    """One workload's bars: whole calls on top, then a dashed line, then parts."""
    whole = [r for r in rows if r["kind"] != "part"]
    parts = [r for r in rows if r["kind"] == "part"]
    ordered = whole + parts
    # the parts sit one bar's height below the whole calls, past a dashed line
    ys = list(range(len(whole))) + [len(whole) + 1 + i for i in range(len(parts))]
    times = [r["median_s"] for r in ordered]
    colors, hatches = zip(*[_bar_style(r) for r in ordered]) if ordered else ((), ())
    bars = ax.barh(ys, times, color=colors, edgecolor="white", linewidth=0)
    for bar, hatch in zip(bars, hatches):
        bar.set_hatch(hatch)
    ax.set_yticks(ys, [r["variant"] for r in ordered])
    ax.set_xscale("log")
    if times:
        ax.set_xlim(right=max(times) * 30)        # room for the labels
    if whole and parts:
        ax.axhline(len(whole), color="0.5", linestyle="--", linewidth=0.8)
        ax.text(0.995, len(whole), "parts, timed alone ",
                transform=ax.get_yaxis_transform(), ha="right", va="center",
                fontsize=7, color="0.35",
                bbox=dict(facecolor="white", edgecolor="none", pad=1))
    ax.set_ylim(max(ys, default=0) + 0.7, -0.7)
    workload = WORKLOADS[name]
    ax.set_title(textwrap.fill(f"{name}: {workload.title}", 90), fontsize=8)
    ax.set_xlabel(f"median seconds {workload.unit} (log scale)", fontsize=8)
    ax.tick_params(labelsize=8)
    for y, t, r in zip(ys, times, ordered):
        label = " " + fmt_time(t)
        if r.get("ratio_to_f"):
            label += f" ({fmt_ratio(r['ratio_to_f'])} f)"
        if r.get("check") and r["check"].startswith("MISMATCH"):
            label += " MISMATCH"
        ax.text(t, y, label, va="center", fontsize=7)


def _bar_style(row):
    """(colour, hatch) of a row's bar."""
    if row["kind"] == "baseline":
        return _BASELINE, ""
    fasttape = row["library"] == "fasttape"
    if row["kind"] == "part":
        return (_FASTTAPE_PART if fasttape else _PEER_PART), "//"
    return (_FASTTAPE if fasttape else _PEER), ""


def chart_caption(info, settings=None, width=150):
    """The chart's caption: what ran, where and when (from ``machine_info()``), and
    how (``settings``: --quick, the time box per cell), in lines of at most ``width``
    characters."""
    peers = ", ".join(f"{k} {v}" for k, v in info["peers"].items() if v)
    commit = info.get("fasttape_git_commit") or ""
    commit = commit[:12] + ("+dirty" if commit.endswith("+dirty") else "")
    threads = {k: v for k, v in info.get("threads", {}).items()
               if k.endswith("_NUM_THREADS") and v}
    threads = (", ".join(f"{k}={v}" for k, v in threads.items())
               if len(set(threads.values())) > 1 else
               f"BLAS/OpenMP threads {next(iter(threads.values()))}" if threads else "")
    lines = [
        f"fasttape {info['fasttape']}" + (f" ({commit})" if commit else "")
        + f" | Python {info['python']} | NumPy {info['numpy']} | {info['date']}",
        f"{info['cpu_model'] or info['machine']} x {info['cpu_count']} | "
        f"{info['platform']}" + (f" | {threads}" if threads else ""),
        f"peers installed: {peers or 'none'}",
        "bars: median time (log scale); labels: the time and its ratio to f; compare "
        "ratios, not times, across machines",
    ]
    if settings:
        options = ((" --quick" if settings.get("quick") else "")
                   + (f" --only {settings['only']}" if settings.get("only") else ""))
        lines[-1] = (f"python -m fasttape.bench{options}, {settings.get('budget_s')} s "
                     f"per cell | " + lines[-1])
    return "\n".join(textwrap.fill(line, width, subsequent_indent="  ")
                     for line in lines)


def json_payload(info, settings, results, foundation, memory, elapsed_s):
    """What ``--json`` writes: ``JSON_FIELDS``, ``schema_version`` first."""
    payload = dict(schema_version=SCHEMA_VERSION, machine=info, settings=settings,
                   results=results, foundation=foundation, memory=memory,
                   elapsed_s=elapsed_s)
    return payload


def write_json(path, payload):
    with open(path, "w") as fh:
        json.dump(payload, fh, indent=1, default=_json_default)
    print(f"results written to {path}")


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)
