"""Record a function once, then sweep: the one recording under every differential
operator (fasttape.differential) and under ``trace``, as autograd builds every
operator on one ``make_vjp``.

``record(fun, args, argnum)`` calls ``fun`` once, with leaves for the differentiated
arguments, and returns a ``Recording``: the leaves, the output and the tape they are
on. Its methods sweep that tape: ``vjp`` (reverse), ``jvp`` (forward), ``jacobian``
(by rows or by columns), ``value_and_grad`` (one reverse sweep from a scalar output)
and ``hvp`` (Hessian times vectors, forward over reverse in C). The tape is active
(operations on plain numbers inside ``fun`` see it) only while ``fun`` runs.

Where it records (the ``tape`` argument):

- ``POOLED``: the thread's pooled tape, given back by ``release()`` (grad and its
  relatives, the C Hessian-vector path);
- ``SCRATCH``: the same, for a recording made inside a sweep (checkpoint's rules),
  where the active tape is not the caller's and so does not make it nested;
- ``OWN``: a tape of its own, kept alive by the Recording (make_vjp, make_jvp,
  jacobian);
- ``REPLAYABLE``: a tape of its own that can be replayed (``trace``): comparisons
  remember where they were made, array inputs are copies (a replay writes new inputs
  into them), and it is never nested.

Nested: when the differentiated arguments hold Variables of an enclosing computation,
or (except SCRATCH and REPLAYABLE) any differentiation is under way, the recording goes
on the enclosing tape itself, its leaves are copies of the arguments there, and its
sweeps record their own operations (fasttape._recording_sweeps), so that the
derivative can be differentiated again (grad of grad, hessian, jvp of grad).

One fast path stays outside the class: grad of a function of Python floats
(``_variable.scalar_value_and_grad``, in C, since building a Recording would cost
more than the whole call: the textbook gradient takes about 1.5 microseconds); it ends
as this module does, by ``finish_output``, for an output that is not a Variable.
"""
import math
import numbers
import warnings

import numpy as np

import fasttape.numpy as fnp
from fasttape._arrays import (ArrayVariable, holds_variables, input_spec,
                              leaf_gradients, make_array_leaf, output_refs,
                              sweep_gradients, tangents_of)
from fasttape._containers import (LEAF_STRUCTURE, Structure, flatten, joined,
                                  recorded_array, split_like)
from fasttape._recording_sweeps import reverse_recording, tangent_recording
from fasttape._rule_nodes import rule_node
from fasttape._tape import Tape, pop_active, push_active
from fasttape._tape_pools import (acquire_tape, active_tape, release_tape, restore_pause,
                                  suspend_pause)
from fasttape._variable import Variable, make_leaf, make_leaves
from fasttape.errors import ComplexInputError, TapeMismatchError

VARIABLE_TYPES = (Variable, ArrayVariable)
_LEAF_STRUCTURES = (LEAF_STRUCTURE,)    # (shared, read-only)
_NOT_CONSECUTIVE = (False,)

POOLED = "pooled"
SCRATCH = "scratch"
OWN = "own"
REPLAYABLE = "replayable"


def record(fun, args, argnum=0, kwargs=None, tape=OWN):
    """Record ``fun(*args, **kwargs)`` with leaves for argument(s) ``argnum`` (an int
    or a tuple of ints; each argument a number, an array, or nested tuples, lists and
    dicts of them) on a ``tape`` of the given kind (see the module docstring).
    Complex arguments and outputs: a fasttape._complex_recording.ComplexRecording
    (see the hook below)."""
    kwargs = {} if kwargs is None else kwargs
    try:
        rec = Recording(fun, args, argnum, kwargs, tape)
    except ComplexInputError:
        if COMPLEX is None or not COMPLEX.holds_complex(args, argnum):
            raise
        return COMPLEX.record_complex(fun, args, argnum, kwargs, tape)
    out = rec.out
    if type(out) is Variable or type(out) is ArrayVariable or type(out) is float or \
            COMPLEX is None:
        return rec
    return COMPLEX.complex_outputs(rec)


# -- complex numbers: a hook ------------------------------------------------------------
# fasttape._complex_recording (a layer above) records complex arguments as pairs of
# real leaves and sweeps complex outputs by their real parts. ``record`` hands over to
# it when a leaf turns out to be complex (ComplexInputError: real arguments never
# look) or the output is not a real Variable or number. Filled by fasttape._wiring
# with that module.
COMPLEX = None


