//! The elementwise and row-wise pieces of the fused step, forward and backward: RMSNorm,
//! rotary embedding, SwiGLU, the softmax cross-entropy of the output layer, and column sums.
//!
//! Each kernel works on one row (or one slice) and is compiled three times — AVX-512, AVX2+FMA
//! and baseline x86-64 — with the widest one the processor has chosen at run time, so the loops
//! vectorise without building the crate for one machine. Rows are spread over the thread pool
//! by the callers; every sum runs in a fixed order, so results do not depend on the thread count.

use rayon::prelude::*;

/// Defines `fn $name(..)` whose body is compiled for AVX-512 and AVX2+FMA as well as the
/// baseline, and dispatches on the running processor. Helpers the body calls must be
/// `#[inline(always)]` to be compiled with the same features.
macro_rules! simd_fn {
    ($(#[$m:meta])* $vis:vis fn $name:ident($($a:ident : $t:ty),* $(,)?) $(-> $r:ty)? $body:block) => {
        $(#[$m])*
        $vis fn $name($($a: $t),*) $(-> $r)? {
            #[inline(always)]
            fn body($($a: $t),*) $(-> $r)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx2,fma")]
                unsafe fn v4($($a: $t),*) $(-> $r)? { body($($a),*) }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn v3($($a: $t),*) $(-> $r)? { body($($a),*) }
                if std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512vl")
                    && std::arch::is_x86_feature_detected!("avx512dq")
                {
                    // SAFETY: the processor has the features `v4` is compiled for.
                    return unsafe { v4($($a),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    // SAFETY: as above, for `v3`.
                    return unsafe { v3($($a),*) };
                }
            }
            body($($a),*)
        }
    };
}
pub(crate) use simd_fn;

/// Rows per parallel task in the row-wise kernels.
pub const ROW_BLOCK: usize = 64;

/// `e^x` to about 2 ulp for x in [-87, 88] (clamped outside), branch-free so it vectorises:
/// x = n·ln2 + r, e^x = 2^n · p(r) with Cephes' polynomial.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding 1.5·2²³ rounds x·log2(e) to the nearest integer n and leaves n in the low
    // mantissa bits: the bit pattern is ROUND_BITS + n, so 2^n needs no float-to-int cast.
    const ROUND: f32 = 12_582_912.0;
    const ROUND_BITS: u32 = 0x4B40_0000;
    let x = min(max2(x, -87.0), 88.0);
    let t = x * LOG2E + ROUND;
    let n = t - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    p = p * r * r + r + 1.0;
    let pow2 = t.to_bits().wrapping_sub(ROUND_BITS).wrapping_add(127) << 23;
    p * f32::from_bits(pow2)
}

/// The larger of two values as one compare-and-select (no NaN handling), so loops vectorise.
#[inline(always)]
pub fn max2(a: f32, b: f32) -> f32 {
    if a > b {
        a
    } else {
        b
    }
}

#[inline(always)]
fn min(a: f32, b: f32) -> f32 {
    if a < b {
        a
    } else {
        b
    }
}

/// Sum of a slice in 16 lanes, then the lanes in order: fixed order, vectorisable.
#[inline(always)]
pub fn sum(x: &[f32]) -> f32 {
    let mut acc = [0.0f32; 16];
    let chunks = x.chunks_exact(16);
    let rest = chunks.remainder();
    for c in chunks {
        for i in 0..16 {
            acc[i] += c[i];
        }
    }
    let mut s = 0.0;
    for a in acc {
        s += a;
    }
    for &v in rest {
        s += v;
    }
    s
}

/// Dot product in 16 lanes (fixed order).
#[inline(always)]
pub fn dot(x: &[f32], y: &[f32]) -> f32 {
    let n = x.len().min(y.len());
    let (x, y) = (&x[..n], &y[..n]);
    let mut acc = [0.0f32; 16];
    let mut i = 0;
    while i + 16 <= n {
        for l in 0..16 {
            acc[l] += x[i + l] * y[i + l];
        }
        i += 16;
    }
    let mut s = 0.0;
    for a in acc {
        s += a;
    }
    while i < n {
        s += x[i] * y[i];
        i += 1;
    }
    s
}

/// Largest value of a slice, in 16 lanes.
#[inline(always)]
pub fn max(x: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; 16];
    let chunks = x.chunks_exact(16);
    let rest = chunks.remainder();
    for c in chunks {
        for i in 0..16 {
            acc[i] = max2(acc[i], c[i]);
        }
    }
    let mut m = f32::NEG_INFINITY;
    for a in acc.into_iter().chain(rest.iter().copied()) {
        m = max2(m, a);
    }
    m
}

simd_fn! {
    /// RMSNorm of one row: `out = x · rstd · w`; returns `rstd = 1 / sqrt(mean(x²) + eps)`.
    fn rms_row(x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) -> f32 {
        let rstd = 1.0 / (dot(x, x) / x.len() as f32 + eps).sqrt();
        for ((o, &xv), &wv) in out.iter_mut().zip(x).zip(w) {
            *o = xv * rstd * wv;
        }
        rstd
    }
}

simd_fn! {
    /// Backward of [`rms_row`]: `dx` (overwritten, or added to with `accumulate`) from the
    /// output gradient `dy`; the weight gradient of this row is added to `dw`.
    fn rms_row_back(x: &[f32], w: &[f32], rstd: f32, dy: &[f32], dx: &mut [f32], dw: &mut [f32], accumulate: bool) {
        let d = x.len();
        // mean(dxhat · xhat) with xhat = x·rstd and dxhat = dy·w
        let mut lanes = [0.0f32; 16];
        for i in 0..d {
            lanes[i % 16] += dy[i] * w[i] * x[i];
        }
        let c = sum(&lanes) * rstd * rstd / d as f32;
        for i in 0..d {
            dw[i] += dy[i] * x[i] * rstd;
            let g = rstd * (dy[i] * w[i] - x[i] * c);
            if accumulate {
                dx[i] += g;
            } else {
                dx[i] = g;
            }
        }
    }
}

/// RMSNorm of every row of `x` (`[rows, d]`) into `out`; `rstd` gets one value per row.
pub fn rms_forward(x: &[f32], w: &[f32], eps: f32, out: &mut [f32], rstd: &mut [f32]) {
    let d = w.len();
    out.par_chunks_mut(d * ROW_BLOCK)
        .zip(rstd.par_chunks_mut(ROW_BLOCK))
        .zip(x.par_chunks(d * ROW_BLOCK))
        .for_each(|((o, r), x)| {
            for ((o, r), x) in o.chunks_mut(d).zip(r).zip(x.chunks(d)) {
                *r = rms_row(x, w, eps, o);
            }
        });
}

/// Backward of [`rms_forward`]: `dx` is set (or added to) from `dy`; returns the weight
/// gradient, summed over row blocks in block order.
pub fn rms_backward(
    x: &[f32],
    w: &[f32],
    rstd: &[f32],
    dy: &[f32],
    dx: &mut [f32],
    accumulate: bool,
) -> Vec<f32> {
    let d = w.len();
    let partial: Vec<Vec<f32>> = dx
        .par_chunks_mut(d * ROW_BLOCK)
        .zip(x.par_chunks(d * ROW_BLOCK))
        .zip(dy.par_chunks(d * ROW_BLOCK))
        .zip(rstd.par_chunks(ROW_BLOCK))
        .map(|(((dx, x), dy), r)| {
            let mut dw = vec![0.0f32; d];
            for (((dx, x), dy), &r) in dx.chunks_mut(d).zip(x.chunks(d)).zip(dy.chunks(d)).zip(r) {
                rms_row_back(x, w, r, dy, dx, &mut dw, accumulate);
            }
            dw
        })
        .collect();
    sum_blocks(partial, d)
}

/// Adds per-block partial vectors in block order.
fn sum_blocks(partial: Vec<Vec<f32>>, n: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; n];
    for p in partial {
        add_into(&mut out, &p);
    }
    out
}

