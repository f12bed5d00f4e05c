//! ARI / AMI / NMI against values computed with scikit-learn (tests/fixtures/metrics_sklearn.json,
//! made by scripts/fixtures/make_fixtures.py).
use gestalt::metrics::{ami, ari, nmi};

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
