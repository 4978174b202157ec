"""The op table (fasttape/_optable.py) and what is generated from it.

The table is the one source of each scalar op's formulas; the C of the sweeps, the
enum, the elementary functions and the recorded rules are made from it. These tests
fail when a generated file is out of date, when the compiled enum disagrees with the
table, when a kind's FIRST/LAST markers cover other codes, when a C helper and its
Python twin disagree, and they show that adding an op is one row.
"""
import dataclasses
import math
import os
import runpy
import subprocess
import sys

import numpy as np
import pytest

from fasttape import _optable, _rules
from fasttape._tape import COMPILED_OP_CODES, N_OP_CODES, OP_TABLE, op_arity, op_formulas

SOURCE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                      "fasttape")
GENERATOR = os.path.join(SOURCE, "_generate.py")
needs_source = pytest.mark.skipif(not os.path.exists(GENERATOR),
                                  reason="needs the source tree beside the tests")
ROWS = _optable.expanded()


@needs_source
def test_generated_files_are_up_to_date_with_the_table():
    result = subprocess.run([sys.executable, GENERATOR, "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_compiled_enum_has_the_table_codes():
    compiled = {k: v for k, v in COMPILED_OP_CODES.items()
                if not k.startswith(("FIRST_", "LAST_"))}
    assert compiled == {name: code for code, (name, _, _) in enumerate(ROWS)}
    assert N_OP_CODES == len(ROWS)


@pytest.mark.parametrize("kind", ["arithmetic", "unary", "binary"])
def test_the_markers_of_a_kind_cover_exactly_its_codes(kind):
    first = COMPILED_OP_CODES["FIRST_" + kind.upper()]
    last = COMPILED_OP_CODES["LAST_" + kind.upper()]
    assert [name for name, op, _ in ROWS if op.kind == kind] == \
        [ROWS[code][0] for code in range(first, last + 1)]


@pytest.mark.parametrize("code", range(len(ROWS)), ids=[r[0] for r in ROWS])
def test_the_c_arity_is_the_number_of_variable_operands(code):
    name, op, variant = ROWS[code]
    expected = {"structural": {"LEAF": 0, "CONST": 0, "SELECT": 3, "ARRAY": 0}.get(name),
                "unary": 1, "binary": 2,
                "arithmetic": 2 if variant == "VV" else 1}[op.kind]
    assert op_arity(code) == expected == OP_TABLE[code][2]


def _points(op, n=40):
    return list(zip(*_optable.sample(op, np.random.default_rng(7), n)))


FUNCTION_ROWS = [(code, op) for code, (_, op, variant) in enumerate(ROWS)
                 if op.kind in ("unary", "binary")]


@pytest.mark.parametrize("code, op", FUNCTION_ROWS, ids=[op.name for _, op in FUNCTION_ROWS])
def test_recorded_rules_agree_with_the_c_formulas(code, op):
    # the Python rule (twins of the C helpers, formulas evaluated with fasttape.numpy)
    # gives the same partials as the generated C at the row's test domain
    rule = (_rules.UNARY_PARTIALS if op.kind == "unary" else _rules.BINARY_PARTIALS)[
        ROWS[code][0]]
    # (on one-value arrays: a plain number operand is a constant, whose partial the
    # rules skip)
    for point in _points(op):
        y, partials, _ = op_formulas(code, *point)
        python = rule(*(np.array([v]) for v in point), np.array([y]))
        python = python if isinstance(python, tuple) else (python,)
        python = [float(np.ravel(p)[0]) for p in python]
        np.testing.assert_allclose(python, partials, rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("code, op", FUNCTION_ROWS, ids=[op.name for _, op in FUNCTION_ROWS])
def test_c_second_partials_are_derivatives_of_the_first(code, op):
    # central differences of the C first partials against the C second partials
    h = 1e-6
    for point in _points(op, 10):
        _, _, seconds = op_formulas(code, *point)
        if op.kind == "unary":
            (x,) = point
            up = op_formulas(code, x + h)[1][0]
            down = op_formulas(code, x - h)[1][0]
            np.testing.assert_allclose(seconds[0], (up - down) / (2 * h),
                                       rtol=1e-5, atol=1e-6)
        else:
            a, b = point
            da_a = (op_formulas(code, a + h, b)[1][0] - op_formulas(code, a - h, b)[1][0])
            db_b = (op_formulas(code, a, b + h)[1][1] - op_formulas(code, a, b - h)[1][1])
            da_b = (op_formulas(code, a, b + h)[1][0] - op_formulas(code, a, b - h)[1][0])
            np.testing.assert_allclose(seconds, np.array([da_a, da_b, db_b]) / (2 * h),
                                       rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["ADD", "SUB", "MUL", "DIV", "POW"])
def test_constant_operand_variants_take_the_partials_of_their_operand(name):
    op = _optable.OPS_BY_NAME[name]
    x, c = 1.7, 0.6
    for variant in op.variants:
        code = [i for i, row in enumerate(ROWS) if row[0] == f"{name}_{variant}"][0]
        a, b = (x, c) if variant == "VC" else (c, x)
        y, partials, _ = op_formulas([i for i, r in enumerate(ROWS)
                                      if r[0] == f"{name}_VV"][0], a, b)
        expected = partials[0] if variant == "VC" else partials[1]
        assert _rules.constant_operand_partial(ROWS[code][0], x, c, y) == \
            pytest.approx(expected, rel=1e-14)


def test_op_formulas_refuses_codes_without_formulas():
    for name in ("LEAF", "CONST", "SELECT", "ARRAY", "ADD_VC"):
        code = [i for i, r in enumerate(ROWS) if r[0] == name][0]
        with pytest.raises(ValueError, match="not a unary op"):
            op_formulas(code, 1.0)
    with pytest.raises(ValueError):
        op_formulas(10 ** 6, 1.0)


def test_pow_conventions_at_zero_agree_in_c_and_python():
    code = [i for i, r in enumerate(ROWS) if r[0] == "POW_VV"][0]
    for a, b in [(0.0, 2.0), (0.0, 0.0), (2.0, 0.0), (0.0, 1.0), (-1.5, 3.0)]:
        y, partials, _ = op_formulas(code, a, b)
        # (nan where C has nan: log of a negative base)
        np.testing.assert_equal(_rules.pow_dbase(a, b), partials[0])
        np.testing.assert_equal(_rules.pow_dexponent(a, y), partials[1])


@needs_source
def test_adding_a_unary_op_is_one_row(tmp_path):
    """A new row reaches every generated file and the recorded rules, nothing else
    edited: the enum, the C formulas and steps, the function, its ufunc registration,
    its stub and its rule."""
    generate = runpy.run_path(GENERATOR)
    table = generate["TABLE"]
    row = table.unary("softplus_demo", "log1p(exp(x))", "sigmoid(x)",
                      "sigmoid(x) * (1.0 - sigmoid(x))", "log(1 + exp(x)).",
                      ("uniform", -3, 3), numpy=(), scipy="softplus_demo")
    structural_tail = [op for op in table.OPS if op.kind == "structural"][-2:]
    ops = tuple(op for op in table.OPS if op not in structural_tail)
    # a unary row goes after the last unary one
    last_unary = max(i for i, op in enumerate(ops) if op.kind == "unary")
    new_ops = ops[:last_unary + 1] + (row,) + ops[last_unary + 1:] + tuple(structural_tail)
    original = table.OPS
    table.OPS = new_ops
    try:
        ctx = generate["context"]()
        texts = {name: generate["render"](name, ctx) for name in generate["OUTPUTS"]}
    finally:
        table.OPS = original
    assert "OP_SOFTPLUS_DEMO = " in texts["_opcodes.pxd"]
    opmath = texts["_opmath.pxd"]
    for function in ("eval_unary", "unary_partial", "unary_second", "reverse_step",
                     "replay_step", "tangent_step", "second_order_step", "unary_reverse"):
        body = opmath.split(f" {function}(")[1].split("\ncdef ")[0]
        assert "OP_SOFTPLUS_DEMO" in body, function
    assert "def softplus_demo(x):" in texts["_elementary.pyx"]
    assert "'softplus_demo'" in texts["_elementary.pyx"]
    assert "def softplus_demo(x: Variable) -> Variable" in texts["_elementary.pyi"]
    rule = eval(f"lambda x, y: {row.partials[0]}", _rules.FORMULA_NAMESPACE)
    assert rule(0.3, None) == pytest.approx(1 / (1 + math.exp(-0.3)))
    assert dataclasses.is_dataclass(row)


@pytest.mark.parametrize("name, dependence, interactions", [
    ("ADD", {"a": "linear", "b": "linear"}, []),
    ("MUL", {"a": "nonlinear", "b": "nonlinear"}, [("a", "b")]),
    ("DIV", {"a": "nonlinear", "b": "nonlinear"}, [("a", "b"), ("b", "b")]),
    ("SIN", {"x": "nonlinear"}, [("x", "x")]),
    ("NEG", {"x": "linear"}, []),
    ("SIGN", {"x": "none"}, []),
    ("MAXIMUM", {"a": "nonlinear", "b": "nonlinear"}, []),
    ("RAD2DEG", {"x": "linear"}, []),
])
def test_sparsity_of_an_op_is_read_from_its_formulas(name, dependence, interactions):
    op = _optable.OPS_BY_NAME[name]
    assert _optable.dependence(op) == dependence
    assert _optable.interactions(op) == interactions


@pytest.mark.parametrize("code, op", FUNCTION_ROWS, ids=[op.name for _, op in FUNCTION_ROWS])
def test_second_partials_vanish_where_the_table_says_no_interaction(code, op):
    # the structural zeros that interactions() reads agree with the C second partials
    pairs = ([("x", "x")] if op.kind == "unary" else [("a", "a"), ("a", "b"), ("b", "b")])
    live = set(_optable.interactions(op))
    for point in _points(op, 10):
        _, _, seconds = op_formulas(code, *point)
        for pair, second in zip(pairs, seconds):
            if pair not in live:
                assert second == 0.0, (pair, point)
