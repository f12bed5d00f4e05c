#!/usr/bin/env python3
"""Summarise results/minimal/<config>/seed*/ into summary.json and a markdown table (medians).

Per run: test AMI / NMI / ARI of the last EM iteration (from the best checkpoint, which is also
what `gestalt evaluate` reports), the validation curve's best and final epoch, and the wall time
of the whole job. Standard library only.
"""
import json
import pathlib
import statistics

ROOT = pathlib.Path(__file__).resolve().parent.parent / "results" / "minimal"


def run_summary(d):
    test = json.loads((d / "eval" / "test.json").read_text())
    run = json.loads((d / "run.json").read_text())
    valid = [json.loads(l) for l in (d / "metrics.jsonl").read_text().splitlines()]
    valid = [v for v in valid if v["split"] == "validation"]
    best = max(valid, key=lambda v: v.get("last_NMI") or -1)
    return {
        "seed": run["seed"],
        "test_AMI": test["last_AMI"], "test_NMI": test["last_NMI"], "test_ARI": test["last_ARI"],
        "valid_best_NMI": best["last_NMI"], "valid_best_epoch": best["epoch"],
        "valid_final_NMI": valid[-1]["last_NMI"], "valid_final_AMI": valid[-1]["last_AMI"],
        "epochs": valid[-1]["epoch"], "wall_s": run["wall_s"], "command": run["command"],
        "machine": run["machine"],
    }


def main():
    summary = {}
    for cfg in ("default", "minimal"):
        runs = [run_summary(d) for d in sorted((ROOT / cfg).glob("seed*")) if (d / "eval" / "test.json").is_file()]
        if not runs:
            continue
        med = {k: statistics.median(r[k] for r in runs)
               for k in runs[0] if isinstance(runs[0][k], (int, float)) and k != "seed"}
        summary[cfg] = {"median": med, "runs": runs}
    (ROOT / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    rows = ["| config | test AMI | test NMI | test ARI | valid NMI best (epoch) | valid NMI final | wall s |",
            "|---|---|---|---|---|---|---|"]
    for cfg, s in summary.items():
        m = s["median"]
        rows.append(f"| {cfg} (median of {len(s['runs'])}) | {m['test_AMI']:.3f} | {m['test_NMI']:.3f} | "
                    f"{m['test_ARI']:.3f} | {m['valid_best_NMI']:.3f} ({m['valid_best_epoch']:.0f}) | "
                    f"{m['valid_final_NMI']:.3f} | {m['wall_s']:.1f} |")
    table = "\n".join(rows) + "\n"
    (ROOT / "summary.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
