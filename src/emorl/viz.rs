//! EMORL's pictures (the original's `sample_viz` and TensorBoard images): for an image, each
//! inference step's reconstruction, slot assignment, per-slot components m·rgb + (1 − m)·1 and
//! attention. Steps are the L stage-1 layers (lower layers decoded from a sample of their
//! posterior) and the I refinement steps, which reuse the last layer's attention.
use super::family::Emorl;
use super::model::EmorlNet;
use crate::data::emorl::{EmorlBatch, gather};
use crate::error::Result;
use crate::train::RunLog;
use crate::viz::{Canvas, Panel};
use burn::module::Module;
use burn::tensor::{Device, Tensor};
use std::path::Path;

/// Test images drawn after each epoch (`viz/sample_<i>.png`).
const SHOWN: usize = 4;
const PAD: u32 = 6;
const LABEL_H: u32 = 16;

/// One inference step of one image, on the host.
pub struct StepPicture {
    pub label: String,
    /// Per slot m·rgb + (1 − m)·1, H·W·3 interleaved.
    pub components: Vec<Vec<f32>>,
    /// Per slot mask, H·W.
    pub masks: Vec<Vec<f32>>,
    /// Σ_k m_k rgb_k, H·W·3.
    pub recon: Vec<f32>,
    /// argmax_k m_k per pixel.
    pub assignment: Vec<u32>,
    /// Per slot attention of the stage-1 layer this step comes from, H·W.
    pub attention: Vec<Vec<f32>>,
}

/// An image, its ground truth and every inference step.
pub struct Sample {
    pub h: usize,
    pub w: usize,
    /// H·W·3 in [0, 1].
    pub image: Vec<f32>,
    /// Entity per pixel (0 = background); empty without masks.
    pub truth: Vec<u32>,
    pub steps: Vec<StepPicture>,
}

fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

/// Channels-first [3, H·W] → interleaved H·W·3.
fn interleave(chw: &[f32]) -> Vec<f32> {
    let p = chw.len() / 3;
    (0..p).flat_map(|i| [chw[i], chw[p + i], chw[2 * p + i]]).collect()
}

/// The pictures of every image of `batch` with I = `refinement` at optimiser step `step`.
pub fn samples(
    fam: &Emorl,
    model: &EmorlNet,
    batch: &EmorlBatch,
    refinement: usize,
    step: Option<u64>,
    device: &Device,
) -> Vec<Sample> {
    let ad = if device.is_autodiff() { device.clone() } else { device.clone().autodiff() };
    let model = model.valid().to_device(&ad);
    let [n, _, h, w] = batch.shape;
    // The pictures' draws: the same for every picture of a run.
    let shard = crate::train::Shard::whole(crate::util::derive_seed(fam.cfg.seed, &[u64::MAX - 4]), n);
    let inf = fam.infer(&model, batch, refinement, step, &shard, &ad);
    let (k, p, layers) = (fam.cfg.net.K, h * w, inf.layers.len());
    // (label, rgb, log_masks, attention) of each step.
    let mut rows = Vec::new();
    for (l, q) in inf.layers.iter().enumerate().take(layers - 1) {
        let (rgb, log_masks) = model.decoder.forward(q.sample(&shard), k, [h, w]);
        rows.push((format!("layer {}", l + 1), rgb, log_masks, inf.attention[l].clone()));
    }
    for (i, s) in inf.steps.iter().enumerate() {
        let label = if i == 0 { format!("layer {layers}") } else { format!("refine {i}") };
        rows.push((label, s.rgb.clone(), s.log_masks.clone(), inf.attention[layers - 1].clone()));
    }
    type Row = (String, Vec<f32>, Vec<f32>, Vec<f32>); // label, rgb, masks, attention
    let rows: Vec<Row> = rows.into_iter().map(|(l, rgb, lm, a)| (l, host(rgb), host(lm.exp()), host(a))).collect();
    (0..n)
        .map(|i| {
            let image =
                interleave(&batch.imgs[i * 3 * p..][..3 * p].iter().map(|v| (v + 1.0) / 2.0).collect::<Vec<_>>());
            let truth = if batch.masks.is_empty() {
                Vec::new()
            } else {
                // CLEVR's masks keep the 192-px crop: nearest neighbour down to the image.
                let [mh, mw] = batch.mask_hw;
                let full = super::metrics::labels_from_masks(
                    &batch.masks[i * batch.e * mh * mw..][..batch.e * mh * mw],
                    batch.e,
                );
                (0..p).map(|j| full[(j / w) * mh / h * mw + (j % w) * mw / w]).collect()
            };
            let steps = rows
                .iter()
                .map(|(label, rgb, masks, attn)| {
                    let slot_rgb = |s: usize| interleave(&rgb[(i * k + s) * 3 * p..][..3 * p]);
                    let mask = |s: usize| masks[(i * k + s) * p..][..p].to_vec();
                    let masks: Vec<Vec<f32>> = (0..k).map(mask).collect();
                    let rgbs: Vec<Vec<f32>> = (0..k).map(slot_rgb).collect();
                    let components = (0..k)
                        .map(|s| {
                            rgbs[s]
                                .iter()
                                .enumerate()
                                .map(|(j, c)| masks[s][j / 3] * c + 1.0 - masks[s][j / 3])
                                .collect()
                        })
                        .collect();
                    let recon = (0..3 * p).map(|j| (0..k).map(|s| masks[s][j / 3] * rgbs[s][j]).sum()).collect();
                    let assignment = (0..p)
                        .map(|j| (0..k).max_by(|&a, &b| masks[a][j].total_cmp(&masks[b][j])).unwrap_or(0) as u32)
                        .collect();
                    let attention = (0..k).map(|s| attn[(i * k + s) * p..][..p].to_vec()).collect();
                    StepPicture { label: label.clone(), components, masks, recon, assignment, attention }
                })
                .collect();
            Sample { h, w, image, truth, steps }
        })
        .collect()
}

