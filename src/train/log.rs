//! What a run records: `metrics.jsonl` (one object per log point) and TensorBoard scalars and
//! images.
use crate::error::Result;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use tfrecord::protobuf::summary::Image;
use tfrecord::{EventWriter, EventWriterConfig};

pub type Scores = BTreeMap<String, f64>;

pub struct RunLog {
    jsonl: std::fs::File,
    tb: Option<EventWriter<std::io::BufWriter<std::fs::File>>>,
}

impl RunLog {
    pub fn open(dir: &Path) -> Result<Self> {
        let jsonl = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("metrics.jsonl"))?;
        let prefix = dir.join("tb").join("events");
        let tb = EventWriter::from_prefix(prefix.to_string_lossy().into_owned(), "", EventWriterConfig::default())
            .map_err(|e| tracing::warn!("TensorBoard events disabled: {e}"))
            .ok();
        Ok(RunLog { jsonl, tb })
    }

    /// One log point: a line of `metrics.jsonl` and a TensorBoard scalar per score.
    pub fn record(&mut self, step: u64, epoch: usize, split: &str, scores: &Scores, elapsed_s: f64) -> Result<()> {
        let mut m = Map::new();
        m.insert("step".into(), json!(step));
        m.insert("epoch".into(), json!(epoch));
        m.insert("split".into(), json!(split));
        for (k, v) in scores {
            m.insert(k.clone(), if v.is_finite() { json!(v) } else { Value::Null });
        }
        m.insert("elapsed_s".into(), json!((elapsed_s * 1000.0).round() / 1000.0));
        let mut line = serde_json::to_string(&Value::Object(m)).unwrap();
        line.push('\n');
        self.jsonl.write_all(line.as_bytes())?;
        self.jsonl.flush()?;
        if let Some(tb) = &mut self.tb {
            for (k, v) in scores {
                let _ = tb.write_scalar(format!("{split}/{k}"), step as i64, *v as f32);
            }
        }
        Ok(())
    }

    /// A TensorBoard image (PNG-encoded) under `tag` at `step`.
    pub fn image(&mut self, tag: &str, step: u64, picture: &crate::viz::Canvas) -> Result<()> {
        if let Some(tb) = &mut self.tb {
            let image = Image {
                height: picture.height() as i32,
                width: picture.width() as i32,
                colorspace: 3,
                encoded_image_string: picture.png()?,
            };
            let _ = tb.write_image(tag, step as i64, image);
        }
        Ok(())
    }
}

/// The values of `key` on `split` from `dir/metrics.jsonl`, against `x` (`epoch` or `step`). A
/// resumed run may repeat an x: the latest value is kept.
pub fn curve(dir: &Path, split: &str, x: &str, key: &str) -> Vec<(f64, f64)> {
    let text = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap_or_default();
    let mut seen = std::collections::BTreeMap::new();
    for v in text.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()) {
        if let (true, Some(at), Some(y)) = (v["split"] == split, v[x].as_f64(), v[key].as_f64()) {
            seen.insert(at as i64, y);
        }
    }
    seen.into_iter().map(|(at, y)| (at as f64, y)).collect()
}
