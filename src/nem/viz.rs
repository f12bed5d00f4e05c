//! The N-EM family's pictures, written to `DIR/viz/` for every run: dataset examples, learning and
//! grouping-score curves, slot assignments per EM iteration, per-slot reconstructions, and a GIF of
//! slot assignment across epochs (one frame per epoch, kept under `viz/frames/`).
use super::net::InnerNet;
use super::{Kept, Nem};
use crate::data::loader::NemBatch;
use crate::error::Result;
use crate::viz::{Canvas, PALETTE, Panel, Series, save_gif};
use burn::tensor::Device;
use std::path::Path;

/// Held-out images shown in the assignment pictures and in each GIF frame.
const SHOWN: usize = 4;
const FRAME_IMAGES: usize = 3;
const MAX_GIF_FRAMES: usize = 40;
const PAD: u32 = 6;
const LABEL_H: u32 = 16;

/// What the model does on a few images: assignments after every EM iteration, ψ and γ of the last.
pub struct Inspection {
    pub n: usize,
    pub h: usize,
    pub w: usize,
    pub c: usize,
    pub k: usize,
    pub steps: usize,
    /// argmax_k γ, [steps, n, H·W].
    pub assign: Vec<u32>,
    /// ψ [n, K, H·W·C] and γ [n, K, H·W] of the last iteration.
    pub psi: Vec<f32>,
    pub gamma: Vec<f32>,
    /// Σ_k γψ after every iteration, [steps, n, H·W·C]: the prediction of the next frame.
    pub predictions: Vec<f32>,
    /// A relational cell's attention before every iteration, [steps, n·K, K − 1].
    pub attention: Option<Vec<f32>>,
    /// max_k γ after every iteration, [steps, n, H·W].
    pub confidence: Vec<f32>,
    pub batch: NemBatch,
}

fn host<const D: usize>(t: burn::tensor::Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_into_vec::<f32>().unwrap()
}

impl Inspection {
    /// What an unrolled run of `batch` kept, on the host; `k` components.
    pub fn of(batch: NemBatch, kept: Kept, k: usize) -> Inspection {
        let [_, n, h, w, c] = batch.shape;
        let assign: Vec<i64> = kept.assignments.into_data().convert::<i64>().try_into_vec::<i64>().unwrap();
        Inspection {
            n,
            h,
            w,
            c,
            k,
            steps: kept.step_loss.dims()[0],
            assign: assign.into_iter().map(|a| a as u32).collect(),
            psi: host(kept.psi),
            gamma: host(kept.gamma),
            predictions: host(kept.predictions),
            attention: kept.attention.map(host),
            confidence: host(kept.confidence),
            batch,
        }
    }

    fn pixels(&self) -> usize {
        self.h * self.w
    }

    /// Grey levels of the frame iteration `t` is scored against (the static frame when T = 1).
    fn image(&self, i: usize, t: usize) -> Vec<f32> {
        let (tf, p, c) = (self.batch.shape[0], self.pixels(), self.c);
        let f = if tf == 1 { 0 } else { (t + 1).min(tf - 1) };
        let frame = &self.batch.features[(f * self.n + i) * p * c..][..p * c];
        frame.chunks(c).map(|v| v.iter().sum::<f32>() / c as f32).collect()
    }

    /// Ground-truth object ids (0 = background) of the same frame.
    fn truth(&self, i: usize, t: usize) -> Vec<u32> {
        let (tf, p) = (self.batch.shape[0], self.pixels());
        let f = if tf == 1 { 0 } else { (t + 1).min(tf - 1) };
        match &self.batch.groups {
            Some(g) => g[(f * self.n + i) * p..][..p].iter().map(|&v| v as u32).collect(),
            None => vec![0; p],
        }
    }

    fn assignment(&self, t: usize, i: usize) -> &[u32] {
        &self.assign[(t * self.n + i) * self.pixels()..][..self.pixels()]
    }

    /// ψ_k of image i at the last iteration, channels averaged.
    fn psi_k(&self, i: usize, k: usize) -> Vec<f32> {
        let (p, c) = (self.pixels(), self.c);
        let v = &self.psi[((i * self.k) + k) * p * c..][..p * c];
        v.chunks(c).map(|v| v.iter().sum::<f32>() / c as f32).collect()
    }

    /// The mixture mean Σ_k γ_k ψ_k of image i.
    fn mixture(&self, i: usize) -> Vec<f32> {
        let p = self.pixels();
        let mut m = vec![0f32; p];
        for k in 0..self.k {
            let g = &self.gamma[(i * self.k + k) * p..][..p];
            for ((m, psi), g) in m.iter_mut().zip(self.psi_k(i, k)).zip(g) {
                *m += g * psi;
            }
        }
        m
    }

    fn scale(&self) -> u32 {
        (96 / self.h.max(self.w)).max(1) as u32
    }
}

