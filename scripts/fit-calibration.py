#!/usr/bin/env python3
"""Fits the matcher's logistic calibration from `eval-matcher --dump` files.

    switchboard eval-matcher --dataset D.json [--examples-per-intent K] --dump ev.jsonl
    python3 scripts/fit-calibration.py ev1.jsonl ev2.jsonl ...

Each line is one query's evidence about the best rule (similarity, margin, coverage,
terms, right). Prints the weights [b, similarity, margin, coverage, ln(1+words)] of
P(best rule is right), fitted by gradient descent on the log loss over all files, each
file weighted equally (so one large dataset does not dominate). Needs numpy.
"""
import json
import sys

import numpy as np

xs, ys, ws = [], [], []
for path in sys.argv[1:]:
    rows = [json.loads(l) for l in open(path) if l.strip()]
    for r in rows:
        xs.append([1.0, r["similarity"], r["margin"], r["coverage"], np.log1p(r["terms"])])
        ys.append(1.0 if r["right"] else 0.0)
        ws.append(1.0 / len(rows))
X, y, w = np.array(xs), np.array(ys), np.array(ws)
w = w / w.sum()
theta = np.zeros(X.shape[1])
for step in range(20000):
    p = 1 / (1 + np.exp(-X @ theta))
    grad = X.T @ (w * (p - y))
    theta -= 2.0 * grad
p = 1 / (1 + np.exp(-X @ theta))
loss = -(w * (y * np.log(p + 1e-9) + (1 - y) * np.log(1 - p + 1e-9))).sum()
print("weights:", "[" + ", ".join(f"{t:.2f}" for t in theta) + "]", f"log loss {loss:.4f}")
