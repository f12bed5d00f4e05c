//! EMORL's latent range and activeness against a direct computation: the range is the min and
//! max of the final posterior's samples, and each activeness entry is the unbiased variance, over
//! six evenly spaced values of one slot's dimension, of the decoded composite, pixel-averaged —
//! recomputed here one decode at a time in f64; likewise each frame of a latent traversal.
mod common;
use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor, TensorData};
use common::hand::host;
use gestalt::config;
use gestalt::emorl::Emorl;

#[test]
fn latent_range_and_activeness_by_hand() {
    let data = common::tmpdir("emorl-disentangle");
    let words: Vec<String> = [
        "test/tetrominoes/disentanglement/EMORL_activeness",
        "Net.K=3",
        "Net.z_size=4",
        "Net.stochastic_layers=2",
        "Net.refinement_iters=1",
        "dataset.sizes.train=4",
        "dataset.sizes.test=3",
        "test.num_images_to_process=3",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([format!("dataset.data_path={}", data.display())])
    .collect();
    let emorl = Emorl::new(&config::resolve(&words).unwrap()).unwrap();
    let d = Device::flex();
    // The decoder starts with tiny weights (xavier_normal, gain 0.02), so z barely shows in its
    // images: scale them up so the sweep's variance is well above rounding.
    struct Scale;
    impl burn::module::ModuleMapper for Scale {
        fn map_float<const D: usize>(&mut self, p: Param<Tensor<D>>) -> Param<Tensor<D>> {
            Param::from_tensor(p.val() * 30.0)
        }
    }
    let mut model = emorl.build_model(&d);
    model.decoder = model.decoder.map(&mut Scale);
    let split = emorl.test_split(3).unwrap();
    let (k, zd) = (3, 4);
    let z = host(emorl.final_z(&model, &split, 3, &d)); // [3·K, D]
    let range = emorl.latent_range(&model, &split, &d);
    for j in 0..zd {
        let col: Vec<f64> = (0..3 * k).map(|r| z[r * zd + j]).collect();
        let (lo, hi) = (col.iter().cloned().fold(f64::MAX, f64::min), col.iter().cloned().fold(f64::MIN, f64::max));
        assert!((range[j][0] - lo).abs() < 1e-6 && (range[j][1] - hi).abs() < 1e-6, "dimension {j}");
    }
    // A wide sweep, so that the untrained decoder's images change measurably.
    let range = vec![[-40.0, 25.0]; zd];
    let act = emorl.activeness(&model, &split, &range, &d).unwrap();
    assert_eq!((act.len(), act[0].len()), (3, zd));
    for i in [0, 2] {
        let slot = emorl.activeness_slot(i);
        for j in 0..zd {
            let images: Vec<Vec<f64>> = (0..6)
                .map(|s| {
                    let mut zi: Vec<f64> = z[i * k * zd..(i + 1) * k * zd].to_vec();
                    zi[slot * zd + j] = range[j][0] + (range[j][1] - range[j][0]) * s as f64 / 5.0;
                    let zt = Tensor::<2>::from_data(
                        TensorData::new(zi.iter().map(|&v| v as f32).collect::<Vec<_>>(), [k, zd]),
                        &d,
                    );
                    let (rgb, log_masks) = model.decoder.forward(zt, k, [35, 35]);
                    host((rgb * log_masks.exp()).sum_dim(1))
                })
                .collect();
            let px = images[0].len();
            let var: f64 = (0..px)
                .map(|p| {
                    let m = images.iter().map(|im| im[p]).sum::<f64>() / 6.0;
                    images.iter().map(|im| (im[p] - m).powi(2)).sum::<f64>() / 5.0
                })
                .sum::<f64>()
                / px as f64;
            assert!(var > 1e-6, "the sweep changes the image: {var}");
            let tol = 1e-3 * var;
            assert!((act[i][j] - var).abs() <= tol, "image {i} dimension {j}: {} vs {var}", act[i][j]);
        }
    }

    // The traversal of image 0's slot 1 along dimensions 3 and 0: frame s decodes z with that
    // entry set to value s of 8 evenly spaced over the range.
    let rows = emorl.traversal(&model, &split, &range, &[1], &[3, 0], &d).remove(0);
    assert_eq!((rows.len(), rows[0].len(), rows[0][0].len()), (2, 8, 3 * 35 * 35));
    for (r, j) in [(0, 3), (1, 0)] {
        for s in [0, 5, 7] {
            let mut zi: Vec<f64> = z[..k * zd].to_vec();
            zi[zd + j] = range[j][0] + (range[j][1] - range[j][0]) * s as f64 / 7.0;
            let zt =
                Tensor::<2>::from_data(TensorData::new(zi.iter().map(|&v| v as f32).collect::<Vec<_>>(), [k, zd]), &d);
            let (rgb, log_masks) = model.decoder.forward(zt, k, [35, 35]);
            let want = host((rgb * log_masks.exp()).sum_dim(1));
            let err = want.iter().zip(&rows[r][s]).map(|(a, &b)| (a - f64::from(b)).abs()).fold(0.0, f64::max);
            assert!(err < 1e-4, "dimension {j}, step {s}: max difference {err}");
        }
    }
}
