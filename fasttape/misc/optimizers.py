"""Gradient-descent optimizers with autograd.misc.optimizers' signatures:
``sgd(grad, x0, callback=None, num_iters=200, step_size=0.1, mass=0.9)``, ``rmsprop``
and ``adam``. ``grad(x, i)`` is called with the current point and the iteration
number, ``callback(x, i, g)`` (if given) before each step; ``x0`` may be any nesting
of tuples, lists and dicts of arrays (flattened with fasttape.misc.flatten, and the
result put back in that structure). Written with fasttape.numpy, so an optimizer's
result can itself be differentiated (with respect to a step size, say).
"""
import functools

import numpy as np

import fasttape.numpy as fnp
from fasttape.misc.flatten import flatten


def _on_containers(optimize):
    """The optimizer of flat vectors ``optimize`` made to take and return x0's
    structure (and to hand grad and callback that structure)."""
    @functools.wraps(optimize)
    def optimizer(grad, x0, callback=None, *args, **kwargs):
        flat_x0, unflatten = flatten(x0)

        def flat_grad(x, i):
            return flatten(grad(unflatten(x), i))[0]

        flat_callback = None if callback is None else \
            (lambda x, i, g: callback(unflatten(x), i, unflatten(g)))
        return unflatten(optimize(flat_grad, flat_x0, flat_callback, *args, **kwargs))
    return optimizer


@_on_containers
def sgd(grad, x, callback=None, num_iters=200, step_size=0.1, mass=0.9):
    """Stochastic gradient descent with momentum: the velocity is an exponential
    moving average (weight ``mass``) of the negative gradients."""
    velocity = np.zeros(len(x))
    for i in range(num_iters):
        g = grad(x, i)
        if callback:
            callback(x, i, g)
        velocity = mass * velocity - (1.0 - mass) * g
        x = x + step_size * velocity
    return x


@_on_containers
def rmsprop(grad, x, callback=None, num_iters=100, step_size=0.1, gamma=0.9,
            eps=1e-8):
    """RMSprop: each coordinate's step is divided by the root of a moving average
    (weight ``gamma``, started at ones) of its squared gradients."""
    mean_square = np.ones(len(x))
    for i in range(num_iters):
        g = grad(x, i)
        if callback:
            callback(x, i, g)
        mean_square = gamma * mean_square + (1.0 - gamma) * g ** 2
        x = x - step_size * g / (fnp.sqrt(mean_square) + eps)
    return x


@_on_containers
def adam(grad, x, callback=None, num_iters=100, step_size=0.001, b1=0.9, b2=0.999,
         eps=1e-8):
    """Adam (Kingma and Ba, 2014): moving averages of the gradient (weight b1) and of
    its square (b2), corrected for their start at zero, give each coordinate's step."""
    m = np.zeros(len(x))
    v = np.zeros(len(x))
    for i in range(num_iters):
        g = grad(x, i)
        if callback:
            callback(x, i, g)
        m = b1 * m + (1.0 - b1) * g
        v = b2 * v + (1.0 - b2) * g ** 2
        m_hat = m / (1.0 - b1 ** (i + 1))
        v_hat = v / (1.0 - b2 ** (i + 1))
        x = x - step_size * m_hat / (fnp.sqrt(v_hat) + eps)
    return x
