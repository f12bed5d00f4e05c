//! The AVX-512 kernels of a stride-1 convolution on f32 slices, and the copies that feed them.
//! A block of output pixels keeps its 32 output channels in registers (2 × 16 lanes) while the
//! input channels and kernel taps stream past: each input value is broadcast once and meets a
//! vector of weights, the way oneDNN's direct convolution does; no im2col buffer is built.
//! Maps are [N, C, H, W]; every function here assumes `is_x86_feature_detected!("avx512f")`.
use rayon::prelude::*;
use std::arch::x86_64::*;
use std::mem::MaybeUninit;

/// Output channels per register block.
pub const OB: usize = 32;
/// Output pixels per register block: 14 × 2 accumulators of 32 registers.
const PIX: usize = 14;

/// A vector of `len` values that `fill` writes, each of them, without a zeroing pass first.
fn filled(len: usize, fill: impl FnOnce(&mut [MaybeUninit<f32>])) -> Vec<f32> {
    let mut v = Vec::with_capacity(len);
    fill(&mut v.spare_capacity_mut()[..len]);
    // SAFETY: every caller's `fill` writes all `len` elements (see each call).
    unsafe { v.set_len(len) };
    v
}

/// Zero padding [top, bottom, left, right] around every map: [N, C, H + t + b, W + l + r].
pub fn pad(x: &[f32], [n, c, h, w]: [usize; 4], [t, b, l, r]: [usize; 4]) -> Vec<f32> {
    let (hp, wp) = (h + t + b, w + l + r);
    let zero = MaybeUninit::new(0.0);
    // Every row of every map: a border row of zeros, or zeros, the input row, zeros.
    filled(n * c * hp * wp, |out| {
        out.par_chunks_mut(hp * wp).zip(x.par_chunks(h * w)).for_each(|(o, i)| {
            for (y, row) in o.chunks_mut(wp).enumerate() {
                if y < t || y >= t + h {
                    row.fill(zero);
                    continue;
                }
                row[..l].fill(zero);
                row[l + w..].fill(zero);
                for (d, &s) in row[l..l + w].iter_mut().zip(&i[(y - t) * w..][..w]) {
                    d.write(s);
                }
            }
        })
    })
}

/// Weights [O, C, k, k] as [C, k, k, O'] with O' the output channels rounded up to 32 (zeros);
/// `transpose` gives the weights of the input gradient: channels swapped and taps rotated by
/// 180°, [O, k, k, C'] with entry (o, i, j, c) = w[o, c, k−1−i, k−1−j].
pub fn pack(w: &[f32], [o, c, k, _]: [usize; 4], transpose: bool) -> (Vec<f32>, usize) {
    let (cin, cout) = if transpose { (o, c) } else { (c, o) };
    let cp = cout.div_ceil(OB) * OB;
    let mut out = vec![0f32; cin * k * k * cp];
    for oo in 0..o {
        for cc in 0..c {
            for i in 0..k {
                for j in 0..k {
                    let v = w[((oo * c + cc) * k + i) * k + j];
                    let at = if transpose {
                        ((oo * k + (k - 1 - i)) * k + (k - 1 - j)) * cp + cc
                    } else {
                        ((cc * k + i) * k + j) * cp + oo
                    };
                    out[at] = v;
                }
            }
        }
    }
    (out, cp)
}

/// y[n, o, i, j] = bias[o] + Σ_{c, a, b} xp[n, c, i + a, j + b] · wt[c, a, b, o] on padded maps
/// xp [N, C, Hp, Wp], weights packed by [`pack`] ([C, k, k, cp]); y is [N, O, Hp−k+1, Wp−k+1].
#[allow(clippy::too_many_arguments)] // the geometry of one convolution
pub fn conv(
    xp: &[f32],
    [n, c, hp, wp]: [usize; 4],
    wt: &[f32],
    k: usize,
    o: usize,
    cp: usize,
    bias: Option<&[f32]>,
) -> Vec<f32> {
    let (ho, wo) = (hp + 1 - k, wp + 1 - k);
    let g = Geom { c, hp, wp, k, o, cp, ho, wo };
    // The blocks of `conv_image` cover every (channel, row, column) of every image once.
    filled(n * o * ho * wo, |y| {
        y.par_chunks_mut(o * ho * wo).zip(xp.par_chunks(c * hp * wp)).for_each(|(yb, xb)| {
            // SAFETY: the caller checked AVX-512F; the geometry bounds every pointer (`block`).
            unsafe { conv_image(xb, wt, bias, &g, yb) }
        })
    })
}

struct Geom {
    c: usize,
    hp: usize,
    wp: usize,
    k: usize,
    o: usize,
    cp: usize,
    ho: usize,
    wo: usize,
}

