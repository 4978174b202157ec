"""Derivatives at many points on an executor: any ``concurrent.futures.Executor``
(process pools, loky, mpi4py's ``MPIPoolExecutor``, Ray's) or a
``dask.distributed.Client``.

The traced function travels as its pickle (a compact tape). On Dask it is scattered
to every worker (``broadcast=True``) once per client, kept there across maps, and the
tasks refer to it; other executors
get it with each task, and each worker process keeps the loaded function in a cache
keyed by the pickle's digest, so that it is loaded once per process. A task is a
chunk of consecutive points, run by the Traced method itself (fasttape's own threads
inside the worker); chunks are sized from a timed run at a few points so that each
holds about TARGET_SECONDS of work, enough to hide a task's overhead (Dask's is
0.2-1 ms), and so that every worker gets some.

On a local ``ProcessPoolExecutor`` the points and the results do not travel through
the pool's pipes: they are files in shared memory, each task naming its rows
(``run_mapped_chunk``).

Points already on a Dask cluster (a ``dask.array``) are not gathered: each block of
rows becomes one task where it lives, and the result is a dask array of the same
rows, to be reduced or stored there (``map_dask_array``).

A point that raises (a branch other than the traced one, say) does not lose the
others: its chunk is run again point by point, and the map ends with PointErrors,
which names the failed points and carries every other result.
"""
import concurrent.futures
import contextlib
import hashlib
import math
import os
import pickle
import threading
import time
import weakref

import numpy as np

from fasttape.errors import PointErrors

TARGET_SECONDS = 0.05      # the work a task should hold
LOCAL_TARGET_SECONDS = 0.01   # ... on a local process pool (a task costs well under 1 ms)
FIRST_CHUNK = 8            # points timed in the caller's process (their results kept)
_CACHE_SIZE = 8            # loaded functions each process keeps

_loaded = {}               # digest -> loaded Traced, in each process


def map_points(traced, method, points, extra, executor, chunk_size=None,
               progress=False, **options):
    """``getattr(traced, method)(points, *extra, **options)`` computed in chunks on
    `executor`; the results of every point, in order, as the method returns them
    (an array, or a tuple of arrays, with one row per point)."""
    if is_dask_array(points):
        if executor is not None and not is_dask_client(executor):
            raise TypeError(f"points in a dask array are mapped by Dask (lazily, where "
                            f"they live), not on a {type(executor).__name__}: pass "
                            f"executor=None or a dask.distributed.Client")
        return map_dask_array(traced, method, points, extra, chunk_size, options)
    points = np.asarray(points)
    extra = tuple(np.asarray(e) for e in extra)
    m = len(points)
    if any(len(e) != m for e in extra):
        raise ValueError("every per-point argument needs one row per point")
    payload = pickle.dumps(traced, protocol=pickle.HIGHEST_PROTOCOL)
    key = hashlib.blake2b(payload, digest_size=16).hexdigest()
    _remember(key, traced)
    local = isinstance(executor, concurrent.futures.ProcessPoolExecutor)
    # (points run here first: to time them, or, for a local pool, for the results'
    # shapes)
    first = min(m, FIRST_CHUNK if chunk_size is None else 1 if local else 0)
    started = time.perf_counter()
    pieces = [run_chunk(key, None, method, 0, points[:first],
                        tuple(e[:first] for e in extra), options)] if first else []
    if chunk_size is None:
        per_point = (time.perf_counter() - started) / max(first, 1)
        chunk_size = _chunk_size(per_point, m - first, _worker_count(executor),
                                 LOCAL_TARGET_SECONDS if local else TARGET_SECONDS)
    elif isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) \
            or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive int, got {chunk_size!r}")
    starts = range(first, m, int(chunk_size))
    bar = _progress_bar(progress, m)
    if bar is not None:
        bar.update(first)
    if local and pieces and not pieces[0][2]:
        pieces = _run_on_local_processes(executor, key, payload, method, points, extra,
                                         options, starts, int(chunk_size), bar,
                                         pieces[0])
    else:
        pieces += _run_on(executor, key, payload, method, points, extra, options, starts,
                          int(chunk_size), bar)
    if bar is not None:
        bar.close()
    return _assemble(pieces, m)


