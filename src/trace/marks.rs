//! Byte-class bitmaps of a completion: one bit per byte, 64 bytes a word, built in one SIMD
//! pass, so that finding the next clause delimiter or the next `<` is a mask and a
//! trailing-zero count instead of a byte loop.
//!
//! The reader builds them once per completion over the whole text; clause cutting and the tag
//! scan then walk the set bits ([`Cursor`]) and never look at an ordinary byte again.

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

    /// The delimiters (`;`, newline, `.`) in `[start, end)`, in order.
    #[inline]
    pub fn delims(&self, start: usize, end: usize) -> Cursor {
        self.cursor(DELIM, start, end)
    }

    /// The `<` bytes in `[start, end)`, in order.
    #[inline]
    pub fn lts(&self, start: usize, end: usize) -> Cursor {
        self.cursor(LT, start, end)
    }

    #[inline]
    fn cursor(&self, class: usize, start: usize, end: usize) -> Cursor {
        let end = end.min(self.words.len() * 64);
        if start >= end {
            return Cursor {
                class,
                w: 0,
                m: 0,
                end: 0,
            };
        }
        let w = start / 64;
        Cursor {
            class,
            w,
            m: self.words[w][class] & (!0u64 << (start % 64)),
            end,
        }
    }

    /// The next position of `cur`'s class, if any is left before its end.
    #[inline]
    pub fn next(&self, cur: &mut Cursor) -> Option<usize> {
        while cur.m == 0 {
            cur.w += 1;
            if cur.w * 64 >= cur.end {
                return None;
            }
            cur.m = self.words[cur.w][cur.class];
        }
        let k = cur.w * 64 + cur.m.trailing_zeros() as usize;
        cur.m &= cur.m - 1;
        (k < cur.end).then_some(k)
    }
}

/// A walk over the set bits of one class in a range (see [`Marks::next`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cursor {
    class: usize,
    /// The current word and its bits not yet returned.
    w: usize,
    m: u64,
    end: usize,
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
    fn cursors_walk_each_mark_in_range() {
        let mut text = vec![b'a'; 300];
        for &i in &[0usize, 5, 63, 64, 65, 127, 128, 200, 299] {
            text[i] = b';';
        }
        text[10] = b'<';
        text[190] = b'<';
        text[66] = b'.';
        text[67] = b'\n';
        let mut m = Marks::default();
        m.build(&text);
        fn all(m: &Marks, mut cur: Cursor) -> Vec<usize> {
            let mut v = Vec::new();
            while let Some(k) = m.next(&mut cur) {
                v.push(k);
            }
            v
        }
        for start in 0..=310 {
            for end in [
                0, 1, 5, 6, 63, 64, 65, 100, 128, 129, 199, 200, 298, 299, 300, 400,
            ] {
                let want = |f: &dyn Fn(u8) -> bool| -> Vec<usize> {
                    (start..end.min(300)).filter(|&k| f(text[k])).collect()
                };
                let d = want(&|c| matches!(c, b';' | b'\n' | b'.'));
                assert_eq!(all(&m, m.delims(start, end)), d, "{start}..{end}");
                assert_eq!(
                    all(&m, m.lts(start, end)),
                    want(&|c| c == b'<'),
                    "{start}..{end}"
                );
            }
        }
        // Reuse for a shorter text: no stale marks.
        m.build(b"ab.c");
        assert_eq!(all(&m, m.delims(0, 4)), [2]);
        assert!(all(&m, m.lts(0, 4)).is_empty());
        m.build(b"");
        assert!(all(&m, m.delims(0, 0)).is_empty());
    }
}
