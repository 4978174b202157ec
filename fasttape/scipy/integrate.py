"""scipy.integrate, differentiable: ``odeint``, in the initial state, the time points
and the extra arguments, by the adjoint method (as autograd's).

The solve is one tape node holding only its inputs and the solution at the requested
time points: the solver's internal steps are never recorded, so memory does not grow
with their number. Its rules solve other ODEs:

- reverse (adjoint): going back from the last time point, the state [y, a, a_args]
  follows y' = f(y, t, *args), a' = -a^T df/dy, a_args' = -a^T df/dargs between
  consecutive time points; at each time point the output cotangent g_i is added to
  a (and y restarts from the stored solution). Then dy0 = a(t_0), dargs = a_args(t_0),
  dt_i = g_i . f(y_i, t_i) for i > 0 and dt_0 = -a(t_0+) . f(y_0, t_0), a(t_0+)
  being the adjoint before g_0 is added (moving t_0 shifts the whole trajectory).
- forward (sensitivities): [y, u] with u' = df/dy u + df/dargs t_args from
  u(t_0) = t_y0 - f(y_0, t_0) t_t0; the tangent at t_i is u(t_i) + f(y_i, t_i) t_ti.

The vector-Jacobian (Jacobian-vector) products of f inside those ODEs are fasttape
recordings of ``func``. For a first derivative (plain numbers) the adjoint traces func
once (fasttape.trace) and integrates with an explicit Runge-Kutta pair (Cash-Karp
5(4); Dormand and Prince's DOP853 below rtol or atol 1e-9; coefficients in
fasttape.scipy._adjoint_steps) with odeint's rtol and atol: it ends a step on each
time point, adds g_i there and goes on with the step size it had, where SciPy's odeint
(LSODA) would restart from a tiny first-order step at every time point. Where the
trace is one array function of arrays and numbers (the common case), that whole
backward sweep is one C call (fasttape._ode_adjoint.AdjointSweep): each derivative
of the state is a replay of the trace's tape, its guards checked, and a reverse sweep
seeded with -a, and the stages, error control and jumps are C loops, with no Python
per stage (10 states, 100 time points: the gradient costs 2.4-2.5 forward solves, of
which one is the forward solve itself, against ~16 with the stages in Python).
Otherwise, and where func takes another branch than when traced (the C sweep stops;
the Python path retraces), the same pair steps in Python (_adjoint_steps.Stepper)
over Traced.value_and_vjp_arrays. Memory is the pair's stages and the tape, whatever
the number of steps. SciPy's odeint takes over for options other than the
tolerances, and from an interval where the explicit pair needs more than mxstep
(500) steps (a stiff adjoint). The forward solve stays SciPy's odeint, so that the
values are SciPy's. The other derivatives solve their ODEs with ``odeint`` itself, so
a derivative differentiated again is one more adjoint solve (second order, at the
price of nested recordings inside the right-hand side).
"""
import numpy as _np
import scipy.integrate as _integrate

import fasttape.numpy as fnp
from fasttape._arrays import ArrayVariable
from fasttape._ode_adjoint import AdjointSweep
from fasttape._rule_nodes import rule_node
from fasttape._variable import Variable
from fasttape.differential import jvp as _jvp
from fasttape.differential import vjp as _vjp
from fasttape.errors import BranchChangedError
from fasttape.scipy._adjoint_steps import Stepper, StepLimit, pair
from fasttape.trace import trace

__all__ = ["odeint"]

# SciPy odeint's default rtol and atol
_ODEINT_TOLERANCE = 1.49012e-8
# below it the adjoint steps with DOP853 (order 8) instead of Cash-Karp (order 5)
_TIGHT_TOLERANCE = 1e-9
# the options of odeint the Runge-Kutta adjoint follows; others (Dfun, tcrit, hmax,
# ...) are LSODA's, and its backward solves are then SciPy's odeint
_STEPPER_OPTIONS = {"rtol", "atol", "mxstep", "mxhnil", "printmessg"}


def _is_variable(x):
    return type(x) is Variable or type(x) is ArrayVariable


