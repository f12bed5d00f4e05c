//! Picture drawing for figures: image panels, text and line charts composed on one canvas, saved
//! as PNG, plus animated GIFs. Model code decides what to show; this layer only knows pixels.
use crate::error::{Error, Result};
use crate::util::write_atomic;
use image::codecs::gif::{GifEncoder, Repeat};
use image::codecs::png::{PngDecoder, PngEncoder};
use image::{Delay, ExtendedColorType, Frame, ImageDecoder, ImageEncoder, Rgb, RgbImage, Rgba, RgbaImage};
use plotters::prelude::*;
use plotters::style::register_font;
use std::path::Path;
use std::sync::Once;

/// Slot colours: slot k is PALETTE[k % len]. Red, green, blue first, as in the original figures.
pub const PALETTE: [[u8; 3]; 8] = [
    [220, 30, 30],  // red
    [30, 170, 50],  // green
    [30, 80, 220],  // blue
    [255, 140, 0],  // orange
    [150, 50, 200], // purple
    [0, 190, 210],  // cyan
    [240, 210, 0],  // yellow
    [240, 80, 170], // pink
];

/// Masked-out (background) pixels of a label panel.
const BACKGROUND: [u8; 3] = [40, 40, 40];
const FRAME: [u8; 3] = [128, 128, 128];
const FAMILY: &str = "sans-serif";
/// Embedded so figures look the same on every machine, with no system font lookup.
static FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

/// Tick labels without float noise: integers as integers, else three significant digits.
fn tick(v: f64) -> String {
    if v == v.round() && v.abs() < 1e9 {
        format!("{v:.0}")
    } else {
        format!("{:.3}", v).trim_end_matches('0').to_string()
    }
}

fn ensure_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if register_font(FAMILY, FontStyle::Normal, FONT).is_err() {
            tracing::warn!("the embedded font could not be loaded; figures will have no text");
        }
    });
}

/// A small image panel: values row-major, h × w.
#[derive(Clone, Copy, Debug)]
pub enum Panel<'a> {
    /// Grey levels in [0, 1] (clamped), 0 = black, 1 = white.
    Grey(&'a [f32]),
    /// Grey levels in [0, 1] tinted with an RGB colour: value v → v·colour (black background).
    Tinted(&'a [f32], [u8; 3]),
    /// Integer labels drawn with PALETTE; where `mask` is false the pixel is background.
    Labels { labels: &'a [u32], mask: Option<&'a [bool]> },
    /// RGB values in [0, 1], 3 per pixel.
    Rgb(&'a [f32]),
}

impl Panel<'_> {
    /// Panics on short data: a caller's shape bug should be loud, not a half-drawn panel.
    fn check(&self, n: usize) {
        let (len, need) = match *self {
            Panel::Grey(v) | Panel::Tinted(v, _) => (v.len(), n),
            Panel::Labels { labels, mask } => (labels.len().min(mask.map_or(usize::MAX, <[bool]>::len)), n),
            Panel::Rgb(v) => (v.len(), 3 * n),
        };
        assert!(len >= need, "viz panel has {len} values, needs {need}");
    }

    fn colour(&self, i: usize) -> [u8; 3] {
        match *self {
            Panel::Grey(v) => [unit(v[i]); 3],
            Panel::Tinted(v, c) => {
                let t = v[i].clamp(0.0, 1.0);
                c.map(|ch| (f32::from(ch) * t).round() as u8)
            }
            Panel::Labels { labels, mask } if mask.is_none_or(|m| m[i]) => PALETTE[labels[i] as usize % PALETTE.len()],
            Panel::Labels { .. } => BACKGROUND,
            Panel::Rgb(v) => [unit(v[3 * i]), unit(v[3 * i + 1]), unit(v[3 * i + 2])],
        }
    }
}

/// [0, 1] → 0..=255; NaN casts to 0 (black) rather than poisoning the picture.
fn unit(v: f32) -> u8 {
    (v.clamp(0.0, 1.0) * 255.0).round() as u8
}

fn rgb(c: [u8; 3]) -> RGBColor {
    RGBColor(c[0], c[1], c[2])
}

/// One line of a chart.
#[derive(Clone, Debug)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    pub colour: [u8; 3],
}