simd_fn! {
    fn add_into(acc: &mut [f32], x: &[f32]) {
        for (a, &v) in acc.iter_mut().zip(x) {
            *a += v;
        }
    }
}

/// Column sums of the `cols`-wide block at the start of each `ld`-long row of `x` (a bias
/// gradient), in a fixed order.
pub fn col_sums(x: &[f32], ld: usize, cols: usize) -> Vec<f32> {
    let partial: Vec<Vec<f32>> = x
        .par_chunks(ld * ROW_BLOCK)
        .map(|rows| {
            let mut s = vec![0.0f32; cols];
            for row in rows.chunks(ld) {
                add_into(&mut s, &row[..cols]);
            }
            s
        })
        .collect();
    sum_blocks(partial, cols)
}

/// Rotary tables for positions `0..seq`: `cos` and `sin`, `[seq, head_dim / 2]`, computed as
/// [`crate::model::qwen2::Rope`] computes them.
pub fn rope_tables(head_dim: usize, theta: f64, seq: usize) -> (Vec<f32>, Vec<f32>) {
    let inv_freq = crate::model::qwen2::rope_inv_freq(head_dim, theta);
    let half = inv_freq.len();
    let mut cos = Vec::with_capacity(seq * half);
    let mut sin = Vec::with_capacity(seq * half);
    for pos in 0..seq {
        for &f in &inv_freq {
            let angle = (pos as f32 * f) as f64;
            cos.push(angle.cos() as f32);
            sin.push(angle.sin() as f32);
        }
    }
    (cos, sin)
}