def _value(x):
    return x.value if _is_variable(x) else x


def odeint(func, y0, t, args=(), **kwargs):
    """scipy.integrate.odeint(func, y0, t, args, **kwargs): the solution y(t_i) of
    dy/dt = func(y, t, *args), one row per time point. Differentiable (reverse and
    forward mode) in y0, t and every argument in ``args`` that is a Variable (a
    number or an array); other arguments are passed through unchanged. SciPy's
    options (rtol, atol, mxstep, ...) apply to the solve and to the ODEs of its
    derivatives; full_output is for plain inputs only."""
    args = args if isinstance(args, tuple) else (args,)
    if not (_is_variable(y0) or _is_variable(t) or any(_is_variable(a) for a in args)):
        return _integrate.odeint(_numbers_only(func), y0, t, args=args, **kwargs)
    if kwargs.get("full_output"):
        raise ValueError("odeint: full_output=True is not differentiable; call it on "
                         "plain arrays for the solver's diagnostics")
    if _np.ndim(_value(y0)) > 1 or _np.ndim(_value(t)) != 1:
        raise ValueError(f"odeint: y0 must be a number or a 1-d array and t a 1-d array "
                         f"(shapes {_np.shape(_value(y0))}, {_np.shape(_value(t))})")
    problem = _Problem(func, args, kwargs)
    operands = [y0, t] + [args[k] for k in problem.varying]
    y0_values = _np.atleast_1d(_np.asarray(_value(y0), dtype=_np.float64))
    values = problem.solve(y0_values, _np.asarray(_value(t), dtype=_np.float64),
                           [_value(args[k]) for k in problem.varying])

    def evaluate(y0, t, *varying):
        return problem.solve(_np.atleast_1d(y0), t, varying)

    reverse = problem.adjoint_rule(_np.ndim(_value(y0)) == 0)
    evaluate.__name__ = "odeint"
    return rule_node(operands, values, reverse, problem.sensitivity_rule, evaluate)


def _numbers_only(func):
    """func for SciPy's solver, which needs numbers: a Variable in its result means
    that func closes over a Variable, whose derivative would be lost."""
    def rhs(y, t, *args):
        dy = func(y, t, *args)
        if _is_variable(dy):
            raise TypeError(
                "odeint: func returned a fasttape Variable for plain y and t: it uses "
                "a Variable that odeint does not differentiate (one it closes over, or "
                "one inside a container in args), whose derivative would be lost; pass "
                "each such Variable to odeint as an element of args=(...)")
        return dy
    return rhs


def _plain(x):
    """x's numbers. Used where every input of a nested recording is a number: its
    result is then a Variable of the enclosing tape only by the nesting, and depends
    on nothing that tape differentiates."""
    return x.value if _is_variable(x) else x


def _all_numbers(state, time, arguments):
    return not any(_is_variable(x) for x in (state, time, *arguments))


