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

/// A (row, KV head) task's block of query rows `i0..i1`, the `rep` heads of the group
/// stacked: row `r·rows + j` of a stacked matrix is head `r`'s position `i0 + j`.
struct Block {
    i0: usize,
    rows: usize,
    rep: usize,
}

impl Block {
    /// The blocks of a sequence of `seq` positions, in order.
    fn all(seq: usize, rep: usize) -> impl Iterator<Item = Block> {
        (0..seq).step_by(BLOCK).map(move |i0| Block {
            i0,
            rows: BLOCK.min(seq - i0),
            rep,
        })
    }
    /// The whole sequence as one block (for copying a task's per-head buffers back).
    fn whole(seq: usize, rep: usize) -> Block {
        Block {
            i0: 0,
            rows: seq,
            rep,
        }
    }
    fn end(&self) -> usize {
        self.i0 + self.rows
    }
    /// The causal position of stacked row `r`.
    fn pos(&self, r: usize) -> usize {
        self.i0 + r % self.rows
    }
}

/// Copies head `h0 + r`'s vectors for positions `blk.i0..blk.end()` of row `b` out of
/// `src` (rows `ld` apart, heads `hd` apart) into stacked `dst` (`[rep·rows, hd]`).
fn gather(dst: &mut [f32], src: &[f32], ld: usize, base: usize, h0: usize, hd: usize, blk: &Block) {
    for r in 0..blk.rep {
        for j in 0..blk.rows {
            let at = base + (blk.i0 + j) * ld + (h0 + r) * hd;
            dst[(r * blk.rows + j) * hd..][..hd].copy_from_slice(&src[at..at + hd]);
        }
    }
}

/// The inverse of [`gather`]: stacked `src` back into `dst`.
fn scatter(dst: &mut [f32], src: &[f32], ld: usize, h0: usize, hd: usize, blk: &Block) {
    for r in 0..blk.rep {
        for j in 0..blk.rows {
            let at = (blk.i0 + j) * ld + (h0 + r) * hd;
            dst[at..at + hd].copy_from_slice(&src[(r * blk.rows + j) * hd..][..hd]);
        }
    }
}

/// Stacked block rows `src` (`[rep·rows, hd]`) into a task's per-head buffer `dst`
/// (`[rep, seq, hd]`).
fn unstack(dst: &mut [f32], src: &[f32], seq: usize, hd: usize, blk: &Block) {
    for r in 0..blk.rep {
        for j in 0..blk.rows {
            let at = (r * seq + blk.i0 + j) * hd;
            dst[at..at + hd].copy_from_slice(&src[(r * blk.rows + j) * hd..][..hd]);
        }
    }
}

/// Views of row `b`'s keys and values of KV head `g`, `[seq, hd]` each.
fn kv_views<'a>(qkv: &'a [f32], sh: &Shape, b: usize, g: usize) -> (Mat<'a>, Mat<'a>) {
    let (t, hd, w) = (sh.seq, sh.head_dim, sh.qkv_width());
    let k0 = b * t * w + sh.hidden() + g * hd;
    (
        Mat::strided(&qkv[k0..], t, hd, w),
        Mat::strided(&qkv[k0 + sh.kv_dim()..], t, hd, w),
    )
}

/// `o` (`[batch·seq, heads·hd]`) and the row log-sum-exps `lse` (`[batch, heads, seq]`).
pub fn forward(qkv: &[f32], sh: Shape, o: &mut [f32], lse: &mut [f32]) {
    let (t, hd, d, w) = (sh.seq, sh.head_dim, sh.hidden(), sh.qkv_width());
    let rep = sh.heads / sh.kv_heads;
    let scale = sh.scale();
    // Per task: the outputs of its heads, [rep, t, hd]; lse is [batch, kv, rep, t] already.
    let outs: Vec<Vec<f32>> = lse
        .par_chunks_mut(rep * t)
        .enumerate()
        .map(|(task, lse)| {
            let (b, g) = (task / sh.kv_heads, task % sh.kv_heads);
            let (k, v) = kv_views(qkv, &sh, b, g);
            let mut out = vec![0.0f32; rep * t * hd];
            let mut q = vec![0.0f32; rep * BLOCK * hd];
            let mut ob = vec![0.0f32; rep * BLOCK * hd];
            let mut s = vec![0.0f32; rep * BLOCK * t];
            for blk in Block::all(t, rep) {
                let (m, i1) = (rep * blk.rows, blk.end());
                gather(&mut q, qkv, w, b * t * w, g * rep, hd, &blk);
                // S = Q · K[0..i1]ᵀ  [rep·rows, i1]
                let qm = Mat::new(&q, m, hd);
                matmul(&mut s, i1, qm, k.rows(0, i1).t(), false, Threads::Serial);
                for (r, row) in s.chunks_mut(i1).take(m).enumerate() {
                    let i = blk.pos(r);
                    lse[(r / blk.rows) * t + i] = softmax_row(&mut row[..=i], scale);
                    row[i + 1..].fill(0.0);
                }
                // O = P · V[0..i1]  [rep·rows, hd]
                let p = Mat::new(&s, m, i1);
                matmul(&mut ob, hd, p, v.rows(0, i1), false, Threads::Serial);
                unstack(&mut out, &ob, t, hd, &blk);
            }
            out
        })
        .collect();
    let whole = Block::whole(t, rep);
    o.par_chunks_mut(t * d)
        .zip(outs.par_chunks(sh.kv_heads))
        .for_each(|(o, outs)| {
            for (g, out) in outs.iter().enumerate() {
                scatter(o, out, d, g * rep, hd, &whole);
            }
        });
}

