"""Record once, replay at C speed: ``trace(f, *example_args)``.

The function is recorded once on a tape of its own. Calls at new inputs write the
inputs into the tape's leaf slots and re-evaluate the recorded operations in C
(forward replay, no Python per operation), then check the comparisons made while
tracing: if one comes out differently, the function would have taken another branch,
and the call raises BranchChangedError (or, with ``retrace=True``, records again).
Derivatives are sweeps of the replayed tape: reverse (grad, vjp, jacobian), forward
(jvp) and forward-over-reverse (hvp, hessian).

Replay covers scalar code (Python loops over floats, ``fasttape.where``) and array
code: every array operation fasttape records. Comparisons of arrays are recorded as
masks (fasttape._masks): as the condition of ``np.where`` they are re-evaluated;
read as booleans (``if m.any()``, ``x[m]``) they are guarded like scalar comparisons.
max/min/prod re-derive their weights in C; linalg, einsum, custom primitives and
checkpoint re-run their value function (Python, once per node) on replay.

Scalar code replays in per-thread buffers, in parallel; array code replays in the
nodes' own arrays under a lock, and grad_many gives each thread a copy of the tape.
A recording (TraceRecording: the tape, its leaves' slots, its outputs) never changes:
a retrace builds a new one and publishes it in one assignment, and each call reads
the current one once and uses it to its end, whatever other threads retrace.
hvp/hessian are a forward-over-reverse sweep in C, for array code too (nodes with
Python rules: fasttape.hvp on the function). Traces pickle as their tapes; a node with
Python rules is recorded again on load by the function that made it (pickled by
reference: fasttape's own, or the user's primitive or checkpointed function).
"""
import copyreg
import os
import pickle
import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from fasttape._arrays import (ArrayVariable, array_variable_at, input_spec,
                              input_spec_arrays,
                              leaf_gradients, output_refs, sweep_gradients, tangents_of,
                              variable_at)
from fasttape._containers import (LEAF, Structure, flat_if_possible, flatten, joined,
                                  split_like)
from fasttape._executors import is_dask_array, map_points
from fasttape._recording import (REPLAYABLE, rebuild_each, record, resolve_argnum,
                                 reverse_flat, zeros_of)
from fasttape._scalar_calls import ScalarCalls, TracedCalls, check_out
from fasttape._trace_many import THREADS_PER_CORE  # noqa: F401  (the tests read it here)
from fasttape._trace_many import (args_at, grad_many_arrays, jacobians, point_rows,
                                  real_points as _real_points,
                                  thread_count as _thread_count, n_numbers as _width,
                                  write_out as _write_out)
from fasttape._tape import OP_TABLE, Tape
from fasttape._tape_state import FORMAT_VERSION, check_digest, digest
from fasttape._variable import Variable
from fasttape._version import __version__
from fasttape import differential
from fasttape.differential import ArgNums
from fasttape.errors import BranchChangedError


def trace(fun: Callable[..., Any], *example_args: Any, argnum: ArgNums = 0,
          argnums: ArgNums | None = None, retrace: bool = False) -> "Traced":
    """Record ``fun`` at ``example_args`` and return a ``Traced`` function that
    re-evaluates the recording at new arguments of the same structure.

    Parameters
    ----------
    fun : callable
        A function of numbers (or tuples, lists and dicts of them) returning a number
        or a container of numbers.
    *example_args
        The arguments to record at.
    argnum, argnums : int or tuple of int
        The arguments ``grad``, ``jacobian``, ``hvp`` ... differentiate (``argnums``
        is JAX's name for ``argnum``).
    retrace : bool
        On a branch change, record again at the new arguments instead of raising
        ``BranchChangedError``.
    """
    return Traced(fun, example_args, resolve_argnum(argnum, argnums, "trace"), retrace)


