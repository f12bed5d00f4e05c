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

/// Flying MNIST from the fixture's three digits: grey frames whose covered pixels carry the
/// top-most digit's id, a later digit's strokes over an earlier one's, pure in (seed, index).
#[test]
fn flying_mnist_sequences_from_the_digits() {
    use gestalt::data::flying::{FRAMES, MNIST_SIZE, mnist_sequence, mnist_split};
    use gestalt::data::h5::Values;
    let d = mnist::read(&fixture(), false).unwrap();
    let (f, g) = mnist_sequence(&d, 3, 1, 4, 2, FRAMES);
    assert_eq!((f.clone(), g.clone()), mnist_sequence(&d, 3, 1, 4, 2, FRAMES));
    assert_ne!(g, mnist_sequence(&d, 3, 1, 5, 2, FRAMES).1);
    assert_eq!(f.len(), FRAMES * MNIST_SIZE * MNIST_SIZE);
    assert!(f.iter().zip(&g).all(|(&v, &id)| (v > 0) == (id > 0) && id <= 2));
    // Both digits are visible in most frames (they overlap, the second on top).
    let frame = MNIST_SIZE * MNIST_SIZE;
    let both = g.chunks(frame).filter(|fr| fr.contains(&1) && fr.contains(&2)).count();
    assert!(both > FRAMES / 2, "{both}");
    let s = mnist_split(&d, 3, 1, 4, 2, 2);
    assert_eq!(s.shape, [FRAMES, 2, MNIST_SIZE, MNIST_SIZE, 1]);
    let Values::U8(sf) = &s.features else { panic!("bytes") };
    // Sample 0 is sequence 4: its frame 9 at (9·N + 0)·frame.
    assert_eq!(&sf[9 * 2 * frame..][..frame], &f[9 * frame..][..frame]);
}
