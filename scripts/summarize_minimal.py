#!/usr/bin/env python3
"""Summarise results/minimal/<config>/data<D>_seed<S>/ into summary.json and summary.md.

Per run: the test scores of the best checkpoint (chosen on validation), as `gestalt evaluate`
reports them — AMI (weighted over the EM iterations, as the original) and last_AMI / last_NMI /
last_ARI (the last iteration) — and the wall time of the whole job. Per data seed the median over
training seeds, beside k-means on the same test images (kmeans_baseline.json). Standard library.
"""
import json
import pathlib
import statistics

ROOT = pathlib.Path(__file__).resolve().parent.parent / "results" / "minimal"
KEYS = ("AMI", "last_AMI", "last_NMI", "last_ARI", "wall_s")


def run_summary(d):
    test = json.loads((d / "eval" / "test.json").read_text())
    run = json.loads((d / "run.json").read_text())
    row = {k: round(test[k], 4) for k in KEYS[:-1]}
    row.update(data_seed=run["data_seed"], seed=run["seed"], wall_s=run["wall_s"], command=run["command"],
               machine=run["machine"])
    return row


def median(rows):
    return {k: round(statistics.median(r[k] for r in rows), 4) for k in KEYS}


def main():
    kmeans = json.loads((ROOT / "kmeans_baseline.json").read_text())
    km = {int(r["data"].split("shapes24-")[1].split("/")[0]): r for r in kmeans["rows"]}
    summary = {"kmeans": kmeans}
    rows = ["| config | data seed | runs | AMI | last AMI | last NMI | last ARI | k-means AMI | wall s |",
            "|---|---|---|---|---|---|---|---|---|"]
    for cfg in ("default", "minimal"):
        runs = [run_summary(d) for d in sorted((ROOT / cfg).glob("data*_seed*")) if (d / "eval" / "test.json").is_file()]
        if not runs:
            continue
        seeds = sorted({r["data_seed"] for r in runs})
        per_seed = {s: median([r for r in runs if r["data_seed"] == s]) for s in seeds}
        summary[cfg] = {"median": median(runs), "per_data_seed": per_seed, "runs": runs}
        for s, m in list(per_seed.items()) + [("all", median(runs))]:
            n = len([r for r in runs if s == "all" or r["data_seed"] == s])
            k = kmeans["median"]["AMI"] if s == "all" else km[s]["AMI"]
            rows.append(f"| {cfg} | {s} | {n} | {m['AMI']:.3f} | {m['last_AMI']:.3f} | {m['last_NMI']:.3f} | "
                        f"{m['last_ARI']:.3f} | {k:.3f} | {m['wall_s']:.1f} |")
    (ROOT / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    table = "\n".join(rows) + "\n"
    (ROOT / "summary.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
