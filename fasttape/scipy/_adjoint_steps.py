"""The explicit Runge-Kutta integrator of odeint's adjoint (fasttape.scipy.integrate).

The backward ODE of odeint's reverse rule jumps at every time point (its cotangent is
added to the adjoint there). A solver such as LSODA restarts at each jump from a tiny
first step and a first-order method, which is most of the cost with many time points.
An explicit embedded Runge-Kutta pair restarts for free: ``Stepper`` steps across the
intervals, ends a step exactly on each time point, lets the caller change the state
there and goes on with the step size it had reached. Only the current step's stages are
held, so memory does not depend on the number of steps. (fasttape._ode_adjoint runs
the same steps and error control in C, from ``pair``'s coefficients, where the
right-hand side is a trace it can replay; this stepper serves the other cases.)

The pairs are Cash and Karp's 5(4) (below), and Dormand and Prince's 5(4) and 8(5,3)
(Hairer, Norsett and Wanner, Solving Ordinary Differential Equations I, II.4-II.5,
II.10), their coefficients read from SciPy's solve_ivp classes RK45 and DOP853; the
error control is solve_ivp's (a root-mean-square norm of the error estimate scaled by
atol + rtol |y|).
"""
import math

import numpy as np
import scipy.integrate as _integrate

# step-size factor bounds and safety factor, as in solve_ivp's explicit RK methods
_SAFETY, _MIN_FACTOR, _MAX_FACTOR = 0.9, 0.2, 10.0


# Cash and Karp's 5(4) pair (ACM TOMS 16, 1990): (A, B, E, None, order of the error
# estimate), B the fifth-order weights and E their difference from the fourth-order
# ones. Six stages and none at the new point: where every step ends on a time point
# that changes the state, one evaluation fewer per step than Dormand-Prince's FSAL.
_CK_B5 = np.array([37 / 378, 0.0, 250 / 621, 125 / 594, 0.0, 512 / 1771])
_CK_B4 = np.array([2825 / 27648, 0.0, 18575 / 48384, 13525 / 55296, 277 / 14336, 1 / 4])
_CASH_KARP = (
    [[], [1 / 5], [3 / 40, 9 / 40], [3 / 10, -9 / 10, 6 / 5],
     [-11 / 54, 5 / 2, -70 / 27, 35 / 27],
     [1631 / 55296, 175 / 512, 575 / 13824, 44275 / 110592, 253 / 4096]],
    _CK_B5, [0.0, 1 / 5, 3 / 10, 3 / 5, 1.0, 7 / 8], _CK_B5 - _CK_B4, None, 4)


def pair(method):
    """The coefficients of ``method`` ("CashKarp", "RK45" or "DOP853"): (A, B, C, E,
    E3, fsal, order of the error estimate). A: one row per stage (its first entries
    nonzero); E (and DOP853's third-order E3, else None) weigh the stages, with the
    stage at the new point last when fsal (first same as last) is true."""
    if method == "CashKarp":
        A, B, C, E, E3, order = _CASH_KARP
        return A, B, C, E, E3, False, order
    if method not in ("RK45", "DOP853"):
        raise ValueError(f"unknown Runge-Kutta pair {method!r}: CashKarp, RK45 or DOP853")
    solver = getattr(_integrate, method)
    E, E3 = (solver.E5, solver.E3) if method == "DOP853" else (solver.E, None)
    return solver.A, solver.B, solver.C, E, E3, True, solver.error_estimator_order


class StepLimit(Exception):
    """More steps than allowed on one interval (a stiff problem for an explicit
    method): the caller continues with an implicit solver."""