def run_chunk(key, payload, method, start, points, extra, options):
    """A task: the method at a chunk of points. Returns (start, result, errors): the
    chunk's result, or, when some point raised, the per-point results (None at the
    failed ones) and {index: exception}."""
    traced = _loaded.get(key)
    if traced is None:
        traced = pickle.loads(payload)
        _remember(key, traced)
    run = getattr(traced, method)
    try:
        return start, run(points, *extra, **options), {}
    except Exception:                  # find the points that raise; keep the others
        pass
    results, errors = [], {}
    for i in range(len(points)):
        try:
            results.append(run(points[i:i + 1], *(e[i:i + 1] for e in extra),
                               **options))
        except Exception as e:
            results.append(None)
            errors[start + i] = e
    return start, results, errors


def _remember(key, traced):
    if key not in _loaded and len(_loaded) >= _CACHE_SIZE:
        _loaded.pop(next(iter(_loaded)))
    _loaded[key] = traced


def _chunk_size(per_point, remaining, workers, target=TARGET_SECONDS):
    """Points per task: about `target` seconds of work each, in a number of tasks that
    is a multiple of the workers (and at least one each), so that the last round of
    tasks does not leave workers idle while one finishes a lone chunk."""
    workers = max(workers, 1)
    tasks = max(1, math.ceil(remaining * per_point / target))
    tasks = workers * math.ceil(tasks / workers)
    return max(1, math.ceil(remaining / tasks))


def is_dask_client(executor):
    return type(executor).__module__.split(".")[0] == "distributed" and \
        hasattr(executor, "scatter") and hasattr(executor, "submit")


def _worker_count(executor):
    if is_dask_client(executor):
        return max(1, len(executor.scheduler_info().get("workers", ())))
    count = getattr(executor, "_max_workers", None)
    return count if isinstance(count, int) and count > 0 else os.cpu_count() or 1


def _run_on(executor, key, payload, method, points, extra, options, starts, size, bar):
    """Submit one task per chunk and collect them as they finish."""
    if is_dask_client(executor):
        return _run_on_dask(executor, key, payload, method, points, extra, options,
                            starts, size, bar)
    if not hasattr(executor, "submit"):
        raise TypeError(f"executor must be a concurrent.futures.Executor or a "
                        f"dask.distributed.Client, got {type(executor).__name__}")
    futures = [executor.submit(run_chunk, key, payload, method, s, points[s:s + size],
                               tuple(e[s:s + size] for e in extra), options)
               for s in starts]
    return [_collected(future.result(), bar)
            for future in concurrent.futures.as_completed(futures)]


# -- local process pools: points and results in files in shared memory -----------------
# On one machine the points need not travel through the pool's pipes (pickled in the
# caller, unpickled in the worker, and the results back): the caller writes them to a
# .npy file in shared memory (/dev/shm where there is one) chunk by chunk, sending each
# chunk's task as soon as its rows are there; a task names its rows, reads them, and
# writes its results into a file of the results' shape, which the caller reads at the
# end. Reading and writing (rather than mapping the files) keeps the page faults of
# fresh shared pages out of the workers: on a virtual machine they cost more than the
# copies. A pool keeps its directory and files between maps of the same shapes (a
# short map spent a quarter of its time allocating, faulting in and freeing the
# pages of new files: 2,000 points of 1,000 values, 16 MB each way).

def _shared_directory():
    import tempfile
    return tempfile.TemporaryDirectory(
        prefix="fasttape-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)


_pool_directories = weakref.WeakKeyDictionary()   # pool -> (TemporaryDirectory, Lock)


@contextlib.contextmanager
def _pool_directory(executor):
    """The name of a directory in shared memory for one map on `executor`: the
    pool's own, kept while the pool object lives, or a temporary one while another
    thread's map holds that (or for a pool that takes no weak reference)."""
    entry = _pool_directories.get(executor)
    if entry is None:
        entry = (_shared_directory(), threading.Lock())
        try:
            _pool_directories[executor] = entry
        except TypeError:
            entry = None
    if entry is not None and entry[1].acquire(blocking=False):
        try:
            yield entry[0].name
        finally:
            entry[1].release()
        return
    with _shared_directory() as directory:
        yield directory


def _npy_file(path, dtype, shape):
    """The data offset of the .npy file at path for an array of dtype and shape: the
    file there when it has them (an earlier map's), else a new one."""
    if os.path.exists(path):
        try:
            existing = np.load(path, mmap_mode="r")
            if existing.dtype == dtype and existing.shape == tuple(shape):
                return existing.offset
        except (ValueError, OSError):      # (an empty array cannot be mapped)
            pass
    return np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape).offset