/// An RGB picture being composed; white background.
#[derive(Clone, Debug)]
pub struct Canvas {
    img: RgbImage,
}

impl Canvas {
    pub fn new(width: u32, height: u32) -> Canvas {
        Canvas { img: RgbImage::from_pixel(width, height, Rgb([255; 3])) }
    }
    pub fn width(&self) -> u32 {
        self.img.width()
    }
    pub fn height(&self) -> u32 {
        self.img.height()
    }
    pub fn image(&self) -> &RgbImage {
        &self.img
    }

    /// Off-canvas pixels are dropped so callers can lay out without clamping.
    fn put(&mut self, x: i64, y: i64, c: [u8; 3]) {
        if (0..i64::from(self.width())).contains(&x) && (0..i64::from(self.height())).contains(&y) {
            self.img.put_pixel(x as u32, y as u32, Rgb(c));
        }
    }

    /// Draw `panel` (h × w pixels) with its top-left corner at (x, y), each pixel a scale×scale
    /// block; the 1-px grey frame lies just outside that area.
    pub fn blit(&mut self, x: u32, y: u32, h: usize, w: usize, scale: u32, panel: Panel) {
        panel.check(h * w);
        let (x, y, s) = (i64::from(x), i64::from(y), i64::from(scale));
        for r in 0..h {
            for c in 0..w {
                let colour = panel.colour(r * w + c);
                for dy in 0..s {
                    for dx in 0..s {
                        self.put(x + c as i64 * s + dx, y + r as i64 * s + dy, colour);
                    }
                }
            }
        }
        let (pw, ph) = (w as i64 * s, h as i64 * s);
        for i in -1..=pw {
            self.put(x + i, y - 1, FRAME);
            self.put(x + i, y + ph, FRAME);
        }
        for j in -1..=ph {
            self.put(x - 1, y + j, FRAME);
            self.put(x + pw, y + j, FRAME);
        }
    }

    /// A rectangle's 1-px outline, corners (x0, y0) and (x1, y1) inclusive; off-canvas parts dropped.
    pub fn rect(&mut self, x0: i64, y0: i64, x1: i64, y1: i64, c: [u8; 3]) {
        for x in x0..=x1 {
            self.put(x, y0, c);
            self.put(x, y1, c);
        }
        for y in y0..=y1 {
            self.put(x0, y, c);
            self.put(x1, y, c);
        }
    }

    /// Text with its top-left at (x, y), `size` px high, black.
    pub fn text(&mut self, x: i32, y: i32, size: f64, s: &str) {
        ensure_font();
        let dims = self.img.dimensions();
        let buf: &mut [u8] = &mut self.img;
        let root = BitMapBackend::with_buffer(buf, dims).into_drawing_area();
        // plotters' ab_glyph layout puts the baseline at y + size/2, so ascenders of DejaVu
        // (0.65·size above the baseline) would start ~0.16·size above y; shift them down.
        let style = (FAMILY, size).into_font().color(&BLACK);
        let _ = root.draw_text(s, &style, (x, y + (0.16 * size).round() as i32));
    }

