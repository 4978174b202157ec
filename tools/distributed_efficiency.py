"""Parallel efficiency of Traced.grad_many on executors (issue: gradients at many
points beyond one machine): the Rosenbrock loop at n = 1000 (about 70-100 us per
gradient), 2,000 points, serial on one thread against 2 Dask worker processes and a
ProcessPoolExecutor(2), and with the points on the Dask workers (a dask array,
gradients summed there); plus the figures a many-worker estimate needs: Dask's
per-task overhead, the chunk size chosen, the pickled tape's size.

    python tools/distributed_efficiency.py        (needs the `distributed` extra)

Efficiency = serial time / (workers x parallel time); the overhead per point is the
parallel time per point times the workers, less the serial time per point. Run it on
a quiet machine: every worker needs a core of its own.
"""
import pickle
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # this checkout's fasttape

import numpy as np  # noqa: E402

import fasttape as ft  # noqa: E402
from fasttape import _executors  # noqa: E402


def rosenbrock(x):
    total = 0.0
    for i in range(len(x) - 1):
        total = total + 100.0 * (x[i + 1] - x[i] * x[i]) ** 2 + (1.0 - x[i]) ** 2
    return total


def best_of(run, repeats=3):
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def report(name, parallel, serial, workers, n_points):
    efficiency = serial / (workers * parallel)
    overhead = (workers * parallel - serial) / n_points
    print(f"{name:<26} {parallel * 1e3:8.1f} ms  efficiency {efficiency:5.1%}  "
          f"overhead {overhead * 1e6:6.1f} us/point "
          f"({overhead / (serial / n_points):5.1%} of a point's work)")


def main(n=1000, n_points=2000, workers=2):
    from concurrent.futures import ProcessPoolExecutor

    from dask.distributed import Client, LocalCluster

    traced = ft.trace(rosenbrock, [0.5] * n)
    points = np.random.default_rng(0).uniform(-1.0, 1.0, (n_points, n))
    serial = best_of(lambda: traced.grad_many(points, n_threads=1))
    per_point = serial / n_points
    print(f"Rosenbrock loop, n = {n}, {n_points} points; pickled tape "
          f"{len(pickle.dumps(traced)) / 1e3:.0f} kB; points {points.nbytes / 1e6:.0f} MB")
    print(f"{'serial, one thread':<26} {serial * 1e3:8.1f} ms  "
          f"({per_point * 1e6:.1f} us per point)")
    print(f"chunk size chosen for {workers} workers: "
          f"{_executors._chunk_size(per_point, n_points, workers)} points")
    with ProcessPoolExecutor(workers) as pool:
        traced.grad_many(points[:100], executor=pool, n_threads=1)     # warm the workers
        report(f"ProcessPoolExecutor({workers})",
               best_of(lambda: traced.grad_many(points, executor=pool, n_threads=1)),
               serial, workers, n_points)
    with LocalCluster(n_workers=workers, threads_per_worker=1,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        traced.grad_many(points[:100], executor=client, n_threads=1)
        report(f"Dask, {workers} workers",
               best_of(lambda: traced.grad_many(points, executor=client, n_threads=1)),
               serial, workers, n_points)
        # the points on the workers (a persisted dask array in blocks of the chunk
        # size), their gradients summed there: no point or gradient crosses to the
        # client
        import dask.array as da
        chunk = _executors._chunk_size(per_point, n_points, workers)
        on_workers = da.from_array(points, chunks=(chunk, n)).persist()
        serial_sum = best_of(lambda: traced.grad_many(points, n_threads=1).sum(axis=0))
        report(f"Dask, points on {workers}",
               best_of(lambda: traced.grad_many(on_workers, n_threads=1).sum(
                   axis=0).compute()), serial_sum, workers, n_points)
        tasks = best_of(lambda: client.gather(
            [client.submit(int, i, pure=False) for i in range(400)]))
        print(f"Dask: 400 empty tasks {tasks * 1e3:.1f} ms "
              f"({tasks / 400 * 1e3:.2f} ms per task, scheduler round trips included)")


if __name__ == "__main__":
    main()
