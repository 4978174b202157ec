"""Traced functions at many points on executors (fasttape._executors): thread and
process pools and a Dask LocalCluster give what the serial call gives, bit for bit;
failed points are reported by index without losing the others; a forked child
process is not stuck on a lock or a sweep of its parent's other threads."""
import os
import pickle
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np
import pytest

import fasttape as ft
import fasttape.numpy as fnp
from fasttape import _executors


def rosenbrock(x):
    total = 0.0
    for i in range(len(x) - 1):
        total = total + 100.0 * (x[i + 1] - x[i] * x[i]) ** 2 + (1.0 - x[i]) ** 2
    return total


def log_likelihood(w):
    return fnp.sum(fnp.logaddexp(0.0, fnp.sin(w) * 3.0) - w ** 2)


def sign_dependent(x):
    return fnp.sum(x ** 2) if x[0] > 0 else fnp.sum(x ** 3)


@pytest.fixture(scope="module")
def points():
    return np.random.default_rng(3).uniform(-1.0, 1.0, (203, 20))


@pytest.fixture(scope="module")
def process_pool():
    with ProcessPoolExecutor(2) as pool:
        yield pool


@pytest.mark.parametrize("fun", [rosenbrock, log_likelihood])
@pytest.mark.parametrize("chunk_size", [None, 1, 17, 1000])
def test_grad_many_on_a_thread_pool_is_the_serial_result(fun, chunk_size, points):
    example = [0.5] * 20 if fun is rosenbrock else np.full(20, 0.5)
    traced = ft.trace(fun, example)
    serial = traced.grad_many(points)
    with ThreadPoolExecutor(3) as pool:
        parallel = traced.grad_many(points, executor=pool, chunk_size=chunk_size)
    assert parallel.shape == serial.shape
    assert np.array_equal(parallel, serial)
    np.testing.assert_allclose(serial[5], ft.grad(fun)(list(points[5]) if fun is
                                                        rosenbrock else points[5]))


@pytest.mark.parametrize("fun", [rosenbrock, log_likelihood])
def test_process_pool_results_are_the_serial_ones(fun, points, process_pool):
    example = [0.5] * 20 if fun is rosenbrock else np.full(20, 0.5)
    traced = ft.trace(fun, example)
    assert np.array_equal(traced.grad_many(points, executor=process_pool),
                          traced.grad_many(points))
    values, grads = traced.value_and_grad_many(points[:30], executor=process_pool)
    assert np.array_equal(values, traced.map(points[:30]))
    assert np.array_equal(grads, traced.grad_many(points[:30]))


def test_a_pool_keeps_its_shared_files_between_maps(points, process_pool):
    """Maps on one local pool reuse its files in shared memory when the shapes repeat
    and make new ones when they change; a map while another thread's map holds them
    uses a directory of its own; every result is the serial one."""
    traced = ft.trace(rosenbrock, [0.5] * 20)
    arrays = ft.trace(log_likelihood, np.zeros(20))
    serial = traced.grad_many(points)
    assert np.array_equal(traced.grad_many(points, executor=process_pool), serial)
    directory = _executors._pool_directories[process_pool][0].name
    files = {name: os.stat(os.path.join(directory, name)).st_ino
             for name in os.listdir(directory) if name.endswith(".npy")}
    # the same shapes again (another function): the same files, rewritten
    assert np.array_equal(arrays.grad_many(points, executor=process_pool),
                          arrays.grad_many(points))
    assert {name: os.stat(os.path.join(directory, name)).st_ino
            for name in files} == files
    # other shapes: new files, right results
    assert np.array_equal(traced.grad_many(points[:57], executor=process_pool),
                          serial[:57])
    values, grads = traced.value_and_grad_many(points[:40], executor=process_pool)
    assert np.array_equal(values, traced.map(points[:40]))
    assert np.array_equal(grads, serial[:40])
    # two threads mapping on the pool at once
    with ThreadPoolExecutor(2) as threads:
        both = list(threads.map(
            lambda k: traced.grad_many(points[k:], executor=process_pool,
                                       chunk_size=11), (0, 3)))
    assert np.array_equal(both[0], serial) and np.array_equal(both[1], serial[3:])