    /// A line chart in the rectangle (x, y, w, h), clipped to the canvas. Never panics on odd
    /// data: a drawing failure shows as "chart error: …" in the rectangle instead.
    #[allow(clippy::too_many_arguments)]
    pub fn chart(
        &mut self,
        x: u32,
        y: u32,
        w: u32,
        h: u32,
        title: &str,
        x_label: &str,
        y_label: &str,
        series: &[Series],
        marks: &[(usize, usize)],
    ) {
        let w = w.min(self.width().saturating_sub(x));
        let h = h.min(self.height().saturating_sub(y));
        if w == 0 || h == 0 {
            return;
        }
        ensure_font();
        let mut buf = vec![255u8; w as usize * h as usize * 3];
        let has_data = series.iter().any(|s| s.points.iter().any(|&p| finite(p)));
        let drawn = if w < 120 || h < 90 {
            draw_message(&mut buf, (w, h), title, "chart too small")
        } else if has_data {
            draw_chart(&mut buf, (w, h), title, x_label, y_label, series, marks)
        } else {
            draw_message(&mut buf, (w, h), title, "no data")
        };
        if let Err(e) = drawn {
            buf.fill(255);
            let _ = draw_message(&mut buf, (w, h), title, &format!("chart error: {e}"));
        }
        let (cw, row) = (self.width() as usize, w as usize * 3);
        let dst: &mut [u8] = &mut self.img;
        for (r, src) in buf.chunks_exact(row).enumerate() {
            let start = ((y as usize + r) * cw + x as usize) * 3;
            dst[start..start + row].copy_from_slice(src);
        }
    }

    /// The picture encoded as PNG.
    pub fn png(&self) -> Result<Vec<u8>> {
        let mut bytes: Vec<u8> = Vec::new();
        PngEncoder::new(&mut bytes)
            .write_image(self.img.as_raw(), self.width(), self.height(), ExtendedColorType::Rgb8)
            .map_err(|e| Error::internal(format!("encoding PNG: {e}")))?;
        Ok(bytes)
    }

    /// PNG, written atomically.
    pub fn save_png(&self, path: &Path) -> Result<()> {
        write_atomic(path, &self.png()?)
    }
}

fn finite(p: (f64, f64)) -> bool {
    p.0.is_finite() && p.1.is_finite()
}

fn fail<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// Draws into a w×h RGB buffer; the caller pastes it, so nothing can land outside the rectangle.
fn draw_chart(
    buf: &mut [u8],
    size: (u32, u32),
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    marks: &[(usize, usize)],
) -> std::result::Result<(), String> {
    let pts: Vec<Vec<(f64, f64)>> =
        series.iter().map(|s| s.points.iter().copied().filter(|&p| finite(p)).collect()).collect();
    let (mut x0, mut x1, mut y0, mut y1) = (f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, f64::NEG_INFINITY);
    for &(px, py) in pts.iter().flatten() {
        (x0, x1, y0, y1) = (x0.min(px), x1.max(px), y0.min(py), y1.max(py));
    }
    if x1 <= x0 {
        (x0, x1) = (x0 - 1.0, x1 + 1.0);
    }
    let pad = if y1 > y0 { 0.05 * (y1 - y0) } else { 0.5 };
    let (y0, y1) = (y0 - pad, y1 + pad);

    let root = BitMapBackend::with_buffer(buf, size).into_drawing_area();
    root.fill(&WHITE).map_err(fail)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FAMILY, 16))
        .margin(8)
        .x_label_area_size(36)
        .y_label_area_size(60)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(fail)?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        .x_labels(6)
        .y_labels(5)
        .x_label_formatter(&|v| tick(*v))
        .y_label_formatter(&|v| tick(*v))
        .label_style((FAMILY, 11))
        .axis_desc_style((FAMILY, 12))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(fail)?;

    let mut legend = false;
    for (s, p) in series.iter().zip(&pts).filter(|(_, p)| !p.is_empty()) {
        let colour = rgb(s.colour);
        let line =
            LineSeries::new(p.iter().copied(), colour.stroke_width(2)).point_size(if p.len() == 1 { 3 } else { 0 });
        let anno = chart.draw_series(line).map_err(fail)?;
        if !s.name.is_empty() {
            legend = true;
            anno.label(s.name.as_str())
                .legend(move |(lx, ly)| PathElement::new(vec![(lx, ly), (lx + 18, ly)], colour.stroke_width(2)));
        }
    }

    let peaks: Vec<(f64, f64, RGBColor)> = marks
        .iter()
        .filter_map(|&(si, pi)| {
            let s = series.get(si)?;
            let &(px, py) = s.points.get(pi)?;
            finite((px, py)).then_some((px, py, rgb(s.colour)))
        })
        .collect();
    chart
        .draw_series(peaks.iter().map(|&(px, py, c)| {
            EmptyElement::at((px, py))
                + Circle::new((0, 0), 4, c.filled())
                + Text::new(format!("peak {py:.3} @ {}", px.round() as i64), (6, -16), (FAMILY, 12).into_font())
        }))
        .map_err(fail)?;

    if legend {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE)
            .border_style(BLACK)
            .label_font((FAMILY, 12))
            .draw()
            .map_err(fail)?;
    }
    root.present().map_err(fail)
}