class Stepper:
    """Integrates y' = fun(y, t) with an embedded explicit Runge-Kutta pair, ``method``
    "CashKarp" or "RK45" (5(4), for moderate tolerances) or "DOP853" (8(5,3), for
    tight ones), keeping its step size from one ``advance`` to the next."""

    def __init__(self, fun, rtol, atol, method="RK45", max_steps=500):
        self.fun = fun
        self.rtol, self.atol = float(rtol), float(atol)
        A, self.B, C, self.E, self.E3, self.fsal, order = pair(method)
        self.n_stages = len(self.B)
        # each stage's row of A (its nonzero part) and its time fraction
        self.stages = [(np.array(A[s][:s], dtype=float), float(C[s]))
                       for s in range(1, self.n_stages)]
        self.exponent = -1.0 / (order + 1)
        # the stages' rows and B times the step last taken, with their time offsets
        self.scaled_step, self.scaled = None, None
        self.max_steps = max_steps
        self.h = None                   # the step size to try next (its magnitude)
        self.steps = self.evaluations = 0

    def derivative(self, y, t):
        # (fun may return the same array each time: it is copied before the next call)
        self.evaluations += 1
        return self.fun(y, t)

    def advance(self, y, t0, t1, f=None):
        """The solution at t1 from y at t0 (t1 < t0 allowed); f is fun(y, t0) when the
        caller has it. Returns (y(t1), fun(y(t1), t1)), the latter None for a pair
        that does not evaluate it (CashKarp)."""
        if f is None:
            f = self.derivative(y, t0).copy()
        span = t1 - t0
        if span == 0.0:
            return y, f
        direction = 1.0 if span > 0 else -1.0
        if self.h is None:
            self.h = self.initial_step(y, t0, f, direction)
        t, steps = t0, 0
        K = np.empty((self.n_stages + self.fsal, y.size))
        while direction * (t1 - t) > 0:
            h = min(self.h, abs(t1 - t))
            last = h == abs(t1 - t)
            while True:
                steps += 1
                if steps > self.max_steps:
                    raise StepLimit(f"more than {self.max_steps} steps from t={t0:g} "
                                    f"to t={t1:g}")
                step = direction * h
                t_new = t1 if last else t + step
                y_new, f_new = self.rk_step(y, f, t, step, t_new, K)
                scale = self.atol + self.rtol * np.maximum(np.abs(y), np.abs(y_new))
                error = self.error_norm(K, h, scale)
                if error <= 1.0:
                    factor = (_MAX_FACTOR if error == 0.0 else
                              min(_MAX_FACTOR, _SAFETY * error ** self.exponent))
                    # a step shortened to land on t1 does not shrink the next one
                    self.h = max(self.h, h * factor) if last else h * factor
                    break
                h *= max(_MIN_FACTOR, _SAFETY * error ** self.exponent)
                self.h = h
                last = False
                if h < 10 * np.spacing(abs(t)) + 1e-300:
                    raise StepLimit(f"the step size fell below the time's precision "
                                    f"at t={t:g}")
            t, y = t_new, y_new
            # (a pair without its last stage at the new point computes f there when
            # it is needed: not after the last step, where the caller changes y)
            f = f_new if f_new is not None or t == t1 else \
                self.derivative(y, t).copy()
        self.steps += steps
        return y, f

    def rk_step(self, y, f, t, step, t_new, K):
        if step != self.scaled_step:          # (equal steps between time points)
            self.scaled_step = step
            self.scaled = [(s, step * row, t_offset * step) for s, (row, t_offset) in
                           enumerate(self.stages, start=1)] + [step * self.B]
        K[0] = f
        for s, row, dt in self.scaled[:-1]:
            K[s] = self.derivative(y + row @ K[:s], t + dt)
        if not self.fsal:
            return y + self.scaled[-1] @ K, None
        y_new = y + self.scaled[-1] @ K[:-1]
        K[-1] = self.derivative(y_new, t_new)
        return y_new, K[-1].copy()

    def error_norm(self, K, h, scale):
        error = (self.E @ K) / scale
        err5 = error @ error
        if self.E3 is None:
            return h * math.sqrt(err5 / scale.size)
        # DOP853's blend of its fifth- and third-order estimates
        if err5 == 0.0:
            return 0.0
        err3 = (self.E3 @ K) / scale
        return h * err5 / math.sqrt((err5 + 0.01 * (err3 @ err3)) * scale.size)

    def initial_step(self, y, t, f, direction):
        """A first step size from the size of y, f and an estimate of y'' (Hairer,
        Norsett and Wanner, II.4), as solve_ivp chooses it."""
        scale = self.atol + self.rtol * np.abs(y)
        d0 = np.sqrt(np.mean((y / scale) ** 2))
        d1 = np.sqrt(np.mean((f / scale) ** 2))
        h0 = 1e-6 if d0 < 1e-5 or d1 < 1e-5 else 0.01 * d0 / d1
        f1 = self.derivative(y + direction * h0 * f, t + direction * h0) - f
        d2 = np.sqrt(np.mean((f1 / scale) ** 2)) / h0
        if d1 <= 1e-15 and d2 <= 1e-15:
            h1 = max(1e-6, h0 * 1e-3)
        else:
            h1 = (0.01 / max(d1, d2)) ** (-self.exponent)
        return min(100 * h0, h1)
