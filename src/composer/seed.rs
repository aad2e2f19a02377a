//! Seeds derived from named parts, never from thread order or hash-map iteration.
//!
//! Every random choice of a dataset comes from `derive(&[recipe seed, split, template, op, mode,
//! index])`; strings are folded in with FNV-1a and mixed with SplitMix64, both fixed here so the
//! stream is identical on every platform and Rust version.

/// 64-bit FNV-1a of a string: a stable way to fold a name into a seed.
pub fn str_key(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// SplitMix64 finaliser.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Derive one seed from an ordered list of parts.
pub fn derive(parts: &[u64]) -> u64 {
    let mut h: u64 = 0x9e37_79b9_7f4a_7c15;
    for &p in parts {
        h = mix(h ^ mix(p.wrapping_add(0x9e37_79b9_7f4a_7c15)));
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_values() {
        // Pinned: changing these changes every dataset.
        // Values computed independently (Python) from the definitions above.
        assert_eq!(str_key("zoo"), 0xce46_f119_8769_524b);
        assert_eq!(derive(&[1, 2]), 0x277e_b217_ce00_0268);
        assert_ne!(derive(&[1, 2]), derive(&[2, 1]));
        assert_ne!(derive(&[0]), derive(&[0, 0]));
    }
}