/// Frame, title and one line of text: what a chart shows when it has nothing it can draw.
fn draw_message(buf: &mut [u8], size: (u32, u32), title: &str, msg: &str) -> std::result::Result<(), String> {
    let root = BitMapBackend::with_buffer(buf, size).into_drawing_area();
    let (w, h) = (size.0 as i32, size.1 as i32);
    root.fill(&WHITE).map_err(fail)?;
    root.draw(&Rectangle::new([(0, 0), (w - 1, h - 1)], rgb(FRAME))).map_err(fail)?;
    root.draw_text(title, &(FAMILY, 16.0).into_font().color(&BLACK), (8, 8)).map_err(fail)?;
    root.draw_text(msg, &(FAMILY, 13.0).into_font().color(&BLACK), (8, h / 2 - 6)).map_err(fail)?;
    root.present().map_err(fail)
}

/// An animated GIF of equally sized frames, each shown `delay_ms`, looping forever; written
/// atomically.
pub fn save_gif(path: &Path, frames: &[RgbImage], delay_ms: u32) -> Result<()> {
    let bad = |msg: String| Error::internal(format!("GIF {}: {msg}", path.display()));
    let dims = frames.first().ok_or_else(|| bad("no frames".into()))?.dimensions();
    if dims.0 == 0 || dims.1 == 0 {
        return Err(bad(format!("empty frame size {}×{}", dims.0, dims.1)));
    }
    if let Some(i) = frames.iter().position(|f| f.dimensions() != dims) {
        let (w, h) = frames[i].dimensions();
        return Err(bad(format!("frame {i} is {w}×{h}, frame 0 is {}×{}", dims.0, dims.1)));
    }
    let mut bytes: Vec<u8> = Vec::new();
    {
        // Speed 10 of 30: quantisation quality is ample for flat synthetic scenes, and far faster.
        let mut enc = GifEncoder::new_with_speed(&mut bytes, 10);
        enc.set_repeat(Repeat::Infinite).map_err(|e| bad(e.to_string()))?;
        for f in frames {
            let rgba = RgbaImage::from_fn(dims.0, dims.1, |x, y| {
                let [r, g, b] = f.get_pixel(x, y).0;
                Rgba([r, g, b, 255])
            });
            let frame = Frame::from_parts(rgba, 0, 0, Delay::from_numer_denom_ms(delay_ms, 1));
            enc.encode_frame(frame).map_err(|e| bad(e.to_string()))?;
        }
    } // dropping the encoder writes the GIF trailer
    write_atomic(path, &bytes)
}

