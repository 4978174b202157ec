"""The command line of ``python -m fasttape.bench``: the options, ``--only``, and
the order of a run (header, workloads, summaries, Foundation figures, memory).
"""
import argparse
import sys
import time

import fasttape as ft
from fasttape.bench import report
from fasttape.bench.catalog import VARIANTS, WORKLOADS, all_variants
from fasttape.bench.foundation import foundation, run_memory
from fasttape.bench.libraries import LIBRARIES
from fasttape.bench.run import run_workload
from fasttape.bench.timing import progress

SECTIONS = ("foundation", "memory")
# sections run only when named in --only (seconds each, and peers beyond the default)
OPTIONAL_SECTIONS = ("sparse", "sparse-opt")


def parse_only(only):
    """Split --only NAME[,NAME...] into (workloads, variants, sections), each a list
    of names; SystemExit naming the choices for an unknown name.

    Variants (or libraries, each standing for all its variants) alone run on every
    workload with the memory section; workloads alone run every variant. The
    baselines and each workload's reference row always run: they give every row its
    ratios.
    """
    names = all_variants()
    workloads, variants, sections = [], [], []
    if not only:
        return list(WORKLOADS), list(names), list(SECTIONS)
    for token in only.split(","):
        token = token.strip()
        if token in WORKLOADS:
            workloads.append(token)
        elif token in SECTIONS or token in OPTIONAL_SECTIONS:
            sections.append(token)
        elif token in LIBRARIES:          # a library: all its variants
            variants.extend(n for w in WORKLOADS.values() for n, v in w.setups.items()
                            if v.library == token)
        elif token in names:
            variants.append(token)
        else:
            raise SystemExit(
                f"--only: unknown name {token!r}; choose from workloads "
                f"{', '.join(WORKLOADS)}; sections "
                f"{', '.join(SECTIONS + OPTIONAL_SECTIONS)}; libraries "
                f"{', '.join(LIBRARIES)}; variants {', '.join(names)}")
    if variants and not workloads and not sections:
        workloads = list(WORKLOADS)
        sections = ["memory"]
    if workloads and not variants:
        variants = list(names)
    if variants:
        always = ([n for n, v in names.items() if v.kind == "baseline"] + ["fasttape"]
                  + [w.reference for w in WORKLOADS.values()])
        variants = list(dict.fromkeys(always + variants))
    return workloads, variants, sections


def make_parser():
    parser = argparse.ArgumentParser(
        prog="python -m fasttape.bench",
        description="Time fasttape against the installed peers (autograd, PyTorch, "
                    "JAX, micrograd, mygrad, CasADi) on scalar, array, second-order "
                    "and replay workloads; print a table and the Foundation figures.")
    parser.add_argument("--quick", action="store_true",
                        help="short time boxes; skip the slow peers (jax eager and "
                             "jax.jit on scalar loops, whose compile takes tens of "
                             "seconds) and shrink the memory probes")
    parser.add_argument("--only", metavar="NAME[,NAME]",
                        help=f"run only these workloads ({', '.join(WORKLOADS)}), "
                             f"sections ({', '.join(SECTIONS)}; and, only when named, "
                             f"{', '.join(OPTIONAL_SECTIONS)}), or libraries/variants "
                             f"({', '.join(LIBRARIES)})")
    parser.add_argument("--json", metavar="PATH", help="save all results as JSON")
    parser.add_argument("--png", metavar="PATH",
                        help="save a bar chart (needs matplotlib)")
    parser.add_argument("--budget", type=float, default=None, metavar="SECONDS",
                        help="time box per cell (default 1.5, or 0.3 with --quick)")
    return parser


def main(argv=None):
    args = make_parser().parse_args(argv)
    budget = args.budget if args.budget is not None else (0.3 if args.quick else 1.5)
    workloads, variants, sections = parse_only(args.only)

    started = time.perf_counter()
    info = report.machine_info()
    progress(f"fasttape.bench: fasttape {ft.__version__} from {info['fasttape_path']}; "
             f"peers: " + ", ".join(f"{k} {v}" for k, v in info["peers"].items()
                                    if v) + f"; budget {budget} s per cell")
    report.print_header(info, workloads, variants)

    all_rows = []
    for i, name in enumerate(workloads):
        progress(f"[{i + 1}/{len(workloads)}] workload {name}")
        rows = run_workload(WORKLOADS[name], variants, budget, args.quick)
        report.print_workload_table(WORKLOADS[name], rows)
        sys.stdout.flush()
        all_rows.extend(rows)
    report.print_summary(all_rows)

    found, mem = None, {}
    if "foundation" in sections:
        progress("foundation figures")
        found = foundation(budget)
    if "memory" in sections:
        libs = list(dict.fromkeys(["fasttape"] + [VARIANTS[v].library for v in variants
                                                  if v in VARIANTS
                                                  and VARIANTS[v].kind == "grad"]))
        mem = run_memory(libs, args.quick)
    report.print_foundation(found, mem)
    sparse = None
    if "sparse" in sections:
        from fasttape.bench.sparse import print_sparse, sparse_section
        progress("sparse Hessians")
        sparse = sparse_section(budget)
        print_sparse(sparse, sys.stdout)
    if "sparse-opt" in sections:          # printed only (not in --json's schema)
        from fasttape.bench.sparse_opt import sparse_opt
        progress("sparse optimization (IPOPT): fasttape and CasADi")
        sparse_opt()
    elapsed = time.perf_counter() - started
    print(f"\n(total {elapsed:.0f} s)")

    settings = dict(quick=args.quick, budget_s=budget, only=args.only)
    if args.json:
        payload = report.json_payload(info, settings, all_rows, found, mem, elapsed)
        if sparse is not None:
            payload["sparse"] = sparse
        report.write_json(args.json, payload)
    if args.png:
        report.save_png(args.png, all_rows, info, settings)
    return 0
