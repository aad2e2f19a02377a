//! The `long` format's check sentences: after a step, `We know L is NAME, and E1 = E2, so L = v.`
//! (`, and E1 = E2` left out when the step only states or copies a value). The words are the
//! trace grammar's own (the domain tokenizer has every one), and `We know L is` never starts
//! the equation section (`We know P = N`), so the two never read as each other.
//!
//! A check re-states the step being read, so it is held to it: L must be the step's letter,
//! NAME its name (byte for byte, after trimming), E1 and E2 equal, and both E2 and v the value
//! the step assigned. A check that agrees adds nothing; one that disagrees is an
//! [`IssueKind::CheckMismatch`] (which fails [`Rule::Strict`](super::Rule::Strict) and flaws the
//! step), so a long trace cannot say one thing and check another. A sentence starting
//! `We know L is` in any other shape is [`IssueKind::Malformed`].

use super::expr::Ev;
use super::lex::{is_ws, letter_at, skip_ws, trim};
use super::read::Reader;
use super::verdict::IssueKind;

impl Reader {
    /// Whether the clause `t` is a check: `We know L is ...`.
    pub(super) fn is_check(t: &[u8]) -> bool {
        let Some(r) = t.strip_prefix(b"We know ") else {
            return false;
        };
        let r = r.trim_ascii_start();
        letter_at(r, 0, r.len()).is_some() && r[1..].trim_ascii_start().starts_with(b"is ")
    }

    /// The check sentence `b[s..e]` (after `We know`).
    pub(super) fn check(&mut self, b: &[u8], s: usize, e: usize) {
        let at = self.at;
        match self.check_agrees(b, s, e) {
            Some(true) => {}
            Some(false) => self.issue(IssueKind::CheckMismatch, at),
            None => self.issue(IssueKind::Malformed, at),
        }
    }

    /// Whether the check agrees with the current step; `None` when it is not a check's shape.
    fn check_agrees(&mut self, b: &[u8], s: usize, e: usize) -> Option<bool> {
        let (s, e) = trim(b, s, e);
        let l = letter_at(b, s, e)?;
        let mut c = s + 1;
        skip_ws(b, &mut c, e);
        if !(b[c..e].starts_with(b"is") && c + 2 < e && is_ws(b[c + 2])) {
            return None;
        }
        c += 2;
        // From the right: the name may be anything but `=`, the tail holds no comma.
        let so = rfind(b, b", so ", c, e)?;
        let (name_end, sum) = match rfind(b, b", and ", c, so) {
            Some(a) if memchr::memchr(b'=', &b[a..so]).is_some() => (a, Some((a + 6, so))),
            _ => (so, None),
        };
        let (ns, ne) = trim(b, c, name_end);
        let mut k = so + 5;
        skip_ws(b, &mut k, e);
        let l2 = letter_at(b, k, e)?;
        k += 1;
        skip_ws(b, &mut k, e);
        if k >= e || b[k] != b'=' {
            return None;
        }
        let stated = self.whole(b, k + 1, e)?;
        let sum = match sum {
            Some((ss, se)) => {
                let mut c = ss;
                let lhs = self.top_expr(b, &mut c, se).ok()?;
                if c >= se || b[c] != b'=' {
                    return None;
                }
                Some((lhs, self.whole(b, c + 1, se)?))
            }
            None => None,
        };
        let Some(n) = self.cur else {
            return Some(false);
        };
        let node = &self.nodes[n];
        let v = node.val;
        Some(
            node.assigned
                && v.is_some()
                && node.letter == l
                && l2 == l
                && b[node.name.clone()] == b[ns..ne]
                && stated.val == v
                && sum.is_none_or(|(x, y)| x.val == y.val && y.val == v),
        )
    }

    /// An expression that fills `b[c..e]` exactly.
    fn whole(&mut self, b: &[u8], mut c: usize, e: usize) -> Option<Ev> {
        let ev = self.top_expr(b, &mut c, e).ok()?;
        (c >= e).then_some(ev)
    }
}

/// The last `pat` in `b[from..to]`.
fn rfind(b: &[u8], pat: &[u8], from: usize, to: usize) -> Option<usize> {
    let hay = b.get(from..to.min(b.len()))?;
    memchr::memmem::rfind(hay, pat).map(|k| from + k)
}
