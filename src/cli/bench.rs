//! `gestalt bench`: median milliseconds of a full training step (forward, backward, optimiser)
//! on one real batch, and the process's peak resident memory.
use super::Common;
use crate::error::Result;
use crate::nem::Nem;
use crate::train::{Family, optim};
use serde_json::json;
use std::time::Instant;

/// Peak resident set size of this process in MiB (Linux), if known.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

pub fn bench(c: &Common, nem: &Nem) -> Result<()> {
    let device = crate::backend::device(&c.backend, c.device)?.autodiff();
    let s = nem.settings();
    let mut model = nem.init_model(&device)?;
    let mut opt = optim::build(&s.optimizer, &s.params, s.clip_gradients)?;
    let batch = nem.train_batches(1)?.next().expect("at least one batch");
    let warmup = 2;
    let mut times = Vec::new();
    for i in 0..warmup + c.steps.max(1) {
        let t0 = Instant::now();
        (model, _) = crate::train::step(nem, &s, &mut opt, model, &batch, i as u64, &device);
        device.sync().map_err(|e| crate::error::Error::internal(format!("{e:?}")))?;
        if i >= warmup {
            times.push(t0.elapsed().as_secs_f64() * 1000.0);
        }
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let out = json!({
        "backend": c.backend,
        "words": nem.resolved().words,
        "batch_size": batch.shape[1],
        "k": nem.cfg.nem.k,
        "nr_steps": nem.cfg.nem.nr_steps,
        "steps": times.len(),
        "median_step_ms": (median * 100.0).round() / 100.0,
        "min_step_ms": (times[0] * 100.0).round() / 100.0,
        "peak_rss_mib": peak_rss_mib().map(|m| m.round()),
    });
    println!("{out}");
    Ok(())
}