def _run_on_local_processes(executor, key, payload, method, points, extra, options,
                            starts, size, bar, first_piece):
    """The chunks on a local process pool, through files in shared memory; first_piece,
    the first points' results computed here, gives the results' shapes. Returns the
    pieces for _assemble: one holding every row when no point raised."""
    template = first_piece[1]
    parts = template if isinstance(template, tuple) else (template,)
    m = len(points)
    with _pool_directory(executor) as directory:
        arrays = [np.ascontiguousarray(a) for a in (points,) + extra]
        inputs, offsets = [], []
        for k, array in enumerate(arrays):
            path = os.path.join(directory, f"in{k}.npy")
            offsets.append(_npy_file(path, array.dtype, array.shape))
            inputs.append(path)
        files = [open(path, "r+b") for path in inputs]
        function = os.path.join(directory, "function.pickle")
        with open(function, "wb") as file:
            file.write(payload)
        outputs, output_offsets = [], []
        for j, part in enumerate(parts):
            path = os.path.join(directory, f"out{j}.npy")
            output_offsets.append(_npy_file(path, part.dtype, (m,) + part.shape[1:]))
            outputs.append(path)
        futures = []
        try:
            # each chunk's rows written (by write(), cheaper than faulting the pages
            # of a mapping in), then its task sent
            for s in starts:
                stop = min(s + size, m)
                for file, offset, array in zip(files, offsets, arrays):
                    file.seek(offset + s * array[:1].nbytes)
                    file.write(memoryview(array[s:stop]).cast("B"))
                    file.flush()
                futures.append(executor.submit(run_mapped_chunk, key, function, method,
                                               s, stop, inputs, outputs, options))
        finally:
            for file in files:
                file.close()
        # each chunk's rows read as soon as its task is done, while the others run
        results = [np.empty((m,) + part.shape[1:], dtype=part.dtype) for part in parts]
        pieces = []
        files = [open(path, "rb", buffering=0) for path in outputs]
        try:
            for future in concurrent.futures.as_completed(futures):
                piece = _collected(future.result(), bar)
                pieces.append(piece)
                if not piece[2]:
                    for file, offset, result in zip(files, output_offsets, results):
                        _read_rows_into(file, offset, result, piece[0], piece[1])
        finally:
            for file in files:
                file.close()
    rows = len(parts[0])
    for result, part in zip(results, parts):
        result[:rows] = part
    whole = tuple(results) if isinstance(template, tuple) else results[0]
    failed = [piece for piece in pieces if piece[2]]
    if not failed:
        return [(0, whole, {})]
    # the chunks the workers wrote are in place: cut them out around the failed ones
    written = [(0, template, {})]
    for start, result, errors in pieces:
        if errors:
            written.append((start, result, errors))
        else:
            cut = tuple(r[start:start + result] for r in results)
            written.append((start, cut if isinstance(template, tuple) else cut[0], {}))
    return written


def _read_rows(path, start, stop):
    """Rows start:stop of a .npy file, read into an array of this process (read(),
    which costs less than faulting in the pages of a mapping)."""
    header = np.load(path, mmap_mode="r")            # (the header only: no data read)
    row = header[:1].nbytes if len(header) else 0
    rows = np.fromfile(path, dtype=header.dtype, count=(stop - start) * (
        header[:1].size if len(header) else 0), offset=header.offset + start * row)
    return rows.reshape((stop - start,) + header.shape[1:])