class TraceRecording:
    """One recording of a traced function: its tape and what the calls read from it
    (the leaves and their slots, the outputs, the arguments' structures).

    Complete when built and never changed: a retrace builds a new one and swaps it in
    with one assignment (``Traced._current``). Every call reads ``_current`` once and
    uses that recording to its end, so a retrace in another thread cannot hand it the
    slots of one tape and the buffers of another.
    """
    __slots__ = ("tape", "structures", "leaves", "scalar_only", "leaf_slots",
                 "out_structure", "all_slots", "outputs", "example_values",
                 "example_args", "out_slots", "out_constants", "argnum", "calls", "lean")

    def __init__(self, **fields):
        for name in self.__slots__[:-2]:
            value = fields.pop(name)
            if isinstance(value, np.ndarray):
                value = value.copy()
                value.setflags(write=False)
            elif type(value) is list:
                value = tuple(tuple(v) if type(v) is list else v for v in value)
            object.__setattr__(self, name, value)
        if fields:
            raise TypeError(f"unknown fields {sorted(fields)}")
        object.__setattr__(self, "calls", self._compiled_calls())
        object.__setattr__(self, "lean", self._lean_vjp())

    def _compiled_calls(self):
        """The calls in one C call each (fasttape._scalar_calls) for scalar code whose
        arguments are numbers or flat lists or tuples of them; else None."""
        if not self.scalar_only or any(
                s.kind not in (LEAF, list, tuple) for s in self.structures):
            return None
        argnum = self.argnum
        return ScalarCalls(self.tape, self.structures, self.leaf_slots, self.all_slots,
                           flat_if_possible(self.out_structure), self.out_slots,
                           self.out_constants,
                           argnum if type(argnum) is int else None, LEAF)

    def __setattr__(self, name, value):
        raise AttributeError("a traced function's recording does not change; a "
                             "retrace makes a new one")

    @classmethod
    def of(cls, rec, argnum):
        """The recording of record()'s result `rec` (a replayable tape); argnum: the
        traced function's."""
        tape = rec.tape
        out_flat = rec.out_flat
        for o in out_flat:
            if type(o) in (Variable, ArrayVariable) and o.tape is not tape or not (
                    type(o) in (Variable, ArrayVariable) or isinstance(o, (int, float))):
                raise TypeError("trace: the function must return numbers or arrays (or "
                                "containers of them) computed from its arguments")
        reason = tape.replay_support()
        if reason is not None:
            raise NotImplementedError(f"trace: this function cannot be replayed yet: "
                                      f"{reason}")
        structures = list(rec.structures)
        leaves = rec.arg_leaves
        scalar_only = tape.n_array_nodes == 0
        leaf_slots = [tuple(int(s) for s in arg) for arg in rec.leaf_slots()]
        all_slots = np.array([s for arg in leaf_slots for s in arg], dtype=np.intp)
        return cls(
            tape=tape, structures=structures, leaves=[tuple(arg) for arg in leaves],
            scalar_only=scalar_only, leaf_slots=leaf_slots,
            out_structure=rec.out_structure, all_slots=all_slots,
            outputs=[o if type(o) in (Variable, ArrayVariable) else None
                     for o in out_flat],
            example_values=np.array([tape.value_at(s) for s in all_slots])
            if scalar_only else None,
            # array code: the arguments as traced (from the leaves, before any replay)
            example_args=None if scalar_only else tuple(
                structure.rebuild([leaf.value if type(leaf) is Variable else
                                   np.array(leaf.value) for leaf in arg_leaves])
                for structure, arg_leaves in zip(structures, leaves)),
            out_slots=[o.slot if type(o) is Variable else None for o in out_flat],
            out_constants=[None if type(o) in (Variable, ArrayVariable) else float(o)
                           for o in out_flat], argnum=argnum)

    # -- inputs ----------------------------------------------------------------------------

    def flat_inputs(self, args):
        """All the numbers of args, in leaf order, as a float64 array."""
        if len(args) != len(self.structures):
            raise TypeError(f"the traced function takes {len(self.structures)} "
                            f"arguments, got {len(args)}")
        parts = []
        for i, (a, structure, slots) in enumerate(zip(args, self.structures,
                                                      self.leaf_slots)):
            if type(a) is np.ndarray and np.iscomplexobj(a):
                raise TypeError(f"argument {i} holds complex numbers; a traced "
                                f"function takes real inputs")
            try:
                # a flat list (tuple) of numbers, or a 1-d array for one: converted in C
                if (type(a) is list or type(a) is tuple) and type(a) is structure.kind \
                        or type(a) is np.ndarray and a.ndim == 1 \
                        and structure.kind in (list, tuple):
                    values = np.asarray(a, dtype=np.float64)
                    ok = values.shape == (len(slots),)
                else:
                    flat, s = flatten(a)
                    ok = len(flat) == len(slots) and _same_structure(s, structure) \
                        and all(np.ndim(v) == 0 for v in flat)
                    values = np.array([float(v) for v in flat]) if ok else None
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise ValueError(f"argument {i} does not have the structure it was "
                                 f"traced with ({len(slots)} numbers, as "
                                 f"{_describe(structure)})")
            parts.append(values)
        if not parts:
            return np.zeros(0)
        return np.concatenate(parts) if len(parts) > 1 else parts[0]

    def write_inputs(self, args):
        """Write args into the tape and re-evaluate it (the caller holds the lock);
        returns the message for a comparison that comes out differently, or None."""
        if self.scalar_only:
            values = self.flat_inputs(args)
            changed = self.tape.replay(self.all_slots, values)
        else:
            if len(args) != len(self.structures):
                raise TypeError(f"the traced function takes {len(self.structures)} "
                                f"arguments, got {len(args)}")
            slots, values = [], []
            for i, (a, structure, arg_leaves) in enumerate(zip(args, self.structures,
                                                               self.leaves)):
                flat, s = flatten(a)
                if len(flat) != len(arg_leaves) or not _same_structure(s, structure):
                    raise ValueError(f"argument {i} does not have the structure it was "
                                     f"traced with")
                for leaf, v in zip(arg_leaves, flat):
                    if type(leaf) is Variable:
                        if np.ndim(v):
                            raise ValueError(f"argument {i}: a number was traced, got "
                                             f"an array")
                        slots.append(leaf.slot)
                        values.append(float(v))
                    else:
                        if np.shape(v) != leaf.shape:
                            raise ValueError(f"argument {i}: an array of shape "
                                             f"{leaf.shape} was traced, got shape "
                                             f"{np.shape(v)}")
                        self.tape.write_array_input(leaf.anode, v)
            changed = self.tape.replay(slots, values)
        if changed >= 0:
            return self.describe_guard(changed)
        return self.changed_array_guard()

    def rebuild_args(self, flat_values):
        """The arguments (in their structures) holding flat_values."""
        args, start = [], 0
        for structure, slots in zip(self.structures, self.leaf_slots):
            args.append(structure.rebuild([float(v) for v in
                                           flat_values[start:start + len(slots)]]))
            start += len(slots)
        return tuple(args)

    def args_with(self, argnum, row, first, n):
        """The example arguments with argument argnum holding row[first:first + n]."""
        template, structure = flatten(self.example_args[argnum])
        pieces, at = [], first
        for v in template:
            size = int(np.size(v))
            pieces.append(np.reshape(row[at:at + size], np.shape(v))
                          if isinstance(v, np.ndarray) else float(row[at]))
            at += size
        args = list(self.example_args)
        args[argnum] = structure.rebuild(pieces)
        return args

    # -- comparisons -----------------------------------------------------------------------

    def changed_array_guard(self):
        """The message for the first comparison of arrays whose booleans the function
        read (see fasttape._masks) and that come out differently now, or None."""
        for _anode, live_values, outcome, where in self.tape.array_guards:
            now = live_values != 0.0
            if not np.array_equal(now, outcome):
                k = int(np.flatnonzero(now != outcome)[0])
                return (f"the comparison of arrays made at {where} was used as plain "
                        f"booleans (in a branch, an index, a count...) and comes out "
                        f"differently at these arguments ({int(np.sum(now != outcome))} of "
                        f"{now.size} values, the first at flat index {k}): the function "
                        f"would compute something else here. Trace with retrace=True, "
                        f"or write the choice with np.where / fasttape.where.")
        return None

    def describe_guard(self, k):
        left, op, right, outcome = self.tape.guards()[k]
        where = self.tape.guard_locations[k] if k < len(self.tape.guard_locations) \
            else "an unknown place"
        return (f"the comparison {left} {op} {right} made at {where} was {outcome} when "
                f"traced and is {not outcome} at these arguments: the function takes "
                f"another branch here. Trace with retrace=True, or write the choice with "
                f"fasttape.where.")

    # -- outputs ---------------------------------------------------------------------------

    def output_values(self):
        flat = [c if o is None else o.value if type(o) is Variable else o.value.copy()
                for o, c in zip(self.outputs, self.out_constants)]
        return self.out_structure.rebuild(flat)

    def scalar_output(self):
        if len(self.outputs) != 1 or type(self.outputs[0]) is ArrayVariable and \
                self.outputs[0].size != 1:
            raise TypeError("grad needs a function with one scalar output")
        return self.out_slots[0]

    def rebuild_grads(self, flat, argnum):
        if flat is None:                        # a constant function
            flat = [zeros_of(leaf) for arg in self.leaves for leaf in arg]
        per_arg = rebuild_each(self.structures, flat)
        if type(argnum) is int:
            return per_arg[argnum]
        argnums = [i % len(per_arg) for i in argnum]
        # an argument named twice in argnum is differentiated at its last mention and
        # gets zeros at the others, as grad (and autograd) give
        return tuple(per_arg[i] if i not in argnums[k + 1:] else
                     _zeros_with_structure(per_arg[i]) for k, i in enumerate(argnums))

    def all_leaves(self):
        return [leaf for arg in self.leaves for leaf in arg]

    def _lean_vjp(self):
        """For Traced.value_and_vjp_arrays: (the leaves, one per argument; the output's
        references; the leaves of argnum), or None where it does not apply (scalar
        code, containers, not one array output, an argument named twice)."""
        argnums = [self.argnum] if type(self.argnum) is int else list(self.argnum)
        argnums = [i % len(self.leaves) for i in argnums]
        if not self.scalar_only and all(len(a) == 1 for a in self.leaves) \
                and all(s.kind is LEAF for s in self.structures) \
                and len(self.outputs) == 1 and type(self.outputs[0]) is ArrayVariable \
                and len(set(argnums)) == len(argnums):
            out_slots, out_anodes = output_refs(list(self.outputs))
            return ([a[0] for a in self.leaves], out_slots, out_anodes,
                    [self.leaves[i][0] for i in argnums])
        return None


