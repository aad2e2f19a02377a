//! Gold data in the reference's JSONL format (GSM-Infinite / Interplay records with `problem`,
//! `question`, `solution`, `op`, `template`, optionally `id`; without one a record is named by
//! its 0-based index), so existing data can be audited too. The gold
//! graph of such a record is read from its gold trace.
//!
//! The gold trace format (SPEC §3) is regular: `Define NAME as L;` opens a node's step, clauses
//! are separated by `; `, each clause is `[so ]LETTER = letter-expression [= ...] = result`, and
//! a node's parents are the named nodes its expressions reach through intermediate letters.
//!
//! Reference records are in the reference's own format, which is dagmath's `full`
//! [`TraceFormat`]; the other formats exist only in dagmath datasets, whose `graph` column
//! holds the gold graph, so there is nothing to read back from their traces. A gold trace in
//! another format is therefore an error that names the format ([`GoldTraceError::NotFull`]),
//! never a silently wrong graph.

use std::collections::HashMap;
use std::path::Path;

use super::jsonl::{self, JsonlError, RecordError};
use crate::composer::Mode;
use crate::graph::{GoldGraph, GoldNode, NodeKind};
use crate::trace::TraceFormat;

/// Errors of reading a reference file (they name the file and line).
pub type ReferenceError = JsonlError;

/// One gold problem from a reference JSONL file.
#[derive(Debug, Clone, PartialEq)]
pub struct ReferenceItem {
    /// The record's `id` if it has one, else its 0-based index among the file's records.
    pub id: String,
    pub op: u32,
    pub template: String,
    pub graph: GoldGraph,
    /// The gold trace itself (what `audit --self` verifies).
    pub solution: String,
}

/// A value in a gold trace: `a*x + b`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Lin {
    a: i64,
    b: i64,
}

/// Parse `7`, `x`, `-x`, `3*x + 2`, `x - 5`, `(2*x) + 1`-free simplified forms.
fn parse_lin(s: &str) -> Option<Lin> {
    let s = s.trim();
    let mut v = Lin { a: 0, b: 0 };
    let mut sign = 1;
    // Checked arithmetic: a gold file is input, and huge coefficients must not overflow.
    for tok in s.split(' ') {
        match tok {
            "+" => sign = 1,
            "-" => sign = -1,
            "x" => v.a = v.a.checked_add(sign)?,
            "-x" => v.a = v.a.checked_sub(sign)?,
            t if t.ends_with("*x") => {
                let k = t[..t.len() - 2].parse::<i64>().ok()?;
                v.a = v.a.checked_add(k.checked_mul(sign)?)?;
            }
            t => v.b = v.b.checked_add(t.parse::<i64>().ok()?.checked_mul(sign)?)?,
        }
    }
    Some(v)
}

/// Single-letter tokens of a letter-expression (`U + K`, `4 + A`, `3 * Q`).
fn letters(expr: &str) -> impl Iterator<Item = u8> + '_ {
    expr.split([' ', '(', ')'])
        .filter(|t| t.len() == 1 && t.as_bytes()[0].is_ascii_alphabetic())
        .map(|t| t.as_bytes()[0])
}

/// Why a gold trace cannot be read; each variant names the step, clause or letter at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GoldTraceError {
    #[error("no `Answer: N.` at the end of the gold trace")]
    NoAnswer,
    #[error("step without ` as `: `{step}`")]
    NoAs { step: String },
    #[error("`as` without a letter")]
    NoLetter,
    #[error("the step of `{name}` defines `{shown}`, not a single ASCII letter")]
    NotALetter { name: String, shown: String },
    #[error("malformed clause `{clause}` in the step of `{name}`")]
    Clause { clause: String, name: String },
    #[error("letter {letter} used before definition")]
    Undefined { letter: char },
    #[error("cannot read the value in `{clause}`")]
    Value { clause: String },
    #[error("the step of `{name}` never assigns {letter}")]
    NeverAssigned { name: String, letter: char },
    #[error("no `Define ... as ...` step")]
    NoSteps,
    #[error("reverse-mode marker without an unknown, or the other way round")]
    Mode,
    #[error("the value of `{name}` overflows 64 bits")]
    Overflow { name: String },
    #[error(
        "the gold trace is in the `{format}` trace format; reference-format gold must be `full` \
         (SPEC §3): audit the dagmath dataset it came from instead (its manifest records the format)"
    )]
    NotFull { format: TraceFormat },
}

