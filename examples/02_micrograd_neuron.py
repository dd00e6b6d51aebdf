"""micrograd's tanh neuron: o = tanh(x1 w1 + x2 w2 + b), its gradients and its graph.

The graph is written as Graphviz DOT (``tg.to_dot``) and, when Graphviz's ``dot``
program is installed, rendered to SVG. Files go to ``--out DIR``.
"""

import re
import shutil
import subprocess

from _common import out_dir

import tapegrad as tg

x1 = tg.tensor(2.0, requires_grad=True, name="x1")
x2 = tg.tensor(0.0, requires_grad=True, name="x2")
w1 = tg.tensor(-3.0, requires_grad=True, name="w1")
w2 = tg.tensor(1.0, requires_grad=True, name="w2")
b = tg.tensor(6.8813735870195432, requires_grad=True, name="b")

n = x1 * w1 + x2 * w2 + b
o = n.tanh()
o.name = "o"
o.backward(retain_graph=True)   # keep the graph to draw it, grads included

print(f"n = {n.item():.4f}, o = tanh(n) = {o.item():.4f}")
print(f"do/dn = 1 - o^2 = {1 - o.item() ** 2:.4f}")
for t in (x1, w1, x2, w2, b):
    print(f"  d o / d {t.name:2s} = {float(t.grad):+.4f}")

dot = tg.to_dot(o)
folder = out_dir()
dot_path = folder / "micrograd_neuron.dot"
dot_path.write_text(dot)
print(f"\nDOT graph ({len(dot.splitlines())} lines) written to {dot_path}")
labels = [re.search(r'label="\{? ?([^"|}]+?) ?[|}"]', line).group(1)
          for line in dot.splitlines() if "shape=" in line and "label=" in line]
print("nodes and ops: " + ", ".join(labels))

if shutil.which("dot"):
    svg_path = folder / "micrograd_neuron.svg"
    subprocess.run(["dot", "-Tsvg", str(dot_path), "-o", str(svg_path)], check=True)
    print(f"SVG rendered with Graphviz to {svg_path}")
else:
    print("Graphviz's `dot` is not installed: SVG not rendered "
          f"(run `dot -Tsvg {dot_path} -o neuron.svg` where it is)")