class Traced(TracedCalls):
    """A recorded function; see ``trace``. Pickles as its tape (arrays, not code)."""

    def __init__(self, fun: Callable[..., Any], example_args: Sequence[Any],
                 argnum: ArgNums = 0, retrace: bool = False) -> None:
        self.fun = fun
        self.argnum = argnum
        self.retrace = retrace
        self._lock = threading.Lock()
        self._local = threading.local()
        _live.add(self)
        self._record(example_args)

    @property
    def tape(self):
        """The tape of the current recording."""
        return self._current.tape

    # -- recording ----------------------------------------------------------------------

    def _record(self, args):
        """Record at args and publish the new recording (one assignment); returns it.
        Retraces hold self._lock."""
        if self.fun is None:
            raise BranchChangedError("cannot retrace: this traced function was loaded "
                                     "without its Python code")
        # every argument recorded (argnum only chooses what the derivatives are taken
        # with respect to), on a replayable tape
        recording = TraceRecording.of(
            record(self.fun, args, tuple(range(len(args))), None, REPLAYABLE),
            self.argnum)
        self._current = recording
        return recording

    def _replay(self, args):
        """Write args into the current recording's tape and re-evaluate it (the caller
        holds self._lock); returns the recording that holds args' values (a new one
        after a retrace)."""
        rec = self._current
        message = rec.write_inputs(args)
        if message is None:
            return rec
        if not self.retrace:
            raise BranchChangedError(message)
        return self._record(args)

    def _retraced(self, args):
        """A new recording at args, published (the current one took another branch)."""
        with self._lock:
            return self._record(args)

    # -- evaluation ----------------------------------------------------------------------

    # __call__, value_and_grad, grad and jacobian: TracedCalls' (in C), which ask these
    # for what the compiled calls do not take

    def _call_general(self, args):
        # other arguments, errors, a changed branch (retrace)
        with self._lock:
            return self._replay(args).output_values()

    def _value_and_grad_general(self, args, out):
        value, grads = self._value_and_grad(self._current, args)
        return value, (grads if out is None else _write_out(out, grads))

    def _value_and_grad(self, rec, args):
        if not rec.scalar_only:
            return self._value_and_grad_in_place(args)
        result = self._value_and_grad_scalar(rec, args)
        if result is not None:
            return result
        # a branch change (retrace=True): the recording at args gives its branch
        result = self._value_and_grad_scalar(self._retraced(args), args)
        if result is None:
            raise BranchChangedError("the function takes another branch at these "
                                     "arguments on each recording")
        return result

    def _value_and_grad_scalar(self, rec, args):
        """value_and_grad on scalar recording rec, in buffers of this thread; None at a
        branch change when retrace is on."""
        out = rec.scalar_output()
        if len(args) == 1 and type(args[0]) is list and type(self.argnum) is int \
                and rec.structures[0].kind is list \
                and out is not None:
            # the fast path: one flat list of floats
            tape, values, adjoints = self._scratch(rec)
            value, grads = tape.replay_gradient_of_list(
                out, rec.all_slots, args[0], 0, len(rec.all_slots), values, adjoints)
            if value is not None:
                return value, grads
            if not self.retrace:
                raise BranchChangedError(rec.describe_guard(grads))
            return None
        values = rec.flat_inputs(args)
        if out is None:
            return rec.out_constants[0], rec.rebuild_grads(None, self.argnum)
        outputs, grads, changed = rec.tape.replay_gradients(out, rec.all_slots,
                                                            values[None, :])
        if changed is not None:
            if not self.retrace:
                raise BranchChangedError(rec.describe_guard(changed[1]))
            return None
        return float(outputs[0]), rec.rebuild_grads(grads[0].tolist(), self.argnum)

    def _value_and_grad_in_place(self, args):
        with self._lock:
            rec = self._replay(args)
            rec.scalar_output()
            out = rec.outputs[0]
            if out is None:
                return rec.out_constants[0], rec.rebuild_grads(None, self.argnum)
            value, flat = sweep_gradients(rec.tape, out, rec.all_leaves())
            return float(np.reshape(value, ())), rec.rebuild_grads(flat, self.argnum)

    def _scratch(self, rec):
        """This thread's (tape, values, adjoints) buffers for recording rec's tape."""
        local = self._local
        scratch = getattr(local, "scratch", None)
        if scratch is None or scratch[0] is not rec.tape:
            values, adjoints = rec.tape.scratch_buffers()
            scratch = local.scratch = (rec.tape, values, adjoints)
        return scratch

    def grad_many(self, points: Any, n_threads: int | None = None, *,
                  out: Any = None, executor: Any = None, chunk_size: int | None = None,
                  progress: bool = False) -> Any:
        """Gradients at many values of argument ``argnum`` (an int argnum; the other
        arguments as in the latest recording: the trace, or the last retrace), split
        across threads that replay without the GIL.

        ``points`` is an array of shape (m, n) for an argument of n numbers (or
        (m, *shape) for one array); returns the (m, n) gradients (into ``out``, a
        C-contiguous float64 array of that shape, when given). With
        ``retrace=True`` a point that takes another branch is recorded again, and the
        points after it use the new recording.

        ``executor`` (a ``concurrent.futures.Executor``, such as a process pool, or a
        ``dask.distributed.Client``) runs the points in chunks of ``chunk_size``
        (by default, about 50 ms of work each, timed on the first points), each
        chunk with ``n_threads`` threads in its worker; the function travels as its
        pickled tape, loaded once per worker process. There a point that raises does
        not stop the others: the call ends with ``fasttape.PointErrors``, which has
        each failed point's exception by index and every other point's gradient.
        Workers hold no Python function, so they do not retrace. ``progress=True``
        shows a progress bar (tqdm).
        """
        if type(self.argnum) is not int:
            raise TypeError("grad_many needs an int argnum")
        if executor is not None or is_dask_array(points):
            if out is not None:
                raise TypeError("grad_many on an executor returns a new array: out= is "
                                "not taken there")
            return map_points(self, "grad_many", points, (), executor, chunk_size,
                              progress, n_threads=n_threads)
        rec = self._current
        if not rec.scalar_only:
            result = self._grad_many_arrays(rec, points, n_threads)
            if out is None:
                return result
            check_out(out, result.shape)
            out[...] = result
            return out
        points = np.ascontiguousarray(_real_points(points))
        if points.ndim != 2:
            raise ValueError("points must be a 2-d array: one row per point")
        argnum = self.argnum % len(rec.leaf_slots)
        first = sum(len(s) for s in rec.leaf_slots[:argnum])
        n = len(rec.leaf_slots[argnum])
        if points.shape[1] != n:
            raise ValueError(f"each point needs {n} values, got {points.shape[1]}")
        n_threads = _thread_count(n_threads)
        if out is None:
            out = np.empty((points.shape[0], n))
        else:
            check_out(out, (points.shape[0], n))
        if n_threads == 1 and rec.calls is not None:
            # one thread: the compiled calls' loop (a gradient is a one-row Jacobian)
            rec.scalar_output()
            self._jacobians(points, out.reshape(points.shape[0], 1, n))
            return out
        result = out
        start = 0
        while start < points.shape[0]:
            rows = np.repeat(rec.example_values[None, :], points.shape[0] - start, 0)
            rows[:, first:first + n] = points[start:]
            outputs, grads, changed = rec.tape.replay_gradients(
                rec.scalar_output(), rec.all_slots, rows, n_threads)
            done = points.shape[0] - start if changed is None else changed[0]
            result[start:start + done] = grads[:done, first:first + n]
            if changed is None:
                break
            if not self.retrace:
                raise BranchChangedError(f"at point {start + done}: "
                                         + rec.describe_guard(changed[1]))
            args = rec.rebuild_args(rows[done])
            rec = self._retraced(args)
            value_grad = self._value_and_grad_scalar(rec, args)
            if value_grad is None:
                raise BranchChangedError(f"at point {start + done}: the function takes "
                                         f"another branch on each recording")
            result[start + done] = np.ravel(
                np.asarray(flatten(value_grad[1])[0], dtype=float))
            start += done + 1
        return result

    def example_row(self) -> Any:
        """The recorded value of argument ``argnum`` as one row of points (shape (1,
        n) for n numbers, (1, *shape) for an array), as grad_many and its relatives
        take them; None when it is not such a row (a container of arrays)."""
        rec = self._current
        argnum = self.argnum % len(rec.structures)
        args = rec.rebuild_args(rec.example_values) if rec.scalar_only \
            else rec.example_args
        try:
            leaves, _ = flatten(args[argnum])
            if len(leaves) == 1 and isinstance(leaves[0], np.ndarray):
                return np.asarray(leaves[0], dtype=np.float64)[None]
            return np.array([[float(v) for v in leaves]])
        except (TypeError, ValueError):
            return None

    def map(self, points, *, executor=None, chunk_size=None, progress=False):
        """The function's values at many values of argument ``argnum`` (points as in
        grad_many: one row per point), stacked into one array; ``executor``,
        ``chunk_size`` and ``progress`` as in grad_many."""
        if executor is not None or is_dask_array(points):
            return map_points(self, "map", points, (), executor, chunk_size, progress)
        return np.array([self(*args) for args in self._point_args(points)])

    def value_and_grad_many(self, points, *, executor=None, chunk_size=None,
                            progress=False):
        """(values, gradients) at many values of argument ``argnum``: the values as
        ``map`` gives them, the gradients as ``grad_many``; ``executor``,
        ``chunk_size`` and ``progress`` as in grad_many."""
        if executor is not None or is_dask_array(points):
            return map_points(self, "value_and_grad_many", points, (), executor,
                              chunk_size, progress)
        pairs = [self.value_and_grad(*args) for args in self._point_args(points)]
        return (np.array([value for value, _ in pairs]),
                np.array([np.concatenate([np.ravel(g) for g in flatten(grad)[0]])
                          for _, grad in pairs]))

    def hvp_many(self, points, vectors, *, executor=None, chunk_size=None,
                 progress=False):
        """Hessian-vector products at many points: row k of the result is the
        Hessian (w.r.t. argument ``argnum``, an int) at ``points[k]`` times
        ``vectors[k]``, both given as in grad_many (one row of the argument's numbers
        per point, or one array of its shape); returns (N, n). ``executor``,
        ``chunk_size`` and ``progress`` as in grad_many."""
        if executor is not None or is_dask_array(points):
            return map_points(self, "hvp_many", points, (vectors,), executor,
                              chunk_size, progress)
        point_args = self._point_args(points)        # (refuses a non-int argnum)
        rec = self._current
        argnum = self.argnum % len(rec.leaf_slots)
        directions = point_rows(rec, argnum, vectors)
        if len(directions) != len(point_args):
            raise ValueError(f"one vector per point: {len(point_args)} points, "
                             f"{len(directions)} vectors")
        return np.array([
            np.concatenate([np.ravel(np.asarray(v, dtype=float)) for v in flatten(
                self.hvp(args, args_at(rec, argnum, direction)[argnum]))[0]])
            for args, direction in zip(point_args, directions)]).reshape(
                len(directions), -1)

    def _point_args(self, points):
        """The arguments at each point: argument argnum (an int) holding its row, the
        others as in the latest recording."""
        if type(self.argnum) is not int:
            raise TypeError("map and value_and_grad_many need an int argnum")
        rec = self._current
        argnum = self.argnum % len(rec.leaf_slots)
        return [args_at(rec, argnum, row) for row in point_rows(rec, argnum, points)]

    def _grad_many_arrays(self, rec, points, n_threads):
        return grad_many_arrays(self, rec, points, n_threads)

    def _gradient_rows(self, rows, out):
        """Gradients with respect to every leaf at each row of leaf values, into out;
        returns the rows done (fewer at a branch change)."""
        with self._lock:
            rec = self._current
            rec.scalar_output()
            output = rec.outputs[0]
            if output is None:                  # a constant function
                out[:] = 0.0
                return rows.shape[0]
            spec = input_spec(rec.all_leaves())
            scalar = type(output) is Variable
            return rec.tape.replay_array_gradients(
                output.node, -1 if scalar else output.anode, spec, rows, out)

    def _replicas(self, count):
        """count Traced functions replaying copies of this one's tape (this one first);
        just this one if its tape does not copy."""
        tape = self._current.tape
        replicas = getattr(self, "_replica_cache", None)
        if replicas is None or replicas[0] is not tape:
            replicas = self._replica_cache = (tape, [self])
        copies = replicas[1]
        while len(copies) < count:
            try:
                with self._lock:
                    state = pickle.dumps(self)
            except TypeError:          # Python-rule nodes: one thread
                break
            copies.append(pickle.loads(state))
        return copies[:count]

    def vjp(self, args: Sequence[Any], cotangent: Any) -> Any:
        """Gradient of <cotangent, f(*args)> with respect to argument(s) argnum."""
        return self.value_and_vjp(args, cotangent)[1]

    def value_and_vjp(self, args: Sequence[Any], cotangent: Any) -> tuple[Any, Any]:
        """(f(*args), gradient of <cotangent, f(*args)> with respect to argument(s)
        argnum): one replay and one reverse sweep."""
        with self._lock:
            rec = self._replay(args)
            seeds, _ = flatten(cotangent)
            outputs = [o for o in rec.outputs if o is not None]
            seeds = [c for c, o in zip(seeds, rec.outputs) if o is not None]
            if outputs:
                flat = reverse_flat(rec.tape, outputs, seeds, rec.all_leaves())
            else:
                flat = None
            return rec.output_values(), rec.rebuild_grads(flat, self.argnum)

    def value_and_vjp_arrays(self, args: Sequence[Any], cotangent: Any) -> tuple[Any, list]:
        """value_and_vjp for many calls in a loop (an ODE solver's right-hand side):
        args plain numbers and arrays, one per argument, and the output one array;
        returns (the output's value, [the gradient of each argument in argnum]). The
        leaves are written straight into the tape (their shapes checked, none of the
        general path's container handling); anything else (containers, scalar
        recordings, a changed branch) takes value_and_vjp."""
        with self._lock:
            rec = self._current
            lean = rec.lean
            if lean is not None and len(args) == len(lean[0]):
                leaves, out_slots, out_anodes, wanted = lean
                slots, values = [], []
                for a, leaf in zip(args, leaves):
                    if type(leaf) is Variable:
                        slots.append(leaf.slot)
                        values.append(float(a))
                    elif np.shape(a) != leaf.shape:
                        raise ValueError(f"an array of shape {leaf.shape} was traced, "
                                         f"got shape {np.shape(a)}")
                    else:
                        rec.tape.write_array_input(leaf.anode, a)
                if rec.tape.replay(slots, values) < 0 and rec.changed_array_guard() is None:
                    value = rec.outputs[0].value.copy()
                    rec.tape.seed_and_sweep(out_slots, out_anodes, [cotangent])
                    return value, leaf_gradients(rec.tape, wanted)
        value, grads = self.value_and_vjp(args, cotangent)
        return value, list(grads) if type(self.argnum) is not int else [grads]

    def lean_refs(self):
        """Where a C loop that replays and sweeps the current recording reads and
        writes (fasttape._ode_adjoint): (tape, [(is_array, array node or slot) of each
        argument's one leaf], (output node, output array node)), or None where
        value_and_vjp_arrays' lean path does not apply (see TraceRecording._lean_vjp)."""
        rec = self._current
        if rec.lean is None:
            return None
        leaves, out_slots, out_anodes, _wanted = rec.lean
        refs = [(False, leaf.slot) if type(leaf) is Variable else (True, leaf.anode)
                for leaf in leaves]
        return rec.tape, refs, (out_slots[0], out_anodes[0])

    def jvp(self, args: Sequence[Any], tangents: Any) -> Any:
        """(f(*args), directional derivative along tangents), tangents having the
        structure of all the arguments."""
        with self._lock:
            rec = self._replay(args)
            flat_t = [t for arg in tangents for t in flatten(arg)[0]]
            outputs = [o for o in rec.outputs if o is not None]
            result = iter(tangents_of(rec.tape, rec.all_leaves(), flat_t, outputs))
            out_t = [next(result) if o is not None else 0.0 for o in rec.outputs]
            return rec.output_values(), rec.out_structure.rebuild(out_t)

    def _jacobian_general(self, args, out):
        jac = self._jacobian(args)
        if out is None:
            return jac
        check_out(out, jac.shape)
        out[...] = jac
        return out

    def jacobian_many(self, points, out=None, *, executor=None, chunk_size=None,
                      progress=False):
        """Jacobians at many values of argument ``argnum`` (an int argnum; the other
        arguments as in the latest recording, as for grad_many): ``points`` of shape
        (N, n) for an argument of n numbers; returns (N, m, n) for m output values
        (into out when given). Scalar code runs all points in one C loop. With
        ``retrace=True`` a point that takes another branch is recorded again, and the
        points after it use the new recording. ``executor``, ``chunk_size`` and
        ``progress`` as in grad_many (out is then not taken)."""
        if type(self.argnum) is not int:
            raise TypeError("jacobian_many needs an int argnum")
        if executor is not None or is_dask_array(points):
            if out is not None:
                raise TypeError("jacobian_many on an executor returns a new array: "
                                "out= is not taken there")
            return map_points(self, "jacobian_many", points, (), executor, chunk_size,
                              progress)
        rec = self._current
        argnum = self.argnum % len(rec.structures)
        n = _width(rec.leaves[argnum])
        m = sum(1 if type(o) is not ArrayVariable else o.size for o in rec.outputs)
        points = np.ascontiguousarray(_real_points(points))
        if points.ndim != 2 or points.shape[1] != n:
            raise ValueError(f"points must be a 2-d array of one row of {n} values "
                             f"per point, got shape {points.shape}")
        shape = (points.shape[0], m, n)
        if out is None:
            out = np.empty(shape)
        else:
            check_out(out, shape)
        return self._jacobians(points, out)

    def _jacobians(self, points, out):
        return jacobians(self, points, out)

    def _jacobian(self, args):
        outputs = self._current.outputs
        out_structure = self._current.out_structure
        shapes = [() if type(o) is not ArrayVariable else o.shape for o in outputs]
        sizes = [int(np.prod(s)) for s in shapes]
        rows = []
        for i in range(sum(sizes)):
            seeds, start = [], 0
            for shape, size in zip(shapes, sizes):
                block = np.zeros(size)
                if start <= i < start + size:
                    block[i - start] = 1.0
                seeds.append(block.reshape(shape) if shape else float(block[0]))
                start += size
            g = self.vjp(args, out_structure.rebuild(seeds))
            rows.append(np.concatenate([np.ravel(np.asarray(v, dtype=float))
                                        for v in flatten(g)[0]]))
        return np.array(rows, dtype=float)

    def hvp(self, args: Sequence[Any], vector: Any) -> Any:
        """Hessian (w.r.t. argument argnum) times vector, by forward over reverse in C."""
        flat_v, _ = flatten(vector)
        with self._lock:
            rec = self._replay(args)      # (the arguments' errors first; may retrace)
            leaves = rec.leaves[self.argnum]
            problem = ValueError(f"the vector does not have the structure of argument "
                                 f"{self.argnum} ({len(leaves)} leaves)")
            if len(flat_v) != len(leaves):
                raise problem
            if rec.scalar_only:             # numbers: one conversion checks them all
                try:
                    direction = np.array(flat_v, dtype=float)
                except (TypeError, ValueError):
                    raise problem from None
                if direction.shape != (len(leaves),):
                    raise problem
            elif any(np.shape(v) != (() if type(leaf) is Variable else leaf.shape)
                     for v, leaf in zip(flat_v, leaves)):
                raise problem
            else:
                direction = joined(flat_v)
            by_function = self._python_rules_hvp(rec)
            if not by_function:
                product = self._hessian_times(rec, direction)
        if by_function:
            return differential.hvp(self.fun, self.argnum)(*args, vector)
        if rec.scalar_only:
            return rec.structures[self.argnum].rebuild(product.tolist())
        return rec.structures[self.argnum].rebuild(split_like(product, leaves))

    def hessian(self, *args: Any) -> np.ndarray:
        """The Hessian with respect to argument argnum, over its flat values: (n, n).
        One replay, then one forward-over-reverse sweep per column."""
        with self._lock:
            rec = self._replay(args)
            n = _width(rec.leaves[self.argnum])
            by_function = self._python_rules_hvp(rec)
            if not by_function:
                slots = list(rec.leaf_slots[self.argnum])
                columns = [self._hessian_times(rec, unit, slots) for unit in np.eye(n)]
        if by_function:
            return np.asarray(differential.hessian(self.fun, self.argnum)(*args),
                              dtype=float).reshape(n, n)
        return np.array(columns, dtype=float).T.reshape(n, n)

    def _python_rules_hvp(self, rec):
        """Check argnum; True if second derivatives need fasttape.hvp on the function
        (nodes with Python rules have none in C)."""
        if type(self.argnum) is not int:
            raise TypeError("hvp and hessian need an int argnum")
        return not rec.scalar_only and self.fun is not None and \
            rec.tape.has_python_rules()

    def _hessian_times(self, rec, direction, slots=None):
        """H @ direction (flat, over argument argnum's values) at the replayed point
        (slots: argument argnum's leaf slots as a list, for scalar code)."""
        out = rec.scalar_output()
        output = rec.outputs[0]
        if output is None:                  # a constant function
            return np.zeros(direction.shape[0])
        if rec.scalar_only:
            return np.asarray(rec.tape.hessian_vector_c(
                out, slots if slots is not None else list(rec.leaf_slots[self.argnum]),
                direction.tolist())[1])
        return rec.tape.hessian_vector_arrays(
            -1 if out is None else out, input_spec(list(rec.leaves[self.argnum])),
            direction, output.anode if out is None else -1)[1]

    def _leaf_spec(self, rec):
        """Argument argnum's leaves as the batched C sweeps name them: (index,
        is_array) arrays, index a slot or an array node."""
        if rec.scalar_only:
            index = np.asarray(rec.leaf_slots[self.argnum], dtype=np.int64)
            return index, np.zeros(index.shape[0], dtype=np.uint8)
        return input_spec_arrays(list(rec.leaves[self.argnum]))

    def _hessian_times_many(self, rec, directions, leaf_spec):
        """H @ directions.T ((k, N) directions over argument argnum's flat values;
        (N, k)) at the replayed point, in one pass (leaf_spec from _leaf_spec)."""
        out = rec.scalar_output()
        output = rec.outputs[0]
        if output is None:                  # a constant function
            return np.zeros((directions.shape[1], directions.shape[0]))
        index, is_array = leaf_spec
        return rec.tape.hessian_times_many(
            -1 if out is None else out, index, is_array, directions,
            output.anode if out is None else -1)

    # -- sparse derivatives (fasttape.sparsity, fasttape.compressed) -------------------
    # (imported on first use: `import fasttape` does not load scipy.sparse)

    def jacobian_sparsity(self):
        """The pattern of ``jacobian``: which output values depend on which values of
        argument argnum, from the tape (valid where the traced branches hold), as a
        boolean scipy.sparse CSR matrix."""
        from fasttape import compressed
        return compressed.jacobian_plan(self).pattern

    def hessian_sparsity(self):
        """The pattern of ``hessian`` (a scalar output), from the tape: a symmetric
        boolean scipy.sparse CSR matrix."""
        from fasttape import compressed
        return compressed.hessian_plan(self).pattern

    def jacobian_colors(self):
        """(colours, forward): the colouring the sparse Jacobian compresses with, over
        columns (forward, one tangent sweep per colour) or rows (reverse)."""
        from fasttape import compressed
        plan = compressed.jacobian_plan(self)
        return plan.colors, plan.forward

    def hessian_colors(self, coloring="star"):
        """The colouring of the Hessian's columns (one Hessian-vector product per
        colour; their number is ``colors.max() + 1``): "star" (direct recovery) or
        "acyclic" (fewer colours, recovery by substitution)."""
        from fasttape import compressed
        return compressed.hessian_plan(self, coloring).colors

    def sparse_jacobian(self, *args, format="csr"):
        """``jacobian`` at args as scipy.sparse CSR (or another scipy.sparse
        ``format``: "coo", "csc", ...), by one sweep per colour of its pattern (pattern
        and colouring computed on first use and kept)."""
        from fasttape import compressed
        compressed.check_format(format)
        return compressed.in_format(compressed.sparse_jacobian(self, args), format)

    def sparse_hessian(self, *args, coloring="star", format="csr"):
        """``hessian`` at args as scipy.sparse CSR (or another scipy.sparse
        ``format``), by one Hessian-vector product per colour of a colouring of its
        pattern (both kept): coloring="star" recovers each value directly, "acyclic"
        uses fewer colours and recovers by substitution."""
        from fasttape import compressed
        compressed.check_format(format)
        return compressed.in_format(
            compressed.sparse_hessian(self, args, self._flat_hvp_by_function, coloring),
            format)

    def _flat_hvp_by_function(self, args, direction):
        rec = self._current
        leaves = rec.leaves[self.argnum]
        pieces = [float(v) for v in direction] if all(
            type(leaf) is Variable for leaf in leaves) else split_like(direction, leaves)
        product = differential.hvp(self.fun, self.argnum)(
            *args, rec.structures[self.argnum].rebuild(pieces))
        return np.concatenate([np.ravel(np.asarray(v, dtype=float))
                               for v in flatten(product)[0]])

    # -- introspection ---------------------------------------------------------------------

    @property
    def n_nodes(self):
        return self._current.tape.n_nodes

    @property
    def n_guards(self):
        """Number of comparisons re-checked on each replay."""
        return self._current.tape.n_guards

    @property
    def nbytes(self):
        """Bytes of the tape's buffers."""
        return self._current.tape.nbytes

    def dump(self, file=None):
        """Print one line per node."""
        self._current.tape.dump(file)

    def to_dot(self):
        """The computational graph in Graphviz's dot language."""
        rec = self._current
        arrays = rec.tape.arrays()
        names = {code: name for name, code, _ in OP_TABLE}
        arity = {code: a for _, code, a in OP_TABLE}
        lines = ["digraph fasttape {", "  rankdir=LR;", "  node [shape=box, fontsize=10];"]
        inputs = {s for arg in rec.leaf_slots for s in arg}
        for i, (op, a, b) in enumerate(zip(arrays["ops"], arrays["arg0s"],
                                           arrays["arg1s"])):
            name = names[int(op)]
            shape = ', shape=ellipse' if i in inputs else ''
            lines.append(f'  n{i} [label="v{i} {name}\\n{arrays["values"][i]:.4g}"{shape}];')
            operands = []
            if name == "SELECT":
                operands = [a, arrays["extras"][b], arrays["extras"][b + 1]]
            elif name.endswith("_CV"):
                operands = [b]
            elif arity[int(op)] >= 1:
                operands = [a] + ([b] if arity[int(op)] == 2 else [])
            for o in operands:
                lines.append(f"  n{int(o)} -> n{i};")
        for o in rec.outputs:
            if o is not None:
                lines.append(f"  n{o.node} [style=bold];")
        lines.append("}")
        return "\n".join(lines)

    # -- pickling ---------------------------------------------------------------------------

    def __reduce_ex__(self, protocol):
        # protocol 2's reduction for every protocol: 0 and 1's default cannot make an
        # instance of a class with a C base (TracedCalls)
        return copyreg.__newobj__, (type(self),), self.__getstate__()

    def __getstate__(self):
        rec = self._current
        state = {"tape": rec.tape, "argnum": self.argnum, "retrace": self.retrace,
                 "structures": list(rec.structures),
                 "leaf_slots": [list(s) for s in rec.leaf_slots],
                 "all_slots": np.array(rec.all_slots),
                 "out_structure": rec.out_structure,
                 "out_slots": list(rec.out_slots),
                 "out_constants": list(rec.out_constants)}
        if not rec.scalar_only:
            # array leaves and outputs by their array node (-1: a scalar or constant)
            state["leaf_anodes"] = [[-1 if type(v) is Variable else v.anode for v in arg]
                                    for arg in rec.leaves]
            state["out_anodes"] = [o.anode if type(o) is ArrayVariable else -1
                                   for o in rec.outputs]
            state["example_args"] = rec.example_args
        state["format"] = FORMAT_VERSION
        state["writer"] = __version__
        state["digest"] = digest(state)      # (the tape carries its own)
        return state

    def __setstate__(self, state):
        try:
            check_digest(state)
        except ValueError as e:
            raise ValueError(f"corrupt traced function: {e}") from None
        try:
            tape = state["tape"]
            leaf_anodes = state.get("leaf_anodes")
            out_anodes = state.get("out_anodes")
            leaf_slots = [[int(s) for s in arg] for arg in state["leaf_slots"]]
            out_slots = [None if s is None else int(s) for s in state["out_slots"]]
            out_constants = [None if c is None else float(c)
                             for c in state["out_constants"]]
            structures = list(state["structures"])
            out_structure = state["out_structure"]
            argnum, retrace = state["argnum"], bool(state["retrace"])
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"corrupt traced function: {e!r}") from None
        if type(tape) is not Tape:
            raise ValueError("corrupt traced function: its tape is not a fasttape Tape")
        scalar_only = leaf_anodes is None
        _check_loaded_references(tape, structures, out_structure, leaf_slots,
                                 leaf_anodes, out_slots, out_anodes, out_constants,
                                 scalar_only)
        all_slots = np.array([s for arg in leaf_slots for s in arg], dtype=np.intp)
        if scalar_only:
            leaves = [[variable_at(tape, s) for s in arg] for arg in leaf_slots]
            outputs = [None if s is None else variable_at(tape, s) for s in out_slots]
            example_values = np.array([tape.value_at(s) for s in all_slots])
            example_args = None
        else:
            leaves = [[variable_at(tape, s) if r < 0 else _array_handle(tape, r)
                       for s, r in zip(slots, anodes)]
                      for slots, anodes in zip(leaf_slots, leaf_anodes)]
            outputs = [_array_handle(tape, r) if r >= 0 else
                       None if s is None else variable_at(tape, s)
                       for s, r in zip(out_slots, out_anodes)]
            example_values = None
            example_args = state.get("example_args")
        self.fun = None
        self.argnum = argnum
        self.retrace = retrace
        self._current = TraceRecording(
            tape=tape, structures=structures, leaves=leaves, scalar_only=scalar_only,
            leaf_slots=leaf_slots, out_structure=out_structure, all_slots=all_slots,
            outputs=outputs, example_values=example_values, example_args=example_args,
            out_slots=out_slots, out_constants=out_constants, argnum=argnum)
        self._lock = threading.Lock()
        self._local = threading.local()
        _live.add(self)

    def __repr__(self):
        name = getattr(self.fun, "__name__", "a loaded function")
        tape = self._current.tape
        return (f"<fasttape.Traced {name}: {tape.n_nodes} nodes, "
                f"{tape.n_guards} comparisons>")


