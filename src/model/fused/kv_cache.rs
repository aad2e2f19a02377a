//! The host decoder's KV cache and the attention of one query row over it.
//!
//! Decoding is bound by reading the cache, so its layout is chosen for the kernel that reads
//! it: keys are stored transposed and padded to whole vector registers, so a query head's
//! scores over all cached positions are vector products with no horizontal sums and no ragged
//! tail; values stay row-major, so the weighted sum reads whole value heads. A query may attend
//! to several spans (its prompt's shared cache, then its own decoded positions) as if they were
//! one, without copying them together.

use super::ops::{exp, max, simd_fn, sum};

/// Head geometry of the attention: query heads, key/value heads, and the size of one head.
#[derive(Debug, Clone, Copy)]
pub(super) struct HeadShape {
    pub heads: usize,
    pub kv_heads: usize,
    pub hd: usize,
}

/// Lanes of one vector register; a span's scores are computed in whole vectors, so a cache
/// row's stride is a multiple of it and a scores buffer holds this many slots past its end.
const LANES: usize = 16;

/// `n` rounded up to whole vectors.
fn padded(n: usize) -> usize {
    n.div_ceil(LANES) * LANES
}

/// Keys and values of up to `cap` positions, per layer. Keys are stored transposed,
/// `[kvd, stride]` with `stride = padded(cap)` (a key head's coordinate across positions is
/// contiguous and padded to whole vectors, so the scores of a query head are vector products
/// over positions, with no horizontal sums and no ragged tail); values are `[positions, kvd]`.
#[derive(Clone, Default)]
pub(super) struct Kv {
    k: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    /// Positions stored.
    pub len: usize,
    /// Positions it can hold.
    pub cap: usize,
}

impl Kv {
    pub fn new(layers: usize, cap: usize) -> Kv {
        Kv {
            k: vec![Vec::new(); layers],
            v: vec![Vec::new(); layers],
            len: 0,
            cap,
        }
    }

    /// Store the key and value of position `at` (< `cap`) of layer `li`; buffers are made on
    /// first use.
    pub fn put(&mut self, li: usize, at: usize, key: &[f32], value: &[f32]) {
        let (kvd, stride) = (key.len(), padded(self.cap));
        if self.k[li].is_empty() {
            self.k[li] = vec![0.0; kvd * stride];
            self.v[li].reserve(kvd * self.cap);
        }
        for (i, &x) in key.iter().enumerate() {
            self.k[li][i * stride + at] = x;
        }
        debug_assert_eq!(self.v[li].len(), at * kvd);
        self.v[li].extend_from_slice(value);
    }

    /// The first `n` positions of layer `li` as an attention span.
    pub fn span(&self, li: usize, n: usize) -> Span<'_> {
        Span {
            kt: &self.k[li],
            stride: padded(self.cap),
            n,
            v: &self.v[li],
        }
    }
}

/// Cached positions one query attends to: transposed keys with their row stride, and values.
#[derive(Clone, Copy)]
pub(super) struct Span<'a> {
    kt: &'a [f32],
    stride: usize,
    n: usize,
    v: &'a [f32],
}

/// Softmax of `scale · s` in place.
#[inline(always)]
fn softmax(s: &mut [f32], scale: f32) {
    let m = max(s);
    for v in s.iter_mut() {
        *v = exp((*v - m) * scale);
    }
    let inv = 1.0 / sum(s);
    for v in s.iter_mut() {
        *v *= inv;
    }
}

/// `out += p · v`.
#[inline(always)]
fn axpy(out: &mut [f32], p: f32, v: &[f32]) {
    for (o, &x) in out.iter_mut().zip(v) {
        *o += p * x;
    }
}

/// One block of `B` positions from `j0` of [`scores`], accumulated in registers over the
/// head's coordinates and stored once.
#[inline(always)]
fn score_block<const B: usize>(out: &mut [f32], q: &[f32], kt: &[f32], stride: usize, j0: usize) {
    let mut acc = [0f32; B];
    let mut row = j0;
    for &qi in q {
        let k: &[f32; B] = kt[row..row + B].try_into().expect("a block");
        for l in 0..B {
            acc[l] += qi * k[l];
        }
        row += stride;
    }
    out[j0..j0 + B].copy_from_slice(&acc);
}

