"""Many points, and results into arrays, for fasttape.trace's Traced: jacobian_many's
loop over points (the compiled calls' C loop for scalar code, the general path
per point otherwise, a retrace at a point that takes another branch), grad_many for
array code (threads replaying copies of the tape), and the helpers of out=.
"""
import os
import threading

import numpy as np

from fasttape._arrays import ArrayVariable
from fasttape._containers import flatten
from fasttape._scalar_calls import check_out
from fasttape._variable import Variable
from fasttape.errors import BranchChangedError


def n_numbers(leaves):
    """How many numbers the leaves hold."""
    return sum(1 if type(leaf) is Variable else leaf.size for leaf in leaves)


def write_out(out, grads):
    """out= of grad: the gradient (in its argument's structure) written into out."""
    if isinstance(grads, np.ndarray):
        check_out(out, grads.shape if getattr(out, "ndim", 1) == grads.ndim
                  else (grads.size,))
        out.reshape(grads.shape)[...] = grads
        return out
    flat = [np.ravel(v) for v in flatten(grads)[0]]
    flat = np.concatenate(flat) if flat else np.zeros(0)
    check_out(out, flat.shape)
    out[...] = flat
    return out


def args_at(rec, argnum, point):
    """The arguments of recording rec with argument argnum holding point's values
    (the others as in the recording)."""
    if rec.scalar_only:
        values = np.array(rec.example_values)
        first = sum(len(s) for s in rec.leaf_slots[:argnum])
        values[first:first + point.shape[0]] = point
        return rec.rebuild_args(values)
    return rec.args_with(argnum, point, 0, point.shape[0])


def point_rows(rec, argnum, points):
    """Points of argument argnum (one row of its numbers per point, or one array of
    its shape per point) as a 2-D float64 array, checked."""
    leaves = rec.leaves[argnum]
    n = n_numbers(leaves)
    shape = leaves[0].shape if len(leaves) == 1 and type(leaves[0]) is ArrayVariable \
        else None
    points = real_points(points)
    if points.ndim < 1 or points.shape[1:] not in ((n,), shape):
        raise ValueError(f"points must be one row of {n} values per point"
                         f"{'' if shape is None else f' (or one array of shape {shape})'}"
                         f", got shape {points.shape}")
    return points.reshape(len(points), n)


# grad_many's threads replay without the GIL, each on a tape of its own (a copy, for
# array code): more threads than cores only add copies
THREADS_PER_CORE = 2


def thread_count(n_threads):
    """The threads grad_many uses: the core count by default, and at most
    THREADS_PER_CORE per core when more are asked for."""
    cores = os.cpu_count() or 1
    if n_threads is None:
        return cores
    if isinstance(n_threads, bool) or not isinstance(n_threads, (int, np.integer)) \
            or n_threads < 1:
        raise ValueError(f"n_threads must be a positive int, got {n_threads!r}")
    return min(int(n_threads), THREADS_PER_CORE * cores)


def real_points(points):
    """grad_many's points as a float64 array; complex points are refused (their
    imaginary parts would be dropped)."""
    points = np.asarray(points)
    if np.iscomplexobj(points):
        raise TypeError("grad_many differentiates at real points; got complex values "
                        "(a traced function takes real inputs)")
    return points.astype(np.float64, copy=False)


def jacobians(traced, points, out):
    """jacobian_many's loop: the Jacobians at the rows of points into out."""
    argnum = traced.argnum % len(traced._current.structures)
    shape = out.shape
    start = 0
    while start < shape[0]:
        rec = traced._current
        calls = rec.calls
        reached = -1
        if calls is not None and rec.argnum is traced.argnum:
            reached = calls.jacobian_many(rec.rebuild_args(rec.example_values),
                                          points, out, start)
            if reached < 0:
                pass
            elif reached == shape[0]:
                break
            elif not traced.retrace:
                raise BranchChangedError(f"at point {reached}: "
                                         + rec.describe_guard(calls.changed))
        # the general path (array code), or the point that took another branch
        # (the call retraces, and the points after it use the new recording)
        at = start if reached < 0 else reached
        try:
            traced.jacobian(*args_at(rec, argnum, points[at]), out=out[at])
        except BranchChangedError as e:
            raise BranchChangedError(f"at point {at}: {e}") from None
        start = at + 1
    return out