def _check_loaded_references(tape, structures, out_structure, leaf_slots,
                             leaf_anodes, out_slots, out_anodes, out_constants,
                             scalar_only):
    """A loaded traced function refers to inputs and outputs its tape has, in the
    numbers its structures say (a corrupt file raises ValueError here rather than
    crashing a sweep later)."""
    try:
        if scalar_only and tape.n_array_nodes:
            raise ValueError("array nodes on the tape of a scalar trace")
        if len(structures) != len(leaf_slots) or any(
                type(s) is not Structure or s.n_leaves != len(slots)
                for s, slots in zip(structures, leaf_slots)):
            raise ValueError("the arguments' structures and their leaves disagree")
        if type(out_structure) is not Structure or \
                not out_structure.n_leaves == len(out_slots) == len(out_constants):
            raise ValueError("the output's structure and its values disagree")
        if not scalar_only and (len(leaf_anodes) != len(leaf_slots) or any(
                len(a) != len(s) for a, s in zip(leaf_anodes, leaf_slots)) or
                len(out_anodes) != len(out_slots)):
            raise ValueError("the array inputs or outputs and their slots disagree")
        for k, slots in enumerate(leaf_slots):
            anodes = leaf_anodes[k] if leaf_anodes is not None else [-1] * len(slots)
            tape.check_leaves_and_output(
                [(r >= 0, r if r >= 0 else s) for s, r in zip(slots, anodes)], 0, -1)
        for k, s in enumerate(out_slots):
            r = out_anodes[k] if out_anodes is not None else -1
            if r >= 0:
                tape.array_node(r)
            elif s is not None and not 0 <= s < tape.n_slots:
                raise ValueError(f"output slot {s} is not on the tape")
            elif s is None and out_constants[k] is None:
                raise ValueError(f"output {k} is neither on the tape nor a constant")
    except (ValueError, IndexError, TypeError) as e:
        raise ValueError(f"corrupt traced function: {e}") from None


def _array_handle(tape, r):
    """An ArrayVariable for array node r of a loaded tape."""
    info = tape.array_node(r)
    return array_variable_at(tape, r, info.node, info.value)


def _describe(structure):
    return structure.describe()


def _same_structure(a, b):
    return a == b


def _zeros_with_structure(x):
    flat, structure = flatten(x)
    return structure.rebuild([np.zeros_like(v) if isinstance(v, np.ndarray) else 0.0
                              for v in flat])


# -- fork safety -----------------------------------------------------------------------

# every Traced alive in this process (weakly), for the child of a fork
_live = weakref.WeakSet()


def _after_fork_in_child():
    """A forked child has only the thread that forked. A Traced's lock that another
    thread held at the fork would never be released there, and a tape that thread was
    sweeping would stay busy: each Traced gets a new lock and per-thread state, and
    its tapes are idle (a replay writes every value again)."""
    for traced in list(_live):
        traced._lock = threading.Lock()
        traced._local = threading.local()
        traced._current.tape.forget_sweep_after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)