def _read_rows_into(file, offset, result, start, count):
    """result[start:start + count] = those rows of the .npy file whose data begins at
    offset, open unbuffered (a buffer would keep rows read ahead before a worker
    wrote them)."""
    rows = memoryview(result[start:start + count]).cast("B")
    file.seek(offset + start * (rows.nbytes // count if count else 0))
    done = 0
    while done < rows.nbytes:
        got = file.readinto(rows[done:])
        if not got:
            raise RuntimeError(f"fasttape: the results' file ended before row "
                               f"{start + count} (a worker did not write its chunk)")
        done += got


def _write_rows(path, start, rows):
    header = np.load(path, mmap_mode="r")
    rows = np.ascontiguousarray(rows, dtype=header.dtype)
    with open(path, "r+b") as file:
        file.seek(header.offset + start * header[:1].nbytes)
        file.write(memoryview(rows).cast("B"))


def run_mapped_chunk(key, function, method, start, stop, inputs, outputs, options):
    """A task of a local process pool: the method at rows start:stop of the points'
    file(s), the results written into the results' file(s); the pickled function read
    from its file once per process. Returns (start, number of rows written, {}), or
    run_chunk's (start, per-point results, errors) when points raised."""
    payload = None
    if key not in _loaded:
        with open(function, "rb") as file:
            payload = file.read()
    arrays = [_read_rows(path, start, stop) for path in inputs]
    piece = run_chunk(key, payload, method, start, arrays[0], tuple(arrays[1:]), options)
    if piece[2]:
        return piece
    result = piece[1]
    for path, part in zip(outputs, result if isinstance(result, tuple) else (result,)):
        _write_rows(path, start, part)
    return start, stop - start, {}


DASK_ATTEMPTS = 4      # submissions of a chunk whose task Dask lost (a worker died)


def _run_on_dask(client, key, payload, method, points, extra, options, starts, size,
                 bar):
    """The chunks as Dask tasks, the pickled function scattered to every worker (once
    per client: see _scattered_function). Dask itself reruns a task whose worker dies;
    a task that fails all the same (its scattered input lost with the worker, say) is
    submitted again, with the function scattered anew."""
    import distributed                 # (present: the client is one of its objects)

    shared = _scattered_function(client, key, payload)

    def submit(s):
        return client.submit(run_chunk, key, shared, method, s, points[s:s + size],
                             tuple(e[s:s + size] for e in extra), options, pure=False)

    chunk_of = {submit(s): s for s in starts}
    attempts = dict.fromkeys(starts, 1)
    finished = distributed.as_completed(list(chunk_of))
    pieces = []
    for future in finished:
        s = chunk_of.pop(future)
        try:
            piece = future.result()
        except Exception:               # (run_chunk itself catches the points' errors)
            if attempts[s] >= DASK_ATTEMPTS:
                raise
            attempts[s] += 1
            shared = _scattered_function(client, key, payload, again=True)
            retry = submit(s)
            chunk_of[retry] = s
            finished.add(retry)
            continue
        pieces.append(_collected(piece, bar))
    return pieces


_scattered = {}            # (client id, digest) -> future of the function on the workers


def _scattered_function(client, key, payload, again=False):
    """The future of the pickled function broadcast to every worker of `client`, kept
    across maps (the _CACHE_SIZE most recent functions), so that a function mapped
    again, as in an optimizer's or a sampler's loop, does not travel again; scattered
    anew when `again` or when the cluster has lost it. Workers that join later fetch
    it from a peer when a task needs it."""
    ident = (client.id, key)
    future = _scattered.pop(ident, None)
    if again or future is None or future.status != "finished":
        if future is not None:
            future.release()
        future = client.scatter(payload, broadcast=True, hash=False)
    while len(_scattered) >= _CACHE_SIZE:
        _scattered.pop(next(iter(_scattered))).release()
    _scattered[ident] = future         # (the most recent last)
    return future


def _collected(piece, bar):
    if bar is not None:
        bar.update(len(piece[1]) if piece[2] else piece[1] if type(piece[1]) is int
                   else _rows(piece[1]))
    return piece


def _rows(result):
    return len(result[0]) if isinstance(result, tuple) else len(result)


def _assemble(pieces, m):
    """The chunks' results in point order, one array (or tuple of arrays); raises
    PointErrors, with the rest, when points failed."""
    if len(pieces) == 1 and not pieces[0][2]:
        return pieces[0][1]              # (every row in one piece: nothing to join)
    pieces.sort(key=lambda piece: piece[0])
    rows, errors = [], {}
    for _, result, failed in pieces:
        if failed:
            errors.update(failed)
            rows.extend(result)
        else:
            rows.append(result)
    template = next((r for r in rows if r is not None), None)
    if template is None:
        raise PointErrors(errors, None)
    parts = template if isinstance(template, tuple) else (template,)
    filled = [r if r is not None else tuple(
        np.full((1,) + np.shape(p)[1:], np.nan) for p in parts) for r in rows]
    columns = [np.concatenate([(r if isinstance(r, tuple) else (r,))[j] for r in filled])
               for j in range(len(parts))]
    results = tuple(columns) if isinstance(template, tuple) else columns[0]
    if errors:
        raise PointErrors(errors, results)
    assert _rows(results) == m
    return results


def _progress_bar(progress, total):
    if not progress:
        return None
    try:
        import tqdm
    except ImportError:
        raise ImportError("progress=True needs tqdm (pip install tqdm)") from None
    return tqdm.tqdm(total=total, unit="point")


# -- points that live on the workers: a dask array in, a dask array out -----------------

def is_dask_array(x):
    return type(x).__module__.split(".")[:2] == ["dask", "array"] and \
        hasattr(x, "to_delayed")


def map_dask_array(traced, method, points, extra, chunk_size, options):
    """The method at the rows of a dask array of points, lazily: one task per block of
    rows (``chunk_size`` rows when given, else the array's own row chunks), the
    pickled function one shared key of the graph (sent once to each worker that
    needs it). Returns a dask array (a tuple of them for value_and_grad_many) with one
    row per point, for the caller to reduce, store or compute where the points are.
    A block in which points raise fails with PointErrors (its indices global)."""
    import dask
    import dask.array as da

    if points.ndim < 1:
        raise ValueError("points must have one row per point")
    m = points.shape[0]
    extra = tuple(e if is_dask_array(e) else da.from_array(np.asarray(e))
                  for e in extra)
    if any(e.shape[0] != m for e in extra):
        raise ValueError("every per-point argument needs one row per point")
    if chunk_size is not None:
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) \
                or chunk_size < 1:
            raise ValueError(f"chunk_size must be a positive int, got {chunk_size!r}")
        rows = int(chunk_size)
    else:
        rows = points.chunks[0]
    whole_rows = {axis: -1 for axis in range(1, points.ndim)}
    points = points.rechunk({0: rows, **whole_rows})
    extra = tuple(e.rechunk({0: points.chunks[0],
                             **{axis: -1 for axis in range(1, e.ndim)}}) for e in extra)
    # the shapes of a result row, from the method here at the traced argument's own
    # example (the first point if that is not a row of points: one round trip)
    row = traced.example_row()
    if row is not None and row.shape[1:] == points.shape[1:]:
        probe = getattr(traced, method)(row, *(np.zeros((1,) + e.shape[1:], e.dtype)
                                               for e in extra), **options)
    else:
        probe = getattr(traced, method)(np.asarray(points[:1].compute()),
                                        *(np.asarray(e[:1].compute()) for e in extra),
                                        **options)
    probes = probe if isinstance(probe, tuple) else (probe,)
    payload = pickle.dumps(traced, protocol=pickle.HIGHEST_PROTOCOL)
    key = hashlib.blake2b(payload, digest_size=16).hexdigest()
    shared = dask.delayed(payload, pure=True, name=f"fasttape-traced-{key}")
    point_blocks = points.to_delayed().reshape(-1)
    extra_blocks = [e.to_delayed().reshape(-1) for e in extra]
    parts = [[] for _ in probes]
    start = 0
    for b, size in enumerate(points.chunks[0]):
        call = dask.delayed(run_block, pure=True, nout=len(probes)) \
            if len(probes) > 1 else dask.delayed(run_block, pure=True)
        task = call(key, shared, method, start, point_blocks[b],
                    tuple(blocks[b] for blocks in extra_blocks), options)
        outputs = tuple(task) if len(probes) > 1 else (task,)
        for j, p in enumerate(probes):
            parts[j].append(da.from_delayed(outputs[j], shape=(size,) + p.shape[1:],
                                            dtype=p.dtype))
        start += size
    results = tuple(da.concatenate(part, axis=0) for part in parts)
    return results if isinstance(probe, tuple) else results[0]


def run_block(key, payload, method, start, points, extra, options):
    """A task of map_dask_array: the method at one block of points; PointErrors (with
    global indices, and no partial results) when some of them raise."""
    _, result, errors = run_chunk(key, payload, method, start, points, extra, options)
    if errors:
        raise PointErrors(errors, None)
    return result
