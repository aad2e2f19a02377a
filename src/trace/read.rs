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

use super::marks::Marks;
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

/// A value inside expression evaluation, or a parse failure: two words, so it is returned in
/// registers. `m` holds the tag (low byte: one of the `T_*`), the atom letter (second byte) and
/// the literal flag (`LIT`). Integers are held inline in `x`; fractions and forms in x live in
/// a per-expression arena (`Reader::lins`, indexed by `x`) and are computed with the exact
/// [`Lin`] arithmetic. The parent set and the letter flag of the expression are accumulated in
/// the reader (`acc_deps`, `acc_letters`).
#[derive(Debug, Clone, Copy)]
struct V {
    x: i64,
    m: u64,
}

/// No value (an undefined letter, or an arithmetic failure already reported).
const T_NONE: u64 = 0;
/// The integer `x` (the linear form `0·x + x`), the fast path.
const T_INT: u64 = 1;
/// Any other linear form: `x` indexes `Reader::lins`.
const T_FULL: u64 = 2;
/// Not an expression (a parse failure).
const T_ERR: u64 = 3;
/// The whole expression is a number literal (possibly negated).
const LIT: u64 = 1 << 16;

impl V {
    const NONE: V = V { x: 0, m: T_NONE };
    const ERR: V = V { x: 0, m: T_ERR };

    fn int(x: i64) -> V {
        V { x, m: T_INT }
    }

    fn tag(self) -> u64 {
        self.m & 0xff
    }

    fn is_err(self) -> bool {
        self.tag() == T_ERR
    }

    /// The letter, when the whole expression is one letter.
    fn atom(self) -> u8 {
        (self.m >> 8) as u8
    }

    fn lit(self) -> bool {
        self.m & LIT != 0
    }

    /// The same value, as a compound expression (no atom, not a literal).
    fn plain(self) -> V {
        V {
            x: self.x,
            m: self.m & 0xff,
        }
    }
}

/// `?` for [`V`]: return a parse failure at once.
macro_rules! tri {
    ($v:expr) => {{
        let v = $v;
        if v.is_err() {
            return V::ERR;
        }
        v
    }};
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
    /// Bit i: slot i may differ from `FREE` (only those are reset).
    used: u64,
    /// Non-integer values of the expression being evaluated (see [`V`]).
    lins: Vec<Lin>,
    /// Parent set of the expression being evaluated.
    acc_deps: u128,
    /// Whether the expression being evaluated mentions a letter other than the unknown.
    acc_letters: bool,
    pub nodes: Vec<PNode>,
    pub issues: Vec<Issue>,
    /// Gold index -> predicted node index (`NONE` if not defined).
    pub gold_of: Vec<u32>,
    /// Keys of the gold names, by gold index.
    keys: Vec<u64>,
    /// Open-addressing table over the gold names: gold index + 1, 0 for an empty bucket.
    /// Linear probing in gold order, so the first match along a probe is the first gold node
    /// with that name.
    table: [u8; TABLE],
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
    /// Delimiter and `<` bitmaps of the text being read.
    marks: Marks,
}

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
fn is_word(c: u8) -> bool {
    WORD[c as usize]
}

#[inline(always)]
fn is_ws(c: u8) -> bool {
    c == b' ' || c == b'\t' || c == b'\r' || c == b'\n'
}

