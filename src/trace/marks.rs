//! Byte-class bitmaps of a completion: one bit per byte, 64 bytes a word, built in one SIMD
//! pass, so that finding the next clause delimiter or the next `<` is a mask and a
//! trailing-zero count instead of a byte loop.
//!
//! The reader builds them once per completion over the whole text; clause cutting and the tag
//! scan then never look at an ordinary byte again.

/// Bitmaps of the clause delimiters (`;`, newline, `.`) and of `<` over one text.
#[derive(Debug, Default)]
pub(crate) struct Marks {
    /// Per 64-byte block: `[delimiters, '<']`. Bits past the end of the text are 0.
    words: Vec<[u64; 2]>,
}

const DELIM: usize = 0;
const LT: usize = 1;

impl Marks {
    /// Mark `b`, reusing the buffer.
    #[inline]
    pub fn build(&mut self, b: &[u8]) {
        self.words.clear();
        self.words.resize(b.len().div_ceil(64), [0; 2]);
        let blocks = b.chunks_exact(64);
        let rest = blocks.remainder();
        for (w, blk) in self.words.iter_mut().zip(blocks) {
            *w = block(blk.try_into().expect("64-byte chunk"));
        }
        if !rest.is_empty() {
            // Zero padding: NUL is neither a delimiter nor `<`.
            let mut pad = [0u8; 64];
            pad[..rest.len()].copy_from_slice(rest);
            self.words[b.len() / 64] = block(&pad);
        }
    }

    /// The first delimiter (`;`, newline or `.`) at or after `i` and before `end`.
    #[inline]
    pub fn next_delim(&self, i: usize, end: usize) -> Option<usize> {
        self.next(DELIM, i, end)
    }

    /// The first `<` at or after `i` and before `end`.
    #[inline]
    pub fn next_lt(&self, i: usize, end: usize) -> Option<usize> {
        self.next(LT, i, end)
    }

    #[inline]
    fn next(&self, class: usize, i: usize, end: usize) -> Option<usize> {
        if i >= end {
            return None;
        }
        let mut w = i / 64;
        let mut m = self.words.get(w)?[class] & (!0u64 << (i % 64));
        while m == 0 {
            w += 1;
            if w * 64 >= end {
                return None;
            }
            m = self.words.get(w)?[class];
        }
        let k = w * 64 + m.trailing_zeros() as usize;
        (k < end).then_some(k)
    }
}

/// The masks of one 64-byte block.
#[cfg(target_arch = "x86_64")]
#[inline]
fn block(blk: &[u8; 64]) -> [u64; 2] {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
    };
    let (mut d, mut l) = (0u64, 0u64);
    // SAFETY: SSE2 is part of the x86_64 baseline, so these intrinsics are always available;
    // the loads read bytes 16k..16k+16 of the 64-byte array, and `loadu` needs no alignment.
    unsafe {
        let semi = _mm_set1_epi8(b';' as i8);
        let nl = _mm_set1_epi8(b'\n' as i8);
        let dot = _mm_set1_epi8(b'.' as i8);
        let lt = _mm_set1_epi8(b'<' as i8);
        for k in 0..4 {
            let v = _mm_loadu_si128(blk.as_ptr().add(16 * k).cast::<__m128i>());
            let dm = _mm_or_si128(
                _mm_or_si128(_mm_cmpeq_epi8(v, semi), _mm_cmpeq_epi8(v, nl)),
                _mm_cmpeq_epi8(v, dot),
            );
            d |= (_mm_movemask_epi8(dm) as u16 as u64) << (16 * k);
            l |= (_mm_movemask_epi8(_mm_cmpeq_epi8(v, lt)) as u16 as u64) << (16 * k);
        }
    }
    [d, l]
}

#[cfg(not(target_arch = "x86_64"))]
#[inline]
fn block(blk: &[u8; 64]) -> [u64; 2] {
    block_scalar(blk)
}

/// The masks of one block, a byte at a time (the reference for the SIMD version).
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
fn block_scalar(blk: &[u8; 64]) -> [u64; 2] {
    let (mut d, mut l) = (0u64, 0u64);
    for (i, &c) in blk.iter().enumerate() {
        d |= (matches!(c, b';' | b'\n' | b'.') as u64) << i;
        l |= ((c == b'<') as u64) << i;
    }
    [d, l]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simd_block_agrees_with_scalar() {
        // Every byte value in every lane, and some dense and sparse patterns.
        let mut blk = [0u8; 64];
        for base in 0..=255u8 {
            for (i, c) in blk.iter_mut().enumerate() {
                *c = base.wrapping_add((i * 37) as u8);
            }
            assert_eq!(block(&blk), block_scalar(&blk), "base {base}");
        }
        for pat in [b';', b'\n', b'.', b'<', 0x80 | b'.', 0xbc] {
            let blk = [pat; 64];
            assert_eq!(block(&blk), block_scalar(&blk));
        }
    }

    #[test]
    fn next_finds_each_mark_in_range() {
        let mut text = vec![b'a'; 300];
        for &i in &[0usize, 5, 63, 64, 65, 127, 128, 200, 299] {
            text[i] = b';';
        }
        text[10] = b'<';
        text[190] = b'<';
        let mut m = Marks::default();
        m.build(&text);
        let naive = |c: &dyn Fn(u8) -> bool, i: usize, end: usize| (i..end).find(|&k| c(text[k]));
        let is_delim = |c: u8| matches!(c, b';' | b'\n' | b'.');
        let is_lt = |c: u8| c == b'<';
        for i in 0..=310 {
            for end in [
                0, 1, 5, 6, 63, 64, 65, 100, 128, 129, 199, 200, 298, 299, 300,
            ] {
                assert_eq!(m.next_delim(i, end), naive(&is_delim, i, end), "{i}..{end}");
                assert_eq!(m.next_lt(i, end), naive(&is_lt, i, end), "{i}..{end}");
            }
        }
        // Reuse for a shorter text: no stale marks.
        m.build(b"ab.c");
        assert_eq!(m.next_delim(0, 4), Some(2));
        assert_eq!(m.next_lt(0, 4), None);
        m.build(b"");
        assert_eq!(m.next_delim(0, 0), None);
    }
}
