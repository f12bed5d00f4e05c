//! CLEVR (with masks) as EMORL reads it (reference §5): each image cropped to the box left 64,
//! top 29, right 256, bottom 221 (192×192), then resized to 96 (`clevr-small`) or 128
//! (`clevr-large`) with bicubic filtering, PIL's default; the masks are cropped, not resized, and
//! predicted masks are resized to 192 before they are compared with them.
use super::emorl::EmorlSplit;
use crate::error::{Error, Result};
use image::imageops::{FilterType, resize};
use image::{ImageBuffer, Luma, RgbImage};

/// (left, top, right, bottom).
pub const CROP: [usize; 4] = [64, 29, 256, 221];

/// Image size of a `dataset.clevr_preprocess_style`.
pub fn style_size(style: &str) -> Result<usize> {
    match style {
        "clevr-small" => Ok(96),
        "clevr-large" => Ok(128),
        other => {
            Err(Error::usage(format!("unknown dataset.clevr_preprocess_style `{other}` (clevr-small, clevr-large)")))
        }
    }
}

/// Rows top..bottom and columns left..right of a row-major (H, W, C) block.
fn crop(data: &[u8], w: usize, c: usize) -> Vec<u8> {
    let [left, top, right, bottom] = CROP;
    (top..bottom).flat_map(|y| &data[(y * w + left) * c..(y * w + right) * c]).copied().collect()
}

/// Crop every image and mask, then resize the images to `size`×`size`.
pub fn preprocess(s: EmorlSplit, size: usize) -> Result<EmorlSplit> {
    let [left, top, right, bottom] = CROP;
    if s.h < bottom || s.w < right {
        return Err(Error::usage(format!(
            "CLEVR preprocessing crops to rows {top}..{bottom}, columns {left}..{right}; the images are {}×{}",
            s.h, s.w
        )));
    }
    let (ch, cw) = (bottom - top, right - left);
    let (p, mp) = (s.h * s.w * 3, s.h * s.w);
    let mut imgs = Vec::with_capacity(s.n * size * size * 3);
    for img in s.imgs.chunks_exact(p) {
        let cropped = RgbImage::from_raw(cw as u32, ch as u32, crop(img, s.w, 3)).expect("crop size");
        imgs.extend(resize(&cropped, size as u32, size as u32, FilterType::CatmullRom).into_raw());
    }
    let masks = s.masks.chunks_exact(mp).flat_map(|m| crop(m, s.w, 1)).collect();
    Ok(EmorlSplit { n: s.n, h: size, w: size, e: s.e, imgs, masks, mask_hw: [ch, cw] })
}

/// A float plane (H·W) resized bicubically to `to` = [rows, columns].
pub fn resize_plane(v: &[f32], h: usize, w: usize, to: [usize; 2]) -> Vec<f32> {
    let img: ImageBuffer<Luma<f32>, Vec<f32>> =
        ImageBuffer::from_raw(w as u32, h as u32, v.to_vec()).expect("plane size");
    resize(&img, to[1] as u32, to[0] as u32, FilterType::CatmullRom).into_raw()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crops_the_box_and_resizes_only_the_images() {
        // Pixel value = row within the crop box, so the crop is visible in every channel.
        let (h, w) = (240, 320);
        let row = |y: usize| (y.saturating_sub(CROP[1])).min(191) as u8;
        let imgs: Vec<u8> = (0..h).flat_map(|y| (0..w * 3).map(move |_| row(y))).collect();
        let masks: Vec<u8> = (0..h * w).map(|i| if (i / w) % 2 == 0 { 255 } else { 0 }).collect();
        let s = EmorlSplit { n: 1, h, w, e: 1, imgs, masks, mask_hw: [h, w] };
        let out = preprocess(s, 96).unwrap();
        assert_eq!(
            (out.h, out.w, out.mask_hw, out.imgs.len(), out.masks.len()),
            (96, 96, [192, 192], 96 * 96 * 3, 192 * 192)
        );
        // Row 0 of the mask crop is image row 29 (odd: 0), row 1 is row 30 (even: 255).
        assert_eq!((out.masks[0], out.masks[192]), (0, 255));
        // A ramp of 0..191 over 192 rows, halved: row r of the output is near 2r + 0.5.
        for r in [10usize, 50, 90] {
            let v = f32::from(out.imgs[r * 96 * 3]);
            assert!((v - (2 * r) as f32 - 0.5).abs() <= 1.0, "row {r}: {v}");
        }
        let small = EmorlSplit {
            n: 1,
            h: 35,
            w: 35,
            e: 1,
            imgs: vec![0; 35 * 35 * 3],
            masks: vec![0; 35 * 35],
            mask_hw: [35, 35],
        };
        assert!(preprocess(small, 96).unwrap_err().to_string().contains("crops"));
    }

    #[test]
    fn planes_resize_to_any_size() {
        let v: Vec<f32> = (0..16).map(|i| (i % 4) as f32).collect();
        let out = resize_plane(&v, 4, 4, [8, 8]);
        assert_eq!(out.len(), 64);
        assert!(out[0] <= out[7], "columns still increase left to right");
    }
}