#[target_feature(enable = "avx512f")]
unsafe fn conv_image(xb: &[f32], wt: &[f32], bias: Option<&[f32]>, g: &Geom, yb: &mut [MaybeUninit<f32>]) {
    macro_rules! tail {
        ($ob:expr, $i:expr, $j:expr, $rest:expr; $($w:literal)*) => {
            match $rest { $($w => unsafe { block::<$w>(xb, wt, bias, g, $ob, $i, $j, yb) },)* _ => unreachable!() }
        };
    }
    for ob in 0..g.cp / OB {
        for i in 0..g.ho {
            let mut j = 0;
            while j + PIX <= g.wo {
                unsafe { block::<PIX>(xb, wt, bias, g, ob, i, j, yb) };
                j += PIX;
            }
            if j < g.wo {
                tail!(ob, i, j, g.wo - j; 1 2 3 4 5 6 7 8 9 10 11 12 13);
            }
        }
    }
}

/// Output pixels (i, j..j+W) of channels ob·32.. : W × 32 sums in registers.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn block<const W: usize>(
    xb: &[f32],
    wt: &[f32],
    bias: Option<&[f32]>,
    g: &Geom,
    ob: usize,
    i: usize,
    j: usize,
    yb: &mut [MaybeUninit<f32>],
) {
    debug_assert!(xb.len() >= g.c * g.hp * g.wp && wt.len() >= g.c * g.k * g.k * g.cp);
    // SAFETY: rows i..i+k and columns j..j+W−1+k of every channel lie inside the padded map
    // (i < ho = hp−k+1, j+W ≤ wo); weight offsets stay below c·k·k·cp.
    unsafe {
        let mut acc = [[_mm512_setzero_ps(); 2]; W];
        let (x, w) = (xb.as_ptr(), wt.as_ptr().add(ob * OB));
        for c in 0..g.c {
            for a in 0..g.k {
                let row = x.add((c * g.hp + i + a) * g.wp + j);
                let wrow = w.add((c * g.k + a) * g.k * g.cp);
                for b in 0..g.k {
                    let w0 = _mm512_loadu_ps(wrow.add(b * g.cp));
                    let w1 = _mm512_loadu_ps(wrow.add(b * g.cp + 16));
                    for (p, acc) in acc.iter_mut().enumerate() {
                        let v = _mm512_set1_ps(*row.add(b + p));
                        acc[0] = _mm512_fmadd_ps(v, w0, acc[0]);
                        acc[1] = _mm512_fmadd_ps(v, w1, acc[1]);
                    }
                }
            }
        }
        let mut lanes = [0f32; OB];
        let valid = (g.o - ob * OB).min(OB); // cp rounds o up to 32, so ob·32 < o
        for (p, acc) in acc.iter().enumerate() {
            _mm512_storeu_ps(lanes.as_mut_ptr(), acc[0]);
            _mm512_storeu_ps(lanes.as_mut_ptr().add(16), acc[1]);
            for (q, &v) in lanes[..valid].iter().enumerate() {
                let oc = ob * OB + q;
                let b = bias.map_or(0.0, |b| b[oc]);
                yb.get_unchecked_mut((oc * g.ho + i) * g.wo + j + p).write(v + b);
            }
        }
    }
}

/// Maps [N, O, H, W] as pixel rows [N, H, W, O'] with O' = O rounded up to 32 (zeros).
pub fn channels_last(y: &[f32], [n, o, h, w]: [usize; 4]) -> (Vec<f32>, usize) {
    let op = o.div_ceil(OB) * OB;
    let mut out = vec![0f32; n * h * w * op];
    out.par_chunks_mut(h * w * op).zip(y.par_chunks(o * h * w)).for_each(|(t, s)| {
        for oc in 0..o {
            for (p, &v) in s[oc * h * w..][..h * w].iter().enumerate() {
                t[p * op + oc] = v;
            }
        }
    });
    (out, op)
}