def register_complex_recording(module):
    global COMPLEX
    COMPLEX = module


class Recording:
    """``fun`` recorded once at ``args``, with ``argnum`` marking the inputs.

    Attributes: ``tape``; ``nested`` (recorded on an enclosing tape); ``structures``
    (one per differentiated argument), ``arg_leaves`` (a list of leaves per
    differentiated argument), ``leaves`` (all of them, flat), ``consecutive`` (per
    argument: its leaves are consecutive slots, a flat list of numbers); ``out`` (what
    ``fun`` returned), and, flattened, ``out_flat``, ``out_structure`` and
    ``out_variables`` (the positions in out_flat of Variables of the tape).
    """

    __slots__ = ("fun", "argnum", "tape", "nested", "pooled", "structures",
                 "arg_leaves", "leaves", "consecutive", "out", "_out_flat",
                 "_out_structure", "_out_variables", "dtype")

    def __init__(self, fun, args, argnum, kwargs, tape):
        self.fun = fun
        self.argnum = argnum
        self._out_flat = None
        self.dtype = None
        if type(argnum) is int and -len(args) <= argnum < len(args):
            # one argument, the common case (argnum_of and enclosing_tape written out)
            argnums = (argnum,)
            x = args[argnum]
            plain = type(x) is float or type(x) is np.ndarray
            if plain and type(x) is np.ndarray and x.dtype.type is not np.float64 \
                    and x.dtype.kind == "f":
                self.dtype = x.dtype      # (float32, float16: its derivatives too)
            enclosing = None if plain or tape is REPLAYABLE or not holds_variables(x) \
                else enclosing_tape(args, argnums)
        else:
            plain = False
            argnums = argnums_of(fun, argnum, args)
            enclosing = None if tape is REPLAYABLE else enclosing_tape(args, argnums)
        if enclosing is None and tape is not SCRATCH and tape is not REPLAYABLE:
            # inside another differentiation (even with plain-number arguments, fun
            # may close over its Variables): record on that tape, nested
            enclosing = active_tape()
        self.nested = nested = enclosing is not None
        self.pooled = pooled = not nested and (tape is POOLED or tape is SCRATCH)
        if nested:
            self.tape = t = enclosing
            push_active(t)
        elif pooled:                  # borrowed from the thread's pool: release() it
            self.tape = t = acquire_tape()
        else:                         # kept alive by whoever holds this recording
            self.tape = t = Tape()
            if tape is REPLAYABLE:
                t.locate_guards = True
                t.replayable = True
            push_active(t)
        done = False
        paused = suspend_pause()      # (a no_grad block around: leaves and fun record)
        try:
            if plain and not nested:
                # (_record_inputs for one float or array, written out: the hot path)
                leaf = make_leaf(t, x) if type(x) is float else make_array_leaf(
                    t, np.array(x, dtype=np.float64) if tape is REPLAYABLE else x)
                self.leaves = leaves = [leaf]
                self.arg_leaves = [leaves]
                self.structures = _LEAF_STRUCTURES
                self.consecutive = _NOT_CONSECUTIVE
                call_args = list(args)
                call_args[argnum] = leaf
            elif nested:
                call_args = _copy_inputs(self, t, argnums, args)
            else:
                call_args = _record_inputs(self, t, argnums, args, tape is REPLAYABLE)
            self.out = fun(*call_args, **kwargs)
            done = True
        finally:
            restore_pause(paused)
            pop_active(t)             # (the tape is active only while fun runs)
            if pooled and not done:
                self.release()        # (fun raised)

    def release(self):
        """Give a pooled tape back (its Variables become stale)."""
        if self.pooled:
            release_tape(self.tape)
            self.pooled = False

    # -- the output ------------------------------------------------------------------------

    def _flatten_output(self):
        self._out_flat, self._out_structure = flatten(self.out, variables=True)
        self._out_variables = [i for i, o in enumerate(self._out_flat)
                               if type(o) in VARIABLE_TYPES and o.tape is self.tape]

    @property
    def out_flat(self):
        if self._out_flat is None:
            self._flatten_output()
        return self._out_flat

    @property
    def out_structure(self):
        if self._out_flat is None:
            self._flatten_output()
        return self._out_structure

    @property
    def out_variables(self):
        if self._out_flat is None:
            self._flatten_output()
        return self._out_variables

    def value(self):
        """The output with plain values (Variables of an enclosing tape stay)."""
        if self.nested:
            return self.out
        return self.out_structure.rebuild([
            o.value if type(o) in VARIABLE_TYPES else o for o in self.out_flat])

    def require_scalar_output(self):
        """Raise grad's TypeError unless the output is one number."""
        o = self.out
        if type(o) is ArrayVariable and o.size == 1 or type(o) is Variable:
            return
        if isinstance(o, numbers.Real) or isinstance(o, np.ndarray) and o.size == 1:
            return
        if type(o) is ArrayVariable:
            raise_not_scalar(self.fun, o)
        constant_output(self.fun, o, True)

    def rebuild(self, flat):
        """Per-leaf derivatives (flat) in the structure of the differentiated
        argument(s): one for an int argnum, a tuple for a tuple."""
        if type(self.argnum) is int:
            structure = self.structures[0]
            if structure is LEAF_STRUCTURE:
                return flat[0] if self.dtype is None or type(flat[0]) is not np.ndarray \
                    else flat[0].astype(self.dtype)
            return structure.rebuild(flat)
        return tuple(rebuild_each(self.structures, flat))

    def zero_gradients(self):
        return [zeros_of(leaf) for leaf in self.leaves]

    def leaf_slots(self):
        """Per argument, the slot of each leaf (-1 for an array leaf)."""
        # (leaves made by make_leaves are consecutive slots: no per-leaf Python work)
        return [list(range(arg[0].slot, arg[0].slot + len(arg)))
                if arg and consecutive else
                [leaf.slot if type(leaf) is Variable else -1 for leaf in arg]
                for arg, consecutive in zip(self.arg_leaves, self.consecutive)]

    # -- sweeps --------------------------------------------------------------------------

    def value_and_grad(self, ones_seed=False):
        """(value, gradient) of a scalar output; with ones_seed, (output, the sum of
        the gradients of its elements) for any output (elementwise_grad)."""
        out = self.out
        if type(out) is np.ndarray and out.dtype.kind == "O":
            out = self.out = recorded_array(out)      # (plain NumPy of Variables)
        if self.nested:
            if not ones_seed:
                self.require_scalar_output()
            return out, self.vjp(_ones_like(out))
        if type(out) is Variable or type(out) is ArrayVariable:
            if not ones_seed and type(out) is ArrayVariable and out.size != 1:
                raise_not_scalar(self.fun, out)
            value, flat = sweep_gradients(
                self.tape, out, self.leaves, np.ones(out.size) if ones_seed and
                type(out) is ArrayVariable else None)
            if not ones_seed and type(value) is not float:
                value = float(value.reshape(()))
        else:
            value = constant_output(self.fun, out, not ones_seed)
            flat = self.zero_gradients()
        if self.structures is _LEAF_STRUCTURES and type(self.argnum) is int:
            # (one float or array: nothing to rebuild)
            return value, flat[0] if self.dtype is None else flat[0].astype(self.dtype)
        return value, self.rebuild(flat)

    def vjp(self, cotangent):
        """Gradient of <cotangent, out> with respect to the inputs."""
        seeds, _ = flatten(cotangent, variables=True)
        if len(seeds) != len(self.out_flat):
            raise ValueError("the cotangent does not have the structure of the output")
        outputs = [self.out_flat[i] for i in self.out_variables]
        seeds = [seeds[i] for i in self.out_variables]
        for o, s in zip(outputs, seeds):
            if type(s) not in VARIABLE_TYPES and np.iscomplexobj(s):
                raise TypeError("a complex cotangent for a real output: its imaginary "
                                "part would be lost (take its real part, or make the "
                                "output complex)")
            if np.shape(s.value if type(s) in VARIABLE_TYPES else s) != shape_of(o):
                raise ValueError(f"cotangent of shape {np.shape(s)} for an output of "
                                 f"shape {shape_of(o)}")
        if not outputs:
            flat = self.zero_gradients()
        elif self.nested:
            _check_directions(self.tape, seeds, "cotangent")
            flat = reverse_recording(self.tape, outputs, seeds, self.leaves)
        elif any(type(s) in VARIABLE_TYPES for s in seeds):
            flat = _linear_in_directions(self, seeds, reverse=True)
        else:
            flat = reverse_flat(self.tape, outputs, seeds, self.leaves)
        return self.rebuild(flat)

    def jvp(self, tangent):
        """Directional derivative of the output along `tangent` (the inputs' structure)."""
        if type(self.argnum) is int:
            flat, _ = flatten(tangent, variables=True)
        else:
            flat = []
            for t in tangent:
                flat.extend(flatten(t, variables=True)[0])
        if len(flat) != len(self.leaves):
            raise ValueError("the tangent does not have the structure of the inputs")
        outputs = [self.out_flat[i] for i in self.out_variables]
        if not outputs:
            result = []
        elif self.nested:
            _check_directions(self.tape, flat, "tangent")
            result = tangent_recording(self.tape, self.leaves, flat, outputs)
        elif any(type(t) in VARIABLE_TYPES for t in flat):
            result = _linear_in_directions(self, flat, reverse=False)
        else:
            result = tangents_of(self.tape, self.leaves, flat, outputs)
        out = [np.zeros(np.shape(o)) if np.ndim(o) else 0.0 for o in self.out_flat]
        for i, t in zip(self.out_variables, result):
            out[i] = t
        return self.out_structure.rebuild(out)

    def jacobian(self, mode, holomorphic=False):
        """Jacobian of the output(s) with respect to the input(s) argnum (see
        jacobian_matrix for the modes). For one array (or number) out and in: shape
        out.shape + x.shape. Otherwise structured as JAX's: the output's structure
        holding, for each of its arrays, the input's structure (a tuple of the
        arguments' for a tuple argnum) of blocks of shape out.shape + x.shape.
        (holomorphic=True is for complex inputs: an error here, as JAX's.)"""
        if holomorphic:
            raise TypeError(f"jacobian of {getattr(self.fun, '__name__', self.fun)} "
                            f"with holomorphic=True requires complex inputs")
        out_shapes = [shape_of(o) for o in self.out_flat]
        x_shapes = [shape_of(x) for x in self.leaves]
        single = len(self.out_flat) == 1 and len(self.leaves) == 1 and \
            self.out_structure is LEAF_STRUCTURE and self.structures[0] is LEAF_STRUCTURE \
            and type(self.argnum) is int
        matrix = self.jacobian_matrix(mode)
        reshape = fnp.reshape if type(matrix) is ArrayVariable else np.reshape
        if single:
            return reshape(matrix, out_shapes[0] + x_shapes[0])
        if type(matrix) is np.ndarray and all(s == () for s in out_shapes) and \
                all(s == () for s in x_shapes):
            # numbers in and out: float entries, as grad gives for numbers
            return self.out_structure.rebuild([self.rebuild(row)
                                               for row in matrix.tolist()])
        per_output = []
        row = 0
        for o_shape in out_shapes:
            n_o = math.prod(o_shape)
            blocks, column = [], 0
            for x_shape in x_shapes:
                n_x = math.prod(x_shape)
                blocks.append(reshape(matrix[row:row + n_o, column:column + n_x],
                                      o_shape + x_shape))
                column += n_x
            per_output.append(self.rebuild(blocks))
            row += n_o
        return self.out_structure.rebuild(per_output)

    def jacobian_matrix(self, mode):
        """The Jacobian of the outputs' numbers (flat, in order) with respect to the
        inputs' numbers: shape (n_out, n_in). By rows (reverse sweeps, mode "rev"), by
        columns (tangent sweeps, "fwd") or whichever is fewer ("auto")."""
        out_shapes = [shape_of(o) for o in self.out_flat]
        x_shapes = [shape_of(x) for x in self.leaves]
        n_out = sum(math.prod(s) for s in out_shapes)
        n_in = sum(math.prod(s) for s in x_shapes)
        if not self.out_variables or n_out == 0 or n_in == 0:
            matrix = np.zeros((n_out, n_in))    # (no rows or no columns: empty)
        elif not self.nested and (mode == "rev" or mode == "auto" and n_out <= n_in) \
                and all(s == () for s in out_shapes) and all(s == () for s in x_shapes):
            # numbers to numbers: one sweep per output variable, seeded 1.0 (no unit
            # cotangents to build and check); constant outputs: zero rows
            matrix = np.zeros((n_out, n_in))
            for i in self.out_variables:
                matrix[i] = reverse_flat(self.tape, [self.out_flat[i]], [1.0],
                                         self.leaves)
        elif self.nested or mode == "rev" or mode == "auto" and n_out <= n_in:
            rows = []
            for i in range(n_out):
                row = self.vjp(self.out_structure.rebuild(_unit(i, out_shapes)))
                rows.append(_flat_row(row, self.nested))
            matrix = fnp.stack(rows) if self.nested else np.asarray(rows, dtype=float)
        else:
            columns = []
            for j in range(n_in):
                unit = _unit(j, x_shapes)
                tangent = self.structures[0].rebuild(unit) if type(self.argnum) is int \
                    else rebuild_each(self.structures, unit)
                columns.append(np.asarray(_flat_row(self.jvp(tangent), False),
                                          dtype=float))
            matrix = np.stack(columns, axis=-1)
        return matrix

    def hvp(self, directions):
        """The Hessian (argnum an int) times each direction (of the argument's
        structure), by the C forward-over-reverse sweep; None when that does not apply
        (a nested recording, an output that is not a scalar Variable of the tape,
        operations with Python rules)."""
        out = self.out
        tape = self.tape
        if self.nested or type(out) is not Variable or out.tape is not tape:
            return None
        leaves = self.leaves
        results = []
        if not tape.n_array_nodes:
            slots = [leaf.slot for leaf in leaves]
            for direction in directions:
                flat, _ = flatten(direction)
                flat = [float(v) for v in flat]
                if len(flat) != len(slots):
                    raise ValueError("the vector does not have the structure of the "
                                     "input")
                _, hv = tape.hessian_vector_c(out.node, slots, flat)
                results.append(self.structures[0].rebuild(hv))
            return results
        if tape.has_python_rules():
            return None
        spec = input_spec(leaves)
        shapes = [leaf.shape if type(leaf) is ArrayVariable else () for leaf in leaves]
        for direction in directions:
            flat, _ = flatten(direction)
            if len(flat) != len(leaves) or any(np.shape(v) != shape
                                               for v, shape in zip(flat, shapes)):
                raise ValueError("the vector does not have the structure of the input")
            _, hv = tape.hessian_vector_arrays(out.node, spec, joined(flat))
            results.append(self.structures[0].rebuild(split_like(hv, leaves)))
        return results