/// Ground-truth ids as slot colours (object j gets colour j − 1), background dark.
fn truth_panel(ids: &[u32]) -> (Vec<u32>, Vec<bool>) {
    (ids.iter().map(|&g| g.saturating_sub(1)).collect(), ids.iter().map(|&g| g > 0).collect())
}

/// A grid of panels: a header row of labels, then one row per image.
struct Grid {
    canvas: Canvas,
    cell: u32,
    top: u32,
}

impl Grid {
    fn new(cols: usize, rows: usize, side: u32, top: u32) -> Grid {
        let cell = side + PAD;
        let canvas = Canvas::new(PAD + cols as u32 * cell, top + LABEL_H + rows as u32 * cell + PAD);
        Grid { canvas, cell, top }
    }

    fn header(&mut self, col: usize, s: &str) {
        self.canvas.text((PAD + col as u32 * self.cell) as i32, self.top as i32, 12.0, s);
    }

    fn put(&mut self, row: usize, col: usize, ins: &Inspection, panel: Panel) {
        let (x, y) = (PAD + col as u32 * self.cell, self.top + LABEL_H + row as u32 * self.cell);
        self.canvas.blit(x, y, ins.h, ins.w, ins.scale(), panel);
    }

    /// Image i at EM step t at the three (row, col) cells: the frame the step is scored on, its
    /// truth, and the argmax slot on the foreground.
    fn put_step(&mut self, ins: &Inspection, i: usize, t: usize, at: [(usize, usize); 3]) {
        self.put(at[0].0, at[0].1, ins, Panel::Grey(&ins.image(i, t)));
        let (ids, fg) = truth_panel(&ins.truth(i, t));
        self.put(at[1].0, at[1].1, ins, Panel::Labels { labels: &ids, mask: Some(&fg) });
        self.put(at[2].0, at[2].1, ins, Panel::Labels { labels: ins.assignment(t, i), mask: Some(&fg) });
    }
}

/// Input, ground truth and the argmax slot after each EM iteration, for `rows` images.
fn assignments_grid(ins: &Inspection, rows: usize, top: u32) -> Grid {
    let side = ins.h as u32 * ins.scale();
    let mut g = Grid::new(2 + ins.steps, rows, side, top);
    g.header(0, "input");
    g.header(1, "truth");
    for t in 0..ins.steps {
        g.header(2 + t, &format!("iter {}", t + 1));
    }
    for i in 0..rows {
        let last = ins.steps - 1;
        g.put(i, 0, ins, Panel::Grey(&ins.image(i, last)));
        let (ids, fg) = truth_panel(&ins.truth(i, last));
        g.put(i, 1, ins, Panel::Labels { labels: &ids, mask: Some(&fg) });
        for t in 0..ins.steps {
            // Background pixels are not scored: show the slot colour only on the foreground.
            let fg: Vec<bool> = ins.truth(i, t).iter().map(|&g| g > 0).collect();
            g.put(i, 2 + t, ins, Panel::Labels { labels: ins.assignment(t, i), mask: Some(&fg) });
        }
    }
    g
}

/// Sequences: per image three rows over the EM steps — the frame each step is scored on, its
/// ground truth and the argmax slot (foreground only).
fn sequence_grid(ins: &Inspection, rows: usize, top: u32) -> Grid {
    let side = ins.h as u32 * ins.scale();
    let mut g = Grid::new(1 + ins.steps, 3 * rows, side, top);
    for t in 0..ins.steps {
        g.header(1 + t, &format!("frame {}", t + 1));
    }
    for i in 0..rows {
        for (r, name) in ["input", "truth", "slots"].iter().enumerate() {
            let y = top + LABEL_H + (3 * i + r) as u32 * g.cell + side / 2;
            g.canvas.text(PAD as i32, y as i32, 12.0, name);
        }
        for t in 0..ins.steps {
            g.put_step(ins, i, t, [(3 * i, 1 + t), (3 * i + 1, 1 + t), (3 * i + 2, 1 + t)]);
        }
    }
    g
}

/// Sequences: an animated GIF of a few test sequences, one GIF frame per EM step (input, truth,
/// slots side by side).
fn sequence_gif(ins: &Inspection, path: &Path) -> Result<()> {
    let rows = ins.n.min(FRAME_IMAGES);
    let side = ins.h as u32 * ins.scale();
    let frames: Vec<_> = (0..ins.steps)
        .map(|t| {
            let mut g = Grid::new(3, rows, side, 22);
            ["input", "truth", "slots"].iter().enumerate().for_each(|(c, s)| g.header(c, s));
            g.canvas.text(PAD as i32, 4, 14.0, &format!("frame {}", t + 1));
            for i in 0..rows {
                g.put_step(ins, i, t, [(i, 0), (i, 1), (i, 2)]);
            }
            g.canvas.image().clone()
        })
        .collect();
    save_gif(path, &frames, 300)
}