/// Panels a row at a time, each panel h × w pixels at `scale`.
fn scale_of(h: usize) -> u32 {
    (96 / h as u32).clamp(1, 4)
}

/// One sample as a grid: a row per step; columns image, reconstruction, assignment, then each
/// slot's component and attention. The first row also shows the ground truth.
pub fn draw(s: &Sample) -> Canvas {
    let (h, w, sc) = (s.h, s.w, scale_of(s.h));
    let k = s.steps[0].masks.len();
    let (cell_w, cell_h) = (w as u32 * sc + PAD, h as u32 * sc + PAD);
    let label_w = 70;
    let cols = 4 + 2 * k as u32;
    let mut c = Canvas::new(label_w + cols * cell_w + PAD, LABEL_H + s.steps.len() as u32 * cell_h + PAD);
    let mut heads = vec!["image".to_string(), "truth".into(), "recon".into(), "slots".into()];
    heads.extend((0..k).map(|i| format!("slot {}", i + 1)));
    heads.extend((0..k).map(|i| format!("attn {}", i + 1)));
    for (j, t) in heads.iter().enumerate() {
        c.text((label_w + j as u32 * cell_w) as i32, 1, 12.0, t);
    }
    for (r, st) in s.steps.iter().enumerate() {
        let y = LABEL_H + r as u32 * cell_h + PAD / 2;
        c.text(2, (y + cell_h / 2 - 8) as i32, 12.0, &st.label);
        let x = |j: u32| label_w + j * cell_w;
        let fg: Vec<bool> = s.truth.iter().map(|&t| t > 0).collect();
        let mut panels = vec![Panel::Rgb(&s.image)];
        if r == 0 && !s.truth.is_empty() {
            panels.push(Panel::Labels { labels: &s.truth, mask: Some(&fg) });
        } else {
            panels.push(Panel::Rgb(&s.image));
        }
        panels.push(Panel::Rgb(&st.recon));
        panels.push(Panel::Labels { labels: &st.assignment, mask: None });
        panels.extend(st.components.iter().map(|v| Panel::Rgb(v)));
        panels.extend(st.attention.iter().map(|v| Panel::Grey(v)));
        for (j, p) in panels.into_iter().enumerate() {
            if j == 1 && (r > 0 || s.truth.is_empty()) {
                continue; // the truth column holds only the first row
            }
            c.blit(x(j as u32), y, h, w, sc, p);
        }
    }
    c
}

/// A latent traversal (`disentanglement_viz`) as a grid: the test image, then a row per
/// dimension (labelled z_j), one column per traversal step; frames are [3·H·W] channels-first.
pub fn draw_traversal(image: &[f32], rows: &[Vec<Vec<f32>>], dims: &[usize], h: usize, w: usize) -> Canvas {
    let sc = scale_of(h);
    let (cell_w, cell_h, label_w) = (w as u32 * sc + PAD, h as u32 * sc + PAD, 50);
    let steps = rows.first().map_or(0, Vec::len) as u32;
    let mut c = Canvas::new(label_w + steps.max(1) * cell_w + PAD, (rows.len() as u32 + 1) * cell_h + PAD);
    c.text(2, (cell_h / 2 - 8) as i32, 12.0, "image");
    c.blit(label_w, PAD / 2, h, w, sc, Panel::Rgb(image));
    for (r, (frames, j)) in rows.iter().zip(dims).enumerate() {
        let y = (r as u32 + 1) * cell_h + PAD / 2;
        c.text(2, (y + cell_h / 2 - 8) as i32, 12.0, &format!("z_{j}"));
        for (s, f) in frames.iter().enumerate() {
            c.blit(label_w + s as u32 * cell_w, y, h, w, sc, Panel::Rgb(&interleave(f)));
        }
    }
    c
}

/// One traversal frame [3·H·W] channels-first as a GIF frame.
pub fn traversal_frame(frame: &[f32], h: usize, w: usize) -> image::RgbImage {
    let sc = scale_of(h);
    let mut c = Canvas::new(w as u32 * sc + 2, h as u32 * sc + 2);
    c.blit(1, 1, h, w, sc, Panel::Rgb(&interleave(frame)));
    c.image().clone()
}

