//! ARI / AMI / NMI against values computed with scikit-learn (tests/fixtures/metrics_sklearn.json,
//! made by scripts/fixtures/make_fixtures.py).
use gestalt::metrics::{ami, ari, ari_original, nmi};

#[test]
fn grouping_scores_match_scikit_learn() {
    let text = std::fs::read_to_string("tests/fixtures/metrics_sklearn.json").unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let cases = v["cases"].as_array().unwrap();
    assert!(cases.len() >= 40);
    let labels = |x: &serde_json::Value| -> Vec<u32> {
        x.as_array().unwrap().iter().map(|l| l.as_u64().unwrap() as u32).collect()
    };
    for (i, c) in cases.iter().enumerate() {
        let (t, p) = (labels(&c["true"]), labels(&c["pred"]));
        for (name, got, want) in [
            ("ari", ari(&t, &p), c["ari"].as_f64().unwrap()),
            ("ami", ami(&t, &p), c["ami_max"].as_f64().unwrap()),
            ("nmi", nmi(&t, &p), c["nmi_arithmetic"].as_f64().unwrap()),
        ] {
            assert!((got - want).abs() < 1e-9, "case {i} (n={}): {name} {got} vs sklearn {want}", t.len());
        }
    }
}

#[test]
fn a_perfect_grouping_scores_one_under_relabelling() {
    let t = [1, 1, 2, 2, 3, 3, 3];
    let p = [7, 7, 0, 0, 4, 4, 4];
    assert!((ari(&t, &p) - 1.0).abs() < 1e-12);
    assert!((ami(&t, &p) - 1.0).abs() < 1e-12);
}

#[test]
fn original_ari_is_the_in_graph_formula() {
    // Truth (1, 1, 1, 2, 2) against (0, 0, 1, 1, 1): ordered pairs Σ n_ij(n_ij − 1) = 4,
    // a = 3·2 + 2·1 = 8, b = 8, n(n − 1) = 20: expected 3.2, max 8, ARI = 0.8 / 4.8.
    let (t, p) = ([1, 1, 1, 2, 2], [0, 0, 1, 1, 1]);
    assert!((ari_original(&t, &p) - 1.0 / 6.0).abs() < 1e-6);
    assert!((ari(&t, &p) - 1.0 / 6.0).abs() < 1e-9);
    // One object in one slot: scikit-learn special-cases it to 1; the formula's numerator and
    // denominator are both the 1e-6 guard's leftovers (6 − 36 / (6 + 1e-6)), clipped at 1e-6.
    assert_eq!(ari(&[3, 3, 3], &[1, 1, 1]), 1.0);
    let want = (6.0 - 36.0 / (6.0 + 1e-6)) / 1e-6;
    assert!((ari_original(&[3, 3, 3], &[1, 1, 1]) - want).abs() < 1e-6 && want < 1.0);
}