/// Rollouts: one GIF per sample in `samples` (`sequence_<i>.gif` in `dir`), a GIF frame per
/// step: the true next frame, the prediction Σ_k γψ, the slots where the prediction is on, and
/// the relational cell's attention (row k: how much slot k attends to each other slot).
pub fn rollout_gifs(ins: &Inspection, observed: usize, samples: &[usize], dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let side = ins.h as u32 * ins.scale();
    let p = ins.pixels();
    let k = ins.k;
    for &i in samples.iter().filter(|&&i| i < ins.n) {
        let frames: Vec<_> = (0..ins.steps)
            .map(|t| {
                let cols = if ins.attention.is_some() { 4 } else { 3 };
                let mut g = Grid::new(cols, 1, side, 22);
                ["truth", "prediction", "slots", "attention"]
                    .iter()
                    .take(cols)
                    .enumerate()
                    .for_each(|(c, s)| g.header(c, s));
                let phase = if t < observed { "observed" } else { "rollout" };
                g.canvas.text(PAD as i32, 4, 14.0, &format!("frame {} ({phase})", t + 1));
                g.put(0, 0, ins, Panel::Grey(&ins.image(i, t)));
                let pred: Vec<f32> = ins.predictions[(t * ins.n + i) * p * ins.c..][..p * ins.c]
                    .chunks(ins.c)
                    .map(|v| v.iter().sum::<f32>() / ins.c as f32)
                    .collect();
                g.put(0, 1, ins, Panel::Grey(&pred));
                let on: Vec<bool> = pred.iter().map(|&v| v > 0.25).collect();
                g.put(0, 2, ins, Panel::Labels { labels: ins.assignment(t, i), mask: Some(&on) });
                if let Some(att) = &ins.attention {
                    // K × K: α_kj off the diagonal (the pairs in j order without k), 0 on it.
                    let a = &att[(t * ins.n + i) * k * (k - 1)..][..k * (k - 1)];
                    let m: Vec<f32> = (0..k * k)
                        .map(|q| {
                            let (r, c) = (q / k, q % k);
                            if r == c { 0.0 } else { a[r * (k - 1) + c - (c > r) as usize] }
                        })
                        .collect();
                    let x = PAD + 3 * g.cell;
                    g.canvas.blit(x, 22 + LABEL_H, k, k, side / k as u32, Panel::Grey(&m));
                }
                g.canvas.image().clone()
            })
            .collect();
        save_gif(&dir.join(format!("sequence_{i}.gif")), &frames, 200)?;
    }
    Ok(())
}

/// Sequences: AMI and ARI of every frame (`evaluate`'s `AMI_frame_01` …), over time.
pub fn scores_over_time(scores: &serde_json::Map<String, serde_json::Value>, path: &Path) -> Result<()> {
    let points = |key: &str| -> Vec<(f64, f64)> {
        let mut p: Vec<(f64, f64)> =
            scores.iter().filter_map(|(k, v)| Some((k.strip_prefix(key)?.parse::<f64>().ok()?, v.as_f64()?))).collect();
        p.sort_by(|a, b| a.0.total_cmp(&b.0));
        p
    };
    let series = [
        Series { name: "AMI".into(), points: points("AMI_frame_"), colour: PALETTE[0] },
        Series { name: "ARI".into(), points: points("ARI_frame_"), colour: PALETTE[2] },
    ];
    let mut c = Canvas::new(640, 400);
    c.chart(0, 0, 640, 400, "grouping of foreground pixels per frame (test)", "frame", "score", &series, &[]);
    c.save_png(path)
}

fn slot_reconstructions(ins: &Inspection) -> Canvas {
    let rows = ins.n.min(SHOWN);
    let side = ins.h as u32 * ins.scale();
    let mut g = Grid::new(ins.k + 2, rows, side, 0);
    g.header(0, "input");
    for k in 0..ins.k {
        g.header(1 + k, &format!("ψ slot {k}"));
    }
    g.header(ins.k + 1, "Σ γψ");
    for i in 0..rows {
        g.put(i, 0, ins, Panel::Grey(&ins.image(i, ins.steps - 1)));
        for k in 0..ins.k {
            g.put(i, 1 + k, ins, Panel::Tinted(&ins.psi_k(i, k), PALETTE[k % PALETTE.len()]));
        }
        g.put(i, ins.k + 1, ins, Panel::Grey(&ins.mixture(i)));
    }
    g.canvas
}

fn dataset_examples(ins: &Inspection) -> Canvas {
    let cols = ins.n.min(6);
    let side = ins.h as u32 * ins.scale();
    let mut g = Grid::new(cols, 2, side, 0);
    g.header(0, "images (top) and their ground-truth objects (bottom)");
    for i in 0..cols {
        g.put(0, i, ins, Panel::Grey(&ins.image(i, 0)));
        let (ids, fg) = truth_panel(&ins.truth(i, 0));
        g.put(1, i, ins, Panel::Labels { labels: &ids, mask: Some(&fg) });
    }
    g.canvas
}

