#!/usr/bin/env bash
# The sdist and the oldest supported NumPy: build the sdist, check what it and the wheel
# built from it hold, install that wheel in a fresh venv with the floors of pyproject's
# dependencies (numpy>=X.Y -> numpy==X.Y.*), and run the test suite there. A broken sdist
# or a break on the oldest NumPy fails CI. Run from the repository's root.
set -euo pipefail

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
PY="${PYTHON:-python}"

echo "== sdist"
"$PY" -m venv "$WORK/tools"
"$WORK/tools/bin/pip" install -q build
"$WORK/tools/bin/python" -m build --sdist --outdir "$WORK/dist" .
SDIST="$(ls "$WORK"/dist/fasttape-*.tar.gz)"

echo "== the oldest supported NumPy and SciPy, in a fresh venv"
FLOORS="$("$PY" - <<'PYEOF'
import re
deps = re.search(r"^dependencies = \[(.*)\]$", open("pyproject.toml").read(), re.M)[1]
for name, floor in re.findall(r'"(numpy|scipy)>=(\d+\.\d+)"', deps):
    print(f"{name}=={floor}.*")
PYEOF
)"
echo "floors:" $FLOORS
"$PY" -m venv "$WORK/oldest"
OLD="$WORK/oldest/bin"
# shellcheck disable=SC2086
"$OLD/pip" install -q $FLOORS

echo "== a wheel built from the sdist (pip's isolated build), installed beside them"
"$OLD/pip" wheel -q --no-deps -w "$WORK/wheels" "$SDIST"
WHEEL="$(ls "$WORK"/wheels/fasttape-*.whl)"
"$PY" - "$SDIST" "$WHEEL" <<'PYEOF'
import subprocess, sys, tarfile, tempfile, zipfile
sdist, wheel = sys.argv[1:]
names = tarfile.open(sdist).getnames()
assert not [n for n in names if n.endswith(".c")], "generated C in the sdist"
for needed in ("fasttape/_tape.pyx", "fasttape/_opmath.pxd.tp", "fasttape/_generate.py",
               "fasttape/_tape.pyi", "LICENSE", "tests/test_tape.py"):
    assert any(n.endswith("/" + needed) for n in names), f"sdist lacks {needed}"
with zipfile.ZipFile(wheel) as z:
    names = z.namelist()
    left = [n for n in names if n.endswith((".c", ".pyx", ".tp", ".html"))]
    assert not left, f"build leftovers in the wheel: {left}"
    modules = [n for n in names if n.endswith((".so", ".pyd"))]
    # one compiled module per Cython source the sdist carries (.pyx, or a template)
    sources = {n.split("/")[-1].split(".")[0] for n in tarfile.open(sdist).getnames()
               if n.endswith((".pyx", ".pyx.tp"))}
    assert len(modules) == len(sources), (modules, sorted(sources))
    with tempfile.TemporaryDirectory() as tmp:
        for n in modules:
            path = z.extract(n, tmp)
            if sys.platform == "linux":
                sections = subprocess.run(["readelf", "-S", path], capture_output=True,
                                          text=True, check=True).stdout
                assert ".symtab" not in sections and ".debug_info" not in sections, (
                    f"{n} is not stripped")
print(f"sdist: {len(tarfile.open(sdist).getnames())} files, no C; wheel: "
      f"{len(names)} files, {len(modules)} stripped modules, no build leftovers")
PYEOF
"$OLD/pip" install -q "$WHEEL" pytest hypothesis autograd "Cython>=3.0.8,<4" optree
"$OLD/python" -P -c "import numpy, scipy, fasttape; print('numpy', numpy.__version__, \
'scipy', scipy.__version__, 'fasttape from', fasttape.__file__)"

echo "== the test suite on the oldest NumPy"
"$OLD/python" -P -m pytest -q -p no:cacheprovider
