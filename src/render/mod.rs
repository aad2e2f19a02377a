//! Render a composed problem into text: the problem sentences, the question, the gold trace,
//! and the model-facing prompt / completion (SPEC §1 and §3).
//!
//! Rendering is pure: the letters and sentence order were drawn by the composer, so the same
//! problem always renders to the same bytes. A [`Rendered`] is reused across problems to keep
//! the hot loop free of allocations.

mod text;
mod trace;

pub use text::{write_problem, write_question};
pub use trace::{write_trace, write_trace_as};

use crate::composer::Problem;
use crate::template::Template;
use crate::trace::TraceFormat;

/// Opening of the model-facing sequence, through the question.
pub const QUESTION_OPEN: &str = "<question> ";
pub const QUESTION_CLOSE: &str = " </question> <solution>";
pub const SOLUTION_CLOSE: &str = " </solution> <answer> ";
pub const ANSWER_CLOSE: &str = " </answer>";

/// All text fields of one problem, its trace in `format`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The trace format `fill` writes (`full` by default). The prompt is the same in every
    /// format; the solution and completion are not.
    pub format: TraceFormat,
    /// The stated sentences, shuffled, separated by single spaces.
    pub problem: String,
    pub question: String,
    /// The gold trace, ending with `Answer: N.`
    pub solution: String,
    pub answer: i64,
    /// `<question> {problem} {question} </question> <solution>`
    pub prompt: String,
    /// ` {solution without "Answer: N."} </solution> <answer> {N} </answer>`; with an empty
    /// trace (`answer_only`) ` </solution> <answer> {N} </answer>`.
    pub completion: String,
}

impl Rendered {
    /// An empty value that renders traces in `format`.
    pub fn in_format(format: TraceFormat) -> Rendered {
        Rendered {
            format,
            ..Rendered::default()
        }
    }

    /// Render `p` into `self`, reusing its buffers.
    pub fn fill(&mut self, t: &Template, p: &Problem) {
        self.problem.clear();
        self.question.clear();
        self.solution.clear();
        self.prompt.clear();
        self.completion.clear();
        write_problem(&mut self.problem, t, p);
        write_question(&mut self.question, t, p);
        let body_len = write_trace_as(&mut self.solution, t, p, self.format);
        self.answer = p.answer();

        self.prompt.push_str(QUESTION_OPEN);
        self.prompt.push_str(&self.problem);
        self.prompt.push(' ');
        self.prompt.push_str(&self.question);
        self.prompt.push_str(QUESTION_CLOSE);

        if body_len > 0 {
            self.completion.push(' ');
            self.completion.push_str(&self.solution[..body_len]);
        }
        self.completion.push_str(SOLUTION_CLOSE);
        push_int(&mut self.completion, self.answer);
        self.completion.push_str(ANSWER_CLOSE);
    }

    /// Render `p` into a fresh value (`full` format).
    pub fn of(t: &Template, p: &Problem) -> Rendered {
        Rendered::of_format(t, p, TraceFormat::Full)
    }

    /// Render `p` into a fresh value, its trace in `format`.
    pub fn of_format(t: &Template, p: &Problem, format: TraceFormat) -> Rendered {
        let mut r = Rendered::in_format(format);
        r.fill(t, p);
        r
    }
}

/// Append a decimal integer without going through `fmt`.
pub(crate) fn push_int(out: &mut String, v: i64) {
    if v < 0 {
        out.push('-');
    }
    let mut n = v.unsigned_abs();
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.push_str(std::str::from_utf8(&buf[i..]).expect("ASCII digits"));
}

#[cfg(test)]
mod tests {
    use super::push_int;
    use super::Rendered;
    use crate::composer::{Combine, Mode, Node, Outer, Problem, Quantity, FINAL_STATEMENT};
    use crate::template::TemplateSet;

    fn inst(loc: u8, item: u8) -> Quantity {
        Quantity::Instance { loc, item }
    }

