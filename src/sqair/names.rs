//! SQAIR's tensors under the original's TensorFlow 1 variable names (akosiorek/sqair on Sonnet
//! 1.14): those of the released MNIST checkpoint, whose 105 trainable variables
//! `notebooks/play.ipynb` prints.
//!
//! Sonnet names a module's variable scope after its class in snake case (`AIREncoder` →
//! `air_encoder`), made unique (`_1`, …) within the enclosing scope when the module is
//! *constructed*; its variables appear there on the first call. A module made inside a call
//! lives under the caller's scope, string sub-scopes included (`propagation_core/what/linear`).
//! `neural.MLP`'s layers are `snt.Linear`s `linear`, `linear_1`, … with `w` [in, out] and `b`.
//! `mlp_mnist_model.py` constructs, in order:
//! - `discovery/`: `vanilla_rnn`, then `discovery_core` holding `stochastic_transform_param`,
//!   the input `encoder`, the glimpse's `encoder_1` (made before the `air_encoder` around it) and
//!   `steps_predictor`; then `discover`, whose where prior is `recurrent_normal_impl` (readout
//!   `linear`, conditioning `linear_1`) and whose count prior makes its `mlp` when called.
//! - `propagation/`: `vanilla_rnn`, the temporal `gru`, `propagation_core` (it reuses
//!   discovery's encoders, which keep their discovery names), the prior's `gru_1` and
//!   `propagate_prior`, then `sequential_ssm`.
//! - `decoder/air_decoder/` and `sequence/sequential_air/sqair_timestep/` (the latent `mlp`).
//!
//! A trainable initial state is a module `<the core's full scope>_initial_state_0` made in the
//! scope of whoever asks for it, hence `discovery/discover/discovery/vanilla_rnn_initial_state_0`.
//! `tf.Variable`s take the name scope instead: the count prior's biases are made inside the
//! time loop (`model/sequential_air/while/…`), the background is the unnamed `Variable`.
//!
//! Four tensors take the checkpoint's shapes in the file: both `scale_offset`s and
//! `output_scale` are scalars there ([1] here), the background is [H, W, 1] ([H, W] here).
//! With `disc_prior_type=geom` the original has no count-prior variables; gestalt's unused ones
//! are then `gestalt/disc_prior/…`, a prefix no original name has.
use super::model::{CountPrior, PropPrior, Shape, SqairNet};
use crate::error::Result;
use crate::weights::{Layout, OriginalNames};

/// gestalt module → its Sonnet scope.
const MODULES: &[(&str, &str)] = &[
    ("input_encoder", "discovery/discovery_core/encoder/mlp"),
    ("glimpse_encoder.mlp", "discovery/discovery_core/encoder_1/mlp"),
    ("glimpse_encoder.params", "discovery/discovery_core/air_encoder/gaussian_from_param_vec/linear"),
    ("glimpse_encoder.mask", "discovery/discovery_core/air_encoder/mlp"),
    ("discovery.rnn", "discovery/vanilla_rnn"),
    ("discovery.where_net.mlp", "discovery/discovery_core/stochastic_transform_param/mlp"),
    ("discovery.presence", "discovery/discovery_core/steps_predictor/mlp"),
    ("propagation.rnn", "propagation/vanilla_rnn"),
    ("propagation.where_bias", "propagation/propagation_core/rnn_inpt/mlp"),
    ("propagation.where_net.mlp", "propagation/propagation_core/stochastic_transform_param/mlp"),
    ("propagation.temporal", "propagation/gru"),
    ("propagation.temporal_what", "propagation/propagation_core/what/gaussian_from_param_vec/linear"),
    ("propagation.gates", "propagation/propagation_core/what/linear"),
    ("propagation.presence", "propagation/propagation_core/steps_predictor/mlp"),
    ("latent_encoder", "sequence/sequential_air/sqair_timestep/mlp"),
    ("prop_prior.rnn", "propagation/gru_1"),
    ("disc_prior.count_mlp", "discovery/discover/mlp"),
    ("disc_prior.where_prior.rnn", "discovery/discover/recurrent_normal_impl/vanilla_rnn"),
    ("disc_prior.where_prior.readout", "discovery/discover/recurrent_normal_impl/linear"),
    ("disc_prior.where_prior.condition", "discovery/discover/recurrent_normal_impl/linear_1"),
    ("decoder", "decoder/air_decoder/decoder/mlp"),
];