def grad_many_arrays(traced, rec, points, n_threads):
    """grad_many for array code: each thread replays a copy of the tape of its
    own (the nodes hold their values), all its points in one C loop without the
    GIL. A tape with Python-rule nodes (which need the GIL anyway, and do not
    copy) runs on one thread."""
    argnum = traced.argnum % len(rec.structures)
    widths = [n_numbers(arg) for arg in rec.leaves]
    n = widths[argnum]
    points = real_points(points)
    shape = rec.leaves[argnum][0].shape if len(rec.leaves[argnum]) == 1 and \
        type(rec.leaves[argnum][0]) is ArrayVariable else None
    if points.ndim < 1 or points.shape[1:] not in ((n,), shape):
        raise ValueError(f"points must be one row of {n} values per point"
                         f"{'' if shape is None else f' (or one array of shape {shape})'}"
                         f", got shape {points.shape}")
    m = points.shape[0]
    if len(widths) == 1:
        rows = np.ascontiguousarray(points.reshape(m, n))     # (no copy)
    else:                           # every leaf's values: the others as traced
        rows = np.empty((m, sum(widths)))
        start = 0
        for i, (arg, width) in enumerate(zip(rec.example_args, widths)):
            rows[:, start:start + width] = points.reshape(m, n) if i == argnum \
                else np.concatenate([np.ravel(v) for v in flatten(arg)[0]]
                                    or [np.zeros(0)])
            start += width
    first = sum(widths[:argnum])
    gradients = np.empty_like(rows)
    pending = np.arange(m)
    n_threads = thread_count(n_threads)
    while pending.size:
        workers = traced._replicas(min(n_threads, pending.size))
        chunks = np.array_split(pending, len(workers))
        done = [0] * len(workers)
        errors = [None] * len(workers)

        def work(k):
            chunk = chunks[k]
            try:
                if len(chunk) and chunk[-1] - chunk[0] + 1 == len(chunk):
                    part = slice(chunk[0], chunk[-1] + 1)   # (views: no copies)
                    done[k] = workers[k]._gradient_rows(rows[part], gradients[part])
                else:
                    out = np.empty((len(chunk), rows.shape[1]))
                    done[k] = workers[k]._gradient_rows(rows[chunk], out)
                    gradients[chunk[:done[k]]] = out[:done[k]]
            except BaseException as e:      # re-raised once all threads end
                errors[k] = e

        threads = [threading.Thread(target=work, args=(k,))
                   for k in range(1, len(workers))]
        for thread in threads:
            thread.start()
        work(0)
        for thread in threads:
            thread.join()
        for error in errors:
            if error is not None:
                raise error
        failed = [chunk[d] for chunk, d in zip(chunks, done) if d < len(chunk)]
        if not failed:
            break
        i = min(failed)
        args = rec.args_with(argnum, rows[i], first, n)
        if not traced.retrace:
            with traced._lock:                # (the message names the comparison)
                try:
                    traced._replay(args)
                except BranchChangedError as e:
                    raise BranchChangedError(f"at point {i}: {e}") from None
            raise BranchChangedError(f"at point {i}: the function takes another "
                                     f"branch")
        grad = traced.grad(*args)   # retraces
        gradients[i, first:first + n] = np.concatenate(
            [np.ravel(g) for g in flatten(grad)[0]])
        finished = np.concatenate([chunk[:d] for chunk, d in zip(chunks, done)])
        pending = np.setdiff1d(pending, np.append(finished, i))
    return gradients[:, first:first + n]