/// Panels side by side, for TensorBoard.
fn strip(panels: &[Panel], h: usize, w: usize) -> Canvas {
    let sc = scale_of(h);
    let cell = w as u32 * sc + PAD;
    let mut c = Canvas::new(panels.len() as u32 * cell + PAD, h as u32 * sc + 2 * PAD);
    for (j, p) in panels.iter().enumerate() {
        c.blit(PAD + j as u32 * cell, PAD, h, w, sc, *p);
    }
    c
}

/// The original's TensorBoard images of batch element 0 at a log point: `image`, and at the last
/// step (level L + I − 1) `RGB_level_…` (components), `masks_level_…`, `reconstruction_level_…`,
/// with `attn_level_{L−1}`.
pub fn log_images(
    fam: &Emorl,
    model: &EmorlNet,
    batch: &EmorlBatch,
    step: u64,
    log: &mut RunLog,
    device: &Device,
) -> Result<()> {
    let [_, c, h, w] = batch.shape;
    let first = EmorlBatch {
        shape: [1, c, h, w],
        imgs: batch.imgs[..c * h * w].to_vec(),
        masks: Vec::new(),
        e: batch.e,
        mask_hw: batch.mask_hw,
    };
    let refinement = fam.refinement_at(step);
    let s = samples(fam, model, &first, refinement, Some(step), device).remove(0);
    let last = s.steps.last().expect("step 0");
    let (h, w) = (s.h, s.w);
    let (layers, level) = (fam.cfg.net.stochastic_layers, fam.cfg.net.stochastic_layers + refinement - 1);
    log.image("image", step, &strip(&[Panel::Rgb(&s.image)], h, w))?;
    let comps: Vec<Panel> = last.components.iter().map(|v| Panel::Rgb(v)).collect();
    log.image(&format!("RGB_level_{level}"), step, &strip(&comps, h, w))?;
    let masks: Vec<Panel> = last.masks.iter().map(|v| Panel::Grey(v)).collect();
    log.image(&format!("masks_level_{level}"), step, &strip(&masks, h, w))?;
    log.image(&format!("reconstruction_level_{level}"), step, &strip(&[Panel::Rgb(&last.recon)], h, w))?;
    let attn: Vec<Panel> = last.attention.iter().map(|v| Panel::Grey(v)).collect();
    log.image(&format!("attn_level_{}", layers - 1), step, &strip(&attn, h, w))
}

/// The first `n` test images drawn as `<dir>/sample_<i>.png` at test-time I.
pub fn write_samples(
    fam: &Emorl,
    model: &EmorlNet,
    n: usize,
    dir: &Path,
    device: &Device,
) -> Result<Vec<std::path::PathBuf>> {
    let split = fam.test_split(n)?;
    let batch = gather(&split, &(0..split.n).collect::<Vec<_>>());
    let mut paths = Vec::new();
    for (i, s) in samples(fam, model, &batch, fam.test_refinement(), None, device).iter().enumerate() {
        let path = dir.join(format!("sample_{i}.png"));
        draw(s).save_png(&path)?;
        paths.push(path);
    }
    Ok(paths)
}

/// After each epoch and by `gestalt viz`: `DIR/viz/sample_<i>.png` for the first test images and
/// `DIR/viz/curves.png`.
pub fn draw_all(fam: &Emorl, model: &EmorlNet, dir: &Path, device: &Device) -> Result<()> {
    write_samples(fam, model, SHOWN, &dir.join("viz"), device)?;
    curves(dir).save_png(&dir.join("viz").join("curves.png"))
}

/// The training curves against the step: the last step's NLL and KL (train, means between log
/// points), GECO's multiplier, and the validation FG-ARI and MSE.
pub fn curves(dir: &Path) -> Canvas {
    use crate::train::log::curve;
    use crate::viz::{PALETTE, Series};
    let s = |split: &str, key: &str, name: &str, c: usize| Series {
        name: name.into(),
        points: curve(dir, split, "step", key),
        colour: PALETTE[c],
    };
    let mut c = Canvas::new(1280, 800);
    c.chart(
        0,
        0,
        640,
        400,
        "reconstruction (last step, train)",
        "step",
        "NLL per image",
        &[s("train_running", "nll", "NLL", 2)],
        &[],
    );
    c.chart(
        640,
        0,
        640,
        400,
        "KL (last step, train)",
        "step",
        "KL per image",
        &[s("train_running", "kl", "KL", 0)],
        &[],
    );
    c.chart(
        0,
        400,
        640,
        400,
        "validation",
        "step",
        "score",
        &[s("validation", "ARI", "FG-ARI", 1), s("validation", "MSE", "MSE", 3)],
        &[],
    );
    c.chart(
        640,
        400,
        640,
        400,
        "GECO",
        "step",
        "softplus⁻¹ multiplier ζ",
        &[s("train_running", "geco_beta", "ζ", 4)],
        &[],
    );
    c
}
