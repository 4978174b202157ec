"""The documentation site (docs/, mkdocs.yml): every ```python block of every page runs
and its asserts hold; fences are spelled so that none escapes the run; the doctests
of the docstrings the API reference shows pass; the site builds with ``mkdocs build
--strict`` (when mkdocs and its plugins are installed: ``pip install ".[docs]"``)."""
import doctest
import importlib
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"

# A fenced block: its opening line's language and its body, up to the closing fence.
FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.S | re.M)
# The languages a block may have; only python blocks run (the others are shell
# commands, output or data).
LANGUAGES = {"python", "bash", "text", "yaml", "toml", "json"}


def fenced_blocks(text):
    """[(language, first line number of the body, body)] of a Markdown text."""
    return [(m.group(1).strip(), text.count("\n", 0, m.start(2)) + 1, m.group(2))
            for m in FENCE.finditer(text)]


def doc_pages():
    return sorted(DOCS.rglob("*.md"))


PAGES_WITH_EXAMPLES = [p for p in doc_pages()
                       if any(lang == "python" for lang, _, _ in
                              fenced_blocks(p.read_text(encoding="utf-8")))]


def test_fenced_blocks_are_found():
    text = "a\n```python\nx = 1\n```\n\n```bash\nls\n```\n"
    assert fenced_blocks(text) == [("python", 3, "x = 1\n"), ("bash", 7, "ls\n")]


@pytest.mark.parametrize("page", doc_pages(), ids=lambda p: str(p.relative_to(DOCS)))
def test_every_fence_names_a_known_language(page):
    """A block spelled ```py or ```Python (or without a language) would not run: each
    block names one of LANGUAGES, and every opening fence is closed."""
    text = page.read_text(encoding="utf-8")
    blocks = fenced_blocks(text)
    assert text.count("\n```") + text.startswith("```") == 2 * len(blocks), \
        f"{page.name}: a fence is not closed, or not at the start of its line"
    for lang, line, _ in blocks:
        assert lang in LANGUAGES, f"{page.name}:{line}: fence language {lang!r}"


def test_pages_with_examples_exist():
    names = {p.name for p in PAGES_WITH_EXAMPLES}
    assert {"index.md", "getting-started.md", "numpy.md", "replay-and-threads.md",
            "custom-primitives.md", "conventions.md"} <= names


@pytest.mark.parametrize("page", PAGES_WITH_EXAMPLES,
                         ids=lambda p: str(p.relative_to(DOCS)))
def test_examples_run(page):
    """The page's python blocks run in order in one namespace, as a reader would
    paste them; each page's examples check their results with assert."""
    text = page.read_text(encoding="utf-8")
    blocks = [(line, body) for lang, line, body in fenced_blocks(text)
              if lang == "python"]
    assert any("assert" in body for _, body in blocks), \
        f"{page.name}: its examples check nothing"
    namespace = {"__name__": "docs_" + page.stem.replace("-", "_")}
    for line, body in blocks:
        # padded so that a traceback names the line of the Markdown file
        code = compile("\n" * (line - 1) + body, str(page), "exec")
        exec(code, namespace)


# An API reference entry: "::: dotted.name" at the start of a line, and its options
# (indented lines after it); "members: false" renders the object's own docstring only.
ENTRY = re.compile(r"^::: ([\w.]+)\n((?:[ \t]+.*\n)*)", re.M)


def api_entries():
    """{dotted name: whether its members are rendered too} of the API pages."""
    entries = {}
    for page in sorted((DOCS / "api").glob("*.md")):
        text = page.read_text(encoding="utf-8") + "\n"
        for name, options in ENTRY.findall(text):
            entries[name] = "members: false" not in options
    return entries


def resolve(dotted):
    """The object a reference entry names: a module, or an attribute of one."""
    try:
        return importlib.import_module(dotted)
    except ModuleNotFoundError:
        module, _, attribute = dotted.rpartition(".")
        return getattr(importlib.import_module(module), attribute)


def test_api_reference_entries_resolve():
    entries = api_entries()
    assert {"fasttape.grad", "fasttape.Variable", "fasttape.trace.trace",
            "fasttape.extend"} <= set(entries)
    assert entries["fasttape.grad"] and not entries["fasttape.numpy"]
    for name in entries:
        assert resolve(name) is not None


@pytest.mark.parametrize("name, members", api_entries().items())
def test_docstring_examples_of_the_api_reference(name, members):
    """The >>> examples of every docstring an API page renders: the object's, and its
    public members' defined in the same module (the site hides names with a leading
    underscore, and the names a module imports from elsewhere)."""
    obj = resolve(name)
    finder = doctest.DocTestFinder(recurse=members, exclude_empty=True)
    tests = [t for t in finder.find(obj, name)
             if not any(part.startswith("_")
                        for part in t.name[len(name):].split("."))]
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in tests:
        runner.run(test)
    failed, attempted = runner.summarize(verbose=False)
    assert failed == 0, f"{failed} of {attempted} doctest examples of {name} failed"


def test_docstring_examples_are_found():
    """The finder sees the examples the reference shows (grad's, extend's)."""
    finder = doctest.DocTestFinder(exclude_empty=True)
    assert sum(len(t.examples) for t in finder.find(resolve("fasttape.grad"),
                                                     "fasttape.grad")) >= 2
    assert sum(len(t.examples) for t in finder.find(resolve("fasttape.extend"),
                                                     "fasttape.extend")) >= 4


def test_site_builds_strictly(tmp_path):
    """mkdocs build --strict: every page in the navigation, every link and every
    API reference entry resolves, and the reference shows the docstrings."""
    for module in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python"):
        pytest.importorskip(module)
    # the reference imports the checkout's fasttape (mkdocs runs from the root): it
    # needs the in-place build, which an installed package's test run lacks
    if not any((ROOT / "fasttape").glob("_tape.*.so")) and \
            not any((ROOT / "fasttape").glob("_tape.*.pyd")):
        pytest.skip("the checkout has no in-place build for the API reference to import")
    site = tmp_path / "site"
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict",
                           "--config-file", str(ROOT / "mkdocs.yml"),
                           "--site-dir", str(site)],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-4000:]
    home = (site / "index.html").read_text(encoding="utf-8")
    assert "Where to go next" in home and "getting-started/" in home
    api = (site / "api" / "operators" / "index.html").read_text(encoding="utf-8")
    # a docstring's text rendered, not only the name
    assert "fasttape.grad" in api and "reverse mode" in api
    shutil.rmtree(site)
