#!/usr/bin/env python3
"""The no-learning baseline for shapes24: k-means (K=3) on the (y, x) coordinates of each test
image's foreground pixels, scored like gestalt (foreground only, per image, then averaged).

Usage: python3 scripts/kmeans_baseline.py [data/shapes24.h5]   (needs numpy, h5py, scikit-learn)
Writes results/minimal/kmeans_baseline.json.
"""
import json
import pathlib
import sys

import h5py
import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_mutual_info_score, adjusted_rand_score, normalized_mutual_info_score

path = sys.argv[1] if len(sys.argv) > 1 else "data/shapes24.h5"
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
out = {k: round(float(np.mean(v)), 4) for k, v in scores.items()}
out.update(images=len(groups), data=path, command="python3 scripts/kmeans_baseline.py " + path)
dest = pathlib.Path(__file__).resolve().parent.parent / "results" / "minimal" / "kmeans_baseline.json"
dest.parent.mkdir(parents=True, exist_ok=True)
dest.write_text(json.dumps(out, indent=1) + "\n")
print(json.dumps(out))