def hessian_vectors(fun, argnum, args, directions):
    """``fun``'s Hessian with respect to argument ``argnum`` times each direction, by
    the C forward-over-reverse sweep over a pooled recording, or None (having recorded
    nothing when it is called inside another differentiation) when that path does
    not apply."""
    if type(argnum) is not int or active_tape() is not None or \
            -len(args) <= argnum < len(args) and holds_variables(args[argnum]):
        argnums_of(fun, argnum, args)           # (argnum's errors first)
        return None
    try:
        rec = Recording(fun, args, argnum, {}, POOLED)
    except ComplexInputError:          # (complex arguments: the general path)
        return None
    try:
        return rec.hvp(directions)
    finally:
        rec.release()


def _check_directions(tape, directions, what):
    """Variables among a nested recording's tangents or cotangents must be of its
    tape (they are recorded into the sweep)."""
    for d in directions:
        if type(d) in VARIABLE_TYPES and d.tape is not tape:
            raise TapeMismatchError(f"a {what} holds a Variable of another tape than "
                                    f"the differentiated function's")


def _linear_in_directions(rec, directions, reverse):
    """The derivative sweep of a recording made outside any differentiation (its
    Jacobian J is a constant there) along directions that hold Variables of a
    differentiation under way: J^T c (reverse) or J t (forward) as ONE node on the
    directions' tape, linear in them, whose rules are the opposite sweeps of rec (the
    derivative of c -> J^T c is J, of t -> J t is J^T). The sweeps of that node may
    meet Variables again (a third order): they come back here.

    directions: the flat cotangents (one per output, reverse) or tangents (one per
    leaf, forward). Returns the flat results (one per leaf, or one per output of
    rec that is a Variable) as Variables of the directions' tape."""
    outputs = [rec.out_flat[i] for i in rec.out_variables]
    inputs = [shape_of(leaf) for leaf in rec.leaves]
    produced = inputs if reverse else [shape_of(o) for o in outputs]
    consumed = [shape_of(o) for o in outputs] if reverse else inputs
    moving = [i for i, d in enumerate(directions) if type(d) in VARIABLE_TYPES]
    enclosing = directions[moving[0]].tape
    for i in moving:
        if directions[i].tape is not enclosing:
            raise TapeMismatchError("the directions hold Variables of two tapes")

    def along(values, backwards):
        """One sweep of rec with plain directions: results flat, one per leaf
        (backwards) or per output."""
        values = [value_of(v) for v in values]
        if backwards:
            return reverse_flat(rec.tape, outputs, values, rec.leaves)
        return tangents_of(rec.tape, rec.leaves, values, outputs)

    def spread(parts, shapes, positions=None):
        """Directions for all positions from the values at `positions` (zeros at
        the others)."""
        full = [np.zeros(s) if s else 0.0 for s in shapes]
        for i, part in zip(range(len(shapes)) if positions is None else positions,
                           parts):
            full[i] = part
        return full

    def sweep(parts, backwards, positions=None, shapes=None):
        """The sweep along directions that may themselves be Variables (higher
        orders): through a node again, or plainly."""
        full = spread(parts, shapes, positions)
        if any(type(p) in VARIABLE_TYPES for p in parts):
            return _linear_in_directions(rec, full, backwards)
        return along(full, backwards)

    value = joined([np.asarray(r, dtype=float) for r in along(directions, reverse)])
    sizes = [int(np.prod(s)) for s in produced]

    def split(flat_g):
        parts, start = [], 0
        for size, shape in zip(sizes, produced):
            piece = flat_g[start:start + size]
            parts.append(fnp.reshape(piece, shape) if shape else piece[0])
            start += size
        return parts

    def reverse_rule(g, ans, *moving_values):
        # the transpose of this node's map: the opposite sweep, read at `moving`
        back = sweep(split(fnp.reshape(g, (-1,))), not reverse, shapes=produced)
        return [back[i] for i in moving]

    def forward_rule(tangents, ans, *moving_values):
        # the map itself (linear): the same sweep along the moving tangents
        result = sweep([0.0 if t is None else t for t in tangents], reverse,
                       positions=moving, shapes=consumed)
        return fnp.concatenate([fnp.reshape(r, (-1,)) for r in result])

    def evaluate(*moving_values):
        full = list(directions)
        for i, v in zip(moving, moving_values):
            full[i] = v
        return joined([np.asarray(r, dtype=float) for r in along(full, reverse)])

    node = rule_node([directions[i] for i in moving], value, reverse_rule,
                     forward_rule, evaluate)
    return split(node)