/// Read a PNG's header back (for tests and tools): (width, height).
pub fn png_size(path: &Path) -> Result<(u32, u32)> {
    let file = std::fs::File::open(path).map_err(|e| Error::usage(format!("cannot open {}: {e}", path.display())))?;
    let dec = PngDecoder::new(std::io::BufReader::new(file))
        .map_err(|e| Error::usage(format!("{} is not a readable PNG: {e}", path.display())))?;
    Ok(dec.dimensions())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn px(c: &Canvas, x: u32, y: u32) -> [u8; 3] {
        c.image().get_pixel(x, y).0
    }

    fn temp_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("gestalt-viz-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn blit_places_colours_scale_mask_and_frame() {
        let mut c = Canvas::new(20, 20);
        let labels = [0u32, 1, 2, 3];
        let mask = [true, true, false, true];
        c.blit(2, 3, 2, 2, 2, Panel::Labels { labels: &labels, mask: Some(&mask) });
        assert_eq!(px(&c, 2, 3), PALETTE[0]);
        assert_eq!(px(&c, 3, 4), PALETTE[0]); // same 2×2 block
        assert_eq!(px(&c, 4, 3), PALETTE[1]);
        assert_eq!(px(&c, 2, 5), BACKGROUND); // masked out
        assert_eq!(px(&c, 5, 6), PALETTE[3]);
        assert_eq!(px(&c, 1, 2), FRAME);
        assert_eq!(px(&c, 6, 7), FRAME);
        assert_eq!(px(&c, 7, 8), [255; 3]);

        c.blit(10, 10, 1, 3, 1, Panel::Grey(&[0.0, 2.0, 0.5]));
        assert_eq!([px(&c, 10, 10), px(&c, 11, 10), px(&c, 12, 10)], [[0; 3], [255; 3], [128; 3]]);
        c.blit(10, 14, 1, 1, 1, Panel::Tinted(&[0.5], [255, 0, 100]));
        assert_eq!(px(&c, 10, 14), [128, 0, 50]);
        c.blit(14, 14, 1, 1, 1, Panel::Rgb(&[1.0, 0.0, 0.5]));
        assert_eq!(px(&c, 14, 14), [255, 0, 128]);
    }

    #[test]
    fn chart_draws_inside_its_rectangle_only() {
        let mut c = Canvas::new(400, 300);
        let series = vec![
            Series {
                name: "train".into(),
                points: (0..10).map(|i| (i as f64, (i as f64).sin())).collect(),
                colour: PALETTE[0],
            },
            Series { name: "empty".into(), points: vec![], colour: PALETTE[1] },
        ];
        c.chart(50, 40, 300, 200, "loss", "epoch", "value", &series, &[(0, 2), (5, 0)]);
        let mut inside = (50..350).flat_map(|x| (40..240).map(move |y| (x, y)));
        assert!(inside.any(|(x, y)| px(&c, x, y) != [255; 3]));
        for (x, y, p) in c.image().enumerate_pixels() {
            if !((50..350).contains(&x) && (40..240).contains(&y)) {
                assert_eq!(p.0, [255; 3], "pixel ({x}, {y}) outside the chart");
            }
        }
        // "No data" and plain text still draw something.
        let mut c = Canvas::new(200, 200);
        c.chart(0, 0, 200, 150, "t", "x", "y", &[], &[]);
        assert!(c.image().enumerate_pixels().any(|(_, y, p)| y < 150 && p.0 != [255; 3]));
        c.text(5, 160, 14.0, "hello");
        assert!(c.image().enumerate_pixels().any(|(_, y, p)| y >= 150 && p.0 != [255; 3]));
    }

    #[test]
    fn png_round_trip() {
        let dir = temp_dir("png");
        let path = dir.join("sub/a.png");
        Canvas::new(30, 20).save_png(&path).unwrap();
        assert_eq!(png_size(&path).unwrap(), (30, 20));
        assert!(png_size(&dir.join("missing.png")).is_err());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn gif_frames_and_errors() {
        let dir = temp_dir("gif");
        let path = dir.join("a.gif");
        let frames = [RgbImage::from_pixel(8, 6, Rgb(PALETTE[0])), RgbImage::from_pixel(8, 6, Rgb(PALETTE[2]))];
        save_gif(&path, &frames, 200).unwrap();
        assert!(std::fs::read(&path).unwrap().starts_with(b"GIF89a"));
        assert!(save_gif(&dir.join("b.gif"), &[], 200).is_err());
        assert!(save_gif(&dir.join("c.gif"), &[frames[0].clone(), RgbImage::new(4, 4)], 200).is_err());
        let _ = std::fs::remove_dir_all(dir);
    }
}
