//! Causal grouped-query attention, forward and backward, in blocks of query rows: the scores of
//! a block never leave the cache, only the row log-sum-exp is kept for the backward pass (which
//! recomputes the probabilities), and keys past the diagonal are never computed.
//!
//! Layout: `qkv` is `[batch·seq, heads·hd + 2·kv·hd]`, each row the position's (rotated) query
//! heads, then key heads, then value heads; `o` and its gradient are `[batch·seq, heads·hd]`.
//! Forward tasks are (row, head) pairs; backward tasks are (row, KV head) groups, so that the
//! key and value gradients of a group are summed by one task, in a fixed order.

use rayon::prelude::*;

use super::mat::{matmul, Mat, Threads};
use super::ops::{dot, exp, max, simd_fn, sum};

/// Query rows per block.
const BLOCK: usize = 64;

#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub batch: usize,
    pub seq: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
}

impl Shape {
    fn hidden(&self) -> usize {
        self.heads * self.head_dim
    }
    fn kv_dim(&self) -> usize {
        self.kv_heads * self.head_dim
    }
    /// Row length of `qkv`.
    pub fn qkv_width(&self) -> usize {
        self.hidden() + 2 * self.kv_dim()
    }
    fn scale(&self) -> f32 {
        1.0 / (self.head_dim as f32).sqrt()
    }
    /// Views of head `h`'s queries and of its group's keys and values for row `b`.
    fn views<'a>(&self, qkv: &'a [f32], b: usize, h: usize) -> (Mat<'a>, Mat<'a>, Mat<'a>) {
        let (t, hd, w) = (self.seq, self.head_dim, self.qkv_width());
        let g = h / (self.heads / self.kv_heads);
        let base = b * t * w;
        let k0 = base + self.hidden() + g * hd;
        (
            Mat::strided(&qkv[base + h * hd..], t, hd, w),
            Mat::strided(&qkv[k0..], t, hd, w),
            Mat::strided(&qkv[k0 + self.kv_dim()..], t, hd, w),
        )
    }
}

simd_fn! {
    /// Softmax of `scale · s` over one causal row in place; returns its log-sum-exp.
    fn softmax_row(s: &mut [f32], scale: f32) -> f32 {
        let m = max(s);
        for v in s.iter_mut() {
            *v = exp((*v - m) * scale);
        }
        let total = sum(s);
        let inv = 1.0 / total;
        for v in s.iter_mut() {
            *v *= inv;
        }
        m * scale + total.ln()
    }
}

simd_fn! {
    /// Recomputed probabilities of one causal row: `p = exp(scale · s − lse)`.
    fn probs_row(s: &mut [f32], scale: f32, lse: f32) {
        for v in s.iter_mut() {
            *v = exp(*v * scale - lse);
        }
    }
}

simd_fn! {
    /// `ds = p · (dp − d) · scale` over one row, into `dp`.
    fn dscores_row(p: &[f32], dp: &mut [f32], d: f32, scale: f32) {
        for (g, &pv) in dp.iter_mut().zip(p) {
            *g = pv * (*g - d) * scale;
        }
    }
}

/// Scores of query rows `i0..i1` against keys `0..i1` into `s` (`[i1 - i0, i1]`).
fn scores(s: &mut [f32], q: Mat, k: Mat, i0: usize, i1: usize) {
    matmul(
        s,
        i1,
        q.rows(i0, i1),
        k.rows(0, i1).t(),
        false,
        Threads::Serial,
    );
}

/// `o` (`[batch·seq, heads·hd]`) and the row log-sum-exps `lse` (`[batch, heads, seq]`).
pub fn forward(qkv: &[f32], sh: Shape, o: &mut [f32], lse: &mut [f32]) {
    let (t, hd, d) = (sh.seq, sh.head_dim, sh.hidden());
    let scale = sh.scale();
    let heads: Vec<Vec<f32>> = lse
        .par_chunks_mut(t)
        .enumerate()
        .map(|(task, lse)| {
            let (b, h) = (task / sh.heads, task % sh.heads);
            let (q, k, v) = sh.views(qkv, b, h);
            let mut out = vec![0.0f32; t * hd];
            let mut s = vec![0.0f32; BLOCK * t];
            for i0 in (0..t).step_by(BLOCK) {
                let i1 = (i0 + BLOCK).min(t);
                scores(&mut s, q, k, i0, i1);
                for (r, row) in s.chunks_mut(i1).take(i1 - i0).enumerate() {
                    let i = i0 + r;
                    lse[i] = softmax_row(&mut row[..=i], scale);
                    row[i + 1..].fill(0.0);
                }
                let p = Mat::new(&s, i1 - i0, i1);
                matmul(
                    &mut out[i0 * hd..],
                    hd,
                    p,
                    v.rows(0, i1),
                    false,
                    Threads::Serial,
                );
            }
            out
        })
        .collect();
    for (task, out) in heads.iter().enumerate() {
        let (b, h) = (task / sh.heads, task % sh.heads);
        for (i, src) in out.chunks(hd).enumerate() {
            let at = (b * t + i) * d + h * hd;
            o[at..at + hd].copy_from_slice(src);
        }
    }
}

