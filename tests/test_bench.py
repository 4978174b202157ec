"""The benchmark harness (fasttape.bench): --only parsing, a workload run through the
timing loop with a tiny budget, the agreement check, the table, the JSON's schema and
the chart's layout, and that importing the asv suite's modules (workloads, timing)
leaves the catalog's data unbuilt."""
import io
import json

import numpy as np
import pytest
from support import assert_runs_cleanly

from fasttape.bench import report
from fasttape.bench.catalog import SCALAR_SETUPS, WORKLOADS, all_variants
from fasttape.bench.cli import SECTIONS, main, parse_only
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


def test_interleaved_ratio_divides_the_two_calls_times(monkeypatch):
    # a clock that only the calls move (no timing of this machine): the numerator
    # takes 3 ticks a call, the denominator 2, so every round's ratio is 1.5
    from fasttape.bench import timing
    clock = [0.0]

    def ticking(ticks):
        def call():
            clock[0] += ticks * 1e-4
        return call

    monkeypatch.setattr(timing.time, "perf_counter", lambda: clock[0])
    r = interleaved_ratio(ticking(3), ticking(2), budget=0.05)
    assert r.rounds >= 5
    assert r.median == pytest.approx(1.5) and r.min == pytest.approx(1.5)
    assert r.num_s == pytest.approx(3e-4) and r.den_s == pytest.approx(2e-4)


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


# The JSON of schema version 1: its top-level fields, and the fields of a timed row. A
# change to them without a new report.SCHEMA_VERSION fails here.
SCHEMA_1_FIELDS = ("schema_version", "machine", "settings", "results", "foundation",
                   "memory", "elapsed_s")
SCHEMA_1_ROW_FIELDS = {"workload", "variant", "kind", "library", "compile_s", "n_nodes",
                       "note", "check", "max_abs_diff", "per", "median_s", "min_s",
                       "number", "repeats", "first_call_s", "ratio_to_f",
                       "fasttape_speedup"}
SCHEMA_1_MACHINE_FIELDS = {"date", "platform", "machine", "cpu_model", "cpu_count",
                           "python", "python_implementation", "numpy", "fasttape",
                           "fasttape_path", "fasttape_git_commit", "peers", "threads"}


def test_json_carries_its_schema_version(tmp_path, capsys):
    path = tmp_path / "results.json"
    assert main(["--only", "textbook,fasttape", "--budget", str(BUDGET),
                 "--json", str(path)]) == 0
    payload = json.loads(path.read_text())
    assert report.SCHEMA_VERSION == 1, "a new schema version: update SCHEMA_*_FIELDS"
    assert payload["schema_version"] == report.SCHEMA_VERSION
    assert tuple(payload) == SCHEMA_1_FIELDS == report.JSON_FIELDS
    assert set(payload["machine"]) == SCHEMA_1_MACHINE_FIELDS
    assert payload["settings"] == dict(quick=False, budget_s=BUDGET,
                                       only="textbook,fasttape")
    rows = payload["results"]
    assert [r["variant"] for r in rows] == ["python f", "fasttape", "fasttape record",
                                           "fasttape sweep"]
    assert all(set(r) == SCHEMA_1_ROW_FIELDS for r in rows)
    assert "results written to" in capsys.readouterr().out


def _row(workload, variant, kind, library, median_s):
    return dict(workload=workload, variant=variant, kind=kind, library=library,
                median_s=median_s, ratio_to_f=1.0, check=None)


def test_chart_separates_whole_calls_from_parts_with_legend_and_caption():
    pytest.importorskip("matplotlib")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = [_row("textbook", "python f", "baseline", "python", 1e-7),
            _row("textbook", "fasttape record", "part", "fasttape", 5e-7),
            _row("textbook", "fasttape", "grad", "fasttape", 1e-6),
            _row("textbook", "fasttape sweep", "part", "fasttape", 1e-7),
            _row("textbook", "torch", "grad", "torch", 5e-5)]
    info = report.machine_info()
    settings = dict(quick=True, budget_s=0.3, only=None)
    fig = report.chart(rows, info, settings)
    try:
        (ax,) = [a for a in fig.axes if a.get_visible()]
        labels = [t.get_text() for t in ax.get_yticklabels()]
        # the whole calls first, in the run's order, then the parts
        assert labels == ["python f", "fasttape", "torch", "fasttape record",
                          "fasttape sweep"]
        ys = list(ax.get_yticks())
        dashed = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
        assert len(dashed) == 1
        line_y = dashed[0].get_ydata()[0]
        assert ys[2] < line_y < ys[3]           # between the last call and the first part
        legend = [t.get_text() for t in fig.legends[0].get_texts()]
        assert "fasttape, whole call" in legend and "peer, whole call" in legend
        assert any(text.startswith("fasttape, part") for text in legend)
        caption = "\n".join(t.get_text() for t in fig.texts)
        for fact in (info["fasttape"], info["python"], info["numpy"], info["date"],
                     str(info["cpu_count"]), "--quick", "0.3 s per cell"):
            assert fact in caption
    finally:
        plt.close(fig)


def test_chart_caption_names_the_peers_and_a_dirty_checkout():
    info = dict(report.machine_info(), fasttape_git_commit="0123456789abcdef+dirty",
                peers={"autograd": "1.9.1", "torch": None})
    caption = report.chart_caption(info)
    assert "(0123456789ab+dirty)" in caption
    assert "autograd 1.9.1" in caption and "torch" not in caption


def test_sparse_opt_section_runs_only_when_named():
    from fasttape.bench.cli import OPTIONAL_SECTIONS
    assert "sparse-opt" in OPTIONAL_SECTIONS
    assert "sparse-opt" not in parse_only(None)[2]
    assert parse_only("sparse-opt") == ([], [], ["sparse-opt"])


def test_sparse_opt_small_problem_agrees_with_casadi():
    pytest.importorskip("casadi")
    from fasttape.bench import sparse_opt
    library = sparse_opt.casadi_ipopt_library()
    assert library is not None                  # CasADi's wheel carries IPOPT
    ours = sparse_opt.run_fasttape(40, library)
    theirs = sparse_opt.run_casadi(40)
    np.testing.assert_allclose(ours[2], theirs[2], rtol=1e-8)
    assert ours[4] == theirs[4] and ours[4].startswith("ipopt 3.")   # one IPOPT build
    for _, solve, _, _, _, evaluations in (ours, theirs):
        assert 0.0 < evaluations < solve        # (the callbacks' part of the solve)
