#!/usr/bin/env python3
"""The no-learning baseline for shapes24: k-means (K=3) on the (y, x) coordinates of each test
image's foreground pixels, scored like gestalt (foreground only, per image, then averaged).

Usage: python3 scripts/kmeans_baseline.py OUT.json FILE.h5 [FILE.h5 ...]
(needs numpy, h5py, scikit-learn). Writes one row per file and their median to OUT.json.
"""
import json
import statistics
import sys

import h5py
import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_mutual_info_score, adjusted_rand_score, normalized_mutual_info_score


def score(path):
    with h5py.File(path, "r") as f:
        groups = f["test/groups"][0, ..., 0]  # (N, H, W)
    scores = {"AMI": [], "NMI": [], "ARI": []}
    for i, g in enumerate(groups):
        ys, xs = np.nonzero(g)
        truth = g[ys, xs].astype(int)
        pred = KMeans(3, n_init=10, random_state=i).fit_predict(np.stack([ys, xs], 1).astype(float))
        scores["AMI"].append(adjusted_mutual_info_score(truth, pred, average_method="max"))
        scores["NMI"].append(normalized_mutual_info_score(truth, pred))
        scores["ARI"].append(adjusted_rand_score(truth, pred))
    row = {k: round(float(np.mean(v)), 4) for k, v in scores.items()}
    row.update(images=len(groups), data=path)
    return row


out, paths = sys.argv[1], sys.argv[2:]
rows = [score(p) for p in paths]
summary = {"median": {k: statistics.median(r[k] for r in rows) for k in ("AMI", "NMI", "ARI")}, "rows": rows,
           "command": "python3 scripts/kmeans_baseline.py " + " ".join(sys.argv[1:])}
with open(out, "w") as f:
    f.write(json.dumps(summary, indent=1) + "\n")
print(json.dumps(summary["median"]))