/// Gradients of the queries, keys and values (into `dqkv`, laid out as `qkv`) from the output
/// gradient `dout`, given the forward's `qkv`, `o` and `lse`.
pub fn backward(qkv: &[f32], o: &[f32], lse: &[f32], dout: &[f32], sh: Shape, dqkv: &mut [f32]) {
    let (t, hd, d, w) = (sh.seq, sh.head_dim, sh.hidden(), sh.qkv_width());
    let rep = sh.heads / sh.kv_heads;
    let scale = sh.scale();
    // Per task: rep query-gradient blocks, then the key and value gradients, each [t, hd].
    let groups: Vec<Vec<f32>> = (0..sh.batch * sh.kv_heads)
        .into_par_iter()
        .map(|task| {
            let (b, g) = (task / sh.kv_heads, task % sh.kv_heads);
            let mut grads = vec![0.0f32; (rep + 2) * t * hd];
            let (dq_all, dkv) = grads.split_at_mut(rep * t * hd);
            let (dk, dv) = dkv.split_at_mut(t * hd);
            let mut p = vec![0.0f32; BLOCK * t];
            let mut dp = vec![0.0f32; BLOCK * t];
            let mut dd = vec![0.0f32; t];
            for r in 0..rep {
                let h = g * rep + r;
                let (q, k, v) = sh.views(qkv, b, h);
                let doh = Mat::strided(&dout[b * t * d + h * hd..], t, hd, d);
                let lse = &lse[(b * sh.heads + h) * t..][..t];
                for (i, di) in dd.iter_mut().enumerate() {
                    let at = (b * t + i) * d + h * hd;
                    *di = dot(&dout[at..at + hd], &o[at..at + hd]);
                }
                let dq = &mut dq_all[r * t * hd..(r + 1) * t * hd];
                for i0 in (0..t).step_by(BLOCK) {
                    let i1 = (i0 + BLOCK).min(t);
                    let rows = i1 - i0;
                    scores(&mut p, q, k, i0, i1);
                    for (r, row) in p.chunks_mut(i1).take(rows).enumerate() {
                        let i = i0 + r;
                        probs_row(&mut row[..=i], scale, lse[i]);
                        row[i + 1..].fill(0.0);
                    }
                    let pm = Mat::new(&p, rows, i1);
                    let do_blk = doh.rows(i0, i1);
                    // dV[0..i1] += Pᵀ · dO
                    matmul(dv, hd, pm.t(), do_blk, true, Threads::Serial);
                    // dP = dO · V[0..i1]ᵀ
                    matmul(
                        &mut dp,
                        i1,
                        do_blk,
                        v.rows(0, i1).t(),
                        false,
                        Threads::Serial,
                    );
                    for (r, (dprow, prow)) in
                        dp.chunks_mut(i1).zip(p.chunks(i1)).take(rows).enumerate()
                    {
                        dscores_row(prow, dprow, dd[i0 + r], scale);
                    }
                    let ds = Mat::new(&dp, rows, i1);
                    // dQ = dS · K[0..i1];  dK[0..i1] += dSᵀ · Q
                    matmul(
                        &mut dq[i0 * hd..],
                        hd,
                        ds,
                        k.rows(0, i1),
                        false,
                        Threads::Serial,
                    );
                    matmul(dk, hd, ds.t(), q.rows(i0, i1), true, Threads::Serial);
                }
            }
            grads
        })
        .collect();
    let kvd = sh.kv_dim();
    for (task, grads) in groups.iter().enumerate() {
        let (b, g) = (task / sh.kv_heads, task % sh.kv_heads);
        for i in 0..t {
            let row = &mut dqkv[(b * t + i) * w..][..w];
            for r in 0..rep {
                let h = g * rep + r;
                let src = &grads[(r * t + i) * hd..][..hd];
                row[h * hd..(h + 1) * hd].copy_from_slice(src);
            }
            let dk = &grads[(rep * t + i) * hd..][..hd];
            let dv = &grads[((rep + 1) * t + i) * hd..][..hd];
            row[d + g * hd..d + (g + 1) * hd].copy_from_slice(dk);
            row[d + kvd + g * hd..d + kvd + (g + 1) * hd].copy_from_slice(dv);
        }
    }
}
