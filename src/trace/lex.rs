//! Byte lexing for the trace reader: byte classes, whitespace trimming, letters, numbers and
//! substring search over a completion's bytes.
//!
//! Completions are read as bytes, never as `char`s: every token of the trace grammar is ASCII,
//! and any non-ASCII byte counts as part of a word, so a letter glued to UTF-8 text is never a
//! variable. Classes are table lookups, the digit run of a literal is read eight bytes at a
//! time, and searches for a byte or a keyword go through `memchr` / `memchr::memmem`: the
//! reader calls these on every clause, so they are the inner loop of verification.

use memchr::memmem;

use super::num::Num;

/// Word bytes (ASCII letters and digits, `_`, any non-ASCII byte): one table lookup instead
/// of a chain of comparisons and branches.
static WORD: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80;
        c += 1;
    }
    t
};

/// Letter slot of each byte: 0..26 for `A`-`Z`, 26..52 for `a`-`z`, `NO_SLOT` otherwise.
const NO_SLOT: u8 = u8::MAX;
static SLOT: [u8; 256] = {
    let mut t = [NO_SLOT; 256];
    let mut c = 0;
    while c < 26 {
        t[b'A' as usize + c] = c as u8;
        t[b'a' as usize + c] = c as u8 + 26;
        c += 1;
    }
    t
};

#[inline(always)]
pub(super) fn is_word(c: u8) -> bool {
    WORD[c as usize]
}

#[inline(always)]
pub(super) fn is_ws(c: u8) -> bool {
    c == b' ' || c == b'\t' || c == b'\r' || c == b'\n'
}

#[inline(always)]
pub(super) fn slot_ix(c: u8) -> Option<usize> {
    let ix = SLOT[c as usize];
    (ix != NO_SLOT).then_some(ix as usize)
}

pub(super) fn trim(b: &[u8], mut s: usize, mut e: usize) -> (usize, usize) {
    while s < e && is_ws(b[s]) {
        s += 1;
    }
    while e > s && is_ws(b[e - 1]) {
        e -= 1;
    }
    (s, e)
}

#[inline(always)]
pub(super) fn skip_ws(b: &[u8], c: &mut usize, e: usize) {
    while *c < e && is_ws(b[*c]) {
        *c += 1;
    }
}

/// The run of ASCII digits at `i` (at most eight, none at or past `e`) and its value, read
/// eight bytes at a time without a loop; `None` when fewer than eight bytes of `b` remain.
#[inline(always)]
pub(super) fn digits8(b: &[u8], i: usize, e: usize) -> Option<(usize, i64)> {
    const LO: u64 = 0x0101_0101_0101_0101;
    let w = u64::from_le_bytes(*b.get(i..)?.first_chunk::<8>()?);
    // Digit values in the digit bytes; a byte is a digit iff its value is below 10.
    let x = w ^ (LO * b'0' as u64);
    // High bit of each byte set iff the byte is not a digit (no carries between bytes).
    let non_digit = (((x & (LO * 0x7f)) + LO * (0x80 - 10)) | x) & (LO * 0x80);
    let n = ((non_digit.trailing_zeros() / 8) as usize).min(e.saturating_sub(i));
    if n == 0 {
        return Some((0, 0));
    }
    // Keep the n digit values, most significant first, as the low-order end of eight digits
    // with leading zeros; then combine pairs, quads and halves by multiply-shift.
    let v = x << (8 * (8 - n));
    let v = ((v & (LO * 0x0f)).wrapping_mul(10 << 8 | 1) >> 8) & 0x00ff_00ff_00ff_00ff;
    let v = (v.wrapping_mul(100 << 16 | 1) >> 16) & 0x0000_ffff_0000_ffff;
    let v = v.wrapping_mul(10000 << 32 | 1) >> 32;
    Some((n, v as i64))
}

/// Position of `pat` in `b[from..to]` (`None` for an empty or inverted range).
pub(super) fn find(b: &[u8], pat: &[u8], from: usize, to: usize) -> Option<usize> {
    let hay = b.get(from..to.min(b.len()))?;
    memmem::find(hay, pat).map(|k| from + k)
}

/// The first `Define ` at a word boundary in `b[s..e]`.
pub(super) fn find_define(b: &[u8], mut s: usize, e: usize) -> Option<usize> {
    while let Some(d) = find(b, b"Define ", s, e) {
        if d == 0 || !is_word(b[d - 1]) {
            return Some(d);
        }
        s = d + 1;
    }
    None
}

/// A standalone single ASCII letter at `i` (not part of a longer word).
pub(super) fn letter_at(b: &[u8], i: usize, e: usize) -> Option<u8> {
    let c = *b.get(i)?;
    if i < e && c.is_ascii_alphabetic() && (i + 1 >= e || !is_word(b[i + 1])) {
        Some(c)
    } else {
        None
    }
}