/// Variables of their own.
const VARIABLES: &[(&str, &str)] = &[
    ("discovery.rnn.initial", "discovery/discover/discovery/vanilla_rnn_initial_state_0/w"),
    ("discovery.where_net.offset", "discovery/discovery_core/stochastic_transform_param/scale_offset"),
    ("propagation.rnn.initial", "propagation/sequential_ssm/propagation/vanilla_rnn_initial_state_0/w"),
    ("propagation.where_net.offset", "propagation/propagation_core/stochastic_transform_param/scale_offset"),
    ("propagation.cholesky", "propagation/propagation_core/affine_diag_normal/cholesky_scale"),
    // `SequentialAIR` asks for both GRUs' initial states.
    ("propagation.temporal.initial", "sequence/sequential_air/propagation/gru_initial_state_0/w"),
    ("prop_prior.rnn.initial", "sequence/sequential_air/propagation/gru_1_initial_state_0/w"),
    ("disc_prior.step_bias", "model/sequential_air/while/sqair_timestep/discover/step_prior_bias"),
    ("disc_prior.timestep_bias", "model/sequential_air/while/sqair_timestep/discover/step_prior_timestep_bias"),
    (
        "disc_prior.where_prior.rnn.initial",
        "discovery/discover/recurrent_normal_impl/discovery/discover/recurrent_normal_impl/vanilla_rnn_initial_state_0/w",
    ),
    ("disc_prior.where_prior.init_sample", "discovery/discover/recurrent_normal_impl/init_sample"),
    ("output_scale", "decoder/air_decoder/decoder/output_scale"),
    ("mean_img", "decoder/air_decoder/Variable"),
];

/// `snt.Linear`'s variable for a `Dense` parameter.
fn var(param: &str) -> Option<&'static str> {
    match param {
        "weight" => Some("w"),
        "bias" => Some("b"),
        _ => None,
    }
}

/// The original name of the tensor at `path` of a model of `shape`.
pub fn original_name(shape: &Shape, path: &str) -> Option<String> {
    let count_prior = matches!(
        path.split('.').collect::<Vec<_>>()[..],
        ["disc_prior", "step_bias" | "timestep_bias" | "count_mlp", ..]
    );
    if count_prior && shape.count_prior != CountPrior::Categorical {
        return Some(format!("gestalt/{}", path.replace('.', "/")));
    }
    if let Some((_, name)) = VARIABLES.iter().find(|(g, _)| *g == path) {
        return Some(name.to_string());
    }
    if let Some(param) = path.strip_prefix("prop_prior.out.") {
        // `make_prior` picks the class, which names the scope.
        let class = match shape.prop_prior {
            PropPrior::Rnn => "propagate_prior",
            PropPrior::RandomWalk => "random_walk_propagate_prior",
            PropPrior::Guided => "guided_walk_propagate_prior",
        };
        return Some(format!("propagation/{class}/linear/{}", var(param)?));
    }
    let (module, scope) = MODULES.iter().find(|(g, _)| path.strip_prefix(g).is_some_and(|r| r.starts_with('.')))?;
    let parts: Vec<&str> = path[module.len() + 1..].split('.').collect();
    let tail = match parts[..] {
        ["layers", i, p] => match i.parse::<usize>().ok()? {
            0 => format!("linear/{}", var(p)?),
            i => format!("linear_{i}/{}", var(p)?),
        },
        [sub @ ("in_to_hidden" | "hidden_to_hidden"), p] => format!("{sub}/{}", var(p)?),
        [p @ ("wz" | "uz" | "bz" | "wr" | "ur" | "br" | "wh" | "uh" | "bh")] => p.to_string(),
        [p] => var(p)?.to_string(),
        _ => return None,
    };
    Some(format!("{scope}/{tail}"))
}

