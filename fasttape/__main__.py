"""``python -m fasttape``: a short demonstration of the library."""
import random
import time

import fasttape
from fasttape import Variable, check_grads, grad, numerical_grad, sin


def rosenbrock(x):
    """Rosenbrock's function written as a plain Python loop over floats."""
    total = 0.0
    for i in range(len(x) - 1):
        total += 100.0 * (x[i + 1] - x[i] ** 2) ** 2 + (1.0 - x[i]) ** 2
    return total


def best_time(fun, *args, budget=0.5):
    """Best time of one call, from repeats that fill about ``budget`` seconds."""
    best = float("inf")
    deadline = time.perf_counter() + budget
    while True:
        start = time.perf_counter()
        fun(*args)
        best = min(best, time.perf_counter() - start)
        if time.perf_counter() > deadline:
            return best


def main():
    print(f"fasttape {fasttape.__version__}\n")

    print("1. The textbook example, PyTorch style")
    x, y = Variable(2.0), Variable(3.0)
    f = x * y + sin(x)
    f.backward()
    print("   x, y = Variable(2.0), Variable(3.0)")
    print("   f = x * y + sin(x); f.backward()")
    print(f"   f.value = {f.value!r}")
    print(f"   x.grad  = {x.grad!r}   (y + cos(x) = 3 + cos 2)")
    print(f"   y.grad  = {y.grad!r}   (x)")

    print("\n2. The same with grad(), autograd style")
    textbook = grad(lambda x, y: x * y + sin(x), argnum=(0, 1))
    print(f"   grad(lambda x, y: x * y + sin(x), argnum=(0, 1))(2.0, 3.0) = "
          f"{textbook(2.0, 3.0)!r}")

    print("\n3. Checked against central differences")
    rng = random.Random(0)
    point = [rng.uniform(-1.5, 1.5) for _ in range(5)]
    ad = grad(rosenbrock)(point)
    fd = numerical_grad(rosenbrock, point)
    worst = max(abs(a - n) / max(1.0, abs(n)) for a, n in zip(ad, fd))
    print(f"   Rosenbrock at {[round(v, 3) for v in point]}")
    print(f"   reverse mode       {[round(v, 6) for v in ad]}")
    print(f"   central difference {[round(v, 6) for v in fd]}")
    print(f"   largest relative difference {worst:.1e}; "
          f"check_grads passes: {check_grads(rosenbrock)(point)}")

    print("\n4. Cost of the gradient of a Python loop (Rosenbrock, n = 1000)")
    rng = random.Random(1)
    x0 = [rng.uniform(-1.0, 1.0) for _ in range(1000)]
    gradient = grad(rosenbrock)
    t_f = best_time(rosenbrock, x0)
    t_grad = best_time(gradient, x0)
    t_text = best_time(textbook, 2.0, 3.0)
    print(f"   f(x) on floats     {t_f * 1e6:8.1f} us")
    print(f"   grad(f)(x)         {t_grad * 1e6:8.1f} us   = {t_grad / t_f:.2f} x f")
    print(f"   textbook grad call {t_text * 1e6:8.2f} us")
    print("\n5. NumPy code, Hessians, record-once replay")
    import numpy as np
    import fasttape.numpy as fnp
    w = np.array([0.5, -1.0, 2.0])
    print(f"   grad(sum(tanh(w) * w)) at {w.tolist()} = "
          f"{np.round(grad(lambda w: fnp.sum(fnp.tanh(w) * w))(w), 6).tolist()}")
    h = fasttape.hessian(rosenbrock)(point[:3])
    print(f"   Hessian of Rosenbrock (3 variables):\n{np.round(h, 3)}")
    traced = fasttape.trace(rosenbrock, x0)
    t_replay = best_time(traced.grad, x0)
    print(f"   trace(f) once, then a replayed gradient: {t_replay * 1e6:.1f} us "
          f"= {t_replay / t_f:.2f} x f (no Python per operation)")
    print("\nMore: README.md; side-by-side against other libraries: "
          "python -m fasttape.bench")


if __name__ == "__main__":
    main()