    /// The forward example of SPEC §3, built by hand: zoo, human places (Jefferson Circus = 1,
    /// Hamilton Farm = 4), birds (parrot = 1, owl = 2).
    fn spec_forward() -> Problem {
        let nodes = vec![
            Node::new(inst(0, 1), Combine::Const(2), Outer::None, &[], 2),
            Node::new(inst(0, 0), Combine::Sum, Outer::Times(3), &[0], 6),
            Node::new(
                Quantity::Total { loc: 0 },
                Combine::Sum,
                Outer::None,
                &[0, 1],
                8,
            ),
            Node::new(inst(1, 1), Combine::Sum, Outer::Plus(4), &[2, 0, 1], 20),
            Node::new(
                Quantity::Total { loc: 1 },
                Combine::Sum,
                Outer::None,
                &[3],
                20,
            ),
        ];
        Problem {
            mode: Mode::Forward,
            op: 11,
            loc_group: 1,
            item_group: 1,
            locs: vec![1, 4],
            items: vec![1, 2],
            nodes,
            n_needed: 5,
            hidden: None,
            order: vec![1, 3, 0],
            letters: b"KtQUzOAB".to_vec(),
        }
    }

    #[test]
    fn spec_forward_example_renders_exactly() {
        let set = TemplateSet::builtin();
        let r = Rendered::of(set.get("zoo").unwrap(), &spec_forward());
        assert_eq!(
            r.solution,
            "Define adult owl in Jefferson Circus as K; so K = 2. Define adult parrot in Jefferson Circus as t; \
             Q = K = 2; so t = 3 * Q = 3 * 2 = 6. Define total number of adult animals in Jefferson Circus as U; \
             so U = K + t = 2 + 6 = 8. Define adult owl in Hamilton Farm as z; O = U + K = 8 + 2 = 10; \
             A = O + t = 10 + 6 = 16; so z = 4 + A = 4 + 16 = 20. Define total number of adult animals in \
             Hamilton Farm as B; so B = z = 20. Answer: 20."
        );
        assert_eq!(
            r.problem,
            "The number of adult parrot in Jefferson Circus equals 3 times the number of adult owl in \
             Jefferson Circus. The number of adult owl in Hamilton Farm equals 4 plus the sum of the total \
             number of adult animals in Jefferson Circus, the number of adult owl in Jefferson Circus, and \
             the number of adult parrot in Jefferson Circus. The number of adult owl in Jefferson Circus equals 2."
        );
        assert_eq!(
            r.question,
            "What is the total number of adult animals in Hamilton Farm?"
        );
        assert_eq!(
            r.prompt,
            format!(
                "<question> {} {} </question> <solution>",
                r.problem, r.question
            )
        );
        let body = r.solution.strip_suffix(" Answer: 20.").unwrap();
        assert_eq!(
            r.completion,
            format!(" {body} </solution> <answer> 20 </answer>")
        );
    }

    /// The reverse example of SPEC §3: adult fox in Maple Creek (hidden, 3); adult wolf in
    /// Maple Creek = 4 plus the fox.
    fn spec_reverse() -> Problem {
        let nodes = vec![
            Node::new(inst(0, 1), Combine::Const(3), Outer::None, &[], 3),
            Node::new(inst(0, 0), Combine::Sum, Outer::Plus(4), &[0], 7),
        ];
        Problem {
            mode: Mode::Reverse,
            op: 3,
            loc_group: 0,
            item_group: 0,
            locs: vec![4],
            items: vec![1, 3],
            nodes,
            n_needed: 2,
            hidden: Some(0),
            order: vec![0, 1, FINAL_STATEMENT],
            letters: b"PJ".to_vec(),
        }
    }

    #[test]
    fn spec_reverse_example_renders_exactly() {
        let p = spec_reverse();
        let set = TemplateSet::builtin();
        let r = Rendered::of(set.get("zoo").unwrap(), &p);
        assert_eq!(
            r.solution,
            "The question is difficult, so we use equations to solve it. Define adult fox in Maple Creek as x; \
             we don't know its value yet but will find it out later. Define adult wolf in Maple Creek as P; \
             J = x; so P = 4 + J = 4 + x = x + 4. We know P = 7, so we have x + 4 = 7 and we solve it through \
             the following steps: Simplifying the equation: x + 4 = 7. Move all terms to one side: x - 3 = 0. \
             Isolate the term with x: 1*x = 3. Divide both sides by 1: x = 3 / 1. Solution: x = 3. Answer: 3."
        );
        assert_eq!(
            r.problem,
            "The number of adult fox in Maple Creek exists, and its number is greater than 0. The number of \
             adult wolf in Maple Creek equals 4 plus the number of adult fox in Maple Creek. The number of \
             adult wolf in Maple Creek equals 7."
        );
        assert_eq!(r.question, "How many adult fox does Maple Creek have?");
    }

