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
//!
//! The [`TraceFormat`] adds two clause shapes: in `terse`, `NAME: ...` starts a step whose
//! letter is the one its last assignment gives a value (`terse`); in `long`, `We know L is ...`
//! re-states the step being read and must agree with it (`check`).
//!
//! This file holds the reader's state and the clause reader; its parts live beside it:
//! `lex` (byte classes, numbers, search), `names` (the gold name table), `expr` (expression
//! evaluation), `equation` (the reverse-mode equation section), `terse` and `check`.

use std::ops::Range;

use super::expr::Ev;
use super::format::TraceFormat;
use super::lex::{
    find, find_define, is_word, is_ws, letter_at, parse_number, skip_ws, slot_ix, trim,
};
use super::marks::Marks;
use super::names::Names;
use super::num::{Lin, Num};
use super::verdict::{Issue, IssueKind};
use crate::composer::Mode;
use crate::graph::GoldGraph;

/// Most gold nodes a graph may have (one bit each in a `u128`, the top bit marks extras).
pub const MAX_GOLD_NODES: usize = 127;
/// Parent-set bit for a predicted parent that is not in the gold graph.
pub(crate) const EXTRA: u128 = 1 << 127;
/// No predicted node.
const NONE: u32 = u32::MAX;
/// The letter of a `terse` step before its last assignment names it (never a letter).
pub(super) const PENDING: u8 = 0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SlotKind {
    Free,
    /// The letter of a named (Define'd) node.
    Node,
    /// An intermediate letter.
    Inter,
}

/// What one letter stands for.
#[derive(Debug, Clone, Copy)]
pub(super) struct Slot {
    pub kind: SlotKind,
    pub val: Option<Lin>,
    /// The named nodes this letter stands for or was computed from.
    pub deps: u128,
    pub unknown: bool,
    /// The predicted node, for a `Node` letter.
    pub node: u32,
}