#[inline(always)]
fn slot_ix(c: u8) -> Option<usize> {
    let ix = SLOT[c as usize];
    (ix != NO_SLOT).then_some(ix as usize)
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

#[inline(always)]
fn skip_ws(b: &[u8], c: &mut usize, e: usize) {
    while *c < e && is_ws(b[*c]) {
        *c += 1;
    }
}

/// The run of ASCII digits at `i` (at most eight, none at or past `e`) and its value, read
/// eight bytes at a time without a loop; `None` when fewer than eight bytes of `b` remain.
#[inline(always)]
fn digits8(b: &[u8], i: usize, e: usize) -> Option<(usize, i64)> {
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

/// Position of byte `c` in `b[from..to]`, eight bytes at a time (SWAR).
fn find_byte(b: &[u8], from: usize, to: usize, c: u8) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let to = to.min(b.len());
    let pat = LO.wrapping_mul(c as u64);
    let mut i = from;
    while i + 8 <= to {
        let mut w = [0u8; 8];
        w.copy_from_slice(&b[i..i + 8]);
        let x = u64::from_le_bytes(w) ^ pat;
        let z = x.wrapping_sub(LO) & !x & HI;
        if z != 0 {
            return Some(i + (z.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    (i..to).find(|&k| b[k] == c)
}

/// Position of `pat` in `b[from..to]`.
fn find(b: &[u8], pat: &[u8], from: usize, to: usize) -> Option<usize> {
    let first = *pat.first()?;
    let mut i = from;
    while let Some(k) = find_byte(b, i, to, first) {
        if k + pat.len() > to {
            return None;
        }
        if &b[k..k + pat.len()] == pat {
            return Some(k);
        }
        i = k + 1;
    }
    None
}

/// The first `Define ` at a word boundary in `b[s..e]`.
fn find_define(b: &[u8], mut s: usize, e: usize) -> Option<usize> {
    while let Some(d) = find(b, b"Define ", s, e) {
        if d == 0 || !is_word(b[d - 1]) {
            return Some(d);
        }
        s = d + 1;
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

/// A cheap key for a name: its length, first and last eight bytes. No multiply chain, so
/// keying the gold names anew for every completion costs a few loads; equal keys are then
/// confirmed byte for byte.
pub(crate) fn name_key(s: &[u8]) -> u64 {
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

/// `a == b`, eight bytes a step: names are a few dozen bytes and, once their keys agree,
/// almost always equal, so an inline loop beats a call to `memcmp`.
#[inline]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if n < 8 {
        return a == b;
    }
    let word =
        |s: &[u8], i: usize| u64::from_le_bytes(*s[i..].first_chunk::<8>().expect("8 bytes"));
    let mut i = 0;
    while i + 8 < n {
        if word(a, i) != word(b, i) {
            return false;
        }
        i += 8;
    }
    // The last eight bytes, overlapping the words before.
    word(a, n - 8) == word(b, n - 8)
}

/// Buckets in the gold name table (twice `MAX_GOLD_NODES`, rounded up).
const TABLE: usize = 256;

/// Home bucket of a name key.
fn bucket(h: u64) -> usize {
    (h.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56) as usize
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
            used: 0,
            lins: Vec::new(),
            acc_deps: 0,
            acc_letters: false,
            nodes: Vec::new(),
            issues: Vec::new(),
            gold_of: Vec::new(),
            keys: Vec::new(),
            table: [0; TABLE],
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
        let h = name_key(name);
        let mut k = bucket(h);
        loop {
            let i = self.table[k] as usize;
            if i == 0 {
                return None;
            }
            let i = i - 1;
            if self.keys[i] == h && same_bytes(gold.nodes[i].name.as_bytes(), name) {
                return Some(i);
            }
            k = (k + 1) % TABLE;
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
        if self.eq_mode {
            if find_byte(b, s, e, b'=').is_some() {
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
        if let Some(d) = find_define(b, s, e) {
            self.header(gold, b, d, e);
        } else if find_byte(b, s, e, b'=').is_some() {
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
        assert!(e <= b.len());
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

    /// Evaluate a whole expression at `c` (one part of a chain, one side of an equation);
    /// on success `c` is past the whitespace after it.
    fn top_expr(&mut self, b: &[u8], c: &mut usize, e: usize) -> Result<Ev, ()> {
        self.lins.clear();
        self.acc_deps = 0;
        self.acc_letters = false;
        let v = self.expr(b, c, e, 0);
        if v.is_err() {
            return Err(());
        }
        Ok(Ev {
            val: self.lin_of(v),
            deps: self.acc_deps,
            letters: self.acc_letters,
            atom: v.atom(),
            lit: v.lit(),
        })
    }

    /// The exact value of `v`.
    fn lin_of(&self, v: V) -> Option<Lin> {
        match v.tag() {
            T_INT => Some(Lin::num(Num::int(v.x))),
            T_FULL => Some(self.lins[v.x as usize]),
            _ => None,
        }
    }

    /// Hold `l` as a [`V`]: inline when it is exactly the integer form `0·x + n`.
    fn put(&mut self, l: Option<Lin>) -> V {
        let Some(l) = l else { return V::NONE };
        if l.a == Num::ZERO {
            if let Some(n) = l.b.as_int() {
                return V::int(n);
            }
        }
        self.lins.push(l);
        V {
            x: (self.lins.len() - 1) as i64,
            m: T_FULL,
        }
    }

    /// An expression at `*c`. On success `*c` is past the whitespace after it: `term` always
    /// ends by skipping whitespace, so neither this loop nor the callers skip it again.
    fn expr(&mut self, b: &[u8], c: &mut usize, e: usize, depth: u32) -> V {
        // Every caller passes an end inside the text; saying so lets every `*c < e` check
        // stand for the bounds check of the index that follows.
        assert!(e <= b.len());
        let mut acc = tri!(self.term(b, c, e, depth));
        loop {
            debug_assert!(*c >= e || !is_ws(b[*c]));
            if *c >= e || (b[*c] != b'+' && b[*c] != b'-') {
                return acc;
            }
            let op = b[*c];
            *c += 1;
            let r = tri!(self.term(b, c, e, depth));
            acc = self.combine(acc, r, op);
        }
    }

    #[inline(always)]
    fn term(&mut self, b: &[u8], c: &mut usize, e: usize, depth: u32) -> V {
        let mut acc = tri!(self.factor(b, c, e, depth));
        loop {
            skip_ws(b, c, e);
            if *c >= e || (b[*c] != b'*' && b[*c] != b'/') {
                return acc;
            }
            let op = b[*c];
            *c += 1;
            let r = tri!(self.factor(b, c, e, depth));
            acc = self.combine(acc, r, op);
        }
    }

    /// `l op r`. Integers stay on the `i64` fast path whenever the exact result is an integer
    /// (checked, so overflow is an error exactly as in [`Num`]); anything else goes through
    /// the exact [`Lin`] arithmetic.
    #[inline]
    fn combine(&mut self, l: V, r: V, op: u8) -> V {
        if l.tag() == T_INT && r.tag() == T_INT {
            let (x, y) = (l.x, r.x);
            let v = match op {
                b'+' => x.checked_add(y),
                b'-' => x.checked_sub(y),
                b'*' => x.checked_mul(y),
                // `checked_rem` is `None` for a zero divisor and for `i64::MIN % -1`, whose
                // quotient does not fit: both are errors, as in `Num::checked_div`.
                _ => match x.checked_rem(y) {
                    Some(0) => x.checked_div(y),
                    Some(_) => return self.combine_exact(l, r, op),
                    None => None,
                },
            };
            return match v {
                Some(v) => V::int(v),
                None => {
                    self.issue(IssueKind::BadArithmetic, self.at);
                    V::NONE
                }
            };
        }
        self.combine_exact(l, r, op)
    }

    #[inline(never)]
    fn combine_exact(&mut self, l: V, r: V, op: u8) -> V {
        let (Some(x), Some(y)) = (self.lin_of(l), self.lin_of(r)) else {
            return V::NONE;
        };
        let v = match op {
            b'+' => x.checked_add(y),
            b'-' => x.checked_sub(y),
            b'*' => x.checked_mul(y),
            _ => x.checked_div(y),
        };
        if v.is_none() {
            self.issue(IssueKind::BadArithmetic, self.at);
        }
        self.put(v)
    }

    /// A factor: the common cases (a short integer literal, a letter) inline, the rest in
    /// [`Reader::factor_slow`].
    #[inline(always)]
    fn factor(&mut self, b: &[u8], c: &mut usize, e: usize, depth: u32) -> V {
        skip_ws(b, c, e);
        if *c >= e || depth > MAX_DEPTH {
            return V::ERR;
        }
        match b[*c] {
            b'0'..=b'9' => {
                // Fast path: at most 18 digits (no overflow possible), no fraction, not glued
                // to a word; anything else is read by `factor_slow`. Up to eight digits are
                // read without a loop where eight bytes remain.
                let (i, n) = match digits8(b, *c, e) {
                    Some((k, n)) => (*c + k, n),
                    None => {
                        let mut i = *c;
                        let mut n: i64 = 0;
                        while i < e && i - *c < 18 && b[i].is_ascii_digit() {
                            n = n * 10 + (b[i] - b'0') as i64;
                            i += 1;
                        }
                        (i, n)
                    }
                };
                if i >= e || !(is_word(b[i]) || b[i] == b'.') {
                    *c = i;
                    return V {
                        x: n,
                        m: T_INT | LIT,
                    };
                }
                self.factor_slow(b, c, e, depth)
            }
            b'-' | b'(' => self.factor_slow(b, c, e, depth),
            _ => self.letter_factor(b, c, e),
        }
    }

    /// A letter operand: its value, and its dependencies and letter flag accumulated.
    #[inline(always)]
    fn letter_factor(&mut self, b: &[u8], c: &mut usize, e: usize) -> V {
        let Some(l) = letter_at(b, *c, e) else {
            return V::ERR;
        };
        *c += 1;
        let Some(ix) = slot_ix(l) else {
            return V::ERR;
        };
        let s = &self.slots[ix];
        let (free, val, deps, unknown) = (s.kind == SlotKind::Free, s.val, s.deps, s.unknown);
        if free || val.is_none() {
            self.issue(IssueKind::UndefinedLetter(l as char), self.at);
        }
        self.acc_deps |= deps;
        self.acc_letters |= !unknown;
        let v = self.put(val);
        V {
            x: v.x,
            m: v.m | (l as u64) << 8,
        }
    }

    /// The factor at `*c` (after whitespace, `*c < e`, depth checked), in full.
    #[inline(never)]
    fn factor_slow(&mut self, b: &[u8], c: &mut usize, e: usize, depth: u32) -> V {
        match b[*c] {
            b'-' => {
                *c += 1;
                let f = tri!(self.factor(b, c, e, depth + 1));
                let v = match f.tag() {
                    T_INT => match f.x.checked_neg() {
                        Some(n) => V::int(n),
                        None => {
                            self.issue(IssueKind::BadArithmetic, self.at);
                            V::NONE
                        }
                    },
                    T_FULL => {
                        let n = self.lin_of(f).and_then(Lin::checked_neg);
                        if n.is_none() {
                            self.issue(IssueKind::BadArithmetic, self.at);
                        }
                        self.put(n)
                    }
                    _ => V::NONE,
                };
                // Still a literal if `f` was one; never an atom.
                V {
                    x: v.x,
                    m: v.m | (f.m & LIT),
                }
            }
            b'(' => {
                *c += 1;
                let inner = tri!(self.expr(b, c, e, depth + 1));
                if *c >= e || b[*c] != b')' {
                    return V::ERR;
                }
                *c += 1;
                inner.plain()
            }
            b'0'..=b'9' => {
                // `factor` already took short plain integers; this is the full reader.
                let Some((v, j)) = number_at(b, *c, e) else {
                    return V::ERR;
                };
                *c = j;
                let v = match v {
                    Some(v) => match v.as_int() {
                        Some(n) => V::int(n),
                        None => self.put(Some(Lin::num(v))),
                    },
                    None => {
                        self.issue(IssueKind::BadArithmetic, self.at);
                        V::NONE
                    }
                };
                V {
                    x: v.x,
                    m: v.m | LIT,
                }
            }
            _ => self.letter_factor(b, c, e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
        let mut r = Reader::new();
        for _ in 0..2 {
            r.reset(&g);
            for n in &names {
                let first = names.iter().position(|m| m == n).unwrap();
                assert_eq!(r.lookup(&g, n.as_bytes()), Some(first), "{n}");
            }
            for miss in [
                "",
                "b",
                "abcdefgj",
                "adult animal 120 in South Zoo",
                "adult animal 7 in South Zo",
            ] {
                assert_eq!(r.lookup(&g, miss.as_bytes()), None, "{miss}");
            }
        }
        // A smaller graph after a larger one: no stale entries.
        let g2 = gold(&names[..3]);
        r.reset(&g2);
        assert_eq!(r.lookup(&g2, names[5].as_bytes()), None);
        assert_eq!(r.lookup(&g2, names[2].as_bytes()), Some(2));
    }

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
    fn same_bytes_is_equality() {
        let base: Vec<u8> = (0..40u8).map(|i| b'a' + i % 26).collect();
        for n in 0..=40 {
            let a = &base[..n];
            assert!(same_bytes(a, a));
            for k in 0..n {
                let mut b = a.to_vec();
                b[k] ^= 0x20;
                assert!(!same_bytes(a, &b), "{n} {k}");
            }
            if n > 0 {
                assert!(!same_bytes(a, &base[..n - 1]));
            }
        }
    }

    #[test]
    fn name_key_short_and_long() {
        assert_eq!(name_key(b"abc"), name_key(b"abc"));
        assert_ne!(name_key(b"abc"), name_key(b"abc\0"));
        assert_ne!(name_key(b"abcdefgh"), name_key(b"abcdefghabcdefgh"));
    }

    /// The integer fast path agrees with exact arithmetic at its edges.
    #[test]
    fn integer_fast_path_edges() {
        let g = gold(&["n".to_string()]);
        let mut r = Reader::new();
        let mut check = |chain: &str, issues: &[IssueKind], val: Option<Num>| {
            r.read(&g, &format!("Define n as A; so A = {chain}."));
            let kinds: Vec<IssueKind> = r.issues.iter().map(|i| i.kind).collect();
            assert_eq!(kinds, issues, "{chain}");
            assert_eq!(r.nodes[0].val, val.map(Lin::num), "{chain}");
        };
        let int = |v| Some(Num::int(v));
        check("6 / 3 = 2", &[], int(2));
        check("-6 / 4 * 2 = -3", &[], int(-3));
        check("7 / 2 = 3", &[IssueKind::WrongResult], int(3));
        check("7 / 2 = 3.5", &[], Num::ratio(7, 2));
        check("7 / 2 * 2 = 7", &[], int(7));
        check("5 = 5.0 = 5.00", &[], int(5));
        check("2.5 * 2 = 5", &[], int(5));
        check(
            "999999999999999999 + 1 = 1000000000000000000",
            &[],
            int(10i64.pow(18)),
        );
        check("9223372036854775807", &[], int(i64::MAX));
        check("9223372036854775807 + 1", &[IssueKind::BadArithmetic], None);
        check("9223372036854775808", &[IssueKind::BadArithmetic], None);
        check("-9223372036854775807 - 1", &[], int(i64::MIN));
        check(
            "(-9223372036854775807 - 1) / -1",
            &[IssueKind::BadArithmetic],
            None,
        );
        check(
            "-(-9223372036854775807 - 1)",
            &[IssueKind::BadArithmetic],
            None,
        );
        check("(-9223372036854775807 - 1) / 2", &[], int(i64::MIN / 2));
        check("5 / 0", &[IssueKind::BadArithmetic], None);
        check("0 / 5 = 0", &[], int(0));
        check("3037000500 * 3037000500", &[IssueKind::BadArithmetic], None);
        check("- - 3 = 3", &[], int(3));
        check("12ab", &[IssueKind::Malformed, IssueKind::Unassigned], None);
    }
}