simd_fn! {
    /// Rotates the `heads` head vectors of one position in place (rotate-half layout); with
    /// `inverse`, rotates back (the backward of the rotation is its transpose).
    pub(super) fn rope_row(x: &mut [f32], heads: usize, cos: &[f32], sin: &[f32], inverse: bool) {
        let half = cos.len();
        let s = if inverse { -1.0f32 } else { 1.0 };
        for h in 0..heads {
            let (x1, x2) = x[h * 2 * half..(h + 1) * 2 * half].split_at_mut(half);
            for i in 0..half {
                let (a, b) = (x1[i], x2[i]);
                let sn = s * sin[i];
                x1[i] = a * cos[i] - b * sn;
                x2[i] = b * cos[i] + a * sn;
            }
        }
    }
}

/// Applies the rotation to the first `cols` values (`heads` heads) of each `ld`-long row of
/// `x`; row `r` is position `r % seq`.
#[allow(clippy::too_many_arguments)]
pub fn rope(
    x: &mut [f32],
    ld: usize,
    cols: usize,
    head_dim: usize,
    seq: usize,
    cos: &[f32],
    sin: &[f32],
    inverse: bool,
) {
    let half = head_dim / 2;
    x.par_chunks_mut(ld * ROW_BLOCK)
        .enumerate()
        .for_each(|(blk, rows)| {
            for (i, row) in rows.chunks_mut(ld).enumerate() {
                let pos = (blk * ROW_BLOCK + i) % seq;
                let t = pos * half..(pos + 1) * half;
                rope_row(
                    &mut row[..cols],
                    cols / head_dim,
                    &cos[t.clone()],
                    &sin[t],
                    inverse,
                );
            }
        });
}

simd_fn! {
    /// SwiGLU of one row: `out = silu(g) · u` with `gu = [g | u]`.
    fn swiglu_row(gu: &[f32], out: &mut [f32]) {
        let n = out.len();
        let (g, u) = gu.split_at(n);
        for i in 0..n {
            let s = 1.0 / (1.0 + exp(-g[i]));
            out[i] = g[i] * s * u[i];
        }
    }
}

simd_fn! {
    /// Backward of [`swiglu_row`]: `dgu = [dg | du]` from `dout`.
    fn swiglu_row_back(gu: &[f32], dout: &[f32], dgu: &mut [f32]) {
        let n = dout.len();
        let (g, u) = gu.split_at(n);
        let (dg, du) = dgu.split_at_mut(n);
        for i in 0..n {
            let s = 1.0 / (1.0 + exp(-g[i]));
            du[i] = dout[i] * g[i] * s;
            dg[i] = dout[i] * u[i] * s * (1.0 + g[i] * (1.0 - s));
        }
    }
}

/// SwiGLU over rows: `gu` is `[rows, 2·inter]`, `out` `[rows, inter]`.
pub fn swiglu(gu: &[f32], out: &mut [f32], inter: usize) {
    out.par_chunks_mut(inter * ROW_BLOCK)
        .zip(gu.par_chunks(2 * inter * ROW_BLOCK))
        .for_each(|(o, gu)| {
            for (o, gu) in o.chunks_mut(inter).zip(gu.chunks(2 * inter)) {
                swiglu_row(gu, o);
            }
        });
}

pub fn swiglu_backward(gu: &[f32], dout: &[f32], dgu: &mut [f32], inter: usize) {
    dgu.par_chunks_mut(2 * inter * ROW_BLOCK)
        .zip(gu.par_chunks(2 * inter * ROW_BLOCK))
        .zip(dout.par_chunks(inter * ROW_BLOCK))
        .for_each(|((dgu, gu), d)| {
            for ((dgu, gu), d) in dgu
                .chunks_mut(2 * inter)
                .zip(gu.chunks(2 * inter))
                .zip(d.chunks(inter))
            {
                swiglu_row_back(gu, d, dgu);
            }
        });
}

