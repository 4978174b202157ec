"""Layers import downwards only.

Every module of the package (the .py files read with ``ast``, the .pyx and .pxd files
with a regular expression for ``import``, ``cimport`` and ``from ... import``) may
import only modules of strictly lower layers than its own, at module level or inside
a function. LAYERS below is the order; docs/architecture.md says what each module
owns and must list the same modules in the same layers.

A lower layer that needs something of an upper one gets it handed in through a hook
(fasttape._wiring fills them all, called once by fasttape/__init__.py) instead of
importing it.
"""
import ast
import re
from pathlib import Path

from support import assert_runs_cleanly

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "fasttape"
ARCHITECTURE = ROOT / "docs" / "architecture.md"

# Bottom to top. "X.pxd" stands for the Cython declarations of module X on their own,
# in a layer below X (where a file depends on those declarations and not on X); none
# is listed now (the op codes and typedefs are _opcodes.pxd's, a module of declarations
# only). Any other .pxd is part of its module.
LAYERS = (
    ("fasttape.errors", "fasttape._references", "fasttape._optable", "fasttape._compat",
     "fasttape._version", "fasttape.scipy._adjoint_steps", "fasttape._ipopt"),
    ("fasttape._generate", "fasttape._opcodes", "fasttape._opmath_helpers",
     "fasttape._set_helpers"),
    ("fasttape._opmath_rare",),
    ("fasttape._opmath",),
    ("fasttape._tape_storage",),
    ("fasttape._array_helpers", "fasttape._sparsity", "fasttape._array_sets",
     "fasttape._coloring"),
    ("fasttape._array_reverse", "fasttape._array_forward"),
    ("fasttape._reverse", "fasttape._reverse_lanes", "fasttape._forward"),
    ("fasttape._second_order", "fasttape._batched", "fasttape._ode_adjoint",
     "fasttape._scalar_calls"),
    ("fasttape._tape",),
    ("fasttape._tape_pools",),
    ("fasttape._variable",),
    ("fasttape._elementary", "fasttape._scalar_recording_sweep"),
    ("fasttape._arrays",),
    ("fasttape._containers", "fasttape._tape_state", "fasttape._executors", "fasttape._masks",
     "fasttape._vspace", "fasttape.builtins"),
    ("fasttape._rule_nodes",),
    ("fasttape.numpy._einsum", "fasttape.numpy._gathers", "fasttape.numpy._joiners",
     "fasttape.numpy._values_only",
     "fasttape.extend"),
    ("fasttape.numpy", "fasttape.math"),
    ("fasttape.numpy.linalg", "fasttape.scipy.special", "fasttape.branching",
     "fasttape.scipy.signal"),
    ("fasttape.scipy.stats._common",),
    ("fasttape.scipy.stats.norm", "fasttape.scipy.stats.t", "fasttape.scipy.stats.gamma",
     "fasttape.scipy.stats.chi2", "fasttape.scipy.stats.beta",
     "fasttape.scipy.stats.poisson", "fasttape.scipy.stats.dirichlet",
     "fasttape.scipy.stats.multivariate_normal", "fasttape._rules", "fasttape._complex"),
    ("fasttape._recording_sweeps", "fasttape.numpy.fft", "fasttape.scipy.stats",
     "fasttape.scipy.linalg", "fasttape._complex_linalg"),
    ("fasttape._recording", "fasttape.scipy", "fasttape.sparsity"),
    ("fasttape.differential", "fasttape._complex_recording", "fasttape.compressed",
     "fasttape._trace_many"),
    ("fasttape.trace", "fasttape.composed", "fasttape.core", "fasttape.misc.flatten",
     "fasttape.tree_util"),
    ("fasttape.scipy.integrate", "fasttape.check", "fasttape.sparse", "fasttape.optimize",
     "fasttape.misc.tracers", "fasttape.misc.fixed_points", "fasttape.misc.optimizers"),
    ("fasttape._wiring", "fasttape.misc"),
    ("fasttape",),
    ("fasttape.__main__", "fasttape.bench", "fasttape.bench.timing",
     "fasttape.bench.workloads", "fasttape.bench.libraries"),
    ("fasttape.bench.peers",),
    ("fasttape.bench.catalog", "fasttape.bench.run"),
    ("fasttape.bench.foundation", "fasttape.bench.report", "fasttape.bench.sparse",
     "fasttape.bench.sparse_opt"),
    ("fasttape.bench.cli",),
    ("fasttape.bench.__main__",),
)

LAYER_OF = {name: i for i, layer in enumerate(LAYERS) for name in layer}
DECLARATIONS = {name[:-len(".pxd")] for name in LAYER_OF if name.endswith(".pxd")}


# -- reading the imports ------------------------------------------------------------------

def module_name(path, root=ROOT):
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def source_files(package=PACKAGE, root=ROOT):
    """The package's .py, .pyx and .pxd files (not the .pyi stubs, which run nothing)."""
    return [p for p in sorted(package.rglob("*"))
            if p.suffix in (".py", ".pyx", ".pxd") and "__pycache__" not in p.parts]


