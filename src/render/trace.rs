//! The gold trace (SPEC §3): one `Define NAME as L; ...` step per needed node in topological
//! order, fresh letters for every node and intermediate, and in reverse mode linear expressions
//! in x followed by the solved equation.
//!
//! Every assignment is written `LHS = letter-expression = substituted-expression = result` with
//! consecutive duplicate parts removed, which yields exactly the reference's shapes:
//! `so V = 3`, `so V = P = 5`, `so V = P + Q = 2 + 3 = 5`, `J = x`, `so R = 3 + J = 3 + x = x + 3`.
//!
//! The other [`TraceFormat`]s are the same walk with other words around the same arithmetic
//! (same letters, same assignments), so a format never changes what is computed, only what is
//! said: `terse` drops `Define ... as`, `so` and the reverse-mode prose; `long` adds a check
//! sentence after each step; `answer_only` writes no trace.

use super::push_int;
use crate::composer::{Combine, Mode, Outer, Problem, Quantity, MAX_VALUE};
use crate::graph::write_name;
use crate::template::Template;
use crate::trace::TraceFormat;

/// A value in the trace: `a*x + b` (a = 0 for plain numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Lin {
    a: i64,
    b: i64,
}

impl Lin {
    const fn num(b: i64) -> Lin {
        Lin { a: 0, b }
    }

    fn apply(self, sym: u8, o: Lin) -> Lin {
        match sym {
            b'+' => Lin {
                a: self.a + o.a,
                b: self.b + o.b,
            },
            b'-' => Lin {
                a: self.a - o.a,
                b: self.b - o.b,
            },
            // Multiplication is only ever by a constant (self).
            _ => Lin {
                a: self.b * o.a,
                b: self.b * o.b,
            },
        }
    }
}

/// `x + 3`, `-x`, `2*x - 1`, `7`.
fn push_lin(out: &mut String, v: Lin) {
    if v.a == 0 {
        push_int(out, v.b);
        return;
    }
    match v.a {
        1 => out.push('x'),
        -1 => out.push_str("-x"),
        a => {
            push_int(out, a);
            out.push_str("*x");
        }
    }
    if v.b > 0 {
        out.push_str(" + ");
        push_int(out, v.b);
    } else if v.b < 0 {
        out.push_str(" - ");
        push_int(out, -v.b);
    }
}

/// An operand of an assignment: a letter with its value, or a literal constant.
#[derive(Clone, Copy)]
enum Operand {
    Letter(u8, Lin),
    Const(i64),
}

impl Operand {
    fn value(self) -> Lin {
        match self {
            Operand::Letter(_, v) => v,
            Operand::Const(k) => Lin::num(k),
        }
    }

    fn push_letter(self, out: &mut String) {
        match self {
            Operand::Letter(c, _) => out.push(c as char),
            Operand::Const(k) => push_int(out, k),
        }
    }

    fn push_substituted(self, out: &mut String) {
        let v = self.value();
        if v.a == 0 || v == (Lin { a: 1, b: 0 }) {
            push_lin(out, v);
        } else {
            out.push('(');
            push_lin(out, v);
            out.push(')');
        }
    }
}

/// Scratch space for one trace.
struct Writer<'a> {
    p: &'a Problem,
    /// Next unused index into `p.letters`.
    next: usize,
    parts: [String; 3],
}

impl Writer<'_> {
    fn fresh(&mut self) -> u8 {
        let c = self.p.letters[self.next];
        self.next += 1;
        c
    }

    /// `LHS = a s b = va s vb = result` (or a single operand), duplicates removed; returns the
    /// result.
    fn assign(
        &mut self,
        out: &mut String,
        lhs: &str,
        lhs_letter: u8,
        ops: &[Operand],
        sym: u8,
    ) -> Lin {
        let mut result = ops[0].value();
        for &o in &ops[1..] {
            result = result.apply(sym, o.value());
        }
        let [l, s, r] = &mut self.parts;
        l.clear();
        s.clear();
        r.clear();
        for (i, &o) in ops.iter().enumerate() {
            if i > 0 {
                for part in [&mut *l, &mut *s] {
                    part.push(' ');
                    part.push(sym as char);
                    part.push(' ');
                }
            }
            o.push_letter(l);
            o.push_substituted(s);
        }
        push_lin(r, result);
        out.push_str(lhs);
        out.push(lhs_letter as char);
        out.push_str(" = ");
        out.push_str(l);
        if s != l {
            out.push_str(" = ");
            out.push_str(s);
        }
        if r != s {
            out.push_str(" = ");
            out.push_str(r);
        }
        result
    }

    /// The `long` format's check of the step just written (whose last assignment is still in
    /// `parts`): ` We know V is NAME, and 2 + 6 = 8, so V = 8.`, the arithmetic left out when
    /// the step only states or copies a value.
    fn check(&self, out: &mut String, t: &Template, q: Quantity, me: u8) {
        let [_, s, r] = &self.parts;
        out.push_str(" We know ");
        out.push(me as char);
        out.push_str(" is ");
        write_name(out, t, self.p, q);
        if s != r {
            out.push_str(", and ");
            out.push_str(s);
            out.push_str(" = ");
            out.push_str(r);
        }
        out.push_str(", so ");
        out.push(me as char);
        out.push_str(" = ");
        out.push_str(r);
        out.push('.');
    }
}

/// Write the gold trace of `p` (in the `full` format); returns the length of the trace without
/// ` Answer: N.` (the part that goes inside `<solution>`).
pub fn write_trace(out: &mut String, t: &Template, p: &Problem) -> usize {
    write_trace_as(out, t, p, TraceFormat::Full)
}

