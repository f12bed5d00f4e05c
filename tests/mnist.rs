//! MNIST's idx files: a committed fixture (the first three test digits, cut from the verified
//! files of `scripts/fetch_mnist.sh`), and clear errors for missing or malformed files.
use gestalt::data::mnist;
use std::path::PathBuf;

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mnist")
}

#[test]
fn reads_the_idx_files() {
    let d = mnist::read(&fixture(), false).unwrap();
    assert_eq!((d.n, d.rows, d.cols), (3, 28, 28));
    assert_eq!(d.labels, [7, 2, 1]);
    // The first digit (a 7): its grey levels sum to 18,454 and its corners are blank.
    let seven = d.image(0);
    assert_eq!(seven.iter().map(|&v| v as u32).sum::<u32>(), 18_454);
    assert_eq!((seven[0], seven[27], seven[28 * 28 - 1]), (0, 0, 0));
}

#[test]
fn missing_or_malformed_files_say_what_to_do() {
    let err = mnist::read(&fixture(), true).unwrap_err().to_string();
    assert!(err.contains("scripts/fetch_mnist.sh") && err.contains("train-images.idx3-ubyte"), "{err}");
    let dir = std::env::temp_dir().join(format!("gestalt-mnist-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["t10k-images.idx3-ubyte", "t10k-labels.idx1-ubyte"] {
        std::fs::copy(fixture().join(f), dir.join(f)).unwrap();
    }
    let images = dir.join("t10k-images.idx3-ubyte");
    let bytes = std::fs::read(&images).unwrap();
    std::fs::write(&images, &bytes[..bytes.len() - 1]).unwrap();
    let err = mnist::read(&dir, false).unwrap_err().to_string();
    assert!(err.contains("not an MNIST idx file"), "{err}");
    std::fs::write(&images, [&[0u8, 0, 8, 1][..], &bytes[4..]].concat()).unwrap();
    let err = mnist::read(&dir, false).unwrap_err().to_string();
    assert!(err.contains("magic number"), "{err}");
}