def test_map_and_value_and_grad_many_match_single_calls(points):
    traced = ft.trace(log_likelihood, np.zeros(20))
    values, grads = traced.value_and_grad_many(points[:7])
    for k in range(7):
        value, grad = ft.value_and_grad(log_likelihood)(points[k])
        assert values[k] == pytest.approx(value, rel=1e-14)
        np.testing.assert_allclose(grads[k], grad, rtol=1e-14)
    scalar = ft.trace(rosenbrock, [0.0] * 20)
    np.testing.assert_allclose(scalar.map(points[:5]),
                               [rosenbrock(list(p)) for p in points[:5]], rtol=1e-14)


def test_failed_points_are_named_and_the_others_kept(process_pool):
    traced = ft.trace(sign_dependent, np.ones(3))
    grid = np.ones((10, 3))
    grid[[3, 7], 0] = -1.0              # another branch at points 3 and 7
    with pytest.raises(ft.PointErrors) as caught:
        traced.grad_many(grid, executor=process_pool, chunk_size=4)
    errors, results = caught.value.errors, caught.value.results
    assert sorted(errors) == [3, 7]
    assert all(isinstance(e, ft.BranchChangedError) for e in errors.values())
    assert "point 3" in str(caught.value)
    assert np.isnan(results[[3, 7]]).all()
    kept = np.delete(np.arange(10), [3, 7])
    np.testing.assert_array_equal(results[kept], 2.0 * grid[kept])
    again = pickle.loads(pickle.dumps(caught.value))      # (crosses processes)
    assert sorted(again.errors) == [3, 7]


def test_bad_executor_and_chunk_size_are_refused(points):
    traced = ft.trace(rosenbrock, [0.5] * 20)
    with pytest.raises(TypeError, match="concurrent.futures.Executor"):
        traced.grad_many(points, executor=object(), chunk_size=5)
    with ThreadPoolExecutor(1) as pool:
        for bad in (0, -3, 2.5, True):
            with pytest.raises(ValueError, match="chunk_size"):
                traced.grad_many(points, executor=pool, chunk_size=bad)


def test_chunks_hold_enough_work_and_feed_every_worker():
    # 1 ms a point: 50 points a task; but 200 points on 8 workers: 25 a task
    assert _executors._chunk_size(1e-3, 10_000, 2) == 50
    assert _executors._chunk_size(1e-3, 200, 8) == 25
    assert _executors._chunk_size(1.0, 10, 2) == 1


def test_a_loaded_function_is_cached_per_process(points):
    traced = ft.trace(rosenbrock, [0.5] * 20)
    payload = pickle.dumps(traced)
    key = "test-key"
    _executors._loaded.pop(key, None)
    first = _executors.run_chunk(key, payload, "grad_many", 0, points[:3], (), {})
    loaded = _executors._loaded[key]
    second = _executors.run_chunk(key, None, "grad_many", 3, points[3:6], (), {})
    assert _executors._loaded[key] is loaded          # (no payload needed the 2nd time)
    np.testing.assert_array_equal(np.vstack([first[1], second[1]]),
                                  traced.grad_many(points[:6]))


# -- Dask ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        yield client


def test_dask_results_are_the_serial_ones(dask_client, points):
    traced = ft.trace(rosenbrock, [0.5] * 20)
    assert np.array_equal(traced.grad_many(points, executor=dask_client),
                          traced.grad_many(points))
    arrays = ft.trace(log_likelihood, np.zeros(20))
    assert np.array_equal(arrays.grad_many(points, executor=dask_client, chunk_size=9),
                          arrays.grad_many(points))


def test_a_function_mapped_again_on_dask_travels_once(dask_client, points,
                                                     monkeypatch):
    from fasttape import _executors
    while _executors._scattered:          # (what the tests before scattered)
        _executors._scattered.popitem()[1].release()
    traced = ft.trace(rosenbrock, [0.5] * 20)
    scattered = []
    scatter = dask_client.scatter
    monkeypatch.setattr(dask_client, "scatter",
                        lambda *args, **kwargs: scattered.append(args[0]) or
                        scatter(*args, **kwargs))
    serial = traced.grad_many(points)
    for _ in range(3):
        assert np.array_equal(traced.grad_many(points, executor=dask_client,
                                               chunk_size=40), serial)
    assert len(scattered) == 1
    # another function travels too; one the cluster has lost travels again
    other = ft.trace(log_likelihood, np.zeros(20))
    assert np.array_equal(other.grad_many(points, executor=dask_client, chunk_size=40),
                          other.grad_many(points))
    assert len(scattered) == 2
    for future in list(_executors._scattered.values()):
        dask_client.cancel(future)
    assert np.array_equal(traced.grad_many(points, executor=dask_client,
                                           chunk_size=40), serial)
    assert len(scattered) == 3