def resolve(base, level, package):
    """The absolute name of `from <level dots><base> import ...` inside `package`."""
    if not level:
        return base
    parts = package.split(".")
    parts = parts[:len(parts) - level + 1]
    return ".".join(parts + ([base] if base else []))


def python_imports(path, module):
    """(line, module imported, names imported from it, 'import') for every import of
    a .py file, wherever it is (module level, functions, classes), and
    importlib.import_module / __import__ of a string."""
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, (), "import"
        elif isinstance(node, ast.ImportFrom):
            yield (node.lineno, resolve(node.module, node.level, package),
                   tuple(alias.name for alias in node.names), "import")
        elif isinstance(node, ast.Call) and node.args and \
                isinstance(node.args[0], ast.Constant) and \
                isinstance(node.args[0].value, str) and \
                getattr(node.func, "id", getattr(node.func, "attr", None)) in (
                    "import_module", "__import__"):
            yield node.lineno, node.args[0].value, (), "import"


CYTHON_IMPORT = re.compile(
    r"^[ \t]*(?:from[ \t]+(?P<base>\.*[\w.]*)[ \t]+(?P<from_kind>c?import)[ \t]+"
    r"(?P<names>\([^)]*\)|[^\n#]*)"
    r"|(?P<kind>c?import)[ \t]+(?P<modules>[^\n#]*))", re.MULTILINE)
STRING_IMPORT = re.compile(r"(?:import_module|__import__)\(\s*[\"']([\w.]+)[\"']")


def cython_imports(path, module):
    """The same for a .pyx or .pxd file, read with regular expressions: `import` and
    `cimport` statements at any indentation (inside functions too), multi-line
    parenthesised name lists, and import_module / __import__ of a string."""
    text = path.read_text()
    package = module.rpartition(".")[0]

    def line(m):
        return text.count("\n", 0, m.start()) + 1

    for m in CYTHON_IMPORT.finditer(text):
        if m["base"] is not None:
            level = len(m["base"]) - len(m["base"].lstrip("."))
            base = resolve(m["base"][level:], level, package)
            names = tuple(n.split()[0] for n in m["names"].strip("() \t\n").split(",")
                          if n.strip())
            yield line(m), base, names, m["from_kind"]
        else:
            for name in m["modules"].split(","):
                if name.strip():
                    yield line(m), name.split()[0], (), m["kind"]
    for m in STRING_IMPORT.finditer(text):
        yield line(m), m[1], (), "import"


def import_graph(package=PACKAGE, root=ROOT, declarations=DECLARATIONS):
    """({node: [(file:line, node imported)]}, problems). A node is a module's name
    (its .py, or its .pyx with its .pxd), or "X.pxd" for the declarations of a module
    X in `declarations`. A cimport of X depends on X's declarations, and, from a .pyx,
    on the module X too (the extension module imports it when it loads)."""
    files = source_files(package, root)
    modules = {module_name(p, root) for p in files}
    compiled = {module_name(p, root) for p in files if p.suffix == ".pyx"}
    graph, problems = {}, []

    def node_of(module, is_declaration):
        return module + ".pxd" if is_declaration and module in declarations else module

    def known(name, names):
        """The modules `from name import names` (or `import name`) loads."""
        targets = [f"{name}.{n}" for n in names if f"{name}.{n}" in modules]
        if len(targets) < len(names) or not names:
            targets.append(name)
        return targets

    for path in files:
        module = module_name(path, root)
        node = node_of(module, path.suffix == ".pxd")
        edges = graph.setdefault(node, [])
        if path.suffix == ".pyx" and module in declarations:
            edges.append((f"{path.relative_to(root)}:1", module + ".pxd"))
        reader = python_imports if path.suffix == ".py" else cython_imports
        for lineno, name, names, kind in reader(path, module):
            if name != "fasttape" and not name.startswith("fasttape."):
                continue
            where = f"{path.relative_to(root)}:{lineno}"
            for target in known(name, names):
                if target not in modules:
                    problems.append(f"{where}: imports {target}, which is not a module "
                                    f"of the package")
                    continue
                if kind == "cimport":
                    targets = [node_of(target, True)]
                    if path.suffix == ".pyx" and target in compiled:
                        targets.append(target)
                else:
                    targets = [target]
                edges.extend((where, t) for t in targets if t != node)
    return graph, problems


def find_cycle(graph):
    """One import cycle as a list of nodes (first == last), or None."""
    state = {}

    def visit(node, path):
        state[node] = "open"
        for _, target in graph.get(node, ()):
            if state.get(target) == "open":
                return path[path.index(target):] + [target]
            if target not in state:
                cycle = visit(target, path + [target])
                if cycle:
                    return cycle
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node, [node])
            if cycle:
                return cycle
    return None


