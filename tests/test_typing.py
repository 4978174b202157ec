"""Types: a user's typed script (tests/typing/user_script.py) runs, and mypy and pyright
accept it; the stubs of the Cython modules match the runtime (mypy's stubtest, with the
allowlist in tests/typing/stubtest_allowlist.txt). A checker that is not installed skips
its test (the `test` extra installs both)."""
import importlib.util
import os
import shutil
import site
import subprocess
import sys

import pytest

from support import run_isolated

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SCRIPT = os.path.join(HERE, "typing", "user_script.py")
CONFIG = os.path.join(ROOT, "pyproject.toml")


def checked_fasttape(tmp_path):
    """(directory to run a checker in, path of the script there): the repository's
    root for an in-place build (its fasttape is found there), otherwise a neutral
    directory holding a copy of the script (the installed fasttape is found)."""
    import fasttape
    parent = os.path.dirname(os.path.dirname(os.path.abspath(fasttape.__file__)))
    if os.path.exists(os.path.join(parent, "pyproject.toml")):
        return parent, os.path.relpath(SCRIPT, parent)
    copy = tmp_path / "user_script.py"
    shutil.copy(SCRIPT, copy)
    return str(tmp_path), str(copy)


def run(command, cwd, timeout=600):
    proc = subprocess.run(command, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)
    return proc.returncode, proc.stdout + proc.stderr


def test_the_user_script_runs():
    with open(SCRIPT) as f:
        code = f.read()
    proc = run_isolated(code)
    assert proc.returncode == 0, proc.stderr


def test_mypy_accepts_the_user_script(tmp_path):
    if importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy is not installed")
    cwd, script = checked_fasttape(tmp_path)
    code, output = run([sys.executable, "-m", "mypy", "--config-file", CONFIG, script], cwd)
    assert code == 0, output


def test_pyright_accepts_the_user_script(tmp_path):
    if shutil.which("pyright") is None:
        pytest.skip("pyright is not installed")
    cwd, script = checked_fasttape(tmp_path)
    code, output = run(["pyright", "--pythonpath", sys.executable, script], cwd)
    assert code == 0, output


def test_mypy_sees_a_type_error_in_a_script(tmp_path):
    # the check can fail: a gradient assigned to a str is refused
    if importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy is not installed")
    cwd, _ = checked_fasttape(tmp_path)
    bad = tmp_path / "bad_script.py"
    bad.write_text("from fasttape import Variable\n"
                   "x = Variable(2.0)\n"
                   "name: str = x * 3.0\n")
    code, output = run([sys.executable, "-m", "mypy", "--config-file", CONFIG, str(bad)], cwd)
    assert code == 1 and "Incompatible types in assignment" in output, output


def test_the_stubs_match_the_runtime(tmp_path):
    if importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy is not installed")
    import fasttape
    parent = os.path.dirname(os.path.dirname(os.path.abspath(fasttape.__file__)))
    # an installed fasttape: mypy finds it (and its stubs) among the installed
    # packages, from any directory; run from the checkout's root it would read the
    # site-packages directory's other modules as the user's own
    installed = parent in site.getsitepackages() + [site.getusersitepackages()]
    code, output = run([sys.executable, "-m", "mypy.stubtest", "fasttape",
                        "--mypy-config-file", CONFIG, "--allowlist",
                        os.path.join(HERE, "typing", "stubtest_allowlist.txt")],
                       tmp_path if installed else parent)
    assert code == 0, output
