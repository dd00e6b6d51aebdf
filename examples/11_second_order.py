"""Second order: Newton's method with ``tg.hessian``, and Hessian-vector products.

The problem is L2-regularised logistic regression on 200 points in 3 dimensions:
f(w) = mean BCE(X w, y) + (lambda / 2) |w|^2, which is smooth and strictly convex.
Newton's method, w <- w - H(w)^-1 grad f(w), converges quadratically: the gradient
norm roughly squares each step. Plain gradient descent is shown for comparison.

A Hessian-vector product H v is then computed without forming H, as the gradient of
<grad f(w), v> (reverse over reverse), and checked against ``tg.hessian(f)(w) @ v``.
"""

import numpy as np

import tapegrad as tg

rng = np.random.default_rng(0)
n, d, lam = 200, 3, 0.1
X = rng.standard_normal((n, d))
w_true = np.array([1.5, -2.0, 0.5])
y = (rng.uniform(size=n) < 1 / (1 + np.exp(-X @ w_true))).astype(float)


def f(w):
    return tg.nn.binary_cross_entropy_with_logits(X @ w, y) + 0.5 * lam * (w * w).sum()


grad_f = tg.grad(f)
hess_f = tg.hessian(f)

print("Newton's method:")
w = np.zeros(d)
for it in range(8):
    g = grad_f(w)
    H = hess_f(w)
    value = f(tg.tensor(w)).item()
    print(f"  iter {it}  f = {value:.12f}  |grad| = {np.linalg.norm(g):.3e}")
    if np.linalg.norm(g) < 1e-12:
        break
    w = w - np.linalg.solve(H, g)
w_newton = w
print(f"  solution w = {np.round(w_newton, 6)}")
print(f"  Hessian at the solution (positive definite, eigenvalues "
      f"{np.round(np.linalg.eigvalsh(hess_f(w_newton)), 4)}):")
print("  " + np.array2string(hess_f(w_newton), precision=4).replace("\n", "\n  "))

print("\nGradient descent (step 1.0) for comparison:")
w = np.zeros(d)
for it in range(31):
    g = grad_f(w)
    if it % 10 == 0:
        print(f"  iter {it:2d}  |grad| = {np.linalg.norm(g):.3e}")
    w = w - 1.0 * g

# Hessian-vector product without forming the Hessian.
v = np.array([1.0, -1.0, 2.0])


def grad_dot_v(w):
    return (tg.grad(f)(w) * v).sum()


hvp = tg.grad(grad_dot_v)(w_newton)
full = hess_f(w_newton) @ v
print(f"\nHessian-vector product at the solution, v = {v}:")
print(f"  grad of <grad f, v> : {np.round(hvp, 8)}")
print(f"  hessian(f) @ v      : {np.round(full, 8)}")
print(f"  largest difference  : {np.abs(hvp - full).max():.2e}")