class _Problem:
    """func with its constant arguments fixed; ``varying`` lists the positions in args
    of the differentiated ones, whose values the rules pass in."""

    def __init__(self, func, args, kwargs):
        self.func = func
        self.args = args
        self.kwargs = kwargs
        self.varying = [k for k, a in enumerate(args) if _is_variable(a)]

    def full_args(self, varying):
        full = list(self.args)
        for k, a in zip(self.varying, varying):
            full[k] = a
        return tuple(full)

    def solve(self, y0, t, varying):
        """The solution at t: SciPy's odeint on plain values, this module's (a tape
        node) when differentiated again."""
        return odeint(self.func, y0, t, args=self.full_args(varying), **self.kwargs)

    def rhs(self, y, time, varying):
        return self.func(y, time, *self.full_args(varying))

    # -- reverse mode: the adjoint ODE ----------------------------------------------------

    def adjoint_rule(self, scalar_y0):
        def reverse(g, yt, y0, t, *varying):
            return self.adjoint(g, yt, t, list(varying), scalar_y0)
        return reverse

    def adjoint(self, g, yt, t, varying, scalar_y0):
        if _all_numbers(g, t, (yt, *varying)):
            try:
                rhs = self.traced_rhs(yt[-1], float(t[-1]), varying, _np.shape(yt)[1])
            except Exception:
                # func does something a trace cannot replay: the recordings below
                # (one per evaluation) differentiate whatever fasttape records
                rhs = None
            if rhs is not None:
                return self.numeric_adjoint(rhs, _np.asarray(g), yt, t, varying,
                                            scalar_y0)
        n_times, n_states = _np.shape(_value(yt))
        g = fnp.reshape(g, (n_times, n_states))
        shapes = [_np.shape(_value(v)) for v in varying]
        sizes = [int(_np.prod(s, dtype=_np.int64)) for s in shapes]
        n_args = sum(sizes)

        def augmented(state, time, *varying):
            y, a = state[:n_states], state[n_states:2 * n_states]
            # (a^T df/dy, a^T df/dargs) from one recording of func
            value, pullback = _vjp(lambda y, *v: self.rhs(y, time, v), y, *varying)
            cotangents = pullback(-a)
            parts = [value] + [fnp.reshape(c, (-1,)) for c in cotangents]
            result = fnp.concatenate(parts)
            return _plain(result) if _all_numbers(state, time, varying) else result

        def f_at(i):
            return fnp.reshape(self.rhs(yt[i], t[i], varying), (n_states,))

        # the time points where the adjoint jumps (by g_i) end the backward solves;
        # a run of points whose cotangent is exactly zero (a plain zero: a Variable
        # is a term of a derivative differentiated again) is crossed in one solve
        stops = [i for i in range(1, n_times - 1)
                 if _is_variable(g) or _np.any(g[i] != 0.0)]
        stops = sorted({0, n_times - 1, *stops})
        adjoint = g[n_times - 1]
        adjoint_args = _np.zeros(n_args)
        dt = [0.0] * n_times
        for lo, hi in reversed(list(zip(stops[:-1], stops[1:]))):
            dt[hi] = fnp.sum(g[hi] * f_at(hi))
            state = fnp.concatenate([yt[hi], adjoint, adjoint_args])
            end = odeint(augmented, state, fnp.stack([t[hi], t[lo]]),
                         args=tuple(varying), **self.kwargs)[1]
            adjoint = end[n_states:2 * n_states]
            adjoint_args = end[2 * n_states:]
            if lo == 0:
                dt[0] = -fnp.sum(adjoint * f_at(0))
            adjoint = adjoint + g[lo]
        d_args, start = [], 0
        for shape, size in zip(shapes, sizes):
            d_args.append(fnp.reshape(adjoint_args[start:start + size], shape))
            start += size
        dy0 = fnp.reshape(adjoint, ()) if scalar_y0 else adjoint
        return [dy0, fnp.stack(dt)] + d_args

    def numeric_adjoint(self, rhs, g, yt, t, varying, scalar_y0):
        """The adjoint on plain numbers (a first derivative): the backward ODE of
        ``adjoint``, whose right-hand side replays one trace of func (recorded once)
        for f and the pullback of -a at once. An explicit Runge-Kutta pair steps
        across the time points, adding g_i to the state at each: in C, the whole sweep
        in one call (fasttape._ode_adjoint), where the trace is one array function of
        arrays and numbers; else in Python (_adjoint_steps.Stepper, the trace called
        through Traced.value_and_vjp_arrays), which also retraces where func takes
        another branch. SciPy's odeint takes over from an interval where the pair
        needs too many steps (a stiff problem), and does it all for options other than
        the tolerances."""
        n_times, n_states = yt.shape
        g = _np.ascontiguousarray(g, dtype=_np.float64).reshape(n_times, n_states)
        t = _np.ascontiguousarray(t, dtype=_np.float64)
        varying = [_np.asarray(v, dtype=_np.float64) if _np.ndim(v) else float(v)
                   for v in varying]
        sizes = [int(_np.size(v)) for v in varying]
        nonzero = _np.flatnonzero(_np.any(g[1:-1] != 0.0, axis=1)) + 1
        stops = sorted({0, n_times - 1, *nonzero.tolist()})
        state = _np.concatenate([yt[-1], _np.zeros(n_states + sum(sizes))])
        dt = _np.zeros(n_times)

        done = False
        compiled = self.compiled_adjoint(rhs)
        if compiled is not None:
            try:
                stopped = compiled.sweep(state, yt, g, t, stops, dt)
                # (a stiff interval: SciPy's odeint from its start, its jump made)
                state = self.backward(compiled.derivative, None, state, yt, g, t, stops,
                                      dt, stopped, jumped=True)
                self.first_time_point(compiled.derivative, state, yt, t, dt)
                done = True
            except BranchChangedError:
                # func takes another branch somewhere: the Python path retraces
                state = _np.concatenate([yt[-1], _np.zeros(n_states + sum(sizes))])
                dt = _np.zeros(n_times)
        if not done:
            derivative = self.traced_derivative(rhs, n_states, varying)
            state = self.backward(derivative, self.adjoint_stepper(derivative), state, yt,
                                  g, t, stops, dt, len(stops) - 1)
            self.first_time_point(derivative, state, yt, t, dt)

        adjoint = state[n_states:2 * n_states] + g[0]
        d_args, start = [], 2 * n_states
        for v, size in zip(varying, sizes):
            d_args.append(state[start:start + size].reshape(_np.shape(v))
                          if _np.ndim(v) else float(state[start]))
            start += size
        return [float(adjoint[0]) if scalar_y0 else adjoint, dt] + d_args

    def backward(self, derivative, stepper, state, yt, g, t, stops, dt, last,
                 jumped=False):
        """The backward solves of the intervals between stops[j - 1] and stops[j], j
        from last down to 1: y restarts from yt there, g is added to the adjoint and dt
        is g . f, then the stepper (SciPy's odeint when None, or from an interval with
        too many steps) solves to the earlier time point. jumped: the interval
        ``last`` starts from state as it is (its jump made). Returns the state at
        t[0] (without g[0])."""
        n_states = yt.shape[1]
        adjoint_part = slice(n_states, 2 * n_states)
        for j in range(last, 0, -1):
            lo, hi = stops[j - 1], stops[j]
            if not (jumped and j == last):
                state[:n_states] = yt[hi]
                state[adjoint_part] += g[hi]
                f = derivative(state, float(t[hi])).copy()
                dt[hi] = g[hi] @ f[:n_states]
            if stepper is not None:
                try:
                    state = stepper.advance(state, float(t[hi]), float(t[lo]), f)[0]
                    continue
                except StepLimit:
                    stepper = None
            state = _integrate.odeint(lambda state, time: derivative(
                state, float(time)).copy(), state, [t[hi], t[lo]], **self.kwargs)[1]
        return state

    @staticmethod
    def first_time_point(derivative, state, yt, t, dt):
        """dt[0] = -a(t_0+) . f(y_0, t_0), from the state at t_0 (without g_0); y set
        to y_0 in state."""
        n_states = yt.shape[1]
        if len(t) > 1:
            state[:n_states] = yt[0]
            dt[0] = -(state[n_states:2 * n_states] @
                      derivative(state, float(t[0]))[:n_states])

    def traced_derivative(self, rhs, n_states, varying):
        """The derivative of the adjoint's state [y, a, a_args] at (state, time) by
        Traced.value_and_vjp_arrays, written into one array (returned each call)."""
        sizes = [int(_np.size(v)) for v in varying]
        derivative = _np.empty(2 * n_states + sum(sizes))
        parts, start = [derivative[:n_states], derivative[n_states:2 * n_states]], \
            2 * n_states
        for v, size in zip(varying, sizes):
            parts.append(derivative[start:start + size].reshape(_np.shape(v)))
            start += size
        adjoint_part = slice(n_states, 2 * n_states)

        def augmented(state, time):
            value, gradients = rhs.value_and_vjp_arrays(
                (state[:n_states], time, *varying), -state[adjoint_part])
            parts[0][...] = value
            for part, gradient in zip(parts[1:], gradients):
                part[...] = gradient
            return derivative
        return augmented

    def stepper_settings(self):
        """(rtol, atol, method, max_steps) of the adjoint's Runge-Kutta pair for
        SciPy's tolerances (scalars; Cash-Karp, DOP853 for tight ones), or None where
        other options are given."""
        if not set(self.kwargs) <= _STEPPER_OPTIONS:
            return None
        rtol = self.kwargs.get("rtol", _ODEINT_TOLERANCE)
        atol = self.kwargs.get("atol", _ODEINT_TOLERANCE)
        if _np.ndim(rtol) or _np.ndim(atol):
            return None
        rtol, atol = float(rtol), float(atol)
        method = "DOP853" if min(rtol, atol) < _TIGHT_TOLERANCE else "CashKarp"
        return rtol, atol, method, int(self.kwargs.get("mxstep", 0) or 500)

    def adjoint_stepper(self, augmented):
        """The Python Runge-Kutta stepper of the numeric adjoint, or None."""
        settings = self.stepper_settings()
        if settings is None:
            return None
        rtol, atol, method, max_steps = settings
        return Stepper(augmented, rtol, atol, method, max_steps=max_steps)

    def compiled_adjoint(self, rhs):
        """The adjoint's sweep in C over rhs's tape (fasttape._ode_adjoint), or None
        where the Runge-Kutta pair is not used or the trace is not one array function
        of arrays and numbers."""
        settings = self.stepper_settings()
        refs = rhs.lean_refs()
        if settings is None or refs is None:
            return None
        rtol, atol, method, max_steps = settings
        tape, leaves, (out_node, out_anode) = refs
        if not leaves[0][0] or leaves[1][0] or rtol < 0 or atol <= 0:
            return None           # (y traced as an array, the time as a number)
        return AdjointSweep(tape, leaves[0][1], leaves[1][1], leaves[2:], out_node,
                            out_anode, pair(method), rtol, atol, max_steps)

    def traced_rhs(self, y, time, varying, n_states):
        """func traced once at (y, time, *varying) as a function of all three, its
        derivatives taken in y and the varying arguments; recorded again where a
        comparison made in func comes out otherwise."""
        def flat_rhs(y, time, *varying):
            return fnp.reshape(self.rhs(y, time, varying), (n_states,))
        return trace(flat_rhs, _np.array(y, dtype=_np.float64), time, *varying,
                     argnum=(0, *range(2, 2 + len(varying))), retrace=True)

    # -- forward mode: the sensitivity ODE ------------------------------------------------

    def sensitivity_rule(self, tangents, yt, y0, t, *varying):
        n_times, n_states = _np.shape(_value(yt))
        t_y0, t_t = tangents[0], tangents[1]
        t_args = tangents[2:]
        moving = [k for k, tv in enumerate(t_args) if tv is not None]
        varying = list(varying)

        def augmented(state, time, *arguments):
            y, u = state[:n_states], state[n_states:]
            values, directions = list(arguments[:len(varying)]), arguments[len(varying):]

            def f(y, *moved):
                full = list(values)
                for k, m in zip(moving, moved):
                    full[k] = m
                return self.rhs(y, time, full)
            value, tangent = _jvp(f, (y, *[values[k] for k in moving]),
                                  (u, *directions))
            result = fnp.concatenate([fnp.reshape(value, (-1,)),
                                      fnp.reshape(tangent, (-1,))])
            return _plain(result) if _all_numbers(state, time, arguments) else result

        def f_at(i):
            return fnp.reshape(self.rhs(yt[i], t[i], varying), (n_states,))

        start = _np.zeros(n_states)
        if t_y0 is not None:
            start = start + fnp.reshape(t_y0, (n_states,))
        if t_t is not None:
            start = start - f_at(0) * t_t[0]
        state = fnp.concatenate([fnp.reshape(y0, (n_states,)), start])
        solution = odeint(augmented, state, t,
                          args=tuple(varying) + tuple(t_args[k] for k in moving),
                          **self.kwargs)
        tangent = solution[:, n_states:]
        if t_t is not None:
            tangent = tangent + fnp.stack([f_at(i) * t_t[i] for i in range(n_times)])
        return tangent