/// Parse an optionally signed decimal number filling `b[s..e]` exactly (after trimming).
pub(super) fn parse_number(b: &[u8], s: usize, e: usize) -> Option<Num> {
    let (mut i, e) = trim(b, s, e);
    let neg = i < e && b[i] == b'-';
    if neg {
        i += 1;
    }
    let (v, j) = number_at(b, i, e)?;
    if j != e {
        return None;
    }
    let v = v?;
    if neg {
        v.checked_neg()
    } else {
        Some(v)
    }
}

/// Read the unsigned decimal at `i`: `Some((value, end))` if digits are there; the value is
/// `None` on overflow. A number glued to a word (`3x`, `2nd`) is not a number.
pub(super) fn number_at(b: &[u8], mut i: usize, e: usize) -> Option<(Option<Num>, usize)> {
    let start = i;
    let mut n: Option<i64> = Some(0);
    while i < e && b[i].is_ascii_digit() {
        n = n.and_then(|n| n.checked_mul(10)?.checked_add((b[i] - b'0') as i64));
        i += 1;
    }
    if i == start {
        return None;
    }
    let mut d: Option<i64> = Some(1);
    if i + 1 < e && b[i] == b'.' && b[i + 1].is_ascii_digit() {
        i += 1;
        while i < e && b[i].is_ascii_digit() {
            n = n.and_then(|n| n.checked_mul(10)?.checked_add((b[i] - b'0') as i64));
            d = d.and_then(|d| d.checked_mul(10));
            i += 1;
        }
    }
    if i < e && is_word(b[i]) {
        return None;
    }
    let v = match (n, d) {
        (Some(n), Some(d)) => Num::ratio(n, d),
        _ => None,
    };
    Some((v, i))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The class tables say what the comparisons they replace said, for every byte.
    #[test]
    fn byte_class_tables() {
        for c in 0..=255u8 {
            assert_eq!(is_ws(c), matches!(c, b' ' | b'\t' | b'\r' | b'\n'), "{c}");
            assert_eq!(
                is_word(c),
                c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80,
                "{c}"
            );
            let want = match c {
                b'A'..=b'Z' => Some((c - b'A') as usize),
                b'a'..=b'z' => Some((c - b'a') as usize + 26),
                _ => None,
            };
            assert_eq!(slot_ix(c), want, "{c}");
        }
    }

    /// The eight-byte digit reader agrees with a byte loop: digit bytes next to the ones
    /// that are not (`/` and `:` border `0`-`9`; 0xb0 is `0` with the high bit), every digit
    /// count, every end.
    #[test]
    fn digits8_agrees_with_a_loop() {
        let alphabet = [
            b'0', b'1', b'5', b'9', b'/', b':', b' ', b'a', b'.', 0x80, 0xb0, 0xb9,
        ];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..200_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = 8 + (seed % 5) as usize;
            let mut b = vec![0u8; len];
            let mut r = seed;
            for (k, c) in b.iter_mut().enumerate() {
                // Mostly digits, so long runs are common.
                *c = if r % 3 != 0 {
                    b'0' + (r % 10) as u8
                } else {
                    alphabet[(r % 12) as usize]
                };
                r = r.rotate_right(5) ^ k as u64;
            }
            let i = (seed >> 40) as usize % (len - 7);
            let e = i + 1 + (seed >> 50) as usize % (len - i);
            let mut k = i;
            let mut n = 0i64;
            while k < e && k - i < 8 && b[k].is_ascii_digit() {
                n = n * 10 + (b[k] - b'0') as i64;
                k += 1;
            }
            assert_eq!(digits8(&b, i, e), Some((k - i, n)), "{b:?} {i}..{e}");
        }
        assert_eq!(digits8(b"1234567", 0, 7), None);
        assert_eq!(digits8(b"99999999", 0, 8), Some((8, 99_999_999)));
        assert_eq!(digits8(b"00000007", 0, 8), Some((8, 7)));
        assert_eq!(digits8(b"12345678", 0, 3), Some((3, 123)));
    }

    #[test]
    fn find_searches_only_the_range() {
        let b = b"Define a; Define b";
        assert_eq!(find(b, b"Define", 0, b.len()), Some(0));
        assert_eq!(find(b, b"Define", 1, b.len()), Some(10));
        assert_eq!(find(b, b"Define", 1, 15), None);
        assert_eq!(find(b, b"Define", 11, 5), None);
        assert_eq!(find(b, b"b", 0, 100), Some(17));
        assert_eq!(find_define(b"xDefine a; Define b", 0, 19), Some(11));
    }
}