def reverse_flat(tape, outputs, seeds, leaves):
    """One reverse sweep of `tape` from `outputs` seeded with `seeds`; the leaves'
    adjoints (floats, or arrays of their shapes)."""
    slots, anodes = output_refs(outputs)
    tape.seed_and_sweep(slots, anodes, seeds)
    return leaf_gradients(tape, leaves)


def rebuild_each(structures, flat):
    """flat (one entry per leaf) cut and rebuilt in each of the structures in turn."""
    parts = []
    start = 0
    for structure in structures:
        parts.append(structure.rebuild(flat[start:start + structure.n_leaves]))
        start += structure.n_leaves
    return parts


# -- inputs ---------------------------------------------------------------------------------

def resolve_argnum(argnum, argnums, operator):
    """The argument(s) to differentiate, given as autograd's ``argnum`` or JAX's
    ``argnums`` (an int or a tuple of ints; a list is taken as a tuple). Naming
    different arguments both ways is a TypeError."""
    if argnums is None:
        return tuple(argnum) if type(argnum) is list else argnum
    if type(argnums) is list:
        argnums = tuple(argnums)
    if argnum != 0 and argnum != argnums:
        raise TypeError(f"{operator}: argnum={argnum!r} and argnums={argnums!r} name "
                        f"different arguments (argnums is argnum's other name: give one)")
    return argnums