/// [`read_gold_trace`] with the error as its message, the form the fuzz and regression tests
/// match on.
pub fn graph_from_gold_trace(solution: &str) -> Result<GoldGraph, String> {
    read_gold_trace(solution).map_err(|e| e.to_string())
}

/// The dagmath trace format other than `full` that `solution` is written in, if it is one:
/// `long` has check sentences (`We know V is ...`), `answer_only` is the answer alone, `terse` has steps (`NAME: `)
/// but no `Define`.
fn other_format(solution: &str) -> Option<TraceFormat> {
    let s = solution.trim_start();
    let check = |(i, _): (usize, &str)| {
        let b = s.as_bytes();
        b.get(i + 8).is_some_and(u8::is_ascii_alphabetic) && s[i + 9..].starts_with(" is ")
    };
    if s.contains("Define ") && s.match_indices("We know ").any(check) {
        Some(TraceFormat::Long)
    } else if s.starts_with("Answer:") {
        Some(TraceFormat::AnswerOnly)
    } else if !s.contains("Define ") && s.contains(": ") && s.contains(" = ") {
        Some(TraceFormat::Terse)
    } else {
        None
    }
}

/// Read a gold trace (SPEC §3, either mode) into its gold graph.
pub fn read_gold_trace(solution: &str) -> Result<GoldGraph, GoldTraceError> {
    if let Some(format) = other_format(solution) {
        return Err(GoldTraceError::NotFull { format });
    }
    let reverse = solution.contains("we don't know its value yet");
    // Everything after the last step: the equation section and the answer.
    let steps_end = solution
        .find(" We know ")
        .or_else(|| solution.rfind(" Answer:"))
        .unwrap_or(solution.len());
    let answer: i64 = solution
        .rsplit("Answer: ")
        .next()
        .filter(|_| solution.contains("Answer: "))
        .and_then(|a| a.trim().trim_end_matches('.').parse().ok())
        .ok_or(GoldTraceError::NoAnswer)?;
    // letter -> (set of node indices it depends on, value)
    let mut known: HashMap<u8, (Vec<usize>, Lin)> = HashMap::new();
    let mut nodes: Vec<GoldNode> = Vec::new();
    let mut values: Vec<Lin> = Vec::new();
    let mut hidden = None;
    for step in solution[..steps_end].split("Define ").skip(1) {
        let (name, rest) = step
            .split_once(" as ")
            .ok_or_else(|| GoldTraceError::NoAs {
                step: step.to_string(),
            })?;
        let me = *rest.as_bytes().first().ok_or(GoldTraceError::NoLetter)?;
        // Letters are single ASCII letters; anything else (`é`, a digit) is malformed, and
        // slicing past a multi-byte character would split it.
        if !me.is_ascii_alphabetic() {
            let shown: String = rest.chars().take(1).collect();
            return Err(GoldTraceError::NotALetter {
                name: name.to_string(),
                shown,
            });
        }
        let idx = nodes.len();
        if rest.starts_with("x; we don't know") {
            hidden = Some(idx);
            known.insert(b'x', (vec![idx], Lin { a: 1, b: 0 }));
            nodes.push(GoldNode {
                name: name.to_string(),
                value: 0,
                parents: vec![],
                kind: NodeKind::Unknown,
            });
            values.push(Lin { a: 1, b: 0 });
            continue;
        }
        let body = rest[1..]
            .trim_start_matches(';')
            .trim()
            .trim_end_matches('.')
            .trim_end();
        let mut own: Option<(Vec<usize>, Lin)> = None;
        for clause in body.split("; ") {
            let clause = clause.strip_prefix("so ").unwrap_or(clause);
            let mut parts = clause.split(" = ");
            let lhs = parts.next().unwrap_or_default().trim();
            let rest: Vec<&str> = parts.collect();
            if lhs.len() != 1 || rest.is_empty() {
                return Err(GoldTraceError::Clause {
                    clause: clause.to_string(),
                    name: name.to_string(),
                });
            }
            let mut deps: Vec<usize> = Vec::new();
            for l in letters(rest[0]) {
                let (d, _) = known
                    .get(&l)
                    .ok_or(GoldTraceError::Undefined { letter: l as char })?;
                for &n in d {
                    if !deps.contains(&n) {
                        deps.push(n);
                    }
                }
            }
            let v = parse_lin(rest[rest.len() - 1]).ok_or_else(|| GoldTraceError::Value {
                clause: clause.to_string(),
            })?;
            let letter = lhs.as_bytes()[0];
            if letter == me {
                own = Some((deps, v));
            } else {
                known.insert(letter, (deps, v));
            }
        }
        let (deps, v) = own.ok_or_else(|| GoldTraceError::NeverAssigned {
            name: name.to_string(),
            letter: me as char,
        })?;
        known.insert(me, (vec![idx], v));
        let kind = if name.starts_with("total number of ") {
            NodeKind::Total
        } else if deps.is_empty() {
            NodeKind::Constant
        } else {
            NodeKind::Instance
        };
        let mut parents = deps;
        parents.sort_unstable();
        nodes.push(GoldNode {
            name: name.to_string(),
            value: 0,
            parents,
            kind,
        });
        values.push(v);
    }
    if nodes.is_empty() {
        return Err(GoldTraceError::NoSteps);
    }
    if reverse != hidden.is_some() {
        return Err(GoldTraceError::Mode);
    }
    let x = if reverse { answer } else { 0 };
    for (n, v) in nodes.iter_mut().zip(&values) {
        n.value =
            v.a.checked_mul(x)
                .and_then(|ax| ax.checked_add(v.b))
                .ok_or_else(|| GoldTraceError::Overflow {
                    name: n.name.clone(),
                })?;
    }
    let asked = hidden.unwrap_or(nodes.len() - 1);
    Ok(GoldGraph {
        mode: if reverse {
            Mode::Reverse
        } else {
            Mode::Forward
        },
        nodes,
        asked,
        answer,
    })
}

