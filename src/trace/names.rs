//! The gold name table: which gold node a `Define NAME as L` header names.
//!
//! A step is matched to the gold graph by its name alone, so this lookup runs once per header of
//! every completion, and the table is rebuilt for every gold graph. It is an open-addressing
//! table of at most [`MAX_GOLD_NODES`] entries in 256 buckets, keyed by a cheap hash of the
//! name's length and first and last eight bytes; a key match is confirmed by comparing the
//! bytes, so a hash collision can never make a wrong name count as a gold one.

use super::read::MAX_GOLD_NODES;
use crate::graph::GoldGraph;

/// Buckets in the gold name table (twice `MAX_GOLD_NODES`, rounded up).
const TABLE: usize = 256;

/// A cheap key for a name: its length, first and last eight bytes. No multiply chain, so
/// keying the gold names anew for every completion costs a few loads; equal keys are then
/// confirmed byte for byte.
fn name_key(s: &[u8]) -> u64 {
    let (first, last) = match (s.first_chunk::<8>(), s.last_chunk::<8>()) {
        (Some(f), Some(l)) => (u64::from_le_bytes(*f), u64::from_le_bytes(*l)),
        _ => {
            // Shorter than eight bytes: both words are the name, zero-padded.
            let mut w = [0u8; 8];
            w[..s.len()].copy_from_slice(s);
            let w = u64::from_le_bytes(w);
            (w, w)
        }
    };
    first ^ last.rotate_left(29) ^ (s.len() as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// Home bucket of a name key.
fn bucket(h: u64) -> usize {
    (h.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56) as usize
}

/// The names of one gold graph, by hash; reused across completions.
#[derive(Debug)]
pub(super) struct Names {
    /// Keys of the gold names, by gold index.
    keys: Vec<u64>,
    /// Open-addressing table over the gold names: gold index + 1, 0 for an empty bucket.
    /// Linear probing in gold order, so the first match along a probe is the first gold node
    /// with that name.
    table: [u8; TABLE],
}

impl Names {
    pub fn new() -> Names {
        Names {
            keys: Vec::new(),
            table: [0; TABLE],
        }
    }

    /// Key the names of `gold` (its first [`MAX_GOLD_NODES`] nodes).
    pub fn reset(&mut self, gold: &GoldGraph) {
        self.keys.clear();
        self.table = [0; TABLE];
        // At most MAX_GOLD_NODES (127) names in 256 buckets: the table is never full.
        for (i, n) in gold.nodes.iter().take(MAX_GOLD_NODES).enumerate() {
            let h = name_key(n.name.as_bytes());
            self.keys.push(h);
            let mut k = bucket(h);
            while self.table[k] != 0 {
                k = (k + 1) % TABLE;
            }
            self.table[k] = i as u8 + 1;
        }
    }

    /// The first gold node named `name` (`gold` is the graph last passed to
    /// [`Names::reset`]).
    pub fn lookup(&self, gold: &GoldGraph, name: &[u8]) -> Option<usize> {
        let h = name_key(name);
        let mut k = bucket(h);
        loop {
            let i = self.table[k] as usize;
            if i == 0 {
                return None;
            }
            let i = i - 1;
            if self.keys[i] == h && gold.nodes[i].name.as_bytes() == name {
                return Some(i);
            }
            k = (k + 1) % TABLE;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::composer::Mode;
    use crate::graph::{GoldNode, NodeKind};

    fn gold(names: &[String]) -> GoldGraph {
        GoldGraph {
            mode: Mode::Forward,
            nodes: names
                .iter()
                .map(|n| GoldNode {
                    name: n.clone(),
                    value: 1,
                    parents: vec![],
                    kind: NodeKind::Constant,
                })
                .collect(),
            asked: 0,
            answer: 1,
        }
    }

    #[test]
    fn name_table_finds_the_first_gold_node_of_a_name() {
        // 127 names sharing prefixes and suffixes (many equal first/last words), plus
        // duplicates and short names.
        let mut names: Vec<String> = (0..120)
            .map(|i| format!("adult animal {i} in South Zoo"))
            .collect();
        names.extend(["a", "ab", "abcdefg", "abcdefgh", "abcdefghi"].map(String::from));
        names.push("adult animal 7 in South Zoo".into());
        names.push("a".into());
        assert_eq!(names.len(), MAX_GOLD_NODES);
        let g = gold(&names);
        let mut t = Names::new();
        for _ in 0..2 {
            t.reset(&g);
            for n in &names {
                let first = names.iter().position(|m| m == n).unwrap();
                assert_eq!(t.lookup(&g, n.as_bytes()), Some(first), "{n}");
            }
            for miss in [
                "",
                "b",
                "abcdefgj",
                "adult animal 120 in South Zoo",
                "adult animal 7 in South Zo",
            ] {
                assert_eq!(t.lookup(&g, miss.as_bytes()), None, "{miss}");
            }
        }
        // A smaller graph after a larger one: no stale entries.
        let g2 = gold(&names[..3]);
        t.reset(&g2);
        assert_eq!(t.lookup(&g2, names[5].as_bytes()), None);
        assert_eq!(t.lookup(&g2, names[2].as_bytes()), Some(2));
    }

    #[test]
    fn name_key_short_and_long() {
        assert_eq!(name_key(b"abc"), name_key(b"abc"));
        assert_ne!(name_key(b"abc"), name_key(b"abc\0"));
        assert_ne!(name_key(b"abcdefgh"), name_key(b"abcdefghabcdefgh"));
    }
}
