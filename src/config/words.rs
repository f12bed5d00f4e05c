//! The words after `with`: a config name, or `a.b.c=value`.
use crate::error::{Error, Result};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub enum Word {
    /// A named config (`dataset.shapes`) or a path to a `.json` file.
    File(String),
    /// A dotted key and its value.
    Set(String, Value),
}

pub fn parse_words(words: &[String]) -> Result<Vec<Word>> {
    words.iter().map(|w| parse_word(w)).collect()
}

fn parse_word(w: &str) -> Result<Word> {
    match w.split_once('=') {
        None => Ok(Word::File(w.to_string())),
        Some((key, raw)) => {
            let ok = !key.is_empty()
                && key
                    .split('.')
                    .all(|p| !p.is_empty() && p.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '-'));
            if !ok {
                return Err(Error::usage(format!("bad override `{w}`: expected key.path=value")));
            }
            Ok(Word::Set(key.to_string(), parse_value(raw)))
        }
    }
}

/// JSON first; Python literals as sacred users write them (True, False, None, 'text'); else a string.
pub fn parse_value(raw: &str) -> Value {
    match raw {
        "True" => return Value::Bool(true),
        "False" => return Value::Bool(false),
        "None" => return Value::Null,
        _ => {}
    }
    if let Ok(v) = serde_json::from_str::<Value>(raw) {
        return v;
    }
    // Python-style lists and strings: ['a', 'b'] or 'a'.
    if raw.contains('\'') {
        let swapped = raw.replace('\'', "\"").replace("True", "true").replace("False", "false");
        if let Ok(v) = serde_json::from_str::<Value>(&swapped) {
            return v;
        }
    }
    Value::String(raw.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_parse_as_json_then_python_then_string() {
        assert_eq!(parse_value("4"), json!(4));
        assert_eq!(parse_value("0.1"), json!(0.1));
        assert_eq!(parse_value("True"), json!(true));
        assert_eq!(parse_value("None"), json!(null));
        assert_eq!(parse_value("'all'"), json!("all"));
        assert_eq!(parse_value("[1,2]"), json!([1, 2]));
        assert_eq!(parse_value("['a', 'b']"), json!(["a", "b"]));
        assert_eq!(parse_value("debug_out/best"), json!("debug_out/best"));
    }

    #[test]
    fn words_split_into_files_and_overrides() {
        let w = parse_words(&["dataset.shapes".into(), "nem.k=4".into()]).unwrap();
        assert_eq!(w, vec![Word::File("dataset.shapes".into()), Word::Set("nem.k".into(), json!(4))]);
        assert!(parse_words(&["=3".into()]).is_err());
        assert!(parse_words(&["a..b=3".into()]).is_err());
    }
}
