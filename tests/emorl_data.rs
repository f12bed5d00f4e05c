//! HDF5 in the EMORL layout: generated Tetrominoes round-trip, files written by h5py load, and
//! malformed files give one clear usage error naming the file and the dataset.
mod common;
use gestalt::data::emorl::{EmorlSplit, read_emorl, write_emorl};
use gestalt::data::tetrominoes;
use gestalt::error::Error;
use hdf5_pure::FileBuilder;
use std::path::Path;

#[test]
fn generated_train_and_test_round_trip() {
    let dir = common::tmpdir("emorl-rt");
    let path = dir.join("tetrominoes.h5");
    let (train, test) = (tetrominoes::split(1, 0, 40), tetrominoes::split(1, 40, 5));
    write_emorl(&path, &[("train", &train), ("test", &test)]).unwrap();
    assert_eq!(read_emorl(&path, "train", None, true).unwrap(), train);
    assert_eq!(read_emorl(&path, "test", Some(99), true).unwrap(), test);
    assert_eq!(read_emorl(&path, "train", Some(3), true).unwrap(), tetrominoes::split(1, 0, 3));
    assert_eq!(read_emorl(&path, "train", Some(0), true).unwrap().imgs, Vec::<u8>::new());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn reads_files_written_by_h5py() {
    // emorl_tiny.h5: the formulas of make_fixtures.py's make_emorl_tiny, h5py's default chunks.
    let tiny = read_emorl(Path::new("tests/fixtures/emorl_tiny.h5"), "train", None, true).unwrap();
    assert_eq!((tiny.n, tiny.h, tiny.w, tiny.e), (2, 5, 5, 3));
    assert_eq!(tiny.imgs, (0..150).collect::<Vec<u8>>());
    let mut masks = Vec::new();
    for n in 0..2 {
        for e in 0..3 {
            for y in 0..5 {
                masks.extend((0..5).map(|x| if (n + y + 2 * x) % 3 == e { 255 } else { 0 }));
            }
        }
    }
    assert_eq!(tiny.masks, masks);
    let first = read_emorl(Path::new("tests/fixtures/emorl_tiny.h5"), "train", Some(1), true).unwrap();
    assert_eq!((first.n, &first.imgs[..], &first.masks[..]), (1, &tiny.imgs[..75], &masks[..75]));

    // h5py_emorl.h5: 35×35, E = 4, chunked per sample; sums recorded by the script.
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string("tests/fixtures/h5py_emorl.json").unwrap()).unwrap();
    let sum = |v: &[u8]| v.iter().map(|&x| x as u64).sum::<u64>();
    for split in ["train", "test"] {
        let s = read_emorl(Path::new("tests/fixtures/h5py_emorl.h5"), split, None, true).unwrap();
        let m = &meta[split];
        let shape = |k: &str| m[k].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as usize).collect::<Vec<_>>();
        assert_eq!(shape("imgs_shape"), [s.n, s.h, s.w, 3]);
        assert_eq!(shape("masks_shape"), [s.n, s.e, s.h, s.w, 1]);
        assert_eq!(sum(&s.imgs), m["imgs_sum"].as_u64().unwrap());
        assert_eq!(sum(&s.masks), m["masks_sum"].as_u64().unwrap());
        // Every pixel belongs to exactly one entity.
        assert_eq!(sum(&s.masks), 255 * (s.n * s.h * s.w) as u64);
        let two = read_emorl(Path::new("tests/fixtures/h5py_emorl.h5"), split, Some(2), true).unwrap();
        assert_eq!((two.imgs.len(), &two.masks[..]), (2 * 35 * 35 * 3, &s.masks[..2 * 4 * 35 * 35]));
    }
}

/// Write `train/imgs` and `train/masks` with the given f32 data and shapes.
fn write_f32(path: &Path, imgs: (&[f32], &[u64]), masks: Option<(&[f32], &[u64])>) {
    let mut b = FileBuilder::new();
    let mut g = b.create_group("train");
    g.create_dataset("imgs").with_f32_data(imgs.0).with_shape(imgs.1);
    if let Some((data, shape)) = masks {
        g.create_dataset("masks").with_f32_data(data).with_shape(shape);
    }
    b.add_group(g.finish());
    std::fs::write(path, b.finish().unwrap()).unwrap();
}