def argnums_of(fun, argnum, args):
    """argnum as a tuple, checked against the arguments."""
    if type(argnum) is int:
        argnums = (argnum,)
    elif isinstance(argnum, (tuple, list)):
        argnums = tuple(argnum)
    else:
        raise TypeError(f"argnum must be an int or a tuple of ints, not {argnum!r}")
    n_args = len(args)
    for i in argnums:
        if type(i) is not int or not -n_args <= i < n_args:
            raise TypeError(f"argnum {i!r} does not name one of the {n_args} positional "
                            f"arguments of {getattr(fun, '__name__', fun)!r}")
    return argnums


def enclosing_tape(args, argnums):
    """The tape of the Variables among the differentiated arguments, if any."""
    tape = None
    for i in argnums:
        x = args[i]
        if type(x) is float or type(x) is int or not holds_variables(x):
            continue
        for v in flatten(x, variables=True)[0]:
            if type(v) in VARIABLE_TYPES:
                if tape is None:
                    tape = v.tape
                elif v.tape is not tape:
                    raise TapeMismatchError("the arguments hold Variables of two tapes")
    return tape


def _record_inputs(rec, tape, argnums, args, copy_arrays):
    """Leaves on `tape` for the differentiated arguments (into rec); the call's
    arguments. copy_arrays: array leaves hold copies of the arguments' arrays."""
    call_args = list(args)
    rec.structures = structures = []
    rec.arg_leaves = arg_leaves_list = []
    rec.consecutive = consecutive = []
    leaves = []
    for i in argnums:
        x = args[i]
        flat_list = False
        if type(x) is float:
            # the fast paths: a number, one array, or a flat list or tuple of numbers
            arg_leaves = [make_leaf(tape, x)]
            structure = LEAF_STRUCTURE
        elif type(x) is np.ndarray and not copy_arrays:
            arg_leaves = [make_array_leaf(tape, x)]
            structure = LEAF_STRUCTURE
        elif (type(x) is list or type(x) is tuple) and (
                arg_leaves := make_leaves(tape, x)) is not None:
            structure = Structure.flat(type(x), len(x))
            flat_list = True
        else:
            flat, structure = flatten(x)
            arg_leaves = [make_array_leaf(tape, np.array(v, dtype=np.float64)
                                          if copy_arrays else v)
                          if isinstance(v, np.ndarray) else make_leaf(tape, float(v))
                          for v in flat]
        call_args[i] = structure.rebuild(arg_leaves)
        structures.append(structure)
        arg_leaves_list.append(arg_leaves)
        consecutive.append(flat_list)
        leaves.extend(arg_leaves)
    rec.leaves = leaves
    return call_args