/// [`write_trace`] in the format `f`. An `answer_only` trace is `Answer: N.` alone (its part
/// inside `<solution>` is empty).
pub fn write_trace_as(out: &mut String, t: &Template, p: &Problem, f: TraceFormat) -> usize {
    let start = out.len();
    if f == TraceFormat::AnswerOnly {
        out.push_str("Answer: ");
        push_int(out, p.answer());
        out.push('.');
        return 0;
    }
    let terse = f == TraceFormat::Terse;
    // The final assignment of a step: `so V = ...` in prose, `V = ...` in terse.
    let so = if terse { "" } else { "so " };
    let mut w = Writer {
        p,
        next: 0,
        parts: Default::default(),
    };
    let mut letter = [0u8; 32];
    let mut value = [Lin::num(0); 32];
    if p.mode == Mode::Reverse && !terse {
        out.push_str("The question is difficult, so we use equations to solve it.");
    }
    for (i, node) in p.needed().iter().enumerate() {
        if out.len() > start {
            out.push(' ');
        }
        if !terse {
            out.push_str("Define ");
        }
        write_name(out, t, p, node.q);
        out.push_str(if terse { ": " } else { " as " });
        if p.hidden == Some(i) {
            letter[i] = b'x';
            value[i] = Lin { a: 1, b: 0 };
            out.push_str(if terse {
                "x."
            } else {
                "x; we don't know its value yet but will find it out later."
            });
            continue;
        }
        let me = w.fresh();
        letter[i] = me;
        if !terse {
            out.push(me as char);
            out.push_str("; ");
        }
        let parents = node.parents();
        let op =
            |j: usize| Operand::Letter(letter[parents[j] as usize], value[parents[j] as usize]);
        let sym = if node.combine == Combine::Diff {
            b'-'
        } else {
            b'+'
        };
        value[i] = match (node.combine, node.outer) {
            (Combine::Const(k), _) => w.assign(out, so, me, &[Operand::Const(k as i64)], sym),
            (_, Outer::None) => {
                let m = parents.len();
                let mut acc = op(0);
                for j in 1..m.saturating_sub(1) {
                    let tl = w.fresh();
                    let v = w.assign(out, "", tl, &[acc, op(j)], sym);
                    out.push_str("; ");
                    acc = Operand::Letter(tl, v);
                }
                if m == 1 {
                    w.assign(out, so, me, &[acc], sym)
                } else {
                    w.assign(out, so, me, &[acc, op(m - 1)], sym)
                }
            }
            (_, outer) => {
                // Reduce the parents into one intermediate, then apply the constant.
                let mut acc = op(0);
                let tl = w.fresh();
                let mut v = if parents.len() == 1 {
                    w.assign(out, "", tl, &[acc], sym)
                } else {
                    w.assign(out, "", tl, &[acc, op(1)], sym)
                };
                acc = Operand::Letter(tl, v);
                for j in 2..parents.len() {
                    out.push_str("; ");
                    let tl = w.fresh();
                    v = w.assign(out, "", tl, &[acc, op(j)], sym);
                    acc = Operand::Letter(tl, v);
                }
                out.push_str("; ");
                let (k, s) = match outer {
                    Outer::Plus(k) => (k, b'+'),
                    Outer::Times(k) => (k, b'*'),
                    Outer::None => unreachable!("handled above"),
                };
                w.assign(out, so, me, &[Operand::Const(k as i64), acc], s)
            }
        };
        out.push('.');
        if f == TraceFormat::Long {
            w.check(out, t, node.q, me);
        }
        debug_assert!(
            p.hidden.is_some() || value[i] == Lin::num(node.value),
            "trace value disagrees with the graph"
        );
    }
    if let Some(h) = p.hidden {
        // The equation, solved step by step; terse keeps the clauses and drops the labels
        // (and the restated equation).
        let fin = p.final_node();
        let (f, n, hv) = (value[fin], p.nodes[fin].value, p.nodes[h].value);
        debug_assert!(f.a != 0 && f.a * hv + f.b == n && n <= MAX_VALUE);
        out.push_str(" We know ");
        out.push(letter[fin] as char);
        out.push_str(" = ");
        push_int(out, n);
        out.push_str(", so we have ");
        push_lin(out, f);
        out.push_str(" = ");
        push_int(out, n);
        if terse {
            out.push_str("; ");
        } else {
            out.push_str(
                " and we solve it through the following steps: Simplifying the equation: ",
            );
            push_lin(out, f);
            out.push_str(" = ");
            push_int(out, n);
            out.push_str(". Move all terms to one side: ");
        }
        push_lin(out, Lin { a: f.a, b: f.b - n });
        out.push_str(if terse {
            " = 0; "
        } else {
            " = 0. Isolate the term with x: "
        });
        push_int(out, f.a);
        out.push_str("*x = ");
        push_int(out, n - f.b);
        if terse {
            out.push_str("; x = ");
        } else {
            out.push_str(". Divide both sides by ");
            push_int(out, f.a);
            out.push_str(": x = ");
        }
        push_int(out, n - f.b);
        out.push_str(" / ");
        push_int(out, f.a);
        out.push_str(if terse { "; x = " } else { ". Solution: x = " });
        push_int(out, hv);
        out.push('.');
    }
    let body = out.len() - start;
    out.push_str(" Answer: ");
    push_int(out, p.answer());
    out.push('.');
    body
}
