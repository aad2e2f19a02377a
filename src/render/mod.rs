//! Render a composed problem into text: the problem sentences, the question, the gold trace,
//! and the model-facing prompt / completion (SPEC §1 and §3).
//!
//! Rendering is pure: the letters and sentence order were drawn by the composer, so the same
//! problem always renders to the same bytes. A [`Rendered`] is reused across problems to keep
//! the hot loop free of allocations.

mod text;
mod trace;

pub use text::{write_problem, write_question};
pub use trace::write_trace;

use crate::composer::Problem;
use crate::template::Template;

/// Opening of the model-facing sequence, through the question.
pub const QUESTION_OPEN: &str = "<question> ";
pub const QUESTION_CLOSE: &str = " </question> <solution>";
pub const SOLUTION_CLOSE: &str = " </solution> <answer> ";
pub const ANSWER_CLOSE: &str = " </answer>";

/// All text fields of one problem.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The stated sentences, shuffled, separated by single spaces.
    pub problem: String,
    pub question: String,
    /// The gold trace, ending with `Answer: N.`
    pub solution: String,
    pub answer: i64,
    /// `<question> {problem} {question} </question> <solution>`
    pub prompt: String,
    /// ` {solution without "Answer: N."} </solution> <answer> {N} </answer>`
    pub completion: String,
}

impl Rendered {
    /// Render `p` into `self`, reusing its buffers.
    pub fn fill(&mut self, t: &Template, p: &Problem) {
        self.problem.clear();
        self.question.clear();
        self.solution.clear();
        self.prompt.clear();
        self.completion.clear();
        write_problem(&mut self.problem, t, p);
        write_question(&mut self.question, t, p);
        let body_len = write_trace(&mut self.solution, t, p);
        self.answer = p.answer();

        self.prompt.push_str(QUESTION_OPEN);
        self.prompt.push_str(&self.problem);
        self.prompt.push(' ');
        self.prompt.push_str(&self.question);
        self.prompt.push_str(QUESTION_CLOSE);

        self.completion.push(' ');
        self.completion.push_str(&self.solution[..body_len]);
        self.completion.push_str(SOLUTION_CLOSE);
        push_int(&mut self.completion, self.answer);
        self.completion.push_str(ANSWER_CLOSE);
    }

    /// Render `p` into a fresh value.
    pub fn of(t: &Template, p: &Problem) -> Rendered {
        let mut r = Rendered::default();
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

    #[test]
    fn ints() {
        for v in [0i64, 7, -3, 10, 1000, -1000, i64::MIN, i64::MAX] {
            let mut s = String::new();
            push_int(&mut s, v);
            assert_eq!(s, v.to_string());
        }
    }
}