def _copy_inputs(rec, tape, argnums, args):
    """For differentiation inside another: fresh nodes on the enclosing tape that equal
    the arguments (and pass derivatives on to them), so that the inner sweep can stop
    at them."""
    call_args = list(args)
    rec.structures = structures = []
    rec.arg_leaves = arg_leaves_list = []
    leaves = []
    for i in argnums:
        flat, structure = flatten(args[i], variables=True)
        copies = []
        for v in flat:
            if type(v) is Variable:
                copies.append(v + 0.0)
            elif type(v) is ArrayVariable:
                copies.append(fnp.reshape(v, v.shape))
            elif isinstance(v, np.ndarray):
                copies.append(make_array_leaf(tape, v))
            else:
                copies.append(make_leaf(tape, float(v)))
        call_args[i] = structure.rebuild(copies)
        structures.append(structure)
        arg_leaves_list.append(copies)
        leaves.extend(copies)
    rec.leaves = leaves
    rec.consecutive = [False] * len(structures)
    return call_args


# -- outputs ---------------------------------------------------------------------------

def finish_output(fun, out, tape, leaves, single):
    """The ending of grad's fast path for floats (_variable.scalar_value_and_grad) for
    an output that is not a Variable of its tape: an array, a constant, or an error,
    as Recording.value_and_grad."""
    if type(out) is ArrayVariable or type(out) is Variable:
        if type(out) is ArrayVariable and out.size != 1:
            raise_not_scalar(fun, out)
        value, flat = sweep_gradients(tape, out, leaves)
        value = float(np.reshape(value, ()))
    else:
        value = constant_output(fun, out, True)
        flat = [0.0] * len(leaves)
    return value, (flat[0] if single else tuple(flat))