GRAPH, PROBLEMS = import_graph()


# -- the rules ----------------------------------------------------------------------------

def test_every_module_is_in_exactly_one_layer():
    listed = [name for layer in LAYERS for name in layer]
    assert len(listed) == len(set(listed)), "a module is listed twice"
    assert sorted(GRAPH) == sorted(listed), (
        f"modules without a layer: {sorted(set(GRAPH) - set(listed))}; "
        f"listed but missing: {sorted(set(listed) - set(GRAPH))}")


def test_imports_name_modules_of_the_package():
    assert not PROBLEMS, "\n".join(PROBLEMS)


def test_every_import_points_to_a_lower_layer():
    upward = [f"{where}: {node} (layer {LAYER_OF[node] + 1}) imports {target} "
              f"(layer {LAYER_OF[target] + 1})"
              for node, edges in sorted(GRAPH.items()) for where, target in edges
              if node in LAYER_OF and target in LAYER_OF
              and LAYER_OF[target] >= LAYER_OF[node]]
    assert not upward, "imports that do not point down:\n" + "\n".join(upward)


def test_no_import_cycles():
    # (implied by the layers, and checked without them)
    cycle = find_cycle(GRAPH)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_architecture_doc_lists_the_layers():
    """docs/architecture.md's table: one row per module, bottom to top, numbered as
    LAYERS is; every module it names exists."""
    rows = re.findall(r"^\|\s*(\d+)\s*\|\s*`([\w.]+)`\s*\|", ARCHITECTURE.read_text(),
                      re.MULTILINE)
    documented = [(int(layer), name) for layer, name in rows]
    expected = [(i + 1, name) for i, layer in enumerate(LAYERS) for name in layer]
    assert documented == expected
    for _, name in documented:
        assert name in GRAPH, f"docs/architecture.md names {name}, which does not exist"


# -- the checker itself -----------------------------------------------------------------

def test_checker_finds_every_kind_of_import(tmp_path):
    """Imports at module level and inside functions, from .py and .pyx/.pxd files,
    cimports, multi-line name lists and import_module strings all count; an upward
    one fails the layer test and a mutual one is a cycle."""
    package = tmp_path / "fasttape"
    (package / "sub").mkdir(parents=True)
    files = {
        "__init__.py": "from fasttape import low\n",
        "low.py": "def f():\n    import fasttape.high\n",
        "high.py": "import importlib\nimportlib.import_module('fasttape.sub.deep')\n",
        "sub/__init__.py": "from . import deep\n",
        "sub/deep.py": "from ..low import f\n",
        "core.pxd": "from fasttape.low cimport x\n",
        "core.pyx": ("def g():\n    from fasttape.sub cimport (deep,\n"
                     "                               other)\nimport fasttape.missing\n"),
    }
    for name, text in files.items():
        (package / name).write_text(text)
    graph, problems = import_graph(package, tmp_path, declarations={"fasttape.core"})
    targets = {node: sorted({t for _, t in edges}) for node, edges in graph.items()}
    assert targets == {
        "fasttape": ["fasttape.low"],
        "fasttape.low": ["fasttape.high"],
        "fasttape.high": ["fasttape.sub.deep"],
        "fasttape.sub": ["fasttape.sub.deep"],
        "fasttape.sub.deep": ["fasttape.low"],
        "fasttape.core.pxd": ["fasttape.low"],
        "fasttape.core": ["fasttape.core.pxd", "fasttape.sub", "fasttape.sub.deep"],
    }
    assert problems == ["fasttape/core.pyx:4: imports fasttape.missing, which is not "
                        "a module of the package"]
    assert find_cycle(graph) == ["fasttape.low", "fasttape.high", "fasttape.sub.deep",
                                 "fasttape.low"]


# -- what the hooks must keep working -----------------------------------------------------

def test_plain_numpy_dispatch_needs_only_import_fasttape():
    """NumPy's functions and ufuncs on fasttape's Variables find fasttape's
    implementations, and tapes pickle, in a program that imports only fasttape."""
    assert_runs_cleanly("""
        import pickle
        import numpy as np
        import fasttape
        x = np.array([0.5, 1.0, 2.0])
        g = fasttape.grad(lambda x: np.sum(np.sin(x) * np.linalg.norm(x)))(x)
        h = fasttape.grad(lambda x: np.sin(x) + np.sqrt(np.array([1.0, 4.0]))[0])(0.5)
        t = fasttape.grad(lambda x: x.T.sum())(np.ones((2, 2)))
        f = pickle.loads(pickle.dumps(fasttape.trace(lambda x: np.sum(x * x), x)))
        print(np.round(g, 6).tolist(), round(h, 6), t.tolist(), f.grad(x).tolist())
        """, "[2.497462, 2.211325, 0.993161] 0.877583 [[1.0, 1.0], [1.0, 1.0]] "
             "[1.0, 2.0, 4.0]")
