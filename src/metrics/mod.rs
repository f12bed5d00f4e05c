//! Grouping scores over the foreground pixels of one image, equal to scikit-learn's
//! `adjusted_rand_score`, `adjusted_mutual_info_score(average_method="max")` (the N-EM
//! normalisation) and `normalized_mutual_info_score(average_method="arithmetic")`.
use std::collections::HashMap;

/// The dense contingency table of two labelings, with its row and column sums.
struct Contingency {
    n: f64,
    /// rows × cols counts, row-major.
    table: Vec<f64>,
    rows: Vec<f64>,
    cols: Vec<f64>,
}

impl Contingency {
    fn new(a: &[u32], b: &[u32]) -> Self {
        assert_eq!(a.len(), b.len(), "labelings must have equal length");
        let index = |labels: &[u32]| {
            let mut m = HashMap::new();
            let ids: Vec<usize> = labels
                .iter()
                .map(|l| {
                    let next = m.len();
                    *m.entry(*l).or_insert(next)
                })
                .collect();
            (ids, m.len())
        };
        let ((ia, na), (ib, nb)) = (index(a), index(b));
        let mut table = vec![0f64; na * nb];
        for (i, j) in ia.iter().zip(&ib) {
            table[i * nb + j] += 1.0;
        }
        let rows = (0..na).map(|i| table[i * nb..(i + 1) * nb].iter().sum()).collect();
        let cols = (0..nb).map(|j| (0..na).map(|i| table[i * nb + j]).sum()).collect();
        Contingency { n: a.len() as f64, table, rows, cols }
    }

    /// Non-zero cells with their row and column index.
    fn cells(&self) -> impl Iterator<Item = (usize, usize, f64)> + '_ {
        let nb = self.cols.len();
        self.table.iter().enumerate().filter(|(_, c)| **c > 0.0).map(move |(k, &c)| (k / nb, k % nb, c))
    }
}

fn entropy(counts: &[f64], n: f64) -> f64 {
    counts.iter().filter(|&&c| c > 0.0).map(|&c| -(c / n) * (c / n).ln()).sum()
}

/// R-NEM's in-graph ARI (`utils.tf_adjusted_rand_index`): ordered pair counts n(n − 1), 1e-6 in
/// the expected index, the denominator clipped to [1e-6, 1e6]. It equals scikit-learn's except
/// where both are degenerate (one object in one slot: a ratio of the guards' leftovers, ≈ 1 in
/// f64, 0 or 1 in TF's float32).
pub fn ari_original(labels_true: &[u32], labels_pred: &[u32]) -> f64 {
    let c = Contingency::new(labels_true, labels_pred);
    let pairs = |x: f64| x * (x - 1.0);
    let rindex: f64 = c.cells().map(|(_, _, x)| pairs(x)).sum();
    let a: f64 = c.rows.iter().map(|&x| pairs(x)).sum();
    let b: f64 = c.cols.iter().map(|&x| pairs(x)).sum();
    let expected = a * b / (pairs(c.n) + 1e-6);
    (rindex - expected) / ((a + b) / 2.0 - expected).clamp(1e-6, 1e6)
}

/// Adjusted Rand index (scikit-learn's pair-confusion form).
pub fn ari(labels_true: &[u32], labels_pred: &[u32]) -> f64 {
    let c = Contingency::new(labels_true, labels_pred);
    let sum_sq: f64 = c.cells().map(|(_, _, x)| x * x).sum();
    let rows_sq: f64 = c.rows.iter().map(|x| x * x).sum();
    let cols_sq: f64 = c.cols.iter().map(|x| x * x).sum();
    let tp = sum_sq - c.n;
    let fp = cols_sq - sum_sq;
    let fn_ = rows_sq - sum_sq;
    let tn = c.n * c.n - fp - fn_ - sum_sq;
    if fn_ == 0.0 && fp == 0.0 {
        return 1.0;
    }
    2.0 * (tp * tn - fn_ * fp) / ((tp + fn_) * (fn_ + tn) + (tp + fp) * (fp + tn))
}

/// Mutual information and entropies of a pair of labelings.
struct Information {
    mi: f64,
    h_true: f64,
    h_pred: f64,
    /// Both labelings hold a single cluster (scikit-learn scores this 1.0).
    single: bool,
    c: Contingency,
}

fn information(labels_true: &[u32], labels_pred: &[u32]) -> Information {
    let c = Contingency::new(labels_true, labels_pred);
    let n = c.n;
    let mi: f64 = c.cells().map(|(i, j, nij)| nij / n * ((nij * n).ln() - (c.rows[i] * c.cols[j]).ln())).sum();
    Information {
        mi: mi.max(0.0),
        h_true: entropy(&c.rows, n),
        h_pred: entropy(&c.cols, n),
        single: c.rows.len() == c.cols.len() && c.rows.len() <= 1,
        c,
    }
}

/// Expected mutual information under the permutation model (Vinh et al. 2010), as scikit-learn.
fn expected_mutual_information(c: &Contingency) -> f64 {
    let n = c.n;
    let lg = |x: f64| libm::lgamma(x);
    let gln_n = lg(n + 1.0);
    let mut emi = 0.0;
    for &a in &c.rows {
        for &b in &c.cols {
            let start = (a + b - n).max(1.0) as i64;
            let end = a.min(b) as i64;
            let fixed = lg(a + 1.0) + lg(b + 1.0) + lg(n - a + 1.0) + lg(n - b + 1.0) - gln_n;
            for nij in start..=end {
                let nij = nij as f64;
                let term2 = (n * nij).ln() - a.ln() - b.ln();
                let gln = fixed - lg(nij + 1.0) - lg(a - nij + 1.0) - lg(b - nij + 1.0) - lg(n - a - b + nij + 1.0);
                emi += nij / n * term2 * gln.exp();
            }
        }
    }
    emi
}

/// Adjusted mutual information normalised by max(H_true, H_pred), as the N-EM evaluation.
pub fn ami(labels_true: &[u32], labels_pred: &[u32]) -> f64 {
    let info = information(labels_true, labels_pred);
    if info.single {
        return 1.0;
    }
    let emi = expected_mutual_information(&info.c);
    let denom = info.h_true.max(info.h_pred) - emi;
    let denom = if denom < 0.0 { denom.min(-f64::EPSILON) } else { denom.max(f64::EPSILON) };
    (info.mi - emi) / denom
}

/// Normalised mutual information with the arithmetic-mean normaliser.
pub fn nmi(labels_true: &[u32], labels_pred: &[u32]) -> f64 {
    let info = information(labels_true, labels_pred);
    if info.single {
        return 1.0;
    }
    info.mi / ((info.h_true + info.h_pred) / 2.0).max(f64::EPSILON)
}