def _adopted(fun, argnum, argnums, args, tape, leaves, out, nested):
    """A Recording of what a fast path (in _variable, _scalar_recording_sweep) recorded:
    its leaves for the arguments argnums (floats, or Variables copied on an enclosing
    tape when nested; or flat lists or tuples of those) and the output."""
    rec = Recording.__new__(Recording)
    rec.fun, rec.argnum, rec.tape, rec.out = fun, argnum, tape, out
    rec.nested, rec.pooled = nested, False
    rec.dtype = rec._out_flat = None
    rec.structures, rec.arg_leaves, rec.consecutive = [], [], []
    start = 0
    for i in argnums:
        x = args[i]
        number = type(x) is not list and type(x) is not tuple
        count = 1 if number else len(x)
        rec.structures.append(LEAF_STRUCTURE if number else Structure.flat(type(x), count))
        rec.arg_leaves.append(leaves[start:start + count])
        rec.consecutive.append(not number and not nested)
        start += count
    rec.leaves = leaves
    return rec


def finish_jacobian(fun, argnum, argnums, args, tape, leaves, out, by_rows,
                    by_columns):
    """The ending of jacobian's fast path for floats (_variable.scalar_jacobian) for an
    output that is not a Variable or a flat list or tuple of them: the general path's
    Jacobian of what was recorded (the caller releases the pooled tape)."""
    rec = _adopted(fun, argnum, argnums, args, tape, leaves, out, False)
    return rec.jacobian("auto" if by_rows and by_columns else "rev" if by_rows else "fwd")


