//! The reverse-mode equation section: `We know P = N, so we have E = N and ...: EQUATION`,
//! then one `[label:] expr = expr` line per step of solving for the unknown x.
//!
//! The section is checked line by line: the opening must state the final node's gold value and
//! equate the final node's form in x with it; every later line must have the same root as the
//! line before (each side is an exact linear form in x, so "equivalent" is decidable); a "divide
//! both sides by d" label must divide by the coefficient of x on the line before; and the last
//! line must be the solved form `x = number`. So each line is checked against the one before,
//! not only the final number.

use super::expr::Ev;
use super::lex::{find, letter_at, parse_number, skip_ws, slot_ix};
use super::num::{Lin, Num};
use super::read::{Reader, SlotKind, FREE};
use super::verdict::IssueKind;

impl Reader {
    /// `We know P = N, so we have E = N and ...: EQUATION`: open the equation section.
    pub(super) fn we_know(&mut self, b: &[u8], mut k: usize, e: usize) {
        self.finish_step();
        self.eq_mode = true;
        self.equation_seen = true;
        skip_ws(b, &mut k, e);
        let Some(p) = letter_at(b, k, e) else {
            self.issue(IssueKind::Malformed, self.at);
            return;
        };
        let mut c = k + 1;
        skip_ws(b, &mut c, e);
        if c >= e || b[c] != b'=' {
            self.issue(IssueKind::Malformed, self.at);
            return;
        }
        c += 1;
        let Ok(n) = self.top_expr(b, &mut c, e) else {
            self.issue(IssueKind::Malformed, self.at);
            return;
        };
        let slot = slot_ix(p).map_or(FREE, |ix| self.slots[ix]);
        let is_final = slot.kind == SlotKind::Node
            && self.nodes.get(slot.node as usize).and_then(|n| n.gold) == Some(self.final_gold);
        let stated = Some(Lin::num(Num::int(self.final_value)));
        if !is_final || n.val != stated {
            self.issue(IssueKind::WrongKnown, self.at);
        }
        let Some(h) = find(b, b"so we have", c, e) else {
            self.issue(IssueKind::Malformed, self.at);
            return;
        };
        let mut c = h + 10;
        let Some((lhs, rhs, after)) = self.equation(b, &mut c, e) else {
            self.issue(IssueKind::Malformed, self.at);
            return;
        };
        if slot.val.is_none() || lhs.val != slot.val || rhs.val != n.val {
            self.issue(IssueKind::EquationMismatch, self.at);
        }
        self.eq_prev = lhs
            .val
            .zip(rhs.val)
            .and_then(|(l, r)| l.checked_sub(r)?.root());
        if self.eq_prev.is_none() {
            self.issue(IssueKind::EquationMismatch, self.at);
        }
        self.solved = None;
        self.eq_coef = lhs.val.map(|v| v.a);
        if let Some(colon) = b[after..e].iter().rposition(|&c| c == b':') {
            self.eq_line(b, after + colon + 1, e);
        }
    }

    /// Parse `expr = expr` at `c`; returns both sides and the position after them.
    fn equation(&mut self, b: &[u8], c: &mut usize, e: usize) -> Option<(Ev, Ev, usize)> {
        let l = self.top_expr(b, c, e).ok()?;
        if *c >= e || b[*c] != b'=' {
            return None;
        }
        *c += 1;
        let r = self.top_expr(b, c, e).ok()?;
        Some((l, r, *c))
    }

    /// One line of the equation section: `[label:] expr = expr`, equivalent to the line before.
    pub(super) fn eq_line(&mut self, b: &[u8], s: usize, e: usize) {
        let label_start = s;
        let s = b[s..e]
            .iter()
            .rposition(|&c| c == b':')
            .map_or(s, |p| s + p + 1);
        let mut c = s;
        let Some((l, r, after)) = self.equation(b, &mut c, e).filter(|t| t.2 == e) else {
            self.issue(IssueKind::Malformed, self.at);
            self.solved = None;
            return;
        };
        let _ = after;
        let root = l.val.zip(r.val).and_then(|(l, r)| l.checked_sub(r)?.root());
        if root.is_none() || (self.eq_prev.is_some() && root != self.eq_prev) {
            self.issue(IssueKind::EquationMismatch, self.at);
        }
        if self.eq_prev.is_none() {
            self.eq_prev = root;
        }
        // "Divide both sides by d": d must be the coefficient of x on the line before.
        let label = &b[label_start..s];
        if let Some(p) = find(label, b"by ", 0, label.len()) {
            let by = parse_number(label, p + 3, label.len().saturating_sub(1));
            if by.is_none() || by != self.eq_coef {
                self.issue(IssueKind::EquationMismatch, self.at);
            }
        }
        self.eq_coef = l.val.map(|v| v.a);
        let is_x = l.atom == b'x' && l.val == Some(Lin::X);
        self.solved = match r.val {
            Some(v) if is_x && r.lit => Some(v.b),
            _ => None,
        };
    }
}
