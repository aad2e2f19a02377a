//! A fixed-size Bloom filter over problem ids, for dedup in bounded memory.
//!
//! No false negatives: an id that was inserted is always reported present, so an accepted
//! problem is never a duplicate. A false positive only skips a (unique) candidate; since
//! candidates are examined in a fixed order, which ones are skipped is deterministic.

use crate::composer::ProblemId;

const HASHES: u32 = 6;

pub struct Bloom {
    bits: Vec<u64>,
    mask: u64,
}

impl Bloom {
    /// A filter sized for `expected` ids (~24 bits each), between 128 KiB and 64 MiB (at the
    /// cap, 35M ids, a 10B-token corpus of op 2-10, still get 15 bits each: ~0.1% false
    /// positives).
    pub fn for_items(expected: u64) -> Bloom {
        let want = expected.saturating_mul(24).clamp(1 << 20, 1 << 29);
        let n_bits = want.next_power_of_two();
        Bloom {
            bits: vec![0; (n_bits / 64) as usize],
            mask: n_bits - 1,
        }
    }

    fn positions(&self, id: &ProblemId) -> impl Iterator<Item = u64> + '_ {
        let h1 = u64::from_le_bytes(id.0[0..8].try_into().expect("8 bytes"));
        let h2 = u64::from_le_bytes(id.0[8..16].try_into().expect("8 bytes")) | 1;
        (0..HASHES as u64).map(move |i| h1.wrapping_add(i.wrapping_mul(h2)) & self.mask)
    }

    /// Insert `id`; returns false if it was (possibly) present already.
    pub fn insert(&mut self, id: &ProblemId) -> bool {
        let mut fresh = false;
        let pos: [u64; HASHES as usize] = {
            let mut a = [0u64; HASHES as usize];
            for (slot, p) in a.iter_mut().zip(self.positions(id)) {
                *slot = p;
            }
            a
        };
        for p in pos {
            let (w, b) = ((p / 64) as usize, p % 64);
            if self.bits[w] & (1 << b) == 0 {
                fresh = true;
                self.bits[w] |= 1 << b;
            }
        }
        fresh
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_false_negatives() {
        let mut b = Bloom::for_items(1000);
        let ids: Vec<ProblemId> = (0..1000u64)
            .map(|i| {
                let mut id = [0u8; 16];
                id[..8].copy_from_slice(&(i.wrapping_mul(0x9e3779b97f4a7c15)).to_le_bytes());
                id[8..].copy_from_slice(&(i ^ 0xabcdef).wrapping_mul(31).to_le_bytes());
                ProblemId(id)
            })
            .collect();
        let fresh = ids.iter().filter(|id| b.insert(id)).count();
        assert!(fresh >= 999);
        assert!(ids.iter().all(|id| !b.insert(id)));
    }
}
