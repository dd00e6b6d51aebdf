"""The chain rule, by hand and by tape.

1. z = 3 x^2 at x = 2: dz/dx = 6 x = 12.
2. f = (x + y) z at (x, y, z) = (-2, 5, -4) (CS231n): with q = x + y,
   df/dz = q = 3, df/dq = z = -4, df/dx = df/dq * dq/dx = -4, df/dy = -4.
"""

import tapegrad as tg

# --- 1. z = 3x^2 -------------------------------------------------------------
x0 = 2.0
by_hand = 6 * x0                       # dz/dx = 3 * 2x
x = tg.tensor(x0, requires_grad=True, name="x")
z = 3 * x ** 2
z.backward()
print(f"z = 3x^2 at x = {x0}: z = {z.item()}")
print(f"  dz/dx by hand = {by_hand}, by tape = {x.grad}")

# --- 2. f = (x + y) z ---------------------------------------------------------
xv, yv, zv = -2.0, 5.0, -4.0
q = xv + yv                            # forward pass by hand
f = q * zv
dfdz = q                               # backward pass by hand, one local derivative at a time
dfdq = zv
dfdx = dfdq * 1.0                      # dq/dx = 1
dfdy = dfdq * 1.0                      # dq/dy = 1
print(f"\nf = (x + y) z at (x, y, z) = ({xv}, {yv}, {zv}): f = {f}")
print(f"  by hand: df/dx = {dfdx}, df/dy = {dfdy}, df/dz = {dfdz}")

x = tg.tensor(xv, requires_grad=True)
y = tg.tensor(yv, requires_grad=True)
z = tg.tensor(zv, requires_grad=True)
f_t = (x + y) * z
f_t.backward()
print(f"  by tape: df/dx = {x.grad}, df/dy = {y.grad}, df/dz = {z.grad}")

# The same with an explicit tape, asking for the gradients instead of reading .grad.
x, y, z = (tg.tensor(v) for v in (xv, yv, zv))
with tg.Tape() as tape:
    for t in (x, y, z):
        tape.watch(t)
    f_t = (x + y) * z
grads = tape.gradient(f_t, [x, y, z])
print("  tg.Tape.gradient: (df/dx, df/dy, df/dz) = "
      f"({grads[0]}, {grads[1]}, {grads[2]})")
assert (float(grads[0]), float(grads[1]), float(grads[2])) == (dfdx, dfdy, dfdz)