/// ∂L/∂w [O, C, k, k] = Σ_{n, i, j} g[n, i, j, o] · xp[n, c, i + a, j + b], from the padded
/// input xp [N, C, Hp, Wp] and the output gradient as pixel rows g [N, Ho, Wo, op] (see
/// [`channels_last`]). Each thread sums its images into its own copy; k is 3 or 5.
pub fn weight_grad(xp: &[f32], [n, c, hp, wp]: [usize; 4], g: &[f32], o: usize, op: usize, k: usize) -> Vec<f32> {
    let (ho, wo) = (hp + 1 - k, wp + 1 - k);
    let per = n.div_ceil(rayon::current_num_threads().max(1)).max(1);
    let part_len = op * c * k * k;
    let parts: Vec<Vec<f32>> = (0..n.div_ceil(per))
        .into_par_iter()
        .map(|chunk| {
            let mut part = vec![0f32; part_len];
            for img in chunk * per..((chunk + 1) * per).min(n) {
                let x = &xp[img * c * hp * wp..][..c * hp * wp];
                let g = &g[img * ho * wo * op..][..ho * wo * op];
                // SAFETY: AVX-512F checked by the caller; bounds as in `wgrad_rows`.
                unsafe { wgrad_image(x, g, &mut part, c, hp, wp, ho, wo, op, k) };
            }
            part
        })
        .collect();
    // part: [ob][c][a][b][32] → [O, C, k, k].
    let mut out = vec![0f32; o * c * k * k];
    for part in &parts {
        for oc in 0..o {
            let (ob, q) = (oc / OB, oc % OB);
            for t in 0..c * k * k {
                out[oc * c * k * k + t] += part[(ob * c * k * k + t) * OB + q];
            }
        }
    }
    out
}

#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn wgrad_image(
    x: &[f32],
    g: &[f32],
    part: &mut [f32],
    c: usize,
    hp: usize,
    wp: usize,
    ho: usize,
    wo: usize,
    op: usize,
    k: usize,
) {
    for i in 0..ho {
        for ob in 0..op / OB {
            let gr = &g[(i * wo) * op + ob * OB..];
            for cc in 0..c {
                let at = |a: usize| ((ob * c + cc) * k + a) * k * OB;
                let row = |a: usize| &x[(cc * hp + i + a) * wp..];
                unsafe {
                    match k {
                        5 => {
                            wgrad_rows::<5, 2>(&mut part[at(0)..], [row(0), row(1)], gr, op, wo);
                            wgrad_rows::<5, 2>(&mut part[at(2)..], [row(2), row(3)], gr, op, wo);
                            wgrad_rows::<5, 1>(&mut part[at(4)..], [row(4)], gr, op, wo);
                        }
                        3 => wgrad_rows::<3, 3>(&mut part[at(0)..], [row(0), row(1), row(2)], gr, op, wo),
                        _ => unreachable!("direct convolution with k = {k}"),
                    }
                }
            }
        }
    }
}

/// Adds to acc [R][K][32] the sums over one output row: Σ_j g[j, ob..ob+32] · x_r[j + b].
#[inline(always)]
unsafe fn wgrad_rows<const K: usize, const R: usize>(
    acc_mem: &mut [f32],
    rows: [&[f32]; R],
    g: &[f32],
    op: usize,
    wo: usize,
) {
    debug_assert!(acc_mem.len() >= R * K * OB && g.len() >= (wo - 1) * op + OB);
    debug_assert!(rows.iter().all(|r| r.len() >= wo - 1 + K));
    // SAFETY: the asserts above: pixel j reads g[j·op .. j·op+32] and x_r[j .. j+K].
    unsafe {
        let m = acc_mem.as_mut_ptr();
        let mut acc = [[[_mm512_setzero_ps(); 2]; K]; R];
        for (r, acc) in acc.iter_mut().enumerate() {
            for (b, acc) in acc.iter_mut().enumerate() {
                acc[0] = _mm512_loadu_ps(m.add((r * K + b) * OB));
                acc[1] = _mm512_loadu_ps(m.add((r * K + b) * OB + 16));
            }
        }
        let gp = g.as_ptr();
        for j in 0..wo {
            let g0 = _mm512_loadu_ps(gp.add(j * op));
            let g1 = _mm512_loadu_ps(gp.add(j * op + 16));
            for (r, acc) in acc.iter_mut().enumerate() {
                let x = rows[r].as_ptr().add(j);
                for (b, acc) in acc.iter_mut().enumerate() {
                    let v = _mm512_set1_ps(*x.add(b));
                    acc[0] = _mm512_fmadd_ps(v, g0, acc[0]);
                    acc[1] = _mm512_fmadd_ps(v, g1, acc[1]);
                }
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            for (b, acc) in acc.iter().enumerate() {
                _mm512_storeu_ps(m.add((r * K + b) * OB), acc[0]);
                _mm512_storeu_ps(m.add((r * K + b) * OB + 16), acc[1]);
            }
        }
    }
}

/// ∂L/∂bias [O] = Σ over images and pixels of g [N, O, H, W].
pub fn bias_grad(g: &[f32], [n, o, h, w]: [usize; 4]) -> Vec<f32> {
    let mut out = vec![0f32; o];
    for img in 0..n {
        for (oc, s) in out.iter_mut().enumerate() {
            *s += g[(img * o + oc) * h * w..][..h * w].iter().sum::<f32>();
        }
    }
    out
}