/// Per-epoch values of `key` on `split` from `metrics.jsonl`.
pub fn curve(dir: &Path, split: &str, key: &str) -> Vec<(f64, f64)> {
    crate::train::log::curve(dir, split, "epoch", key)
}

fn argmax(pts: &[(f64, f64)]) -> Option<usize> {
    (0..pts.len()).max_by(|&a, &b| pts[a].1.total_cmp(&pts[b].1))
}

fn learning_curves(dir: &Path) -> Canvas {
    let mut c = Canvas::new(640, 400);
    let series = [
        Series { name: "train (running mean)".into(), points: curve(dir, "train", "running_loss"), colour: PALETTE[2] },
        Series { name: "validation".into(), points: curve(dir, "validation", "loss"), colour: PALETTE[0] },
    ];
    c.chart(0, 0, 640, 400, "loss (summed over EM iterations)", "epoch", "loss per image", &series, &[]);
    c
}

fn grouping_scores(dir: &Path) -> Canvas {
    let mut c = Canvas::new(640, 400);
    let series: Vec<Series> = [("last_AMI", "AMI"), ("last_NMI", "NMI"), ("last_ARI", "ARI")]
        .iter()
        .zip([PALETTE[0], PALETTE[1], PALETTE[2]])
        .map(|((key, name), colour)| Series { name: name.to_string(), points: curve(dir, "validation", key), colour })
        .collect();
    let marks: Vec<(usize, usize)> = argmax(&series[0].points).map(|i| (0, i)).into_iter().collect();
    c.chart(
        0,
        0,
        640,
        400,
        "grouping of foreground pixels, last EM iteration (validation)",
        "epoch",
        "score",
        &series,
        &marks,
    );
    c
}

/// One GIF frame: the slot assignments of a few held-out images after `epoch`.
pub fn epoch_frame(nem: &Nem, net: &InnerNet, dir: &Path, epoch: usize, device: &Device) -> Result<()> {
    let ins = nem.inspect(net, "test", FRAME_IMAGES, device)?;
    let mut g = assignments_grid(&ins, ins.n.min(FRAME_IMAGES), 22);
    let ami = curve(dir, "validation", "last_AMI").last().map(|p| format!("  validation AMI {:.3}", p.1));
    g.canvas.text(PAD as i32, 4, 14.0, &format!("epoch {epoch}{}", ami.unwrap_or_default()));
    g.canvas.save_png(&dir.join("viz").join("frames").join(format!("epoch_{epoch:04}.png")))
}

/// Every picture of a run from `net` (its best checkpoint) and the run's logs.
pub fn draw_all(nem: &Nem, net: &InnerNet, dir: &Path, device: &Device) -> Result<()> {
    let viz = dir.join("viz");
    let ins = nem.inspect(net, "test", SHOWN.max(6), device)?;
    dataset_examples(&ins).save_png(&viz.join("dataset_examples.png"))?;
    learning_curves(dir).save_png(&viz.join("learning_curves.png"))?;
    grouping_scores(dir).save_png(&viz.join("grouping_scores.png"))?;
    if ins.batch.shape[0] > 1 {
        sequence_grid(&ins, ins.n.min(SHOWN), 0).canvas.save_png(&viz.join("slot_assignments.png"))?;
        sequence_gif(&ins, &viz.join("sequence.gif"))?;
    } else {
        assignments_grid(&ins, ins.n.min(SHOWN), 0).canvas.save_png(&viz.join("slot_assignments.png"))?;
    }
    slot_reconstructions(&ins).save_png(&viz.join("slot_reconstructions.png"))?;
    training_gif(&viz)
}

/// `training.gif` from the per-epoch frames, at most MAX_GIF_FRAMES of them, evenly spaced.
fn training_gif(viz: &Path) -> Result<()> {
    let mut paths: Vec<_> = std::fs::read_dir(viz.join("frames"))
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    paths.retain(|p| p.extension().is_some_and(|e| e == "png"));
    paths.sort();
    if paths.is_empty() {
        return Ok(());
    }
    let stride = paths.len().div_ceil(MAX_GIF_FRAMES);
    let mut chosen: Vec<_> = paths.iter().step_by(stride).cloned().collect();
    if chosen.last() != paths.last() {
        chosen.push(paths.last().unwrap().clone());
    }
    let frames = chosen
        .iter()
        .map(|p| image::open(p).map(|i| i.to_rgb8()))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| crate::Error::internal(format!("reading a GIF frame: {e}")))?;
    save_gif(&viz.join("training.gif"), &frames, 400)
}