def test_a_worker_killed_mid_map_still_gives_every_result_once(dask_client):
    traced = ft.trace(rosenbrock, [0.5] * 300)
    many = np.random.default_rng(5).uniform(-1.0, 1.0, (3000, 300))
    serial = traced.grad_many(many)
    out = {}
    dask_client.run(os.getpid)
    runner = threading.Thread(target=lambda: out.setdefault(
        "result", traced.grad_many(many, executor=dask_client, chunk_size=10)))
    runner.start()
    time.sleep(0.2)
    assert runner.is_alive()            # (the kill comes while the map runs)
    pids = dask_client.run(os.getpid)           # {worker address: process id}
    os.kill(pids[sorted(pids)[0]], signal.SIGKILL)
    runner.join(timeout=120)
    assert np.array_equal(out["result"], serial)


# -- fork safety ----------------------------------------------------------------------

@pytest.mark.skipif(not hasattr(os, "fork"), reason="no os.fork on this platform")
def test_a_forked_child_is_not_stuck_on_the_parents_threads():
    scalar = ft.trace(rosenbrock, [0.5] * 30)
    arrays = ft.trace(log_likelihood, np.ones(30))
    stop = threading.Event()

    def busy():                          # holds the array trace's lock and its tape
        while not stop.is_set():
            arrays.grad(np.ones(30))
            scalar.grad([0.3] * 30)

    threads = [threading.Thread(target=busy) for _ in range(2)]
    for thread in threads:
        thread.start()
    failures = 0
    try:
        for _ in range(40):
            time.sleep(0.002)
            pid = os.fork()
            if pid == 0:                # the child: at most 20 s, then killed
                code = 1
                try:
                    signal.alarm(20)
                    arrays.grad(np.ones(30))
                    scalar.grad_many(np.ones((4, 30)))
                    arrays.grad_many(np.ones((4, 30)))
                    ft.grad(rosenbrock)([0.1] * 30)
                    code = 0
                finally:
                    os._exit(code)      # (never back into pytest)
            _, status = os.waitpid(pid, 0)
            failures += status != 0
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert failures == 0


def test_jacobian_many_on_an_executor_is_the_serial_result(points, process_pool):
    def residual(x):
        return [x[0] * x[1] - x[2], ft.sin(x[3]) + x[4] ** 2, x[5]]

    traced = ft.trace(residual, [0.5] * 20)
    serial = traced.jacobian_many(points)
    assert serial.shape == (len(points), 3, 20)
    assert np.array_equal(traced.jacobian_many(points, executor=process_pool), serial)
    with ThreadPoolExecutor(2) as pool:
        assert np.array_equal(
            traced.jacobian_many(points, executor=pool, chunk_size=7), serial)
        with pytest.raises(TypeError, match="out="):
            traced.jacobian_many(points, np.empty_like(serial), executor=pool)


@pytest.mark.parametrize("fun", [rosenbrock, log_likelihood])
def test_hvp_many_is_hvp_at_each_point_and_the_same_on_executors(fun, points,
                                                                 process_pool):
    example = [0.5] * 20 if fun is rosenbrock else np.full(20, 0.5)
    traced = ft.trace(fun, example)
    vectors = np.random.default_rng(4).normal(size=points.shape)
    serial = traced.hvp_many(points[:40], vectors[:40])
    assert serial.shape == (40, 20)
    for k in (0, 17, 39):
        at = list(points[k]) if fun is rosenbrock else points[k]
        along = list(vectors[k]) if fun is rosenbrock else vectors[k]
        np.testing.assert_allclose(serial[k], np.ravel(traced.hvp((at,), along)),
                                   rtol=1e-14)
        np.testing.assert_allclose(serial[k], ft.hessian(fun)(points[k]) @ vectors[k],
                                   rtol=1e-10, atol=1e-10)
    assert np.array_equal(traced.hvp_many(points[:40], vectors[:40],
                                          executor=process_pool, chunk_size=9), serial)
    with ThreadPoolExecutor(2) as pool:
        assert np.array_equal(traced.hvp_many(points[:40], vectors[:40],
                                              executor=pool), serial)
    with pytest.raises(ValueError, match="one vector per point"):
        traced.hvp_many(points[:40], vectors[:39])


