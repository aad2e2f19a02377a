//! A problem's canonical identity: invariant to trace letters, sentence order and the order of
//! a sum's operands, so two problems with the same id ask the same thing of the same facts.
//!
//! The id is the first 16 bytes of SHA-256 over a canonical byte encoding of (template, mode,
//! every stated or implied quantity keyed by its *names*, its definition, the question and, in
//! reverse mode, the hidden leaf). Its first two bytes also decide held-out membership
//! (see `dataset::split`), so train / test disjointness holds across datasets and seeds.

use std::io::Write;

use sha2::{Digest, Sha256};

use super::problem::{Combine, Mode, Outer, Problem, Quantity};

/// 128-bit problem id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProblemId(pub [u8; 16]);

impl ProblemId {
    /// 32 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        format!("{:032x}", self.as_u128())
    }

    /// The 32 lowercase hex digits as ASCII bytes, without allocating.
    pub fn hex_bytes(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        write!(&mut out[..], "{:032x}", self.as_u128()).expect("32 hex digits fill 32 bytes");
        out
    }

    /// The id as one big-endian number, so its hex digits are the bytes' in order.
    fn as_u128(&self) -> u128 {
        u128::from_be_bytes(self.0)
    }

    /// A uniformly distributed 16-bit bucket taken from the id.
    pub fn bucket(&self) -> u16 {
        u16::from_be_bytes([self.0[0], self.0[1]])
    }

    /// A 64-bit fingerprint for in-memory dedup.
    pub fn fingerprint(&self) -> u64 {
        u64::from_le_bytes(self.0[8..16].try_into().expect("8 bytes"))
    }
}

/// Global key of a quantity: names, not problem-local indices, so the encoding does not depend
/// on the order the composer chose names in.
fn key(p: &Problem, q: Quantity) -> [u8; 3] {
    match q {
        Quantity::Instance { loc, item } => [0, p.locs[loc as usize], p.items[item as usize]],
        Quantity::Total { loc } => [1, p.locs[loc as usize], 0],
    }
}

/// Canonical id of `p` under template `template_id`. `buf` is scratch space reused by callers.
pub fn problem_id(template_id: &str, p: &Problem, buf: &mut Vec<u8>) -> ProblemId {
    buf.clear();
    buf.extend_from_slice(template_id.as_bytes());
    buf.push(0xff);
    buf.push(match p.mode {
        Mode::Forward => 0,
        Mode::Reverse => 1,
    });
    buf.push(p.loc_group);
    buf.push(p.item_group);
    // Nodes sorted by their global key; each with its definition.
    let mut order: Vec<(u32, usize)> = p
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let k = key(p, n.q);
            ((k[0] as u32) << 16 | (k[1] as u32) << 8 | k[2] as u32, i)
        })
        .collect();
    order.sort_unstable();
    for &(_, i) in &order {
        let n = &p.nodes[i];
        buf.extend_from_slice(&key(p, n.q));
        match n.combine {
            Combine::Const(k) => buf.extend_from_slice(&[0, k]),
            Combine::Sum => buf.push(1),
            Combine::Diff => buf.push(2),
        }
        match n.outer {
            Outer::None => buf.push(0),
            Outer::Plus(k) => buf.extend_from_slice(&[1, k]),
            Outer::Times(k) => buf.extend_from_slice(&[2, k]),
        }
        let mut parents: Vec<[u8; 3]> = n
            .parents()
            .iter()
            .map(|&j| key(p, p.nodes[j as usize].q))
            .collect();
        if n.combine == Combine::Sum {
            parents.sort_unstable();
        }
        buf.push(parents.len() as u8);
        for k in parents {
            buf.extend_from_slice(&k);
        }
    }
    buf.push(0xfe);
    buf.extend_from_slice(&key(p, p.nodes[p.asked()].q));
    buf.extend_from_slice(&key(p, p.nodes[p.final_node()].q));
    let digest = Sha256::digest(&buf[..]);
    let mut id = [0u8; 16];
    id.copy_from_slice(&digest[..16]);
    ProblemId(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_the_bytes_in_order_with_leading_zeros() {
        let mut id = [0u8; 16];
        id[0] = 0x0a;
        id[1] = 0xbc;
        id[15] = 0x01;
        let id = ProblemId(id);
        let want = "0abc0000000000000000000000000001";
        assert_eq!(id.to_hex(), want);
        assert_eq!(&id.hex_bytes(), want.as_bytes());
        let all = ProblemId(std::array::from_fn(|i| (i as u8) * 17));
        let hand: String = all.0.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(all.to_hex(), hand);
    }
}
