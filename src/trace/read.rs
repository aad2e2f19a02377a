//! The trace reader: one forward pass over a completion's bytes that builds the predicted graph
//! (grammar: `grammars/trace.ebnf`).
//!
//! The solution region (after `<solution>`, else after `</question>`, else the whole text, up
//! to `</solution>` or `<answer>`) is cut into *clauses* at `;`, newlines and `.` not followed
//! by a digit (so `2.5` stays whole). A clause holding `Define NAME as L` starts a step; a
//! clause `[so] L = e1 = e2 = ... = en` is an assignment (its chain is recomputed part by part);
//! a clause starting `We know` opens the reverse-mode equation section; `Answer: N` is an
//! answer claim; anything else is free text, unless it contains `=`, which makes it
//! [`IssueKind::Malformed`] (an unsupported claim).
//!
//! Expressions are parsed by recursive descent with a depth limit, and a letter is only a
//! single ASCII letter standing alone as a token (`Done`, `So` and `think` are words, never
//! variables). Every clause is scanned a bounded number of times, so reading is linear in the
//! input. Nothing is allocated per token: letters live in a fixed table, parent sets are
//! bitmasks over gold node indices (bit 127 marks a parent outside the gold graph), and names
//! are byte ranges looked up by hash in the gold name table.

use std::ops::Range;

use super::num::{Lin, Num};
use super::verdict::{Issue, IssueKind};
use crate::composer::Mode;
use crate::graph::GoldGraph;

/// Most gold nodes a graph may have (one bit each in a `u128`, the top bit marks extras).
pub const MAX_GOLD_NODES: usize = 127;
/// Parent-set bit for a predicted parent that is not in the gold graph.
pub(crate) const EXTRA: u128 = 1 << 127;
/// Deepest nesting of parentheses and unary minus an expression may have.
const MAX_DEPTH: u32 = 48;
const NONE: u32 = u32::MAX;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SlotKind {
    Free,
    /// The letter of a named (Define'd) node.
    Node,
    /// An intermediate letter.
    Inter,
}

/// What one letter stands for.
#[derive(Debug, Clone, Copy)]
struct Slot {
    kind: SlotKind,
    val: Option<Lin>,
    /// The named nodes this letter stands for or was computed from.
    deps: u128,
    unknown: bool,
    /// The predicted node, for a `Node` letter.
    node: u32,
}

const FREE: Slot = Slot {
    kind: SlotKind::Free,
    val: None,
    deps: 0,
    unknown: false,
    node: NONE,
};

/// One step of the predicted graph.
#[derive(Debug, Clone)]
pub(crate) struct PNode {
    pub name: Range<usize>,
    pub gold: Option<usize>,
    pub letter: u8,
    pub val: Option<Lin>,
    pub parents: u128,
    pub assigned: bool,
    pub unknown: bool,
    /// Some issue was found inside this step.
    pub flawed: bool,
}

/// A parsed expression.
#[derive(Debug, Clone, Copy)]
struct Ev {
    val: Option<Lin>,
    deps: u128,
    /// Whether it mentions a letter other than the unknown (a letter-expression, whose next
    /// part is a substitution rather than a result).
    letters: bool,
    /// The letter, when the whole expression is one letter.
    atom: u8,
    /// Whether the whole expression is a number literal (possibly negated).
    lit: bool,
}

/// Reading state; reused across completions so nothing is allocated in steady state.
#[derive(Debug)]
pub(crate) struct Reader {
    slots: [Slot; 52],
    pub nodes: Vec<PNode>,
    pub issues: Vec<Issue>,
    /// Gold index -> predicted node index (`NONE` if not defined).
    pub gold_of: Vec<u32>,
    names: Vec<(u64, usize)>,
    /// `Some(value)` if an `<answer>` tag was found (`Some(None)`: not a number).
    pub tag: Option<Option<Num>>,
    pub claim: Option<Num>,
    pub conflict: bool,
    pub equation_seen: bool,
    /// The value of the last equation line when it has the solved form `x = number`.
    pub solved: Option<Num>,
    eq_mode: bool,
    eq_prev: Option<Num>,
    /// The coefficient of x on the left of the previous equation line.
    eq_coef: Option<Num>,
    unknown_seen: bool,
    cur: Option<usize>,
    at: usize,
    reverse: bool,
    final_gold: usize,
    final_value: i64,
}

fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80
}

fn is_ws(c: u8) -> bool {
    c == b' ' || c == b'\t' || c == b'\r' || c == b'\n'
}

fn slot_ix(c: u8) -> Option<usize> {
    match c {
        b'A'..=b'Z' => Some((c - b'A') as usize),
        b'a'..=b'z' => Some((c - b'a') as usize + 26),
        _ => None,
    }
}

fn trim(b: &[u8], mut s: usize, mut e: usize) -> (usize, usize) {
    while s < e && is_ws(b[s]) {
        s += 1;
    }
    while e > s && is_ws(b[e - 1]) {
        e -= 1;
    }
    (s, e)
}

fn skip_ws(b: &[u8], c: &mut usize, e: usize) {
    while *c < e && is_ws(b[*c]) {
        *c += 1;
    }
}

/// Position of `pat` in `b[from..to]`.
fn find(b: &[u8], pat: &[u8], from: usize, to: usize) -> Option<usize> {
    let first = *pat.first()?;
    let mut i = from;
    while i + pat.len() <= to {
        if b[i] == first && &b[i..i + pat.len()] == pat {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// A standalone single ASCII letter at `i` (not part of a longer word).
fn letter_at(b: &[u8], i: usize, e: usize) -> Option<u8> {
    let c = *b.get(i)?;
    if i < e && c.is_ascii_alphabetic() && (i + 1 >= e || !is_word(b[i + 1])) {
        Some(c)
    } else {
        None
    }
}

/// Hash of a name (FxHash-style over 8-byte words).
pub(crate) fn name_hash(s: &[u8]) -> u64 {
    let mut h = s.len() as u64;
    let mut chunks = s.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
    let mut w = [0u8; 8];
    let r = chunks.remainder();
    w[..r.len()].copy_from_slice(r);
    (h.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(0x517c_c1b7_2722_0a95)
}

/// Parse an optionally signed decimal number filling `b[s..e]` exactly (after trimming).
pub(crate) fn parse_number(b: &[u8], s: usize, e: usize) -> Option<Num> {
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
fn number_at(b: &[u8], mut i: usize, e: usize) -> Option<(Option<Num>, usize)> {
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

impl Reader {
    pub fn new() -> Reader {
        Reader {
            slots: [FREE; 52],
            nodes: Vec::new(),
            issues: Vec::new(),
            gold_of: Vec::new(),
            names: Vec::new(),
            tag: None,
            claim: None,
            conflict: false,
            equation_seen: false,
            solved: None,
            eq_mode: false,
            eq_prev: None,
            eq_coef: None,
            unknown_seen: false,
            cur: None,
            at: 0,
            reverse: false,
            final_gold: 0,
            final_value: 0,
        }
    }

    /// Read `text` against `gold` (whose names key the nodes). `gold` must have at most
    /// [`MAX_GOLD_NODES`] nodes.
    pub fn read(&mut self, gold: &GoldGraph, text: &str) {
        self.reset(gold);
        let b = text.as_bytes();
        let start = find(b, b"<solution>", 0, b.len())
            .map(|i| i + 10)
            .or_else(|| find(b, b"</question>", 0, b.len()).map(|i| i + 11))
            .unwrap_or(0);
        let tag = find(b, b"<answer>", start, b.len());
        let end = find(b, b"</solution>", start, tag.unwrap_or(b.len()))
            .or(tag)
            .unwrap_or(b.len());
        self.clauses(gold, b, start, end);
        self.finish_step();
        if let Some(t) = tag {
            let s = t + 8;
            let e = find(b, b"</answer>", s, b.len()).unwrap_or(b.len());
            let v = parse_number(b, s, e);
            if v.is_none() {
                self.issue(IssueKind::BadAnswer, t);
            }
            self.tag = Some(v);
        }
        if self.equation_seen && self.solved.is_none() {
            self.issue(IssueKind::Unsolved, end);
        }
    }

    fn reset(&mut self, gold: &GoldGraph) {
        self.slots = [FREE; 52];
        self.nodes.clear();
        self.issues.clear();
        self.gold_of.clear();
        self.gold_of.resize(gold.nodes.len(), NONE);
        self.names.clear();
        for (i, n) in gold.nodes.iter().enumerate() {
            self.names.push((name_hash(n.name.as_bytes()), i));
        }
        self.tag = None;
        self.claim = None;
        self.conflict = false;
        self.equation_seen = false;
        self.solved = None;
        self.eq_mode = false;
        self.eq_prev = None;
        self.eq_coef = None;
        self.unknown_seen = false;
        self.cur = None;
        self.at = 0;
        self.reverse = gold.mode == Mode::Reverse;
        self.final_gold = gold.nodes.len().saturating_sub(1);
        self.final_value = gold.nodes.last().map_or(0, |n| n.value);
    }

    fn issue(&mut self, kind: IssueKind, at: usize) {
        self.issues.push(Issue { kind, at });
        if let Some(n) = self.cur {
            self.nodes[n].flawed = true;
        }
    }

    fn lookup(&self, gold: &GoldGraph, name: &[u8]) -> Option<usize> {
        let h = name_hash(name);
        self.names
            .iter()
            .find(|&&(gh, i)| gh == h && gold.nodes[i].name.as_bytes() == name)
            .map(|&(_, i)| i)
    }

    /// Cut `b[start..end]` into clauses and handle each.
    fn clauses(&mut self, gold: &GoldGraph, b: &[u8], start: usize, end: usize) {
        let mut i = start;
        while i < end {
            let cs = i;
            let mut define_at = None;
            let mut has_eq = false;
            let mut j = i;
            while j < end {
                match b[j] {
                    b';' | b'\n' => break,
                    b'.' if j + 1 >= end || !b[j + 1].is_ascii_digit() => break,
                    b'=' => has_eq = true,
                    b'D' if define_at.is_none()
                        && b[j..end].starts_with(b"Define ")
                        && (j == 0 || !is_word(b[j - 1])) =>
                    {
                        define_at = Some(j)
                    }
                    _ => {}
                }
                j += 1;
            }
            match define_at {
                Some(d) => self.header(gold, b, d, j),
                None => self.clause(b, cs, j, has_eq),
            }
            i = j + 1;
        }
    }

    /// `Define NAME as L`: start a new step.
    fn header(&mut self, gold: &GoldGraph, b: &[u8], d: usize, ce: usize) {
        self.finish_step();
        self.eq_mode = false;
        self.at = d;
        let ns = d + 7;
        let (_, e) = trim(b, ns, ce);
        let Some((name, letter)) = Self::header_parts(b, ns, e) else {
            self.issue(IssueKind::Malformed, d);
            return;
        };
        let g = self.lookup(gold, &b[name.clone()]);
        let idx = self.nodes.len();
        self.nodes.push(PNode {
            name,
            gold: g,
            letter,
            val: None,
            parents: 0,
            assigned: false,
            unknown: false,
            flawed: false,
        });
        self.cur = Some(idx);
        if let Some(g) = g {
            if self.gold_of[g] == NONE {
                self.gold_of[g] = idx as u32;
            } else {
                self.issue(IssueKind::DuplicateName, d);
            }
        }
        let Some(ix) = slot_ix(letter) else { return };
        if self.slots[ix].kind != SlotKind::Free {
            self.issue(IssueKind::RedefinedLetter(letter as char), d);
        }
        self.slots[ix] = Slot {
            kind: SlotKind::Node,
            val: None,
            deps: g.map_or(EXTRA, |g| 1u128 << g),
            unknown: false,
            node: idx as u32,
        };
    }

    /// Split `NAME as L` (in `b[ns..e]`, trimmed at the end) into the trimmed name and L.
    fn header_parts(b: &[u8], ns: usize, e: usize) -> Option<(Range<usize>, u8)> {
        if e < ns + 6 {
            return None;
        }
        let letter = letter_at(b, e - 1, e)?;
        let mut p = e - 1;
        if !is_ws(b[p - 1]) {
            return None;
        }
        while p > ns && is_ws(b[p - 1]) {
            p -= 1;
        }
        if p < ns + 3 || &b[p - 2..p] != b"as" || !is_ws(b[p - 3]) {
            return None;
        }
        let (s, e) = trim(b, ns, p - 2);
        (s < e).then_some((s..e, letter))
    }

    /// Close the current step: a step that never got a value is the unknown (letter x, reverse
    /// mode, first time) or an [`IssueKind::Unassigned`] one.
    fn finish_step(&mut self) {
        let Some(n) = self.cur else { return };
        let node = &self.nodes[n];
        if !node.assigned {
            let at = node.name.start;
            if node.letter == b'x' && self.reverse && !self.unknown_seen {
                self.unknown_seen = true;
                let node = &mut self.nodes[n];
                node.unknown = true;
                node.val = Some(Lin::X);
                if let Some(ix) = slot_ix(b'x') {
                    self.slots[ix].val = Some(Lin::X);
                    self.slots[ix].unknown = true;
                }
            } else if node.letter == b'x' {
                self.issue(IssueKind::ExtraUnknown, at);
            } else {
                self.issue(IssueKind::Unassigned, at);
            }
        }
        self.cur = None;
    }

    /// A clause without `Define`.
    fn clause(&mut self, b: &[u8], cs: usize, ce: usize, has_eq: bool) {
        let (s, e) = trim(b, cs, ce);
        if s == e {
            return;
        }
        self.at = s;
        let t = &b[s..e];
        if t.starts_with(b"Answer:") {
            self.answer_claim(b, s + 7, e);
            return;
        }
        if self.eq_mode {
            if has_eq {
                self.eq_line(b, s, e);
            }
            return;
        }
        if t.starts_with(b"We know") && (t.len() == 7 || !is_word(t[7])) {
            self.we_know(b, s + 7, e);
            return;
        }
        let mut k = s;
        if e - k > 3 && matches!(&b[k..k + 2], b"so" | b"So" | b"SO") && is_ws(b[k + 2]) {
            k += 2;
            skip_ws(b, &mut k, e);
        }
        if let Some(l) = letter_at(b, k, e) {
            let mut c = k + 1;
            skip_ws(b, &mut c, e);
            if c < e && b[c] == b'=' && (c + 1 >= e || b[c + 1] != b'=') {
                self.assign(b, l, c + 1, e);
                return;
            }
        }
        if has_eq {
            self.issue(IssueKind::Malformed, s);
        }
    }

    fn answer_claim(&mut self, b: &[u8], s: usize, e: usize) {
        if let Some(v) = parse_number(b, s, e) {
            match self.claim {
                None => self.claim = Some(v),
                Some(c) if c != v => self.conflict = true,
                _ => {}
            }
        }
    }

    /// `L = e1 = ... = en` with the chain starting at `k`.
    fn assign(&mut self, b: &[u8], lhs: u8, mut k: usize, e: usize) {
        let mut first_deps = None;
        let mut prev: Option<Ev> = None;
        loop {
            let mut c = k;
            let Ok(ev) = self.expr(b, &mut c, e, 0) else {
                self.issue(IssueKind::Malformed, self.at);
                return;
            };
            skip_ws(b, &mut c, e);
            if first_deps.is_none() {
                first_deps = Some(ev.deps);
            }
            if let Some(p) = prev {
                if let (Some(x), Some(y)) = (p.val, ev.val) {
                    if x != y {
                        let kind = if p.letters {
                            IssueKind::WrongSubstitution
                        } else {
                            IssueKind::WrongResult
                        };
                        self.issue(kind, self.at);
                    }
                }
            }
            prev = Some(ev);
            if c >= e {
                break;
            }
            if b[c] != b'=' {
                self.issue(IssueKind::Malformed, self.at);
                return;
            }
            k = c + 1;
        }
        let val = prev.and_then(|p| p.val);
        let deps = first_deps.unwrap_or(0);
        let Some(ix) = slot_ix(lhs) else { return };
        if let Some(n) = self.cur.filter(|&n| self.nodes[n].letter == lhs) {
            if self.nodes[n].assigned {
                self.issue(IssueKind::RedefinedLetter(lhs as char), self.at);
            }
            let node = &mut self.nodes[n];
            node.assigned = true;
            node.val = val;
            node.parents = deps;
            self.slots[ix].val = val;
        } else {
            if self.slots[ix].kind != SlotKind::Free {
                self.issue(IssueKind::RedefinedLetter(lhs as char), self.at);
            }
            self.slots[ix] = Slot {
                kind: SlotKind::Inter,
                val,
                deps,
                unknown: false,
                node: NONE,
            };
        }
    }

    /// `We know P = N, so we have E = N and ...: EQUATION`: open the equation section.
    fn we_know(&mut self, b: &[u8], mut k: usize, e: usize) {
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
        let Ok(n) = self.expr(b, &mut c, e, 0) else {
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
        let l = self.expr(b, c, e, 0).ok()?;
        skip_ws(b, c, e);
        if *c >= e || b[*c] != b'=' {
            return None;
        }
        *c += 1;
        let r = self.expr(b, c, e, 0).ok()?;
        skip_ws(b, c, e);
        Some((l, r, *c))
    }

    /// One line of the equation section: `[label:] expr = expr`, equivalent to the line before.
    fn eq_line(&mut self, b: &[u8], s: usize, e: usize) {
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

    fn expr(&mut self, b: &[u8], c: &mut usize, e: usize, depth: u32) -> Result<Ev, ()> {
        let mut acc = self.term(b, c, e, depth)?;
        loop {
            skip_ws(b, c, e);
            if *c >= e || (b[*c] != b'+' && b[*c] != b'-') {
                return Ok(acc);
            }
            let op = b[*c];
            *c += 1;
            let r = self.term(b, c, e, depth)?;
            acc = self.combine(acc, r, op);
        }
    }

    fn term(&mut self, b: &[u8], c: &mut usize, e: usize, depth: u32) -> Result<Ev, ()> {
        let mut acc = self.factor(b, c, e, depth)?;
        loop {
            skip_ws(b, c, e);
            if *c >= e || (b[*c] != b'*' && b[*c] != b'/') {
                return Ok(acc);
            }
            let op = b[*c];
            *c += 1;
            let r = self.factor(b, c, e, depth)?;
            acc = self.combine(acc, r, op);
        }
    }

    fn combine(&mut self, l: Ev, r: Ev, op: u8) -> Ev {
        let val = match (l.val, r.val) {
            (Some(x), Some(y)) => {
                let v = match op {
                    b'+' => x.checked_add(y),
                    b'-' => x.checked_sub(y),
                    b'*' => x.checked_mul(y),
                    _ => x.checked_div(y),
                };
                if v.is_none() {
                    self.issue(IssueKind::BadArithmetic, self.at);
                }
                v
            }
            _ => None,
        };
        Ev {
            val,
            deps: l.deps | r.deps,
            letters: l.letters || r.letters,
            atom: 0,
            lit: false,
        }
    }

    fn factor(&mut self, b: &[u8], c: &mut usize, e: usize, depth: u32) -> Result<Ev, ()> {
        skip_ws(b, c, e);
        if *c >= e || depth > MAX_DEPTH {
            return Err(());
        }
        match b[*c] {
            b'-' => {
                *c += 1;
                let f = self.factor(b, c, e, depth + 1)?;
                let val = f.val.and_then(|v| {
                    let n = v.checked_neg();
                    if n.is_none() {
                        self.issue(IssueKind::BadArithmetic, self.at);
                    }
                    n
                });
                Ok(Ev { val, atom: 0, ..f })
            }
            b'(' => {
                *c += 1;
                let inner = self.expr(b, c, e, depth + 1)?;
                skip_ws(b, c, e);
                if *c >= e || b[*c] != b')' {
                    return Err(());
                }
                *c += 1;
                Ok(Ev {
                    atom: 0,
                    lit: false,
                    ..inner
                })
            }
            b'0'..=b'9' => {
                let (v, j) = number_at(b, *c, e).ok_or(())?;
                *c = j;
                if v.is_none() {
                    self.issue(IssueKind::BadArithmetic, self.at);
                }
                Ok(Ev {
                    val: v.map(Lin::num),
                    deps: 0,
                    letters: false,
                    atom: 0,
                    lit: true,
                })
            }
            _ => {
                let l = letter_at(b, *c, e).ok_or(())?;
                *c += 1;
                let Some(ix) = slot_ix(l) else { return Err(()) };
                let s = self.slots[ix];
                if s.kind == SlotKind::Free || s.val.is_none() {
                    self.issue(IssueKind::UndefinedLetter(l as char), self.at);
                }
                Ok(Ev {
                    val: s.val,
                    deps: s.deps,
                    letters: !s.unknown,
                    atom: l,
                    lit: false,
                })
            }
        }
    }
}
