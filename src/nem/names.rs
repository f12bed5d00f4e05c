//! The N-EM family's tensors under the original TensorFlow 1.2 variable names (Neural-EM
//! `network.py` and `nem_model.py`): everything lives under the `NEM` variable scope; each
//! wrapper names its scope after the layer's index in the configured list (`reshape` entries
//! count), and the recurrent cell sits in `multi_rnn_cell/cell_0`.
use super::config::NetworkCfg;
use super::net::InnerNet;
use crate::error::Result;
use crate::weights::{Layout, OriginalNames};

/// The index in the configured list of the `n`-th layer that has weights.
fn config_index(layers: &[super::config::LayerCfg], n: usize) -> Option<usize> {
    layers
        .iter()
        .enumerate()
        .filter(|(_, l)| !matches!(l.name.as_str(), "reshape" | "input_norm"))
        .nth(n)
        .map(|(i, _)| i)
}

/// TF's variable name of a parameter (`gamma`, `beta` keep theirs).
fn var(param: &str) -> &str {
    match param {
        "weight" => "weights",
        "bias" => "biases",
        other => other,
    }
}

/// The original name of the gestalt tensor at `path` in a network built from `cfg`.
pub fn original_name(cfg: &NetworkCfg, path: &str) -> Option<String> {
    let parts: Vec<&str> = path.split('.').collect();
    let cell = "NEM/multi_rnn_cell/cell_0";
    let name = match parts.as_slice() {
        ["Rnn", side @ ("input" | "output"), n, kind, part, p] => {
            let (list, wrapper, norm) = if *side == "input" {
                (&cfg.input, "InputWrapper", "LayerNormI")
            } else {
                (&cfg.output, "OutputWrapper", "LayerNormO")
            };
            let i = config_index(list, n.parse().ok()?)?;
            match (*kind, *part) {
                ("Fc", "dense") => format!("NEM/{wrapper}{i}/fully_connected/{}", var(p)),
                ("Conv", "conv") => format!("NEM/{wrapper}{i}/Conv/{}", var(p)),
                (_, "ln") => format!("NEM/{norm}{i}/LayerNorm/{p}"),
                _ => return None,
            }
        }
        ["Rnn", "cell", "linear", p] if cfg.recurrent[0].name == "gru" => {
            format!("{cell}/gru_cell/candidate/{}", var(p))
        }
        ["Rnn", "cell", "gates", p] => format!("{cell}/gru_cell/gates/{}", var(p)),
        ["Rnn", "cell", "linear", p] => format!("{cell}/basic_rnn_cell/{}", var(p)),
        ["Rnn", "cell", "ln", p] => format!("{cell}/LayerNormR0/LayerNorm/{p}"),
        // Not in the original: the minimal system's learned initial state.
        ["Rnn", "theta_init"] => "NEM/theta_init".to_string(),
        ["Nem", "w"] => format!("{cell}/NEMCell/input/weights"),
        ["Nem", "lr"] => format!("{cell}/NEMCell/lr/scalar"),
        _ => return None,
    };
    Some(name)
}

pub fn original_names(cfg: &NetworkCfg, net: &InnerNet) -> Result<OriginalNames> {
    OriginalNames::of(net, Layout::Tf, |p| original_name(cfg, p))
}
