#!/usr/bin/env python3
"""Fits the matcher's logistic calibration from `eval-matcher --dump` files.

    switchboard eval-matcher --dataset D.json [--examples-per-intent K] --dump ev.jsonl
    python3 scripts/fit-calibration.py ev1.jsonl ev2.jsonl ...

Each line is one query's evidence about the best rule (similarity, margin, coverage,
terms, rules, right). Prints the weights [b, similarity, margin, coverage, ln(1+words)]
and the weight of ln(rules) of P(best rule is right), fitted by gradient descent on the
log loss over all files, each file weighted equally (so one large dataset does not
dominate; pass several small organizations' dumps joined into one file to weigh them as
one). Needs numpy.
"""
import json
import sys

import numpy as np

xs, ys, ws = [], [], []
for path in sys.argv[1:]:
    rows = [json.loads(l) for l in open(path) if l.strip()]
    for r in rows:
        xs.append([1.0, r["similarity"], r["margin"], r["coverage"], np.log1p(r["terms"]),
                   np.log(max(1, r.get("rules", 1)))])
        ys.append(1.0 if r["right"] else 0.0)
        ws.append(1.0 / len(rows))
X, y, w = np.array(xs), np.array(ys), np.array(ws)
w = w / w.sum()
# Standardised features for a steady descent, then the weights in the original units.
mu, sd = X[:, 1:].mean(0), X[:, 1:].std(0) + 1e-9
Xs = X.copy()
Xs[:, 1:] = (X[:, 1:] - mu) / sd
theta = np.zeros(X.shape[1])
for step in range(30000):
    p = 1 / (1 + np.exp(-Xs @ theta))
    theta -= 2.0 * (Xs.T @ (w * (p - y)))
theta[1:] = theta[1:] / sd
theta[0] -= (theta[1:] * mu).sum()
p = 1 / (1 + np.exp(-X @ theta))
loss = -(w * (y * np.log(p + 1e-9) + (1 - y) * np.log(1 - p + 1e-9))).sum()
print("weights:", "[" + ", ".join(f"{t:.2f}" for t in theta[:5]) + "]",
      f"rules_weight: {theta[5]:.2f}", f"log loss {loss:.4f}")