def test_hvp_many_on_dask_is_the_serial_result(dask_client, points):
    traced = ft.trace(rosenbrock, [0.5] * 20)
    vectors = points[::-1].copy()
    assert np.array_equal(traced.hvp_many(points, vectors, executor=dask_client),
                          traced.hvp_many(points, vectors))


# -- points that live on the cluster: dask arrays ------------------------------------------

def test_a_dask_array_of_points_gives_a_dask_array_of_the_serial_results(dask_client,
                                                                          points):
    da = pytest.importorskip("dask.array")
    traced = ft.trace(rosenbrock, [0.5] * 20)
    on_cluster = da.from_array(points, chunks=(50, 7)).persist()
    gradients = traced.grad_many(on_cluster)
    assert isinstance(gradients, da.Array) and gradients.shape == points.shape
    assert np.array_equal(gradients.compute(), traced.grad_many(points))
    # reduced where the points are, in blocks of chunk_size rows
    summed = traced.grad_many(on_cluster, chunk_size=17).sum(axis=0).compute()
    np.testing.assert_allclose(summed, traced.grad_many(points).sum(axis=0), rtol=1e-12)
    values, grads = traced.value_and_grad_many(on_cluster)
    expected = traced.value_and_grad_many(points)
    assert np.array_equal(values.compute(), expected[0])
    assert np.array_equal(grads.compute(), expected[1])
    assert np.array_equal(traced.map(on_cluster).compute(), traced.map(points))
    assert np.array_equal(traced.jacobian_many(on_cluster).compute(),
                          traced.jacobian_many(points))
    vectors = points[::-1].copy()
    assert np.array_equal(traced.hvp_many(on_cluster, vectors).compute(),
                          traced.hvp_many(points, vectors))


def test_a_dask_array_of_array_points(points):
    da = pytest.importorskip("dask.array")
    arrays = ft.trace(log_likelihood, np.zeros(20))
    lazy = arrays.grad_many(da.from_array(points, chunks=(64, 20)))
    assert np.array_equal(lazy.compute(scheduler="synchronous"), arrays.grad_many(points))


def test_failed_points_of_a_dask_array_are_named_by_global_index():
    da = pytest.importorskip("dask.array")
    traced = ft.trace(sign_dependent, np.ones(3))
    many = np.ones((30, 3))
    many[23, 0] = -1.0
    lazy = traced.grad_many(da.from_array(many, chunks=(10, 3)))
    with pytest.raises(ft.PointErrors) as raised:
        lazy.compute(scheduler="synchronous")
    assert list(raised.value.errors) == [23]


def test_a_dask_array_is_refused_by_another_executor(points):
    da = pytest.importorskip("dask.array")
    traced = ft.trace(rosenbrock, [0.5] * 20)
    with ThreadPoolExecutor(1) as pool, pytest.raises(TypeError, match="dask array"):
        traced.grad_many(da.from_array(points), executor=pool)
    with pytest.raises(ValueError, match="chunk_size"):
        traced.grad_many(da.from_array(points), chunk_size=0)


def test_grad_many_writes_into_out(points):
    for traced in (ft.trace(rosenbrock, [0.5] * 20), ft.trace(log_likelihood, np.zeros(20))):
        expected = traced.grad_many(points)
        out = np.full_like(expected, np.nan)
        assert traced.grad_many(points, out=out) is out
        assert np.array_equal(out, expected)
        out2 = np.full_like(expected, np.nan)
        traced.grad_many(points, 2, out=out2)
        assert np.array_equal(out2, expected)
        with pytest.raises(ValueError, match="shape"):
            traced.grad_many(points, out=np.empty((3, 20)))
        with ThreadPoolExecutor(1) as pool, pytest.raises(TypeError, match="out="):
            traced.grad_many(points, out=out, executor=pool)


def test_example_row_is_the_traced_argument_as_one_row_of_points():
    traced = ft.trace(rosenbrock, [0.5, -1.0, 2.0])
    assert np.array_equal(traced.example_row(), [[0.5, -1.0, 2.0]])
    assert np.array_equal(traced.grad_many(traced.example_row()),
                          [traced.grad([0.5, -1.0, 2.0])])
    arrays = ft.trace(log_likelihood, np.arange(6.0))
    assert np.array_equal(arrays.example_row(), np.arange(6.0)[None])