simd_fn! {
    /// Softmax cross-entropy of one row of logits against `target`: the row is replaced by
    /// its gradient `(softmax - onehot) · c`; returns the negative log-likelihood.
    fn xent_row(z: &mut [f32], target: usize, c: f32) -> f64 {
        let m = max(z);
        let zt = z[target];
        for v in z.iter_mut() {
            *v = exp(*v - m);
        }
        let s = sum(z);
        let inv = c / s;
        for v in z.iter_mut() {
            *v *= inv;
        }
        z[target] -= c;
        (m as f64 + (s as f64).ln()) - zt as f64
    }
}

/// Cross-entropy of every row of `logits` (`[rows, vocab]`, replaced by `c ·` its gradient);
/// returns the summed negative log-likelihood.
pub fn cross_entropy(logits: &mut [f32], targets: &[u32], vocab: usize, c: f32) -> f64 {
    let partial: Vec<f64> = logits
        .par_chunks_mut(vocab * ROW_BLOCK)
        .zip(targets.par_chunks(ROW_BLOCK))
        .map(|(z, t)| {
            z.chunks_mut(vocab)
                .zip(t)
                .map(|(z, &t)| xent_row(z, t as usize, c))
                .sum::<f64>()
        })
        .collect();
    partial.iter().sum()
}

/// [`cross_entropy`] with a weight per row: row `r` is replaced by `c · w_r ·` its gradient
/// (zeros where `w_r = 0`, skipping the softmax); returns `Σ_r w_r · nll_r`.
pub fn weighted_cross_entropy(
    logits: &mut [f32],
    targets: &[u32],
    weights: &[f32],
    vocab: usize,
    c: f32,
) -> f64 {
    let partial: Vec<f64> = logits
        .par_chunks_mut(vocab * ROW_BLOCK)
        .zip(targets.par_chunks(ROW_BLOCK))
        .zip(weights.par_chunks(ROW_BLOCK))
        .map(|((z, t), w)| {
            z.chunks_mut(vocab)
                .zip(t)
                .zip(w)
                .map(|((z, &t), &w)| {
                    if w == 0.0 {
                        z.fill(0.0);
                        0.0
                    } else {
                        w as f64 * xent_row(z, t as usize, c * w)
                    }
                })
                .sum::<f64>()
        })
        .collect();
    partial.iter().sum()
}

simd_fn! {
    /// One row of logits at inverse temperature `k`: replaced by its softmax; returns the
    /// log-probability of `target` and the distribution's entropy.
    fn logp_row(z: &mut [f32], target: usize, k: f32) -> (f32, f32) {
        let m = max(z) * k;
        let mut zt = 0.0;
        for (j, v) in z.iter_mut().enumerate() {
            let x = *v * k - m;
            if j == target {
                zt = x;
            }
            *v = exp(x);
        }
        let s = sum(z);
        let ls = s.ln();
        let inv = 1.0 / s;
        let mut ent = 0.0f32;
        for v in z.iter_mut() {
            *v *= inv;
            if *v > 0.0 {
                ent -= *v * v.ln();
            }
        }
        (zt - ls, ent)
    }
}

simd_fn! {
    /// A softmax row → the gradient of a loss whose derivative by the target's log-prob is
    /// `g`, through logits at inverse temperature `k`: `k · g · (onehot − p)`.
    fn logp_back_row(p: &mut [f32], target: usize, g: f32, k: f32) {
        let c = -g * k;
        for v in p.iter_mut() {
            *v *= c;
        }
        p[target] += g * k;
    }
}

simd_fn! {
    /// [`logp_back_row`] for a loss that also has derivative `e` by the row's entropy `h`:
    /// `k · (g · (onehot − p) − e · p ⊙ (ln p + h))`, since ∂H/∂x_j = −p_j (ln p_j + H).
    fn logp_entropy_back_row(p: &mut [f32], target: usize, g: f32, e: f32, h: f32, k: f32) {
        for v in p.iter_mut() {
            let q = *v;
            let ln = if q > 0.0 { q.ln() } else { 0.0 };
            *v = -k * (g * q + e * q * (ln + h));
        }
        p[target] += g * k;
    }
}