def finish_nested(fun, argnum, argnums, args, tape, leaves, out):
    """The ending of grad's nested fast path (_scalar_recording_sweep) for an output
    that is not a Variable of the enclosing tape: the general path's (output,
    gradient)."""
    return _adopted(fun, argnum, argnums, args, tape, leaves, out, True).value_and_grad()


def raise_not_scalar(fun, out):
    name = getattr(fun, "__name__", repr(fun))
    raise TypeError(
        f"grad requires {name} to return a scalar; it returned an array of shape "
        f"{out.shape}. Use elementwise_grad or jacobian, or reduce it (e.g. .sum()).")


def constant_output(fun, out, scalar_required):
    """The value of an output that is not a Variable, or a TypeError saying why not.
    (The warning names the caller of the differential operator: four frames up.)"""
    name = getattr(fun, "__name__", repr(fun))
    if isinstance(out, np.ndarray) and out.shape == ():
        out = out[()]
        if type(out) is Variable:
            raise TypeError(f"{name} returned a 0-d array holding a Variable; return "
                            f"the Variable itself")
    if isinstance(out, (bool, np.bool_)) or isinstance(out, np.ndarray) and out.dtype == bool:
        raise TypeError(f"{name} returned a boolean: it has no derivative (a comparison "
                        f"or np.allclose-like test; differentiate a number)")
    if isinstance(out, numbers.Real) or not scalar_required and isinstance(out, np.ndarray):
        warnings.warn(f"Output of {name} seems independent of its input: "
                      f"the gradient is zero", stacklevel=4)
        return float(out) if isinstance(out, numbers.Real) else out
    if isinstance(out, complex) or getattr(out, "dtype", None) is not None and \
            np.dtype(out.dtype).kind == "c":
        raise TypeError(f"grad requires {name} to return a real scalar; it returned a "
                        f"complex value. Use holomorphic_grad for a holomorphic function, "
                        f"or differentiate a real quantity (np.real(f), np.abs(f), ...).")
    if isinstance(out, (list, tuple, dict, np.ndarray)):
        size = len(out) if not isinstance(out, np.ndarray) else out.shape
        raise TypeError(
            f"grad requires {name} to return a scalar; it returned a "
            f"{type(out).__name__} of {'shape' if isinstance(out, np.ndarray) else 'length'} "
            f"{size}. Differentiate one output at a time (or sum them).")
    raise TypeError(f"grad requires {name} to return a real scalar (a float or a "
                    f"Variable); it returned {type(out).__name__}")


# -- small helpers ----------------------------------------------------------------------

def shape_of(x):
    if type(x) is Variable:
        return ()
    if type(x) is ArrayVariable:
        return x.shape
    return np.shape(x)


def zeros_of(x):
    return 0.0 if type(x) is Variable else np.zeros(shape_of(x))


def value_of(x):
    return x.value if type(x) in VARIABLE_TYPES else x


def _ones_like(out):
    if type(out) is ArrayVariable or isinstance(out, np.ndarray):
        return np.ones(out.shape)
    return 1.0


def _unit(i, shapes):
    """The i-th unit vector of the flat layout of `shapes`, as one entry per shape."""
    out = []
    start = 0
    for s in shapes:
        n = int(np.prod(s))
        block = np.zeros(n)
        if start <= i < start + n:
            block[i - start] = 1.0
        out.append(block.reshape(s) if s else float(block[0]))
        start += n
    return out


def _flat_row(x, recorded):
    """The numbers of a (structured) derivative, flat: an array, or a recorded 1-d
    array when they are Variables."""
    flat, _ = flatten(x, variables=True)
    if recorded and any(type(v) in VARIABLE_TYPES for v in flat):
        parts = [fnp.reshape(v, (-1,)) if type(v) is ArrayVariable else
                 fnp.reshape(v, (1,)) if type(v) is Variable else
                 np.ravel(np.asarray(v, dtype=float)) for v in flat]
        return parts[0] if len(parts) == 1 else fnp.concatenate(parts)
    return np.concatenate([np.ravel(np.asarray(value_of(v), dtype=float))
                           for v in flat]) if flat else np.zeros(0)