/// `out[j] = Σ_i q[i] · kt[i·stride + j]` for `j < padded(n)`: the scores of one query head
/// against transposed keys (slots from `n` on are the cache's padding, to be ignored). Blocks
/// of 128 positions keep eight independent sums in flight, enough to hide the adds' latency;
/// the rest goes in blocks of 64, 32 and 16, never element by element.
#[inline(always)]
fn scores(out: &mut [f32], q: &[f32], kt: &[f32], stride: usize, n: usize) {
    let n = padded(n);
    let mut j = 0;
    while j + 128 <= n {
        score_block::<128>(out, q, kt, stride, j);
        j += 128;
    }
    if j + 64 <= n {
        score_block::<64>(out, q, kt, stride, j);
        j += 64;
    }
    if j + 32 <= n {
        score_block::<32>(out, q, kt, stride, j);
        j += 32;
    }
    if j + 16 <= n {
        score_block::<16>(out, q, kt, stride, j);
    }
}

/// `o += Σ_j p[j] · v[j·ld .. j·ld + H]`: one head's weighted values, its `H` outputs held in
/// registers across positions, four positions at a time in separate sums (one running sum
/// would wait on the previous add at every position).
#[inline(always)]
fn weighted<const H: usize>(o: &mut [f32], p: &[f32], v: &[f32], ld: usize) {
    let (mut a0, mut a1, mut a2, mut a3) = ([0f32; H], [0f32; H], [0f32; H], [0f32; H]);
    let full = p.len() - p.len() % 4;
    let mut at = 0;
    for j in (0..full).step_by(4) {
        let r0: &[f32; H] = v[at..at + H].try_into().expect("a value head");
        let r1: &[f32; H] = v[at + ld..at + ld + H].try_into().expect("a value head");
        let r2: &[f32; H] = v[at + 2 * ld..at + 2 * ld + H]
            .try_into()
            .expect("a value head");
        let r3: &[f32; H] = v[at + 3 * ld..at + 3 * ld + H]
            .try_into()
            .expect("a value head");
        let (p0, p1, p2, p3) = (p[j], p[j + 1], p[j + 2], p[j + 3]);
        for l in 0..H {
            a0[l] += p0 * r0[l];
            a1[l] += p1 * r1[l];
            a2[l] += p2 * r2[l];
            a3[l] += p3 * r3[l];
        }
        at += 4 * ld;
    }
    let mut acc = [0f32; H];
    for l in 0..H {
        acc[l] = (a0[l] + a1[l]) + (a2[l] + a3[l]);
    }
    for &pj in &p[full..] {
        let r: &[f32; H] = v[at..at + H].try_into().expect("a value head");
        for l in 0..H {
            acc[l] += pj * r[l];
        }
        at += ld;
    }
    for l in 0..H {
        o[l] += acc[l];
    }
}

simd_fn! {
    /// One query row's attention over cached spans: writes the `heads · hd` output into `o`.
    /// Compiled for the processor's vector units, so the row kernels inline into it; plain
    /// index loops, because iterator adaptors would be separate functions compiled without.
    pub(super) fn attend(q: &[f32], spans: &[Span], s: HeadShape, scores_buf: &mut Vec<f32>, o: &mut [f32]) {
        let (hd, kvd) = (s.hd, s.kv_heads * s.hd);
        let group = s.heads / s.kv_heads;
        let scale = 1.0 / (hd as f32).sqrt();
        let total: usize = spans.iter().map(|s| s.n).sum();
        o.fill(0.0);
        for h in 0..s.heads {
            let g = h / group;
            let qh = &q[h * hd..(h + 1) * hd];
            scores_buf.clear();
            scores_buf.resize(total + LANES, 0.0);
            // Each span writes whole vectors; the next one starts over the previous one's padding.
            let mut at = 0;
            for sp in spans {
                scores(&mut scores_buf[at..], qh, &sp.kt[g * hd * sp.stride..], sp.stride, sp.n);
                at += sp.n;
            }
            softmax(&mut scores_buf[..total], scale);
            let oh = &mut o[h * hd..(h + 1) * hd];
            let mut at = 0;
            for sp in spans {
                let p = &scores_buf[at..at + sp.n];
                let v = &sp.v[g * hd..];
                match hd {
                    32 => weighted::<32>(oh, p, v, kvd),
                    64 => weighted::<64>(oh, p, v, kvd),
                    128 => weighted::<128>(oh, p, v, kvd),
                    _ => {
                        let mut off = 0;
                        for &pj in p {
                            axpy(oh, pj, &v[off..off + hd]);
                            off += kvd;
                        }
                    }
                }
                at += sp.n;
            }
        }
    }
}