#[test]
fn float_data_in_0_1_or_0_255_is_read_as_bytes() {
    let dir = common::tmpdir("emorl-float");
    let path = dir.join("float.h5");
    let imgs: Vec<f32> = (0..12).map(|i| i as f32 / 11.0).collect();
    let masks: Vec<f32> = (0..8).map(|i| if i % 2 == 0 { 255.0 } else { 0.0 }).collect();
    write_f32(&path, (&imgs, &[1, 2, 2, 3]), Some((&masks, &[1, 2, 2, 2, 1])));
    let s = read_emorl(&path, "train", None, true).unwrap();
    assert_eq!(s.imgs, imgs.iter().map(|&x| (x * 255.0).round() as u8).collect::<Vec<_>>());
    assert_eq!(s.masks, [255, 0, 255, 0, 255, 0, 255, 0]);
    write_f32(&path, (&imgs, &[1, 2, 2, 3]), Some((&[300.0; 8], &[1, 2, 2, 2, 1])));
    let err = read_emorl(&path, "train", None, true).unwrap_err().to_string();
    assert!(err.contains("train/masks") && err.contains("outside"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn malformed_files_are_usage_errors_naming_file_and_dataset() {
    let dir = common::tmpdir("emorl-bad");
    let usage = |path: &Path, split: &str, key: &str| {
        let err = read_emorl(path, split, None, true).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, Error::Usage(_)), "{msg}");
        assert!(msg.contains(&*path.file_name().unwrap().to_string_lossy()) && msg.contains(key), "{msg}");
        assert_eq!(msg.lines().count(), 1, "{msg}");
    };
    usage(&dir.join("absent.h5"), "train", "absent.h5");
    std::fs::write(dir.join("text.h5"), b"not hdf5").unwrap();
    usage(&dir.join("text.h5"), "train", "text.h5");

    let good = dir.join("good.h5");
    let s = EmorlSplit {
        n: 1,
        h: 2,
        w: 2,
        e: 2,
        imgs: vec![7; 12],
        masks: vec![255, 255, 0, 0, 0, 0, 255, 255],
        mask_hw: [2, 2],
    };
    write_emorl(&good, &[("train", &s)]).unwrap();
    usage(&good, "test", "test/imgs");

    let path = dir.join("bad.h5");
    write_f32(&path, (&[0.0; 12], &[1, 2, 2, 3]), None);
    usage(&path, "train", "train/masks");
    write_f32(&path, (&[0.0; 12], &[1, 2, 6]), Some((&[0.0; 8], &[1, 2, 2, 2, 1])));
    usage(&path, "train", "train/imgs");
    write_f32(&path, (&[0.0; 12], &[1, 2, 2, 3]), Some((&[0.0; 8], &[1, 2, 4, 1, 1])));
    usage(&path, "train", "train/masks");
    write_f32(&path, (&[0.0; 12], &[1, 2, 2, 3]), Some((&[0.0; 8], &[1, 2, 2, 2])));
    usage(&path, "train", "train/masks");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn batches_are_channels_first_in_minus_one_to_one() {
    let s = gestalt::data::tetrominoes::split(1, 0, 3);
    let b = gestalt::data::emorl::gather(&s, &[1, 2]);
    assert_eq!(b.shape, [2, 3, 35, 35]);
    let p = 35 * 35;
    for i in [0usize, 600, 1224] {
        for c in 0..3 {
            let want = f32::from(s.imgs[(p + i) * 3 + c]) * 2.0 / 255.0 - 1.0;
            assert_eq!(b.imgs[c * p + i], want, "pixel {i} channel {c}");
        }
    }
    assert!(b.imgs.iter().all(|v| (-1.0..=1.0).contains(v)));
    assert_eq!(b.masks, s.masks[4 * p..3 * 4 * p]);
}

#[test]
fn clevr_files_load_cropped_and_resized_through_the_config() {
    let dir = std::env::temp_dir().join(format!("gestalt-clevr-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Two 240×320 scenes: grey ramps, one object (entity 1) inside the crop box, one outside it.
    let (h, w, e) = (240, 320, 3);
    let imgs: Vec<u8> = (0..2 * h * w * 3).map(|i| ((i / 3) % w) as u8).collect();
    let mut masks = vec![0u8; 2 * e * h * w];
    for img in 0..2 {
        for y in 0..h {
            for x in 0..w {
                let id = if (100..140).contains(&y) && (100..150).contains(&x) {
                    1
                } else if y < 20 {
                    2
                } else {
                    0
                };
                masks[((img * e + id) * h + y) * w + x] = 255;
            }
        }
    }
    let split = EmorlSplit { n: 2, h, w, e, imgs, masks, mask_hw: [h, w] };
    write_emorl(&dir.join("clevr6_with_masks_and_factors_test.h5"), &[("test", &split)]).unwrap();
    let words = ["test/clevr6/ARI_MSE_KL/EMORL".to_string(), format!("dataset.data_path={}", dir.display())];
    let fam = gestalt::emorl::Emorl::new(&gestalt::config::resolve(&words).unwrap()).unwrap();
    let s = fam.test_split(2).unwrap();
    assert_eq!((s.n, s.h, s.w, s.mask_hw), (2, 96, 96, [192, 192]));
    // The object sits at rows 100..140, columns 100..150 of the scene: 71..111, 36..86 of the crop.
    let labels = gestalt::emorl::metrics::labels_from_masks(&s.masks[..e * 192 * 192], e);
    assert_eq!((labels[71 * 192 + 36], labels[70 * 192 + 36], labels[111 * 192 + 36]), (1, 0, 0));
    assert!(!labels.contains(&2), "entity 2 lies outside the crop");
    // The pictures' ground truth comes down to the 96-px image: the object at rows 36..55.
    let d = burn::tensor::Device::flex();
    let model = fam.build_model(&d);
    let pics = gestalt::emorl::viz::samples(&fam, &model, &gestalt::data::emorl::gather(&s, &[0]), 0, None, &d);
    assert_eq!(pics[0].truth.len(), 96 * 96);
    assert_eq!((pics[0].truth[45 * 96 + 30], pics[0].truth[30 * 96 + 30]), (1, 0));
    // A train config finds CLEVR6's test file by its own name.
    let words = ["train/clevr6/EMORL".to_string(), format!("dataset.data_path={}", dir.display())];
    let train = gestalt::emorl::Emorl::new(&gestalt::config::resolve(&words).unwrap()).unwrap();
    assert!(train.file(true).unwrap().0.ends_with("clevr6_with_masks_and_factors_test.h5"));
    std::fs::remove_dir_all(&dir).ok();
}
