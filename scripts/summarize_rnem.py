"""The R-NEM comparison table from scripts/rnem_balls.sh's runs: test ARI and BCE, rollout BCE,
extrapolation to 6–8 balls, per model (markdown on stdout, summary.json beside the runs)."""
import json
import sys
from pathlib import Path

res = Path(sys.argv[1])
rows, summary = [], {}
for name in ["r_nem", "rnn_em", "lstm"]:
    run = res / name
    if not (run / "eval" / "test.json").is_file():
        continue
    test = json.loads((run / "eval" / "test.json").read_text())
    roll = json.loads((run / "rollout" / "rollout.json").read_text())
    extra = json.loads((run / "extrapolation" / "eval" / "test.json").read_text())
    s = {
        "test_ARI": test.get("ARI"),
        "test_last_ARI": test.get("last_ARI"),
        "test_loss": test["loss"],
        "test_ub_loss_last_dt": test.get("ub_loss_last_dt"),
        "rollout_bce_observed": roll["bce_observed"],
        "rollout_bce": roll["bce_rollout"],
        "extrapolation_ARI": extra.get("ARI"),
        "extrapolation_ub_loss_last_dt": extra.get("ub_loss_last_dt"),
        "ARI_frame": [test.get(f"ARI_frame_{t:02d}") for t in range(1, 100) if f"ARI_frame_{t:02d}" in test],
        "rollout_bce_frame": [roll[f"bce_frame_{t:02d}"] for t in range(1, 100) if f"bce_frame_{t:02d}" in roll],
    }
    summary[name] = s
    f = lambda v: "–" if v is None else f"{v:.3f}"
    rows.append(f"| {name} | {f(s['test_ARI'])} | {f(s['test_last_ARI'])} | {f(s['test_ub_loss_last_dt'])} "
                f"| {f(s['rollout_bce_observed'])} | {f(s['rollout_bce'])} | {f(s['extrapolation_ARI'])} |")
(res / "summary.json").write_text(json.dumps(summary, indent=1))
print("| model | test ARI | last ARI | upper-bound loss, last 10 steps | BCE, observed steps | BCE, 20 rollout steps | ARI, 6–8 balls |")
print("|---|---|---|---|---|---|---|")
print("\n".join(rows))
