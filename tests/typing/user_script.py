"""A user's typed script: checked by mypy and pyright in tests/test_typing.py (and run
there too). It uses fasttape as the README does, with annotations a user would write."""
from dataclasses import dataclass

import numpy as np
from numpy import ndarray

import fasttape
import fasttape.numpy as fnp
from fasttape import (Traced, Variable, grad, hessian, hvp, jacobian, jvp, stop_gradient,
                      trace, value_and_grad, vjp)


def f(x: ndarray) -> ndarray:
    return fnp.sum(fnp.tanh(x) ** 2)


x = np.array([0.5, -1.0, 2.0])
g: ndarray = grad(f)(x)
h: ndarray = hessian(f)(x)
hv: ndarray = hvp(f)(x, np.ones(3))
jac: ndarray = jacobian(fnp.sin)(x)


def loss(params: dict[str, ndarray],
         batch: tuple[ndarray, ndarray]) -> tuple[ndarray, dict[str, ndarray]]:
    inputs, targets = batch
    pred = fnp.dot(inputs, params["w"]) + params["b"]
    return fnp.mean((pred - targets) ** 2), {"pred": pred}


params = {"w": np.ones(3), "b": np.zeros(1)}
batch = (np.eye(3), np.ones(3))
(value, aux), grads = value_and_grad(loss, has_aux=True)(params, batch)
grads_w: ndarray = grads["w"]
pred: ndarray = aux["pred"]
total: float = float(value)
gx, gy = grad(lambda a, b: a * b + fasttape.sin(a), argnums=(0, 1))(2.0, 3.0)


@dataclass
class Params:
    w: ndarray
    b: float


dg = grad(lambda p: fnp.sum(p.w * p.b) + stop_gradient(p.b))(Params(np.ones(2), 2.0))
dw: ndarray = dg.w

primal_out, tangent_out = jvp(fnp.exp, (x,), (np.ones(3),))
out, vjp_fun = vjp(fnp.exp, x)
(cot,) = vjp_fun(np.ones(3))

traced: Traced = trace(lambda v: fnp.sum(v ** 3), x)
tg: ndarray = traced.grad(x)
tv, tgrad = traced.value_and_grad(x)

a = Variable(2.0)
b = a * 3.0 + fasttape.sin(a)
b.backward()
da = a.grad                     # float | None: None before a backward()
assert da is not None
slope: float = da
plain: float = b.value
