//! Expression evaluation: the arithmetic of a trace, recomputed exactly.
//!
//! Every part of an assignment chain and both sides of every equation line are evaluated here,
//! by recursive descent (`expr` → `term` → `factor`) with a depth limit, so a deep or
//! adversarial expression is a parse failure, never a stack overflow. Values are exact: the
//! common case, an integer, stays in an `i64` with checked arithmetic; anything else (a
//! fraction, or a linear form in the unknown x in reverse mode) goes through [`Lin`]. An
//! overflow or a division by zero is an [`IssueKind::BadArithmetic`], never a wrapped or
//! rounded value, so the verifier cannot accept a step whose arithmetic it did not check.
//!
//! These are methods of the [`Reader`], because evaluating a letter reads the reader's letter
//! table and an issue found inside an expression flags the step being read.

use super::lex::{digits8, is_word, is_ws, letter_at, number_at, skip_ws, slot_ix};
use super::num::{Lin, Num};
use super::read::{Reader, SlotKind};
use super::verdict::IssueKind;

/// Deepest nesting of parentheses and unary minus an expression may have.
const MAX_DEPTH: u32 = 48;

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
pub(super) struct Ev {
    pub val: Option<Lin>,
    pub deps: u128,
    /// Whether it mentions a letter other than the unknown (a letter-expression, whose next
    /// part is a substitution rather than a result).
    pub letters: bool,
    /// The letter, when the whole expression is one letter.
    pub atom: u8,
    /// Whether the whole expression is a number literal (possibly negated).
    pub lit: bool,
}

impl Reader {
    /// Evaluate a whole expression at `c` (one part of a chain, one side of an equation);
    /// on success `c` is past the whitespace after it.
    pub(super) fn top_expr(&mut self, b: &[u8], c: &mut usize, e: usize) -> Result<Ev, ()> {
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
    use crate::composer::Mode;
    use crate::graph::{GoldGraph, GoldNode, NodeKind};

    /// The integer fast path agrees with exact arithmetic at its edges.
    #[test]
    fn integer_fast_path_edges() {
        let g = GoldGraph {
            mode: Mode::Forward,
            nodes: vec![GoldNode {
                name: "n".into(),
                value: 1,
                parents: vec![],
                kind: NodeKind::Constant,
            }],
            asked: 0,
            answer: 1,
        };
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