    /// Each format of the SPEC §3 examples, exactly: the same letters and arithmetic in other
    /// words, and the same prompt.
    #[test]
    fn every_format_renders_exactly() {
        use crate::trace::TraceFormat::{AnswerOnly, Long, Terse};
        let set = TemplateSet::builtin();
        let t = set.get("zoo").unwrap();
        let full = Rendered::of(t, &spec_forward());
        let terse = Rendered::of_format(t, &spec_forward(), Terse);
        assert_eq!(
            terse.solution,
            "adult owl in Jefferson Circus: K = 2. adult parrot in Jefferson Circus: Q = K = 2; \
             t = 3 * Q = 3 * 2 = 6. total number of adult animals in Jefferson Circus: U = K + t = 2 + 6 = 8. \
             adult owl in Hamilton Farm: O = U + K = 8 + 2 = 10; A = O + t = 10 + 6 = 16; \
             z = 4 + A = 4 + 16 = 20. total number of adult animals in Hamilton Farm: B = z = 20. Answer: 20."
        );
        let long = Rendered::of_format(t, &spec_forward(), Long);
        assert_eq!(
            long.solution,
            "Define adult owl in Jefferson Circus as K; so K = 2. We know K is adult owl in Jefferson Circus, \
             so K = 2. Define adult parrot in Jefferson Circus as t; Q = K = 2; so t = 3 * Q = 3 * 2 = 6. \
             We know t is adult parrot in Jefferson Circus, and 3 * 2 = 6, so t = 6. Define total number of \
             adult animals in Jefferson Circus as U; so U = K + t = 2 + 6 = 8. We know U is total number of \
             adult animals in Jefferson Circus, and 2 + 6 = 8, so U = 8. Define adult owl in Hamilton Farm \
             as z; O = U + K = 8 + 2 = 10; A = O + t = 10 + 6 = 16; so z = 4 + A = 4 + 16 = 20. We know z is \
             adult owl in Hamilton Farm, and 4 + 16 = 20, so z = 20. Define total number of adult animals \
             in Hamilton Farm as B; so B = z = 20. We know B is total number of adult animals in Hamilton \
             Farm, so B = 20. Answer: 20."
        );
        let answer_only = Rendered::of_format(t, &spec_forward(), AnswerOnly);
        assert_eq!(answer_only.solution, "Answer: 20.");
        assert_eq!(answer_only.completion, " </solution> <answer> 20 </answer>");
        for r in [&terse, &long, &answer_only] {
            assert_eq!((&r.prompt, &r.problem), (&full.prompt, &full.problem));
            let body = r.solution.strip_suffix(" Answer: 20.").unwrap_or("");
            let sep = if body.is_empty() { "" } else { " " };
            assert_eq!(
                r.completion,
                format!("{sep}{body} </solution> <answer> 20 </answer>")
            );
        }

        let terse = Rendered::of_format(t, &spec_reverse(), Terse);
        assert_eq!(
            terse.solution,
            "adult fox in Maple Creek: x. adult wolf in Maple Creek: J = x; P = 4 + J = 4 + x = x + 4. \
             We know P = 7, so we have x + 4 = 7; x - 3 = 0; 1*x = 3; x = 3 / 1; x = 3. Answer: 3."
        );
        let long = Rendered::of_format(t, &spec_reverse(), Long);
        let full = Rendered::of(t, &spec_reverse());
        assert_eq!(
            long.solution,
            full.solution.replace(
                "x + 4. We know",
                "x + 4. We know P is adult wolf in Maple Creek, and 4 + x = x + 4, so P = x + 4. We know"
            )
        );
        let answer_only = Rendered::of_format(t, &spec_reverse(), AnswerOnly);
        assert_eq!(answer_only.completion, " </solution> <answer> 3 </answer>");
    }

    #[test]
    fn ints() {
        for v in [0i64, 7, -3, 10, 1000, -1000, i64::MIN, i64::MAX] {
            let mut s = String::new();
            push_int(&mut s, v);
            assert_eq!(s, v.to_string());
        }
    }
}
