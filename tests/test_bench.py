"""The benchmark harness (fasttape.bench): --only parsing, a workload run through the
timing loop with a tiny budget, the agreement check, the table, and that importing the
asv suite's modules (workloads, timing) leaves the catalog's data unbuilt."""
import io

import numpy as np
import pytest
from support import assert_runs_cleanly

from fasttape.bench.catalog import SCALAR_SETUPS, WORKLOADS, all_variants
from fasttape.bench.cli import SECTIONS, parse_only
from fasttape.bench.report import print_workload_table
from fasttape.bench.run import check_gradient, run_workload
from fasttape.bench.timing import interleaved_ratio, time_call

BUDGET = 0.01        # time box per cell: time_call still makes its 3 repeats of ~10 ms


def test_only_absent_runs_everything():
    workloads, variants, sections = parse_only(None)
    assert workloads == list(WORKLOADS)
    assert variants == list(all_variants())
    assert sections == list(SECTIONS)


def test_only_workloads_run_every_variant_and_no_section():
    workloads, variants, sections = parse_only("textbook, logreg")
    assert workloads == ["textbook", "logreg"]
    assert set(variants) == set(all_variants())
    assert sections == []


def test_only_library_runs_its_variants_with_baselines_and_references():
    workloads, variants, sections = parse_only("autograd")
    assert workloads == list(WORKLOADS)
    assert sections == ["memory"]
    assert {"autograd", "autograd list"} <= set(variants)
    # the baselines and the reference rows give the ratios
    assert {"python f", "numpy f", "fasttape", "traced g.grad"} <= set(variants)
    assert "torch" not in variants and "fasttape record" not in variants


def test_only_sections_alone():
    assert parse_only("foundation") == ([], [], ["foundation"])


@pytest.mark.parametrize("only", ["bogus", "textbook,bogus", "Textbook"])
def test_only_unknown_name_exits_naming_it_and_the_choices(only):
    with pytest.raises(SystemExit) as info:
        parse_only(only)
    message = str(info.value)
    bad = [t for t in only.split(",") if t not in WORKLOADS][0]
    assert f"unknown name {bad!r}" in message
    assert "rosenbrock" in message and "memory" in message and "autograd" in message


def test_time_call_with_a_tiny_budget():
    t = time_call(lambda: sum(range(100)), BUDGET)
    assert t.repeats >= 3 and t.number >= 1
    assert 0 < t.min <= t.median
    assert t.result == 4950                   # the warm-up call's result


def test_interleaved_ratio_of_a_call_with_itself_is_about_one():
    r = interleaved_ratio(lambda: sum(range(200)), lambda: sum(range(200)), BUDGET)
    assert r.rounds >= 5
    assert 0.3 < r.median < 3.0


def _run(name, variants):
    rows = run_workload(WORKLOADS[name], variants, BUDGET)
    return {r["variant"]: r for r in rows}, rows


def test_textbook_through_the_timing_path():
    variants = ["python f", "fasttape", "fasttape record", "fasttape sweep"]
    by_name, rows = _run("textbook", variants)
    assert [r["variant"] for r in rows] == variants
    assert all("error" not in r for r in rows)
    assert by_name["python f"]["kind"] == "baseline"
    assert by_name["python f"]["ratio_to_f"] == 1.0
    assert by_name["fasttape"]["check"] == "reference"
    assert by_name["fasttape"]["fasttape_speedup"] == 1.0
    # the sweep's gradient, read from the leaves, against fasttape.grad's
    assert by_name["fasttape sweep"]["check"] == "ok"
    assert by_name["fasttape sweep"]["max_abs_diff"] == 0.0
    assert by_name["fasttape record"]["n_nodes"] == 5        # 2 leaves, *, sin, +
    assert by_name["fasttape record"]["fasttape_speedup"] is None     # a part
    for r in rows:
        assert 0 < r["min_s"] <= r["median_s"] and r["repeats"] >= 3

    out = io.StringIO()
    print_workload_table(WORKLOADS["textbook"], rows, out)
    table = out.getvalue().splitlines()
    assert table[1] == "== textbook: " + WORKLOADS["textbook"].title
    assert table[2] == "   fasttape tape: 5 nodes"
    assert table[3].split() == ["variant", "median", "min", "/", "f", "fasttape",
                                "faster", "gradient", "compile", "calls"]
    assert [line[3:19].strip() for line in table[5:]] == variants


def test_array_workload_records_array_nodes_and_times_per_op():
    variants = ["numpy f", "fasttape", "fasttape record", "fasttape sweep"]
    by_name, rows = _run("small-arrays", variants)
    assert [r["variant"] for r in rows] == variants
    assert by_name["fasttape sweep"]["check"] == "ok"
    assert by_name["fasttape record"]["note"] == "101 array nodes"
    n_ops = WORKLOADS["small-arrays"].n_ops
    assert by_name["fasttape"]["median_per_op_s"] == pytest.approx(
        by_name["fasttape"]["median_s"] / n_ops)


def test_check_gradient_marks_a_disagreement():
    reference = np.array([1.0, 2.0])
    row = dict(workload="w", variant="peer")
    check_gradient(row, np.array([1.0, 2.5]), reference)
    assert row["check"] == "MISMATCH" and row["max_abs_diff"] == 0.5
    row = dict(workload="w", variant="peer")
    check_gradient(row, np.array([1.0, 2.0, 3.0]), reference)
    assert row["check"].startswith("MISMATCH (shape")
    row = dict(workload="w", variant="peer")
    check_gradient(row, reference * (1 + 1e-9), reference)
    assert row["check"] == "ok"


def test_every_scalar_variant_has_a_note_for_the_header():
    assert all(v.note for v in SCALAR_SETUPS.values())


def test_workloads_and_timing_import_without_the_catalog():
    """asv's scalar benchmarks import these; the catalog's data (~20 MB) would count
    in their peakmem_."""
    assert_runs_cleanly("""
        import sys
        import fasttape.bench.libraries
        import fasttape.bench.timing
        import fasttape.bench.workloads as w
        assert "fasttape.bench.catalog" not in sys.modules
        assert w.logreg_data.cache_info().currsize == 0
        import fasttape.bench as b
        assert "textbook" in b.WORKLOADS and callable(b.main)
        """)
