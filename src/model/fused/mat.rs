//! Strided matrix views over `f32` slices and one checked entry to the `gemm` crate, so that
//! transposes and column blocks (the q, k and v parts of a fused projection) cost nothing.
//!
//! Products run on the `gemm` crate (AVX-512 or AVX2 kernels chosen at run time), one
//! single-threaded call per block of output rows, one block per thread; how the rows are cut
//! does not change any sum (see [`matmul`]), so every product here is bit-identical from run
//! to run and from one thread count to another (tests/it/fused.rs checks this).

use ::gemm::Parallelism;
use rayon::prelude::*;

/// A read-only `rows × cols` view: element `(r, c)` lies at `ptr + r·rs + c·cs`.
#[derive(Clone, Copy)]
pub struct Mat<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

impl<'a> Mat<'a> {
    /// A row-major `rows × cols` matrix stored contiguously.
    pub fn new(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self::strided(data, rows, cols, cols)
    }

    /// Rows of `cols` values, `rs` apart (a column block of a wider row-major matrix when
    /// `data` starts at the block's first column).
    pub fn strided(data: &'a [f32], rows: usize, cols: usize, rs: usize) -> Self {
        let m = Mat {
            data,
            rows,
            cols,
            rs,
            cs: 1,
        };
        assert!(m.fits(data.len()), "matrix view out of bounds");
        m
    }

    /// `(rows, cols)`.
    pub fn shape(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }

    /// Rows `r0..r1` of the view.
    pub fn rows(self, r0: usize, r1: usize) -> Self {
        assert!(r0 <= r1 && r1 <= self.rows, "row range out of bounds");
        if r0 == r1 {
            return Mat { rows: 0, ..self };
        }
        Mat {
            data: &self.data[r0 * self.rs..],
            rows: r1 - r0,
            ..self
        }
    }

    /// The transpose (same memory).
    pub fn t(self) -> Self {
        Mat {
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
            ..self
        }
    }

    fn fits(&self, len: usize) -> bool {
        self.rows == 0
            || self.cols == 0
            || (self.rows - 1) * self.rs + (self.cols - 1) * self.cs < len
    }
}

/// Whether a product may spread over the thread pool (callers already running in parallel
/// tasks pass `Serial`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Threads {
    Serial,
    Pool,
}

/// `dst = a · b` (or `dst += a · b` with `accumulate`), `dst` row-major with row stride `ld`.
///
/// On the pool, the rows of `dst` are cut into one block per thread, each one single-threaded
/// product (so no second thread pool competes with rayon's). The result does not depend on the
/// cut: gemm sums each output over the depth in chunks that depend on the depth alone, except
/// on its paths for matrices of at most 64 × 64 and for single rows, so a block of a product
/// at most 64 wide has more than 64 rows and any block has at least 32 (tests/it/fused.rs
/// checks that 1 to 4 threads agree bit for bit).
pub fn matmul(dst: &mut [f32], ld: usize, a: Mat, b: Mat, accumulate: bool, threads: Threads) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!(k, b.rows, "inner dimensions differ");
    if m == 0 || n == 0 {
        return;
    }
    assert!((m - 1) * ld + n <= dst.len(), "destination out of bounds");
    let blocks = match threads {
        Threads::Serial => 1,
        Threads::Pool => {
            let min_rows = if n <= 64 { 65 } else { 32 };
            rayon::current_num_threads().min(m / min_rows).max(1)
        }
    };
    if blocks == 1 {
        return kernel(dst, ld, a, b, accumulate);
    }
    // Block i is rows i·m/blocks .. (i+1)·m/blocks: at least m / blocks rows.
    let bounds: Vec<usize> = (0..=blocks).map(|i| i * m / blocks).collect();
    let mut parts = Vec::with_capacity(blocks);
    let mut rest = &mut dst[..(m - 1) * ld + n];
    for w in bounds.windows(2) {
        let (r0, r1) = (w[0], w[1]);
        let len = if r1 == m { rest.len() } else { (r1 - r0) * ld };
        let (head, tail) = rest.split_at_mut(len);
        parts.push((r0, r1, head));
        rest = tail;
    }
    parts.into_par_iter().for_each(|(r0, r1, block)| {
        kernel(block, ld, a.rows(r0, r1), b, accumulate);
    });
}

/// [`matmul`] on the calling thread.
fn kernel(dst: &mut [f32], ld: usize, a: Mat, b: Mat, accumulate: bool) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    debug_assert!((m - 1) * ld + n <= dst.len());
    if k == 0 {
        if !accumulate {
            for r in 0..m {
                dst[r * ld..r * ld + n].fill(0.0);
            }
        }
        return;
    }
    // SAFETY: the views and the destination were bounds-checked in `matmul` and in
    // `Mat::strided`; `dst` is borrowed mutably, so it aliases neither input.
    unsafe {
        ::gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            ld as isize,
            accumulate,
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr(),
            b.cs as isize,
            b.rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            Parallelism::None,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
        let mut out = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                out[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
            }
        }
        out
    }

    #[test]
    fn products_with_transposes_and_blocks() {
        let (m, k, n) = (5, 7, 3);
        let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.11).cos()).collect();
        let want = naive(&a, &b, m, k, n);
        let mut got = vec![0.0; m * n];
        matmul(
            &mut got,
            n,
            Mat::new(&a, m, k),
            Mat::new(&b, k, n),
            false,
            Threads::Pool,
        );
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-5);
        }
        // aᵀ stored as [k, m]; the product of its transpose is the same.
        let mut at = vec![0.0; k * m];
        for i in 0..m {
            for p in 0..k {
                at[p * m + i] = a[i * k + p];
            }
        }
        // Accumulate into a column block of a wider destination.
        let mut wide = vec![1.0; m * (n + 2)];
        matmul(
            &mut wide[2..],
            n + 2,
            Mat::new(&at, k, m).t(),
            Mat::new(&b, k, n),
            true,
            Threads::Serial,
        );
        for i in 0..m {
            assert_eq!(wide[i * (n + 2)], 1.0);
            for j in 0..n {
                assert!((wide[i * (n + 2) + 2 + j] - 1.0 - want[i * n + j]).abs() < 1e-5);
            }
        }
    }
}
