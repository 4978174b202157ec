"""``python -m fasttape.bench`` (``--help`` for the options).

Every library runs on one thread: the BLAS libraries read their thread settings when
they load, so when these are missing the process re-executes itself with them set
(``timing.SINGLE_THREAD_ENV``; an explicit setting is kept) before anything else runs.
"""
import os
import sys

from fasttape.bench.timing import single_thread_environ

if __name__ == "__main__":
    _env = single_thread_environ(os.environ)
    if _env != dict(os.environ) and "FASTTAPE_BENCH_REEXEC" not in os.environ:
        _env["FASTTAPE_BENCH_REEXEC"] = "1"
        os.execve(sys.executable, [sys.executable] + sys.orig_argv[1:], _env)
    from fasttape.bench.cli import main
    sys.exit(main())
