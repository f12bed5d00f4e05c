//! `gestalt bench`: median milliseconds of a full training step (forward, backward, optimiser)
//! on one real batch, and the process's peak resident memory.
use super::Common;
use super::experiment::Experiment;
use crate::config::Resolved;
use crate::error::Result;
use crate::train::optim;
use serde_json::json;
use std::time::Instant;

/// Peak resident set size of this process in MiB (Linux), if known.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

pub fn bench<E: Experiment>(c: &Common, r: &Resolved, exp: &E) -> Result<()> {
    let device = crate::backend::device(&c.backend, c.device)?.autodiff();
    let s = exp.settings();
    let mut model = exp.init_model(&device)?;
    let mut opt = optim::build(&s.optimizer, &s.params, s.clip_gradients)?;
    let batch = exp.train_batches(1)?.next().expect("at least one batch");
    let warmup = 2;
    let mut times = Vec::new();
    for i in 0..warmup + c.steps.max(1) {
        let t0 = Instant::now();
        (model, _) = crate::train::step(exp, &s, &mut opt, model, &batch, i as u64, &device);
        device.sync().map_err(|e| crate::error::Error::internal(format!("{e:?}")))?;
        if i >= warmup {
            times.push(t0.elapsed().as_secs_f64() * 1000.0);
        }
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let mut out = json!({
        "backend": c.backend,
        "words": r.words,
        "steps": times.len(),
        "median_step_ms": (median * 100.0).round() / 100.0,
        "min_step_ms": (times[0] * 100.0).round() / 100.0,
        "peak_rss_mib": peak_rss_mib().map(|m| m.round()),
    });
    if let (Some(o), serde_json::Value::Object(d)) = (out.as_object_mut(), exp.describe()) {
        o.extend(d);
    }
    say!("{out}");
    Ok(())
}
