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

/// CPU seconds this process has used (user + system; Linux, in clock ticks of 1/100 s).
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the command name, which is in parentheses and may hold spaces.
    let rest: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = rest.get(11)?.parse::<f64>().ok()? + rest.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

pub fn bench<E: Experiment>(c: &Common, r: &Resolved, exp: &E) -> Result<()> {
    let s = exp.settings();
    let replicas: Vec<_> =
        crate::backend::devices(&c.backend, c.device, s.devices)?.into_iter().map(|d| d.autodiff()).collect();
    let device = replicas[0].clone();
    let mut model = exp.init_model(&device)?;
    let mut opt = optim::build(&s.optimizer, &s.params, s.clip_gradients)?;
    exp.prepare()?;
    let batch = exp.train_batches(1)?.next().expect("at least one batch");
    let warmup = 2;
    let mut times = Vec::new();
    let (mut wall0, mut cpu0) = (Instant::now(), cpu_seconds());
    for i in 0..warmup + c.steps.max(1) {
        let t0 = Instant::now();
        let step = c.start_step + i as u64;
        let logged;
        (model, logged) = crate::train::step(exp, &s, &mut opt, model, &batch, step, &replicas);
        exp.after_step(step, &logged);
        for d in &replicas {
            d.sync().map_err(|e| crate::error::Error::internal(format!("{e:?}")))?;
        }
        if i + 1 == warmup {
            (wall0, cpu0) = (Instant::now(), cpu_seconds());
        }
        if i >= warmup {
            times.push(t0.elapsed().as_secs_f64() * 1000.0);
        }
    }
    // Busy cores over the timed steps: 1.0 is one core, 2.0 two.
    let cpu_util =
        cpu_seconds().zip(cpu0).map(|(b, a)| ((b - a) / wall0.elapsed().as_secs_f64() * 100.0).round() / 100.0);
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let mut out = json!({
        "backend": c.backend,
        "words": r.words,
        "steps": times.len(),
        "start_step": c.start_step,
        "devices": replicas.len(),
        "median_step_ms": (median * 100.0).round() / 100.0,
        "min_step_ms": (times[0] * 100.0).round() / 100.0,
        "peak_rss_mib": peak_rss_mib().map(|m| m.round()),
        "cpu_util": cpu_util,
    });
    if let (Some(o), serde_json::Value::Object(d)) = (out.as_object_mut(), exp.describe()) {
        o.extend(d);
    }
    say!("{out}");
    Ok(())
}
