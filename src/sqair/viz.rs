//! SQAIR's pictures (the original's progress figures): input frames over reconstructions with a
//! box per present object, coloured by its identity, frame by frame (`reconstructions.png`,
//! `reconstructions.gif`), and the training curves (`curves.png`).
use super::family::{Sqair, gather};
use super::model::SqairNet;
use super::stn;
use crate::error::Result;
use crate::train::Shard;
use crate::util::derive_seed;
use crate::viz::{Canvas, PALETTE, Panel, Series, save_gif};
use burn::module::Module;
use burn::tensor::{Device, Tensor};
use std::path::Path;

/// Sequences shown, and the pixel scale.
const SHOWN: usize = 4;
const SCALE: u32 = 3;

/// One shown sequence: per frame the input, the reconstruction of its highest-weight particle and
/// that particle's objects as (pixel box y, x, h, w; id).
struct Shown {
    inputs: Vec<Vec<f32>>,
    recons: Vec<Vec<f32>>,
    boxes: Vec<Vec<([f32; 4], i64)>>,
}

fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

/// Run the first `SHOWN` validation sequences and keep, per sequence, the particle with the
/// largest importance weight.
fn shown(fam: &Sqair, model: &SqairNet, device: &Device) -> Result<Vec<Shown>> {
    let data = fam.split("validation")?;
    let n = SHOWN.min(data.n);
    let batch = gather(&data, &(0..n).collect::<Vec<_>>());
    let shard = Shard::whole(derive_seed(fam.cfg.seed, &[u64::MAX - 3]), n);
    let model = model.valid().to_device(device);
    let run = fam.run(&model, &batch, batch.frames, &shard, device);
    let (k, s) = (run.particles, &model.shape);
    let [h, w] = s.image;
    let best: Vec<usize> = host(run.log_weights.clone().argmax(1).float()).iter().map(|&v| v as usize).collect();
    let mut out: Vec<Shown> =
        (0..n).map(|_| Shown { inputs: Vec::new(), recons: Vec::new(), boxes: Vec::new() }).collect();
    for (t, (frame, carry)) in run.unrolled.frames.iter().zip(&run.unrolled.carries).enumerate() {
        let canvas = host(frame.canvas.clone());
        let rows = carry.where_.dims()[0] * s.steps;
        let boxes = host(stn::pixel_boxes(stn::to_coords(carry.where_.clone().reshape([rows, 4])), s.image));
        let (pres, ids) = (host(carry.pres.clone()), host(carry.ids.clone()));
        for (i, sh) in out.iter_mut().enumerate() {
            let row = i * k + best[i];
            sh.inputs.push(batch.imgs[(t * n + i) * h * w..][..h * w].to_vec());
            sh.recons.push(canvas[row * h * w..][..h * w].to_vec());
            let objects = (0..s.steps)
                .filter(|&j| pres[row * s.steps + j] > 0.5)
                .map(|j| {
                    let b = &boxes[(row * s.steps + j) * 4..][..4];
                    ([b[0], b[1], b[2], b[3]], ids[row * s.steps + j] as i64)
                })
                .collect();
            sh.boxes.push(objects);
        }
    }
    Ok(out)
}

/// Draw frame `t` of `sh` (input above, reconstruction with boxes below) at (x, y).
fn draw_frame(c: &mut Canvas, sh: &Shown, t: usize, x: u32, y: u32, side: usize) {
    let px = side as u32 * SCALE;
    c.blit(x, y, side, side, SCALE, Panel::Grey(&sh.inputs[t]));
    let ry = y + px + 4;
    c.blit(x, ry, side, side, SCALE, Panel::Grey(&sh.recons[t]));
    for &([by, bx, bh, bw], id) in &sh.boxes[t] {
        let colour = PALETTE[id.rem_euclid(PALETTE.len() as i64) as usize];
        let s = SCALE as f32;
        let (x0, y0) = (x as i64 + (bx * s) as i64, ry as i64 + (by * s) as i64);
        let (x1, y1) = (x0 + (bw * s) as i64, y0 + (bh * s) as i64);
        c.rect(x0, y0, x1, y1, colour);
    }
}

/// `viz/reconstructions.png` (one sequence per row pair, time left to right),
/// `viz/reconstructions.gif` (the sequences side by side, one frame per time step) and
/// `viz/curves.png`.
pub fn draw_all(fam: &Sqair, model: &SqairNet, dir: &Path, device: &Device) -> Result<()> {
    let viz = dir.join("viz");
    let seqs = shown(fam, model, device)?;
    let side = model.shape.image[0];
    let px = side as u32 * SCALE;
    let (cell_w, cell_h) = (px + 6, 2 * px + 14);
    let frames = seqs.first().map_or(0, |s| s.inputs.len());
    let mut grid = Canvas::new(cell_w * frames as u32 + 4, cell_h * seqs.len() as u32 + 4);
    for (i, sh) in seqs.iter().enumerate() {
        for t in 0..frames {
            draw_frame(&mut grid, sh, t, 3 + t as u32 * cell_w, 3 + i as u32 * cell_h, side);
        }
    }
    grid.save_png(&viz.join("reconstructions.png"))?;
    let gif: Vec<_> = (0..frames)
        .map(|t| {
            let mut c = Canvas::new(cell_w * seqs.len() as u32 + 4, cell_h + 4);
            for (i, sh) in seqs.iter().enumerate() {
                draw_frame(&mut c, sh, t, 3 + i as u32 * cell_w, 3, side);
            }
            c.image().clone()
        })
        .collect();
    save_gif(&viz.join("reconstructions.gif"), &gif, 400)?;
    curves(dir).save_png(&viz.join("curves.png"))
}

/// The bound per frame (training and validation) and the counting accuracy against the step.
pub fn curves(dir: &Path) -> Canvas {
    use crate::train::log::curve;
    let s = |split: &str, key: &str, name: &str, c: usize| Series {
        name: name.into(),
        points: curve(dir, split, "step", key),
        colour: PALETTE[c],
    };
    let mut c = Canvas::new(1280, 400);
    let bound = [
        s("train_running", "iwae", "IWAE / T (train)", 0),
        s("validation", "normalised_elbo_iwae", "IWAE / T (validation)", 2),
    ];
    c.chart(0, 0, 640, 400, "ELBO (IWAE, k particles) per frame", "step", "nats", &bound, &[]);
    let counts =
        [s("validation", "num_step_acc", "counting accuracy", 1), s("validation", "num_steps", "objects per frame", 3)];
    c.chart(640, 0, 640, 400, "counting (validation)", "step", "", &counts, &[]);
    c
}