/// Log-probabilities of `targets` under `logits` (`[rows, vocab]`) at inverse temperature `k`,
/// and each row's entropy; `logits` is left holding the softmax probabilities.
pub fn target_logp(
    logits: &mut [f32],
    targets: &[u32],
    vocab: usize,
    k: f32,
) -> (Vec<f32>, Vec<f32>) {
    let (lp, ent): (Vec<f32>, Vec<f32>) = logits
        .par_chunks_mut(vocab)
        .zip(targets.par_iter())
        .map(|(z, &t)| logp_row(z, t as usize, k))
        .unzip();
    (lp, ent)
}

/// Softmax rows (from [`target_logp`]) → logit gradients for per-row `dlogp` and, when
/// `dent` is not empty, per-row derivatives `dent` by the rows' entropies `entropy`.
pub fn target_logp_backward(
    probs: &mut [f32],
    targets: &[u32],
    dlogp: &[f32],
    (dent, entropy): (&[f32], &[f32]),
    vocab: usize,
    k: f32,
) {
    if dent.is_empty() {
        probs
            .par_chunks_mut(vocab)
            .zip(targets.par_iter().zip(dlogp))
            .for_each(|(p, (&t, &g))| logp_back_row(p, t as usize, g, k));
        return;
    }
    probs
        .par_chunks_mut(vocab)
        .zip(targets.par_iter().zip(dlogp))
        .zip(dent.par_iter().zip(entropy))
        .for_each(|((p, (&t, &g)), (&e, &h))| logp_entropy_back_row(p, t as usize, g, e, h, k));
}

/// `out = a + b` elementwise (the residual stream).
pub fn add(a: &[f32], b: &[f32], out: &mut [f32]) {
    out.par_chunks_mut(1 << 14)
        .zip(a.par_chunks(1 << 14))
        .zip(b.par_chunks(1 << 14))
        .for_each(|((o, a), b)| add_row(a, b, o));
}

simd_fn! {
    fn add_row(a: &[f32], b: &[f32], out: &mut [f32]) {
        for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
            *o = x + y;
        }
    }
}

/// Adds `bias` to the first `bias.len()` values of each `ld`-long row.
pub fn add_bias(x: &mut [f32], ld: usize, bias: &[f32]) {
    x.par_chunks_mut(ld * ROW_BLOCK).for_each(|rows| {
        for row in rows.chunks_mut(ld) {
            add_into(&mut row[..bias.len()], bias);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_close_to_std() {
        let mut worst = 0.0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let rel = ((exp(x) as f64 - (x as f64).exp()) / (x as f64).exp()).abs();
            worst = worst.max(rel);
            x += 0.0137;
        }
        assert!(worst < 5e-7, "worst relative error {worst}");
        assert_eq!(exp(-1e30), exp(-87.0));
    }

    #[test]
    fn cross_entropy_matches_direct_formula() {
        let v = 37;
        let mut z: Vec<f32> = (0..2 * v).map(|i| (i as f32 * 0.7).sin() * 3.0).collect();
        let orig = z.clone();
        let nll = cross_entropy(&mut z, &[5, 36], v, 0.5);
        let mut want = 0.0;
        for (r, &t) in [5usize, 36].iter().enumerate() {
            let row = &orig[r * v..(r + 1) * v];
            let lse = row.iter().map(|&x| (x as f64).exp()).sum::<f64>().ln();
            want += lse - row[t] as f64;
            for j in 0..v {
                let p = ((row[j] as f64) - lse).exp();
                let g = 0.5 * (p - if j == t { 1.0 } else { 0.0 });
                assert!((z[r * v + j] as f64 - g).abs() < 1e-6);
            }
        }
        assert!((nll - want).abs() < 1e-5);
    }

    #[test]
    fn rope_inverse_undoes_rotation() {
        let (cos, sin) = rope_tables(8, 1e4, 3);
        let orig: Vec<f32> = (0..3 * 16).map(|i| i as f32 * 0.1 - 1.0).collect();
        let mut x = orig.clone();
        rope(&mut x, 16, 16, 8, 3, &cos, &sin, false);
        assert!(x != orig);
        rope(&mut x, 16, 16, 8, 3, &cos, &sin, true);
        for (a, b) in x.iter().zip(&orig) {
            assert!((a - b).abs() < 1e-5);
        }
    }
}
