//! The `terse` format's steps: `NAME: ...; L = ... .`, the arithmetic of a `full` step without
//! `Define NAME as L` and `so`.
//!
//! A terse step does not declare its letter: the step is the node's, and its letter is the one
//! its last assignment gives a value (the step's intermediates come first, as in `full`).
//! So the reader opens the step with a pending letter, reads the assignments as intermediates,
//! and when the step ends binds the last one's letter to the node: the node takes that
//! letter's value and parent set, and the letter stands for the node from then on (so later
//! steps that use it depend on the node, as in `full`). `NAME: x` declares the reverse-mode
//! unknown. Everything else (fresh letters, recomputed chains, the equation section) is read as
//! in `full`, so a terse trace is checked as strictly as a full one.

use super::lex::{letter_at, trim};
use super::read::{Reader, Slot, SlotKind, EXTRA};
use super::verdict::IssueKind;
use crate::graph::GoldGraph;

impl Reader {
    /// `NAME: rest` in `b[s..e]`: start a terse step and read `rest` (nothing, the letter x,
    /// or an assignment). Returns false, reading nothing, when the clause has no name before a
    /// `:`. The name ends at the last `:` before the first `=` (names never hold `=`, but may
    /// hold `:`).
    pub(super) fn terse_header(&mut self, gold: &GoldGraph, b: &[u8], s: usize, e: usize) -> bool {
        let eq = memchr::memchr(b'=', &b[s..e]).map_or(e, |i| s + i);
        let Some(colon) = memchr::memrchr(b':', &b[s..eq]).map(|i| s + i) else {
            return false;
        };
        let (ns, ne) = trim(b, s, colon);
        if ns == ne {
            return false;
        }
        self.finish_step();
        self.eq_mode = false;
        self.at = s;
        self.open_step(gold, b, s, ns..ne, super::read::PENDING);
        let (rs, re) = trim(b, colon + 1, e);
        if rs == re {
            return true;
        }
        if re == rs + 1 {
            if let Some(l) = letter_at(b, rs, re) {
                self.claim_letter(l);
                return true;
            }
        }
        if !self.assignment(b, rs, re) {
            self.issue(IssueKind::Malformed, s);
        }
        true
    }

    /// The step `n` ends with its letter pending: bind the letter of its last assignment (if
    /// any; none leaves the step unassigned).
    pub(super) fn bind_terse_letter(&mut self, n: usize) {
        let Some(l) = self.last_lhs.take() else {
            return;
        };
        let Some(ix) = super::lex::slot_ix(l) else {
            return;
        };
        let slot = self.slots[ix];
        let node = &mut self.nodes[n];
        node.letter = l;
        node.assigned = true;
        node.val = slot.val;
        node.parents = slot.deps;
        self.slots[ix] = Slot {
            kind: SlotKind::Node,
            val: slot.val,
            deps: node.gold.map_or(EXTRA, |g| 1u128 << g),
            unknown: false,
            node: n as u32,
        };
    }
}