/// Load a reference-format JSONL file.
pub fn read_reference_jsonl(path: &Path) -> Result<Vec<ReferenceItem>, ReferenceError> {
    let mut out = Vec::new();
    jsonl::for_each(path, |r| {
        let v = &r.value;
        let solution = v
            .get("solution")
            .and_then(|s| s.as_str())
            .ok_or(RecordError::MissingText("solution"))?;
        let graph = read_gold_trace(solution)?;
        let op = v
            .get("op")
            .ok_or(RecordError::Missing("op"))?
            .as_u64()
            .filter(|&o| o <= u32::MAX as u64)
            .ok_or_else(|| RecordError::NotCount {
                field: "op",
                got: v["op"].clone(),
            })?;
        let template = v
            .get("template")
            .and_then(|s| s.as_str())
            .unwrap_or("unknown")
            .to_string();
        out.push(ReferenceItem {
            id: jsonl::id(v)?.unwrap_or_else(|| r.index.to_string()),
            op: op as u32,
            template,
            graph,
            solution: solution.to_string(),
        });
        Ok(())
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::composer::compose_seeded;
    use crate::render::Rendered;
    use crate::template::TemplateSet;

    #[test]
    fn gold_traces_read_back_to_the_gold_graph() {
        let set = TemplateSet::builtin();
        for tid in ["zoo", "school", "festival"] {
            let t = set.get(tid).unwrap();
            for mode in Mode::ALL {
                for op in 1..=30 {
                    for seed in 0..5 {
                        let p = compose_seeded(t, op, mode, seed).unwrap();
                        let r = Rendered::of(t, &p);
                        let mut want = GoldGraph::from_problem(t, &p);
                        for n in &mut want.nodes {
                            n.parents.sort_unstable();
                        }
                        let got = graph_from_gold_trace(&r.solution)
                            .unwrap_or_else(|e| panic!("{e}\n{}", r.solution));
                        assert_eq!(got, want, "{}", r.solution);
                    }
                }
            }
        }
    }

    #[test]
    fn traces_of_other_formats_are_errors_naming_the_format() {
        let set = TemplateSet::builtin();
        let t = set.get("zoo").unwrap();
        for mode in Mode::ALL {
            let p = compose_seeded(t, 6, mode, 3).unwrap();
            for f in [
                TraceFormat::Terse,
                TraceFormat::Long,
                TraceFormat::AnswerOnly,
            ] {
                let r = Rendered::of_format(t, &p, f);
                let e = read_gold_trace(&r.solution).unwrap_err();
                assert!(
                    matches!(e, GoldTraceError::NotFull { format } if format == f),
                    "{e}"
                );
                assert!(e.to_string().contains(&format!("`{f}`")), "{e}");
            }
        }
    }

    #[test]
    fn bad_traces_are_errors_not_panics() {
        for s in [
            "",
            "Answer: 3.",
            "Define a as ; Answer: 1.",
            "Define a as B; so B = . Answer: 2.",
            "Define a as B; so B = C + 1 = 4. Answer: 4.",
        ] {
            assert!(graph_from_gold_trace(s).is_err(), "{s}");
        }
    }
}
