//! Sacred-style configuration: named JSON files and `a.b=value` overrides, deep-merged over the
//! family's defaults (`configs/defaults/<family>.json`). Every key must exist in those defaults.
mod words;

use crate::error::{Error, Result};
use include_dir::{Dir, include_dir};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

pub use words::{Word, parse_value, parse_words};

/// The named configs, embedded so that an installed binary works from any directory.
static EMBEDDED: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/configs");

/// A resolved configuration: the family it belongs to and the merged JSON tree.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub family: String,
    pub value: Value,
    pub words: Vec<String>,
}

impl Resolved {
    /// Deserialise into a family's typed config; a type error names the key.
    pub fn typed<T: DeserializeOwned>(&self) -> Result<T> {
        serde_path_to_error::deserialize(self.value.clone())
            .map_err(|e| Error::usage(format!("config key `{}`: {}", e.path(), e.inner())))
    }

    /// Look up a dotted key (`nem.k`).
    pub fn get(&self, key: &str) -> Option<&Value> {
        key.split('.').try_fold(&self.value, |v, k| v.get(k))
    }
}

/// The experiment run when the words name no config file: `configs/default.json`.
pub const DEFAULT_EXPERIMENT: &str = "default";

/// Resolve the words after `with` into one configuration tree. Words that name no config file
/// apply to the default experiment.
pub fn resolve(raw_words: &[String]) -> Result<Resolved> {
    let mut words = parse_words(raw_words)?;
    if !words.iter().any(|w| matches!(w, Word::File(_))) {
        words.insert(0, Word::File(DEFAULT_EXPERIMENT.into()));
    }
    let mut files = Vec::new();
    for w in &words {
        if let Word::File(name) = w {
            files.push((name.clone(), load_named(name)?));
        }
    }
    let family =
        files.iter().rev().find_map(|(_, v)| v.get("family").and_then(Value::as_str)).unwrap_or("nem").to_string();
    let mut value = load_named(&format!("defaults/{family}"))
        .map_err(|_| Error::usage(format!("unknown model family `{family}`")))?;
    let defaults = value.clone();
    let mut file_iter = files.into_iter();
    for w in &words {
        match w {
            Word::File(name) => {
                let (_, v) = file_iter.next().expect("one loaded file per file word");
                check_keys(&defaults, &v, "", name)?;
                merge(&mut value, v);
            }
            Word::Set(key, v) => {
                let nested = nest(key, v.clone());
                check_keys(&defaults, &nested, "", "the command line")?;
                merge(&mut value, nested);
            }
        }
    }
    Ok(Resolved { family, value, words: raw_words.to_vec() })
}

/// Where a named config lives on disk, if it overrides the embedded one.
fn disk_path(name: &str) -> Option<PathBuf> {
    let rel = format!("{name}.json");
    let mut roots = Vec::new();
    if let Ok(dir) = std::env::var("GESTALT_CONFIGS") {
        roots.push(PathBuf::from(dir));
    }
    roots.push(PathBuf::from("configs"));
    roots.into_iter().map(|r| r.join(&rel)).find(|p| p.is_file())
}

/// Load a named config (`dataset.shapes`, `train/tetrominoes/EMORL`) or a path to a `.json` file.
pub fn load_named(word: &str) -> Result<Value> {
    let parse = |text: &str, origin: &str| -> Result<Value> {
        let v: Value = serde_json::from_str(text)
            .map_err(|e| Error::usage(format!("config file {origin} is not valid JSON: {e}")))?;
        let Value::Object(mut m) = v else {
            return Err(Error::usage(format!("config file {origin} must hold a JSON object")));
        };
        // A run's config.json records the binary and backend that made it; they are not config.
        m.remove("gestalt");
        Ok(Value::Object(m))
    };
    if word.ends_with(".json") {
        let text =
            std::fs::read_to_string(word).map_err(|e| Error::usage(format!("cannot read config file {word}: {e}")))?;
        return parse(&text, word);
    }
    let name = word.replace('.', "/");
    if let Some(p) = disk_path(&name) {
        let text = std::fs::read_to_string(&p)?;
        return parse(&text, &p.display().to_string());
    }
    match EMBEDDED.get_file(format!("{name}.json")) {
        Some(f) => parse(f.contents_utf8().unwrap_or(""), &format!("configs/{name}.json")),
        None => {
            let hint = closest(&name, &named_configs())
                .map(|c| format!(" (did you mean `{}`?)", c.replace('/', ".")))
                .unwrap_or_default();
            Err(Error::usage(format!("no config named `{word}`{hint}")))
        }
    }
}

/// Every embedded config name, `dataset/shapes` style.
pub fn named_configs() -> Vec<String> {
    fn walk(d: &Dir<'_>, out: &mut Vec<String>) {
        for f in d.files() {
            if let Some(s) = f.path().to_str().and_then(|s| s.strip_suffix(".json")) {
                out.push(s.to_string());
            }
        }
        for sub in d.dirs() {
            walk(sub, out);
        }
    }
    let mut out = Vec::new();
    walk(&EMBEDDED, &mut out);
    out.sort();
    out
}

/// `a.b.c` + value → `{"a": {"b": {"c": value}}}`.
fn nest(key: &str, v: Value) -> Value {
    key.rsplit('.').fold(v, |acc, k| {
        let mut m = Map::new();
        m.insert(k.to_string(), acc);
        Value::Object(m)
    })
}

/// Deep merge: objects merge key by key, anything else (lists included) replaces.
pub fn merge(dst: &mut Value, src: Value) {
    match (dst, src) {
        (Value::Object(d), Value::Object(s)) => {
            for (k, v) in s {
                match d.get_mut(&k) {
                    Some(slot) if slot.is_object() && v.is_object() => merge(slot, v),
                    _ => {
                        d.insert(k, v);
                    }
                }
            }
        }
        (d, s) => *d = s,
    }
}

/// Every key in `v` must exist in `defaults` (below a default that is not an object, anything goes).
fn check_keys(defaults: &Value, v: &Value, prefix: &str, origin: &str) -> Result<()> {
    let (Value::Object(d), Value::Object(m)) = (defaults, v) else { return Ok(()) };
    for (k, sub) in m {
        let path = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
        match d.get(k) {
            Some(def) => check_keys(def, sub, &path, origin)?,
            None => {
                let siblings: Vec<String> =
                    d.keys().map(|s| if prefix.is_empty() { s.clone() } else { format!("{prefix}.{s}") }).collect();
                let hint = closest(&path, &siblings).map(|c| format!(" (did you mean `{c}`?)")).unwrap_or_default();
                return Err(Error::usage(format!("unknown config key `{path}` in {origin}{hint}")));
            }
        }
    }
    Ok(())
}

/// The candidate closest to `word`, if any is reasonably close.
fn closest(word: &str, candidates: &[String]) -> Option<String> {
    candidates
        .iter()
        .map(|c| (strsim::normalized_damerau_levenshtein(word, c), c))
        .filter(|(s, _)| *s > 0.5)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c.clone())
}

/// Write `value` as pretty JSON to `path` atomically.
pub fn write_json(path: &Path, value: &Value) -> Result<()> {
    crate::util::write_atomic(path, serde_json::to_string_pretty(value).unwrap().as_bytes())
}
