//! EMORL's tensors under the original PyTorch `state_dict` names (EfficientMORL `lib/model.py`;
//! `nn.Sequential` indices count the activation layers, so the k-th conv is entry 2k).
use super::model::EmorlNet;
use crate::error::Result;
use crate::weights::{Layout, OriginalNames};

/// gestalt module → original module, for modules that keep their parameter names.
const MODULES: &[(&str, &str)] = &[
    ("encoder.pos", "hvae_networks.pos_embed_projection"),
    ("encoder.ln", "hvae_networks.encoder_pt_2.0"),
    ("encoder.mlp.first", "hvae_networks.encoder_pt_2.1"),
    ("encoder.mlp.second", "hvae_networks.encoder_pt_2.3"),
    ("encoder.to_k", "hvae_networks.to_k"),
    ("encoder.to_v", "hvae_networks.to_v"),
    ("hvae", "hvae_networks"), // init_posterior
    ("hvae.ln_q", "hvae_networks.norm_slots"),
    ("hvae.to_q", "hvae_networks.to_q"),
    ("hvae.gru.Dual", "hvae_networks.gru.cell"),
    ("hvae.gru.Single.project", "hvae_networks.project_update"),
    ("hvae.gru.Single.gru", "hvae_networks.gru"),
    ("hvae.ln_mu", "hvae_networks.norm_mu_pre_ff"),
    ("hvae.mlp_mu.first", "hvae_networks.mlp_mu.0"),
    ("hvae.mlp_mu.second", "hvae_networks.mlp_mu.2"),
    ("hvae.ln_s", "hvae_networks.norm_softplus_pre_ff"),
    ("hvae.mlp_s.first", "hvae_networks.mlp_softplus.0"),
    ("hvae.mlp_s.second", "hvae_networks.mlp_softplus.2"),
    ("decoder.pos", "hvae_networks.image_decoder.pos_embed_projection"),
    ("prior.hidden", "hvae_networks.indep_prior.z_linear.0"),
    ("prior.mu", "hvae_networks.indep_prior.z_mu"),
    ("prior.s", "hvae_networks.indep_prior.z_softplus"),
    ("refinement.encode.first", "refinenet.encoding.0"),
    ("refinement.encode.second", "refinenet.encoding.2"),
    ("refinement.gru", "refinenet.recurrence"),
    ("refinement.loc", "refinenet.loc"),
    ("refinement.scale", "refinenet.softplus"),
];

/// The original name of the gestalt tensor at `path`.
pub fn original_name(path: &str) -> Option<String> {
    let (module, param) = path.rsplit_once('.')?;
    let param = match param {
        "gamma" => "weight",
        "beta" => "bias",
        // nn.GRU's one layer.
        p if module.ends_with("gru") && !module.ends_with("Dual") => return gru(module, p),
        p => p,
    };
    if let Some((_, orig)) = MODULES.iter().find(|(g, _)| *g == module) {
        return Some(format!("{orig}.{param}"));
    }
    let parts: Vec<&str> = module.split('.').collect();
    match parts.as_slice() {
        ["encoder", "convs", i] => Some(format!("hvae_networks.encoder_pt_1.{}.{param}", 2 * i.parse::<usize>().ok()?)),
        ["decoder", "layers", i, _variant] => {
            Some(format!("hvae_networks.image_decoder.decode.{}.{param}", 2 * i.parse::<usize>().ok()?))
        }
        _ => None,
    }
}

fn gru(module: &str, param: &str) -> Option<String> {
    let orig = MODULES.iter().find(|(g, _)| *g == module)?.1;
    Some(format!("{orig}.{param}_l0"))
}

/// The original evaluation's `rename_state`: older checkpoints call `hvae_networks`
/// `object_discovery_block` and keep the DualGRU's constant `zeros` tensors.
fn legacy(name: &str) -> Option<String> {
    if name.ends_with("gru.cell.zeros") || name.ends_with("gru.cell.zeros_n") {
        return None;
    }
    Some(name.replacen("object_discovery_block.", "hvae_networks.", 1))
}

pub fn original_names(net: &EmorlNet) -> Result<OriginalNames> {
    Ok(OriginalNames { legacy, ..OriginalNames::of(net, Layout::Torch, original_name)? })
}
