//! The N-EM family's tensors under the original TensorFlow 1.2 variable names (Neural-EM
//! `network.py` and `nem_model.py`): everything lives under the `NEM` variable scope; each
//! wrapper names its scope after the layer's index in the configured list (`reshape` entries
//! count), and the recurrent cell sits in `multi_rnn_cell/cell_0`.
use super::config::{LayerCfg, NetworkCfg};
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

/// The repository whose names a model exports under.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Repo {
    /// Neural-EM: scope `NEM`, the cell inside `multi_rnn_cell/cell_0`.
    NeuralEm,
    /// Relational-NEM: scope `R-RNNEM`, the cell directly inside it.
    RelationalNem,
}

/// TF's automatic scope name of the `n`-th unnamed `base` layer in one scope: base, base_1, …
fn nth(base: &str, n: usize) -> String {
    if n == 0 { base.to_string() } else { format!("{base}_{n}") }
}

/// The name inside R-NEM's `NPE` scope of the `n`-th layer of list `list` (`part` is dense or
/// ln): slim names its layers by creation order — actions, encoder, core, context, attention,
/// then the final fully connected layer.
fn npe_name(cfg: &LayerCfg, list: &str, n: usize, part: &str) -> Option<String> {
    let lists = [&cfg.actions, &cfg.encoder, &cfg.core, &cfg.context, &cfg.attention];
    let names = ["actions", "encoder", "core", "context", "attention"];
    let at = names.iter().position(|&l| l == list)?;
    let before = lists[..at].iter().map(|l| l.as_deref().unwrap_or_default());
    let this = &lists[at].as_deref().unwrap_or_default()[..n];
    let (fc, ln) =
        before.chain(std::iter::once(this)).flatten().fold((0, 0), |(fc, ln), l| (fc + 1, ln + l.ln as usize));
    Some(match part {
        "dense" => format!("{}/{{}}", nth("fully_connected", fc)),
        _ => format!("{}/{{}}", nth("LayerNorm", ln)),
    })
}

/// The original name of the gestalt tensor at `path` in a network built from `cfg`.
pub fn original_name(cfg: &NetworkCfg, repo: Repo, path: &str) -> Option<String> {
    let parts: Vec<&str> = path.split('.').collect();
    let (root, cell) = match repo {
        Repo::NeuralEm => ("NEM", "NEM/multi_rnn_cell/cell_0"),
        Repo::RelationalNem => ("R-RNNEM", "R-RNNEM"),
    };
    let rec = cfg.recurrent.first()?;
    let name = match parts.as_slice() {
        ["Rnn", side @ ("input" | "output"), n, kind, part, p] => {
            let (list, wrapper, norm) = if *side == "input" {
                (&cfg.input, "InputWrapper", "LayerNormI")
            } else {
                (&cfg.output, "OutputWrapper", "LayerNormO")
            };
            let i = config_index(list, n.parse().ok()?)?;
            match (*kind, *part) {
                ("Fc", "dense") => format!("{root}/{wrapper}{i}/fully_connected/{}", var(p)),
                ("Conv", "conv") => format!("{root}/{wrapper}{i}/Conv/{}", var(p)),
                (_, "ln") => format!("{root}/{norm}{i}/LayerNorm/{p}"),
                _ => return None,
            }
        }
        ["Rnn", "cell", "Rnn", "linear", p] if rec.name == "gru" => format!("{cell}/gru_cell/candidate/{}", var(p)),
        ["Rnn", "cell", "Rnn", "gates", p] => format!("{cell}/gru_cell/gates/{}", var(p)),
        ["Rnn", "cell", "Rnn", "linear", p] => format!("{cell}/basic_rnn_cell/{}", var(p)),
        ["Rnn", "cell", "Rnn" | "Relational", "ln", p] => format!("{cell}/LayerNormR0/LayerNorm/{p}"),
        ["Rnn", "cell", "Lstm", "linear", p] => format!("{cell}/layer_norm_basic_lstm_cell/{}", var(p)),
        ["Rnn", "cell", "Lstm", "norms", gate, p] => format!("{cell}/layer_norm_basic_lstm_cell/{gate}/{p}"),
        ["Rnn", "cell", "Relational", list, n, "Fc", part, p] => {
            let scope = npe_name(rec, list, n.parse().ok()?, part)?;
            format!("{cell}/NPE/{}", scope.replace("{}", var(p)))
        }
        ["Rnn", "cell", "Relational", "linear", p] => {
            let fcs = [&rec.actions, &rec.encoder, &rec.core, &rec.context, &rec.attention]
                .iter()
                .map(|l| l.as_ref().map_or(0, Vec::len))
                .sum();
            format!("{cell}/NPE/{}/{}", nth("fully_connected", fcs), var(p))
        }
        // Not in the original: the minimal system's learned initial state.
        ["Rnn", "theta_init"] => format!("{root}/theta_init"),
        ["Nem", "w"] => format!("{cell}/NEMCell/input/weights"),
        ["Nem", "lr"] => format!("{cell}/NEMCell/lr/scalar"),
        _ => return None,
    };
    Some(name)
}

pub fn original_names(cfg: &NetworkCfg, repo: Repo, net: &InnerNet) -> Result<OriginalNames> {
    OriginalNames::of(net, Layout::Tf, |p| original_name(cfg, repo, p))
}