/// Gradients of the queries, keys and values (into `dqkv`, laid out as `qkv`) from the output
/// gradient `dout`, given the forward's `qkv`, `o` and `lse`.
pub fn backward(qkv: &[f32], o: &[f32], lse: &[f32], dout: &[f32], sh: Shape, dqkv: &mut [f32]) {
    let (t, hd, d, w) = (sh.seq, sh.head_dim, sh.hidden(), sh.qkv_width());
    let rep = sh.heads / sh.kv_heads;
    let scale = sh.scale();
    // Per task: the query gradients of its heads [rep, t, hd], then its key and value
    // gradients, [t, hd] each.
    let groups: Vec<Vec<f32>> = (0..sh.batch * sh.kv_heads)
        .into_par_iter()
        .map(|task| {
            let (b, g) = (task / sh.kv_heads, task % sh.kv_heads);
            let (k, v) = kv_views(qkv, &sh, b, g);
            let lse = &lse[task * rep * t..][..rep * t];
            let mut grads = vec![0.0f32; (rep + 2) * t * hd];
            let (dq_all, dkv) = grads.split_at_mut(rep * t * hd);
            let (dk, dv) = dkv.split_at_mut(t * hd);
            let n = rep * BLOCK;
            let (mut q, mut dob, mut dqb) =
                (vec![0.0; n * hd], vec![0.0; n * hd], vec![0.0; n * hd]);
            let (mut p, mut dp) = (vec![0.0f32; n * t], vec![0.0f32; n * t]);
            let mut dd = vec![0.0f32; n];
            for blk in Block::all(t, rep) {
                let (m, i1) = (rep * blk.rows, blk.end());
                gather(&mut q, qkv, w, b * t * w, g * rep, hd, &blk);
                gather(&mut dob, dout, d, b * t * d, g * rep, hd, &blk);
                for (r, di) in dd.iter_mut().take(m).enumerate() {
                    let at = (b * t + blk.pos(r)) * d + (g * rep + r / blk.rows) * hd;
                    *di = dot(&dob[r * hd..(r + 1) * hd], &o[at..at + hd]);
                }
                let qm = Mat::new(&q, m, hd);
                let dom = Mat::new(&dob, m, hd);
                matmul(&mut p, i1, qm, k.rows(0, i1).t(), false, Threads::Serial);
                for (r, row) in p.chunks_mut(i1).take(m).enumerate() {
                    let i = blk.pos(r);
                    probs_row(&mut row[..=i], scale, lse[(r / blk.rows) * t + i]);
                    row[i + 1..].fill(0.0);
                }
                let pm = Mat::new(&p, m, i1);
                // dV[0..i1] += Pᵀ · dO;  dP = dO · V[0..i1]ᵀ
                matmul(dv, hd, pm.t(), dom, true, Threads::Serial);
                matmul(&mut dp, i1, dom, v.rows(0, i1).t(), false, Threads::Serial);
                for (r, (dprow, prow)) in dp.chunks_mut(i1).zip(p.chunks(i1)).take(m).enumerate() {
                    dscores_row(prow, dprow, dd[r], scale);
                }
                let ds = Mat::new(&dp, m, i1);
                // dQ = dS · K[0..i1];  dK[0..i1] += dSᵀ · Q
                matmul(&mut dqb, hd, ds, k.rows(0, i1), false, Threads::Serial);
                matmul(dk, hd, ds.t(), qm, true, Threads::Serial);
                unstack(dq_all, &dqb, t, hd, &blk);
            }
            grads
        })
        .collect();
    let kvd = sh.kv_dim();
    let whole = Block::whole(t, rep);
    dqkv.par_chunks_mut(t * w)
        .zip(groups.par_chunks(sh.kv_heads))
        .for_each(|(dqkv, groups)| {
            for (g, grads) in groups.iter().enumerate() {
                scatter(dqkv, grads, w, g * rep, hd, &whole);
                for (i, row) in dqkv.chunks_mut(w).enumerate() {
                    let dk = &grads[(rep * t + i) * hd..][..hd];
                    let dv = &grads[((rep + 1) * t + i) * hd..][..hd];
                    row[d + g * hd..d + (g + 1) * hd].copy_from_slice(dk);
                    row[d + kvd + g * hd..d + kvd + (g + 1) * hd].copy_from_slice(dv);
                }
            }
        });
}