pub(super) const FREE: Slot = Slot {
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

/// Reading state; reused across completions so nothing is allocated in steady state.
#[derive(Debug)]
pub(crate) struct Reader {
    /// The format being read: which clause shapes start a step or check one.
    pub format: TraceFormat,
    pub(super) slots: [Slot; 52],
    /// Bit i: slot i may differ from `FREE` (only those are reset).
    pub(super) used: u64,
    /// Non-integer values of the expression being evaluated (see `expr::V`).
    pub(super) lins: Vec<Lin>,
    /// Parent set of the expression being evaluated.
    pub(super) acc_deps: u128,
    /// Whether the expression being evaluated mentions a letter other than the unknown.
    pub(super) acc_letters: bool,
    pub nodes: Vec<PNode>,
    pub issues: Vec<Issue>,
    /// Gold index -> predicted node index (`NONE` if not defined).
    pub gold_of: Vec<u32>,
    /// The gold names, for matching `Define` headers to gold nodes.
    names: Names,
    /// `Some(value)` if an `<answer>` tag was found (`Some(None)`: not a number).
    pub tag: Option<Option<Num>>,
    pub claim: Option<Num>,
    pub conflict: bool,
    pub equation_seen: bool,
    /// The value of the last equation line when it has the solved form `x = number`.
    pub solved: Option<Num>,
    /// Inside the equation section: a clause with `=` is an equation line.
    pub(super) eq_mode: bool,
    /// The root of the previous equation line (every line must keep it).
    pub(super) eq_prev: Option<Num>,
    /// The coefficient of x on the left of the previous equation line.
    pub(super) eq_coef: Option<Num>,
    unknown_seen: bool,
    /// The step being read.
    pub(super) cur: Option<usize>,
    /// The letter the current step's last intermediate assignment gave a value (`terse`: the
    /// step's own letter once the step ends).
    pub(super) last_lhs: Option<u8>,
    /// Start of the clause being read, where its issues are reported.
    pub(super) at: usize,
    reverse: bool,
    /// Gold index and value of the final node (what `We know` must state).
    pub(super) final_gold: usize,
    pub(super) final_value: i64,
    /// Delimiter and `<` bitmaps of the text being read.
    marks: Marks,
}

impl Reader {
    pub fn new() -> Reader {
        Reader {
            format: TraceFormat::Full,
            slots: [FREE; 52],
            used: 0,
            lins: Vec::new(),
            acc_deps: 0,
            acc_letters: false,
            nodes: Vec::new(),
            issues: Vec::new(),
            gold_of: Vec::new(),
            names: Names::new(),
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
            last_lhs: None,
            at: 0,
            reverse: false,
            final_gold: 0,
            final_value: 0,
            marks: Marks::default(),
        }
    }

    /// Read `text` against `gold` (whose names key the nodes). `gold` must have at most
    /// [`MAX_GOLD_NODES`] nodes.
    pub fn read(&mut self, gold: &GoldGraph, text: &str) {
        self.reset(gold);
        let b = text.as_bytes();
        self.marks.build(b);
        // One pass over the `<` bytes finds the tags; a second only in odd texts where an
        // `<answer>` or `</solution>` comes before the solution region.
        let (mut sol, mut qc, mut ans, mut sc) = (None, None, None, None);
        let mut lts = self.marks.lts(0, b.len());
        while let Some(k) = self.marks.next(&mut lts) {
            let r = &b[k..];
            let slot = if r.starts_with(b"<solution>") {
                &mut sol
            } else if r.starts_with(b"</question>") {
                &mut qc
            } else if r.starts_with(b"<answer>") {
                &mut ans
            } else if r.starts_with(b"</solution>") {
                &mut sc
            } else {
                continue;
            };
            if slot.is_none() {
                *slot = Some(k);
            }
        }
        let start = sol.map(|i| i + 10).or(qc.map(|i| i + 11)).unwrap_or(0);
        let tag = match ans {
            Some(a) if a < start => find(b, b"<answer>", start, b.len()),
            a => a,
        };
        let sc = match sc {
            Some(c) if c < start => find(b, b"</solution>", start, b.len()),
            c => c,
        };
        let end = sc
            .filter(|&c| tag.is_none_or(|t| c < t))
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
        let mut u = self.used;
        while u != 0 {
            self.slots[u.trailing_zeros() as usize] = FREE;
            u &= u - 1;
        }
        self.used = 0;
        self.nodes.clear();
        self.issues.clear();
        self.gold_of.clear();
        self.gold_of.resize(gold.nodes.len(), NONE);
        self.names.reset(gold);
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
        self.last_lhs = None;
        self.at = 0;
        self.reverse = gold.mode == Mode::Reverse;
        self.final_gold = gold.nodes.len().saturating_sub(1);
        self.final_value = gold.nodes.last().map_or(0, |n| n.value);
    }

    /// Record an issue at byte `at`; it flaws the step being read, if any.
    pub(super) fn issue(&mut self, kind: IssueKind, at: usize) {
        self.issues.push(Issue { kind, at });
        if let Some(n) = self.cur {
            self.nodes[n].flawed = true;
        }
    }

    /// Cut `b[start..end]` into clauses and handle each: a clause ends at the first `;`,
    /// newline, or `.` not followed by a digit, else at `end` (`b` is the marked text).
    fn clauses(&mut self, gold: &GoldGraph, b: &[u8], start: usize, end: usize) {
        let mut delims = self.marks.delims(start, end);
        let mut i = start;
        while i < end {
            let mut j = end;
            while let Some(k) = self.marks.next(&mut delims) {
                if b[k] == b'.' && k + 1 < end && b[k + 1].is_ascii_digit() {
                    continue;
                }
                j = k;
                break;
            }
            self.clause(gold, b, i, j);
            i = j + 1;
        }
    }

    /// `Define NAME as L`: start a new step.
    fn header(&mut self, gold: &GoldGraph, b: &[u8], d: usize, ce: usize) {
        assert!(ce <= b.len());
        self.finish_step();
        self.eq_mode = false;
        self.at = d;
        let ns = d + 7;
        let (_, e) = trim(b, ns, ce);
        let Some((name, letter)) = Self::header_parts(b, ns, e) else {
            self.issue(IssueKind::Malformed, d);
            return;
        };
        self.open_step(gold, b, d, name, letter);
    }

    /// Start the step named `b[name]` with `letter` (`PENDING` for a terse step whose letter
    /// is not known yet); `d` is where its clause starts.
    pub(super) fn open_step(
        &mut self,
        gold: &GoldGraph,
        b: &[u8],
        d: usize,
        name: Range<usize>,
        letter: u8,
    ) {
        self.last_lhs = None;
        let g = self.names.lookup(gold, &b[name.clone()]);
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
        self.claim_letter(letter);
    }

    /// Make `letter` the current step's own: its slot now stands for the step's node.
    pub(super) fn claim_letter(&mut self, letter: u8) {
        let Some(idx) = self.cur else { return };
        let d = self.at;
        self.nodes[idx].letter = letter;
        let g = self.nodes[idx].gold;
        let Some(ix) = slot_ix(letter) else { return };
        if self.slots[ix].kind != SlotKind::Free {
            self.issue(IssueKind::RedefinedLetter(letter as char), d);
        }
        self.used |= 1 << ix;
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
    pub(super) fn finish_step(&mut self) {
        let Some(n) = self.cur else { return };
        if self.nodes[n].letter == PENDING {
            self.bind_terse_letter(n);
        }
        let node = &self.nodes[n];
        if !node.assigned {
            let at = node.name.start;
            if node.letter == b'x' && self.reverse && !self.unknown_seen {
                self.unknown_seen = true;
                let node = &mut self.nodes[n];
                node.unknown = true;
                node.val = Some(Lin::X);
                if let Some(ix) = slot_ix(b'x') {
                    self.used |= 1 << ix;
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

    /// One clause: a step header, an answer claim, an equation line, an assignment, or free
    /// text (which may still hold a `Define` after some words).
    fn clause(&mut self, gold: &GoldGraph, b: &[u8], cs: usize, ce: usize) {
        assert!(ce <= b.len());
        let (s, e) = trim(b, cs, ce);
        if s == e {
            return;
        }
        self.at = s;
        let t = &b[s..e];
        if t.starts_with(b"Define ") {
            self.header(gold, b, s, e);
            return;
        }
        if t.starts_with(b"Answer:") {
            self.answer_claim(b, s + 7, e);
            return;
        }
        if self.format == TraceFormat::Long && Self::is_check(t) {
            self.check(b, s + 7, e);
            return;
        }
        if self.eq_mode {
            if memchr::memchr(b'=', &b[s..e]).is_some() {
                self.eq_line(b, s, e);
            } else if let Some(d) = find_define(b, s, e) {
                self.header(gold, b, d, e);
            }
            return;
        }
        if t.starts_with(b"We know") && (t.len() == 7 || !is_word(t[7])) {
            self.we_know(b, s + 7, e);
            return;
        }
        if self.assignment(b, s, e) {
            return;
        }
        if self.format == TraceFormat::Terse && self.terse_header(gold, b, s, e) {
            return;
        }
        if let Some(d) = find_define(b, s, e) {
            self.header(gold, b, d, e);
        } else if memchr::memchr(b'=', &b[s..e]).is_some() {
            self.issue(IssueKind::Malformed, s);
        }
    }

    /// `[so] L = ...` in `b[s..e]` (trimmed): read it and return true, else read nothing.
    pub(super) fn assignment(&mut self, b: &[u8], s: usize, e: usize) -> bool {
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
                return true;
            }
        }
        false
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
        assert!(e <= b.len());
        // A malformed last assignment leaves a terse step without a letter (unassigned).
        if self.cur.is_some() {
            self.last_lhs = None;
        }
        let mut first_deps = None;
        let mut prev: Option<Ev> = None;
        loop {
            let mut c = k;
            let Ok(ev) = self.top_expr(b, &mut c, e) else {
                self.issue(IssueKind::Malformed, self.at);
                return;
            };
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
            self.used |= 1 << ix;
            self.slots[ix].val = val;
        } else {
            if self.slots[ix].kind != SlotKind::Free {
                self.issue(IssueKind::RedefinedLetter(lhs as char), self.at);
            }
            if self.cur.is_some() {
                self.last_lhs = Some(lhs);
            }
            self.used |= 1 << ix;
            self.slots[ix] = Slot {
                kind: SlotKind::Inter,
                val,
                deps,
                unknown: false,
                node: NONE,
            };
        }
    }
}