pub fn original_names(net: &SqairNet) -> Result<OriginalNames> {
    let scalar = |p: &str| (p.to_string(), vec![]);
    let [h, w] = net.shape.image;
    let reshapes = vec![
        scalar("discovery.where_net.offset"),
        scalar("propagation.where_net.offset"),
        scalar("output_scale"),
        ("mean_img".to_string(), vec![h, w, 1]),
    ];
    Ok(OriginalNames { reshapes, ..OriginalNames::of(net, Layout::Tf, |p| original_name(&net.shape, p))? })
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::Module;
    use burn::store::{ModuleSnapshot, bridge};
    use burn::tensor::{Device, Distribution, Tensor};
    use std::collections::{BTreeMap, HashSet};

    fn default_shape() -> Shape {
        let r = crate::config::resolve(&["train/multi_mnist/SQAIR".to_string()]).unwrap();
        crate::sqair::Sqair::new(&r).unwrap().shape
    }

    fn net(shape: &Shape) -> SqairNet {
        let d = Device::flex();
        let net = SqairNet::new(shape, Tensor::random(shape.image, Distribution::Default, &d), &d);
        crate::nn::materialize(&net);
        net
    }

    /// Every parameter by path: (shape, values).
    fn params(m: &SqairNet) -> BTreeMap<String, (Vec<usize>, Vec<f32>)> {
        m.collect(None, None, false)
            .iter()
            .map(|t| {
                let d = bridge::to_data(t).unwrap().convert::<f32>();
                (t.name.clone(), (d.shape().to_vec(), d.try_to_vec::<f32>().unwrap()))
            })
            .collect()
    }

    #[test]
    fn the_default_model_has_the_released_checkpoints_variables() {
        let net = net(&default_shape());
        let names = original_names(&net).unwrap();
        let distinct: HashSet<&str> = names.pairs.iter().map(|(_, o)| o.as_str()).collect();
        // play.ipynb: 105 trainable variables, 2 951 522 parameters.
        assert_eq!((names.pairs.len(), distinct.len(), net.num_params()), (105, 105, 2_951_522));
        assert!(!distinct.iter().any(|n| n.starts_with("gestalt/")));
        let shapes = params(&net);
        let spot: [(&str, &str, &[usize]); 8] = [
            ("discovery.rnn.in_to_hidden.weight", "discovery/vanilla_rnn/in_to_hidden/w", &[567, 256]),
            ("glimpse_encoder.mlp.layers.1.bias", "discovery/discovery_core/encoder_1/mlp/linear_1/b", &[256]),
            ("propagation.temporal.wz", "propagation/gru/wz", &[360, 256]),
            ("prop_prior.rnn.uh", "propagation/gru_1/uh", &[256, 256]),
            ("propagation.gates.weight", "propagation/propagation_core/what/linear/w", &[256, 150]),
            ("disc_prior.step_bias", "model/sequential_air/while/sqair_timestep/discover/step_prior_bias", &[4]),
            (
                "disc_prior.where_prior.condition.weight",
                "discovery/discover/recurrent_normal_impl/linear_1/w",
                &[261, 128],
            ),
            ("decoder.layers.2.weight", "decoder/air_decoder/decoder/mlp/linear_2/w", &[256, 400]),
        ];
        for (path, name, dims) in spot {
            let got = names.pairs.iter().find(|(g, _)| g == path).map(|(_, o)| o.as_str());
            assert_eq!(got, Some(name), "{path}");
            assert_eq!(shapes[path].0, dims, "{path}");
        }
    }

    /// The exported file of a default model holds exactly the released checkpoint's variables,
    /// names and shapes.
    #[test]
    fn the_export_has_the_released_checkpoints_names_and_shapes() {
        let list = include_str!("../../tests/fixtures/sqair_release_variables.txt");
        let want: BTreeMap<String, String> = list
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.split_once(' ').map(|(n, s)| (n.to_string(), s.to_string())).unwrap())
            .collect();
        let net = net(&default_shape());
        let out = std::env::temp_dir().join(format!("gestalt-sqair-release-{}.safetensors", std::process::id()));
        crate::weights::export(&net, &original_names(&net).unwrap(), &Default::default(), &out).unwrap();
        let bytes = std::fs::read(&out).unwrap();
        let _ = std::fs::remove_file(&out);
        let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let got: BTreeMap<String, String> =
            file.tensors().iter().map(|(n, v)| (n.clone(), format!("{:?}", v.shape()))).collect();
        assert_eq!(want.len(), 105);
        assert_eq!(got, want);
    }

    #[test]
    fn other_priors_name_their_tensors_apart() {
        let shape = Shape {
            count_prior: CountPrior::Geometric(0.75),
            prop_prior: PropPrior::Guided,
            masked_glimpse: false,
            rec_where_prior: false,
            ..default_shape()
        };
        let names = original_names(&net(&shape)).unwrap();
        let distinct: HashSet<&str> = names.pairs.iter().map(|(_, o)| o.as_str()).collect();
        assert_eq!(distinct.len(), names.pairs.len());
        let name = |p: &str| names.pairs.iter().find(|(g, _)| g == p).map(|(_, o)| o.clone()).unwrap();
        assert_eq!(name("disc_prior.count_mlp.layers.0.weight"), "gestalt/disc_prior/count_mlp/layers/0/weight");
        assert_eq!(name("prop_prior.out.bias"), "propagation/guided_walk_propagate_prior/linear/b");
    }

    #[test]
    fn exports_under_tensorflow_names_and_round_trips_exactly() {
        let shape = Shape { glimpse: 6, n_what: 3, hidden: 8, ..default_shape() };
        let d = Device::flex();
        d.seed(1);
        let a = net(&shape);
        let names = original_names(&a).unwrap();
        let out = std::env::temp_dir().join(format!("gestalt-sqair-names-{}.safetensors", std::process::id()));
        crate::weights::export(&a, &names, &Default::default(), &out).unwrap();
        let bytes = std::fs::read(&out).unwrap();
        let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        assert_eq!(file.tensor("propagation/gru/wz").unwrap().shape(), [8 + 4 + 2 * 3, 8]);
        assert_eq!(file.tensor("decoder/air_decoder/Variable").unwrap().shape(), [50, 50, 1]);
        assert_eq!(file.tensor("decoder/air_decoder/decoder/output_scale").unwrap().shape(), [0usize; 0]);
        d.seed(2);
        let b = net(&shape);
        assert_ne!(params(&a), params(&b));
        let (b, _) = crate::weights::import(b, &names, &out).unwrap();
        let _ = std::fs::remove_file(&out);
        assert_eq!(params(&a), params(&b));
    }
}
