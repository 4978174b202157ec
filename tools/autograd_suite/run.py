"""Run autograd 1.9.1's own test suite against fasttape (a development check, outside
CI): fetches autograd's source distribution from PyPI, copies its ``tests/`` into a
work folder beside this folder's ``conftest.py`` (which resolves ``autograd.*`` to
fasttape and grades with its own central differences), runs pytest, and prints the
passes and failures per file.

    python tools/autograd_suite/run.py [--work DIR] [-- pytest args]

FASTTAPE_SUITE_MAX_ORDER=1 in the environment checks first derivatives only.

The counts that issue #11 names exclude test_fft.py, test_complex.py and test_scipy.py.
"""
import argparse
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile

VERSION = "1.9.1"
HERE = pathlib.Path(__file__).resolve().parent
EXCLUDED = {"test_fft.py", "test_complex.py", "test_scipy.py"}


def fetch(work):
    archive = next(work.glob(f"autograd-{VERSION}.tar.gz"), None)
    if archive is None:
        subprocess.run([sys.executable, "-m", "pip", "download", f"autograd=={VERSION}",
                        "--no-deps", "--no-binary", ":all:", "-q", "-d", str(work)],
                       check=True)
        archive = next(work.glob(f"autograd-{VERSION}.tar.gz"))
    with tarfile.open(archive) as tar:
        members = [m for m in tar.getmembers() if "/tests/" in m.name]
        tar.extractall(work / "src", members=members, filter="data")
    suite = work / "suite"
    if suite.exists():
        shutil.rmtree(suite)
    suite.mkdir()
    shutil.copytree(work / "src" / f"autograd-{VERSION}" / "tests", suite / "tests")
    shutil.copy(HERE / "conftest.py", suite / "conftest.py")
    (suite / "pytest.ini").write_text("[pytest]\n")
    return suite


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default=str(pathlib.Path(tempfile.gettempdir())
                                              / "fasttape-autograd-suite"))
    parser.add_argument("pytest_args", nargs="*")
    options = parser.parse_args()
    work = pathlib.Path(options.work)
    work.mkdir(parents=True, exist_ok=True)
    suite = fetch(work)
    # the fasttape of this checkout (built in place) comes before any installed one
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE.parent.parent),
                                                      env.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider",
         "--tb=line", "--continue-on-collection-errors", "tests", *options.pytest_args],
        cwd=suite, capture_output=True, text=True, env=env)
    (work / "report.txt").write_text(result.stdout + result.stderr)
    tally = {}
    for line in result.stdout.splitlines():
        match = re.match(r"(PASSED|FAILED|ERROR) tests/(\w+\.py)", line)
        if match:
            outcome, file = match.groups()
            tally.setdefault(file, {"PASSED": 0, "FAILED": 0, "ERROR": 0})[outcome] += 1
    counted = {"PASSED": 0, "FAILED": 0, "ERROR": 0}
    for file in sorted(tally):
        row = tally[file]
        mark = " (not counted)" if file in EXCLUDED else ""
        print(f"{file:28s} {row['PASSED']:4d} passed {row['FAILED']:4d} failed "
              f"{row['ERROR']:4d} errors{mark}")
        if not mark:
            for key in counted:
                counted[key] += row[key]
    total = sum(counted.values())
    print(f"counted: {counted['PASSED']} of {total} pass "
          f"({counted['FAILED']} failed, {counted['ERROR']} errors); "
          f"full report: {work / 'report.txt'}")


if __name__ == "__main__":
    main()
