//! HDF5 in the N-EM layout: files written by h5py (chunked, gzip) load; our files round-trip;
//! malformed files give one clear error.
use gestalt::data::h5::{Mask, NemSplit, Values, read_nem_split, write_nem};
use std::path::Path;

#[test]
fn reads_a_file_written_by_h5py() {
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string("tests/fixtures/h5py_nem.json").unwrap()).unwrap();
    for split in ["training", "validation", "test"] {
        let s = read_nem_split(Path::new("tests/fixtures/h5py_nem.h5"), split, None, true, &[]).unwrap();
        let m = &meta[split];
        let shape: Vec<usize> =
            m["features_shape"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as usize).collect();
        assert_eq!(s.shape.to_vec(), shape);
        let fsum: f64 = s.features.to_f32().iter().map(|&x| x as f64).sum();
        let g = s.groups.as_ref().unwrap();
        let gsum: f64 = g.iter().map(|&x| x as f64).sum();
        assert_eq!(fsum, m["features_sum"].as_f64().unwrap());
        assert_eq!(gsum, m["groups_sum"].as_f64().unwrap());
        let img0: Vec<u8> = m["groups_image0"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as u8).collect();
        assert_eq!(&g[..784], &img0[..]);
    }
    let limited = read_nem_split(Path::new("tests/fixtures/h5py_nem.h5"), "training", Some(2), true, &[]).unwrap();
    assert_eq!(limited.shape[1], 2);
    assert_eq!(limited.features.len(), 2 * 784);
}

#[test]
fn our_files_round_trip() {
    let dir = std::env::temp_dir().join(format!("gestalt-h5-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("rt.h5");
    // A sequence split (T = 3) to check the time-major layout.
    let s = NemSplit {
        shape: [3, 2, 4, 4, 1],
        features: Values::F32((0..96).map(|i| (i % 7) as f32 / 7.0).collect()),
        groups: Some((0..96).map(|i| (i % 3) as u8).collect()),
        masks: vec![
            Mask {
                name: "collisions".into(),
                dims: vec![4, 4, 1],
                values: (0..96).map(|i| (i % 5 == 0) as u8).collect(),
            },
            Mask { name: "events".into(), dims: vec![1, 1, 1], values: vec![0, 1, 1, 0, 0, 1] },
            Mask { name: "actions".into(), dims: vec![3], values: (0..18).map(|i| (i % 3 == 1) as u8).collect() },
        ],
    };
    let t = gestalt::data::shapes::split(5, 0, 3);
    write_nem(&path, &[("training", &s), ("test", &t)]).unwrap();
    let back = read_nem_split(&path, "training", None, true, &["collisions", "events", "actions"]).unwrap();
    assert_eq!(back.masks, s.masks);
    let first = read_nem_split(&path, "training", Some(1), true, &["events"]).unwrap();
    assert_eq!(first.masks[0].values, vec![0, 1, 0]);
    let back = read_nem_split(&path, "training", None, true, &[]).unwrap();
    assert_eq!(back.shape, s.shape);
    assert_eq!(back.features, s.features);
    assert_eq!(back.groups, s.groups);
    let first = read_nem_split(&path, "training", Some(1), true, &[]).unwrap();
    let f = s.features.to_f32();
    assert_eq!(first.features, Values::F32([&f[0..16], &f[32..48], &f[64..80]].concat()));
    // Byte features stay bytes through a file.
    assert!(matches!(back_t_features(&path), Values::U8(_)));
    let back_t = read_nem_split(&path, "test", None, true, &[]).unwrap();
    assert_eq!(back_t.groups, t.groups);
    // A missing split or dataset names the file and the key.
    let err = read_nem_split(&path, "validation", None, true, &[]).unwrap_err().to_string();
    assert!(err.contains("rt.h5") && err.contains("validation/features"), "{err}");
    std::fs::write(dir.join("bad.h5"), b"not hdf5").unwrap();
    let err = read_nem_split(&dir.join("bad.h5"), "training", None, true, &[]).unwrap_err();
    assert_eq!(err.exit_code(), 2);
    std::fs::remove_dir_all(&dir).ok();
}

fn back_t_features(path: &Path) -> Values {
    read_nem_split(path, "test", None, false, &[]).unwrap().features
}
