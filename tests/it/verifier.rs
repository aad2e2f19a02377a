//! Verifier integration tests: a mutation suite on hand-written gold traces (SPEC §3 format),
//! rewards, and a fuzz/property test (no panics; every digit change rejected under Strict).
//! The same mutation kinds on the `terse` and `long` trace formats are in `format_mutations`,
//! which shares this file's gold graphs and traces.

use dagmath::composer::Mode;
use dagmath::graph::{GoldGraph, GoldNode, NodeKind};
use dagmath::trace::{verify, IssueKind, NodeStatus, Reward, Rule, Verdict, Verifier};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn node(name: &str, value: i64, parents: &[usize], kind: NodeKind) -> GoldNode {
    GoldNode {
        name: name.to_string(),
        value,
        parents: parents.to_vec(),
        kind,
    }
}

/// The SPEC §3 forward example.
pub fn fwd_gold() -> GoldGraph {
    GoldGraph {
        mode: Mode::Forward,
        nodes: vec![
            node("adult owl in Jefferson Circus", 2, &[], NodeKind::Constant),
            node(
                "adult parrot in Jefferson Circus",
                6,
                &[0],
                NodeKind::Instance,
            ),
            node(
                "total number of adult animals in Jefferson Circus",
                8,
                &[0, 1],
                NodeKind::Total,
            ),
            node(
                "adult owl in Hamilton Farm",
                20,
                &[2, 0, 1],
                NodeKind::Instance,
            ),
            node(
                "total number of adult animals in Hamilton Farm",
                20,
                &[3],
                NodeKind::Total,
            ),
        ],
        asked: 4,
        answer: 20,
    }
}

pub const FWD: &str = "Define adult owl in Jefferson Circus as K; so K = 2. Define adult parrot in Jefferson Circus as t; Q = K = 2; so t = 3 * Q = 3 * 2 = 6. Define total number of adult animals in Jefferson Circus as U; so U = K + t = 2 + 6 = 8. Define adult owl in Hamilton Farm as z; O = U + K = 8 + 2 = 10; A = O + t = 10 + 6 = 16; so z = 4 + A = 4 + 16 = 20. Define total number of adult animals in Hamilton Farm as B; so B = z = 20. Answer: 20.";

/// A reverse-mode problem: the fox count (3) is hidden; the Maple Creek total (11) is stated.
pub fn rev_gold() -> GoldGraph {
    GoldGraph {
        mode: Mode::Reverse,
        nodes: vec![
            node("adult wolf in Maple Creek", 2, &[], NodeKind::Constant),
            node("adult fox in Maple Creek", 3, &[], NodeKind::Unknown),
            node("adult bear in Maple Creek", 6, &[1], NodeKind::Instance),
            node(
                "total number of adult animals in Maple Creek",
                11,
                &[0, 1, 2],
                NodeKind::Total,
            ),
        ],
        asked: 1,
        answer: 3,
    }
}

pub const REV: &str = "The question is difficult, so we use equations to solve it. Define adult wolf in Maple Creek as K; so K = 2. Define adult fox in Maple Creek as x; we don't know its value yet but will find it out later. Define adult bear in Maple Creek as R; J = x; so R = 3 + J = 3 + x = x + 3. Define total number of adult animals in Maple Creek as P; T = K + x = 2 + x = x + 2; so P = T + R = (x + 2) + (x + 3) = 2*x + 5. We know P = 11, so we have 2*x + 5 = 11 and we solve it through the following steps: Simplifying the equation: 2*x + 5 = 11. Move all terms to one side: 2*x - 6 = 0. Isolate the term with x: 2*x = 6. Divide both sides by 2: x = 6 / 2. Solution: x = 3. Answer: 3.";

fn strict(g: &GoldGraph, t: &str) -> Verdict {
    verify(g, t, Rule::Strict)
}

fn interplay(g: &GoldGraph, t: &str) -> Verdict {
    verify(g, t, Rule::Interplay)
}

fn has(v: &Verdict, k: IssueKind) -> bool {
    v.issues.iter().any(|i| i.kind == k)
}

/// Model-facing completion: the trace without its final "Answer: N." plus the tags.
pub fn completion(trace: &str, answer: i64) -> String {
    let body = trace
        .strip_suffix(&format!(" Answer: {answer}."))
        .expect("trace ends with its answer");
    format!(" {body} </solution> <answer> {answer} </answer>")
}

/// Rename every standalone letter token through `map` (the same tokenisation as the reader).
pub fn rename(t: &str, map: impl Fn(u8) -> u8) -> String {
    let b = t.as_bytes();
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80;
    let mut out = b.to_vec();
    for i in 0..b.len() {
        let alone = b[i].is_ascii_alphabetic()
            && (i == 0 || !word(b[i - 1]))
            && (i + 1 == b.len() || !word(b[i + 1]));
        if alone {
            out[i] = map(b[i]);
        }
    }
    String::from_utf8(out).unwrap()
}

#[test]
fn gold_traces_pass_both_rules() {
    for (g, t) in [(fwd_gold(), FWD), (rev_gold(), REV)] {
        for rule in [Rule::Strict, Rule::Interplay] {
            let v = verify(&g, t, rule);
            assert!(v.verified_correct, "{rule:?}: {v:#?}");
            assert_eq!(v.process_acc, 1.0);
            assert!(v.issues.is_empty() && v.extra.is_empty());
        }
        let c = completion(t, g.answer);
        assert!(strict(&g, &c).verified_correct, "completion form");
        let prompt = format!(
            "<question> The number of adult owl equals 2. What is it? </question> <solution>{c}"
        );
        assert!(strict(&g, &prompt).verified_correct, "prompt + completion");
        // Sampling stops at </answer>, which is then missing.
        let cut = c.strip_suffix(" </answer>").unwrap();
        assert!(strict(&g, cut).verified_correct, "no closing tag");
    }
}

#[test]
fn wrong_final_value() {
    let t = FWD.replace("so B = z = 20. Answer: 20.", "so B = z = 21. Answer: 21.");
    for v in [strict(&fwd_gold(), &t), interplay(&fwd_gold(), &t)] {
        assert!(!v.verified_correct && !v.answer_correct);
        assert_eq!(v.nodes[4], NodeStatus::WrongValue);
    }
    // The right answer does not rescue a wrong final node.
    let t = FWD.replace("so B = z = 20.", "so B = 21.");
    let v = interplay(&fwd_gold(), &t);
    assert!(v.answer_correct && !v.verified_correct);
    assert_eq!(v.nodes[4], NodeStatus::WrongValueAndParents);
}

#[test]
fn wrong_intermediate_with_right_final_number() {
    let t = FWD.replace("A = O + t = 10 + 6 = 16", "A = O + t = 10 + 6 = 15");
    let v = strict(&fwd_gold(), &t);
    assert!(!v.verified_correct);
    assert!(has(&v, IssueKind::WrongResult));
    assert_eq!(v.nodes[3], NodeStatus::Flawed);
    assert!(v.process_acc < 1.0);
    // The reference never checks intermediates: it accepts (the weakness SPEC §4 names).
    assert!(interplay(&fwd_gold(), &t).verified_correct);

    let t = FWD.replace("O = U + K = 8 + 2 = 10", "O = U + K = 8 + 3 = 10");
    let v = strict(&fwd_gold(), &t);
    assert!(
        !v.verified_correct && has(&v, IssueKind::WrongSubstitution),
        "{v:#?}"
    );
}

#[test]
fn wrong_parent() {
    let t = FWD.replace("so B = z = 20", "so B = z + K - K = 20 + 2 - 2 = 20");
    for v in [strict(&fwd_gold(), &t), interplay(&fwd_gold(), &t)] {
        assert!(!v.verified_correct);
        assert_eq!(v.nodes[4], NodeStatus::WrongParents);
    }
    // A wrong operand with the same value: t and Q hold 6 and 2, use K (2) for Q.
    let t = FWD.replace("so t = 3 * Q", "so t = 3 * K");
    assert_eq!(
        strict(&fwd_gold(), &t).nodes[1],
        NodeStatus::Correct,
        "K is the parent too"
    );
    let t = FWD.replace("Q = K = 2; so t = 3 * Q = 3 * 2 = 6", "so t = 6");
    let v = strict(&fwd_gold(), &t);
    assert_eq!(v.nodes[1], NodeStatus::WrongParents);
    assert!(!v.verified_correct);
}

#[test]
fn missing_step() {
    let t = FWD.replace(
        "Define total number of adult animals in Jefferson Circus as U; so U = K + t = 2 + 6 = 8. ",
        "",
    );
    for v in [strict(&fwd_gold(), &t), interplay(&fwd_gold(), &t)] {
        assert!(!v.verified_correct);
        assert_eq!(v.nodes[2], NodeStatus::Missing);
    }
    assert!(has(
        &strict(&fwd_gold(), &t),
        IssueKind::UndefinedLetter('U')
    ));
}

#[test]
fn extra_step() {
    let t = FWD.replace(
        "Define total number of adult animals in Hamilton Farm",
        "Define adult crow in Jefferson Circus as W; so W = 1. Define total number of adult animals in Hamilton Farm",
    );
    let v = strict(&fwd_gold(), &t);
    assert!(!v.verified_correct && v.process_acc == 1.0);
    assert_eq!(&t[v.extra[0].clone()], "adult crow in Jefferson Circus");
    assert!(
        interplay(&fwd_gold(), &t).verified_correct,
        "the reference tolerates extras"
    );
}

#[test]
fn consistent_renaming_passes() {
    // A bijection on letters that keeps x fixed (reverse mode reserves it).
    let map = |c: u8| match c {
        b'x' => b'x',
        b'A'..=b'Z' => b'A' + (c - b'A' + 7) % 26,
        _ => {
            let r = b'a' + (c - b'a' + 5) % 26;
            if r == b'x' {
                b'X'
            } else {
                r
            }
        }
    };
    // Keep the images distinct from x-replacement collisions: X is not used by either trace.
    for (g, t) in [(fwd_gold(), FWD), (rev_gold(), REV)] {
        let r = rename(t, map);
        assert_ne!(r, t);
        let v = strict(&g, &r);
        assert!(v.verified_correct, "{r}\n{v:#?}");
    }
}

#[test]
fn renamed_node_fails() {
    let t = FWD.replace(
        "Define adult owl in Jefferson Circus as K",
        "Define adult owl in Jefferson Zoo as K",
    );
    for v in [strict(&fwd_gold(), &t), interplay(&fwd_gold(), &t)] {
        assert!(!v.verified_correct);
        assert_eq!(v.nodes[0], NodeStatus::Missing);
    }
    // Names compare exactly (after trimming): case matters.
    let t = FWD.replace("Hamilton Farm as B", "hamilton farm as B");
    assert!(!strict(&fwd_gold(), &t).verified_correct);
    // Surrounding white space does not.
    let t = FWD.replace(
        "Define adult owl in Jefferson Circus as K",
        "Define   adult owl in Jefferson Circus  as  K",
    );
    assert!(strict(&fwd_gold(), &t).verified_correct);
}

#[test]
fn answer_without_trace() {
    for t in [" </solution> <answer> 20 </answer>", "Answer: 20.", "20"] {
        let v = strict(&fwd_gold(), t);
        assert!(!v.verified_correct);
        assert_eq!(v.count(NodeStatus::Missing), 5);
        assert_eq!(v.answer_correct, t != "20");
        assert!(!interplay(&fwd_gold(), t).verified_correct);
    }
}

#[test]
fn truncated_trace() {
    for (g, t) in [(fwd_gold(), FWD), (rev_gold(), REV)] {
        let c = completion(t, g.answer);
        // Every cut before the answer's last digit (the full completion may lack `</answer>`).
        let full = c.len() - " </answer>".len();
        for cut in (0..full).filter(|&i| c.is_char_boundary(i)) {
            let v = strict(&g, &c[..cut]);
            assert!(
                !v.verified_correct,
                "accepted a trace cut at {cut}: {}",
                &c[..cut]
            );
        }
    }
}

#[test]
fn trace_for_a_different_problem() {
    assert!(!strict(&fwd_gold(), REV).verified_correct);
    assert!(!strict(&rev_gold(), FWD).verified_correct);
    assert!(!interplay(&fwd_gold(), REV).verified_correct);
    // Same names, different numbers.
    let mut g = fwd_gold();
    g.nodes[0].value = 3;
    assert!(!interplay(&g, FWD).verified_correct);
}

#[test]
fn noise_between_steps_passes() {
    let t = FWD
        .replace(". Define", ". Let me think about the next quantity. Define")
        .replace("so U =", "Now the total, so U =");
    let v = strict(&fwd_gold(), &t);
    // "Now the total, so U = ..." is a clause that does not start like an assignment.
    assert!(has(&v, IssueKind::Malformed) && !v.verified_correct);

    let t = FWD.replace(
        ". Define",
        ". Let me think about the next quantity.\nDefine",
    );
    assert!(strict(&fwd_gold(), &t).verified_correct);
}

#[test]
fn capitalised_words_are_not_letters() {
    let t = FWD
        .replace(
            "Define adult owl in Hamilton Farm",
            "Done. So I think A is coming, and B too. Define adult owl in Hamilton Farm",
        )
        .replace(
            "so B = z = 20.",
            "so B = z = 20. Done. So I think A is the answer. X marks it.",
        );
    let v = strict(&fwd_gold(), &t);
    assert!(v.verified_correct, "{v:#?}");
    // The reference's weakness: it would read D, o, n, e, ... as letters; we read none.
    assert!(v.issues.is_empty());
}

#[test]
fn decimals_are_never_truncated() {
    let t = FWD.replace("so K = 2.", "so K = 2.5.");
    let v = strict(&fwd_gold(), &t);
    assert_eq!(v.nodes[0], NodeStatus::WrongValue);
    assert!(!v.verified_correct);
    let c = completion(FWD, 20).replace("<answer> 20 ", "<answer> 20.9 ");
    assert!(!strict(&fwd_gold(), &c).answer_correct);
    // 2.0 is exactly 2.
    let t = FWD.replace("so K = 2.", "so K = 2.0.");
    assert!(strict(&fwd_gold(), &t).verified_correct);
}

#[test]
fn letters_must_be_defined_and_fresh() {
    let t = FWD.replace("so U = K + t = 2 + 6 = 8", "so U = K + Y = 2 + 6 = 8");
    let v = strict(&fwd_gold(), &t);
    assert!(has(&v, IssueKind::UndefinedLetter('Y')) && !v.verified_correct);
    let t = FWD.replace(
        "Jefferson Circus as t; Q = K",
        "Jefferson Circus as K; Q = K",
    );
    let v = strict(&fwd_gold(), &t);
    assert!(has(&v, IssueKind::RedefinedLetter('K')) && !v.verified_correct);
    let t = FWD.replace("O = U + K", "K = U + K");
    assert!(!strict(&fwd_gold(), &t).verified_correct);
}

#[test]
fn conflicting_answers_fail() {
    let c = completion(FWD, 20).replace(" </solution>", " Answer: 21. </solution>");
    let v = strict(&fwd_gold(), &c);
    assert!(v.answer_correct && has(&v, IssueKind::AnswerConflict) && !v.verified_correct);
}

#[test]
fn reverse_mode_checks() {
    let g = rev_gold();
    let cases = [
        ("Move all terms to one side: 2*x - 6 = 0", "Move all terms to one side: 2*x - 5 = 0"),
        ("We know P = 11", "We know P = 12"),
        ("We know P = 11", "We know R = 11"),
        ("so we have 2*x + 5 = 11", "so we have 2*x + 4 = 11"),
        ("Solution: x = 3. Answer: 3.", "Answer: 3."),
        ("so R = 3 + J = 3 + x = x + 3", "so R = 3 + J = 3 + 3 = 6"),
        ("so P = T + R = (x + 2) + (x + 3) = 2*x + 5", "so P = T + R = (x + 2) + (x + 3) = 2*x + 6"),
        (
            "as x; we don't know its value yet but will find it out later.",
            "as x; so x = 3.",
        ),
        (" We know P = 11, so we have 2*x + 5 = 11 and we solve it through the following steps: Simplifying the equation: 2*x + 5 = 11. Move all terms to one side: 2*x - 6 = 0. Isolate the term with x: 2*x = 6. Divide both sides by 2: x = 6 / 2. Solution: x = 3.", ""),
    ];
    for (from, to) in cases {
        assert!(REV.contains(from), "{from}");
        let t = REV.replace(from, to);
        let v = strict(&g, &t);
        assert!(!v.verified_correct, "accepted `{to}`: {v:#?}");
    }
    // The unknown introduced for another node: the wolf is hidden instead of the fox.
    let t = REV
        .replace("adult wolf", "adult tmp")
        .replace("adult fox", "adult wolf")
        .replace("adult tmp", "adult fox");
    assert!(!strict(&g, &t).verified_correct);
    assert!(!interplay(&g, &t).verified_correct);
    // Or introduced for a node that is not in the problem at all.
    let t = REV.replace(
        "Define adult fox in Maple Creek as x",
        "Define adult deer in Maple Creek as x",
    );
    assert!(!strict(&g, &t).verified_correct);
    assert!(!interplay(&g, &t).verified_correct);
}

#[test]
fn rewards_follow_their_formulas() {
    let g = fwd_gold();
    let ok = strict(&g, FWD);
    for r in [
        Reward::Outcome,
        Reward::Process,
        Reward::default(),
        Reward::Strict,
        Reward::Penalty { alpha: 0.2 },
    ] {
        assert_eq!(r.score(&ok), 1.0, "{r:?}");
    }
    // One wrong node (value), answer right: intermediate B = 21 but Answer 20.
    let t = FWD.replace("so B = z = 20.", "so B = 21.");
    let v = interplay(&g, &t);
    assert_eq!(v.nodes[4], NodeStatus::WrongValueAndParents);
    assert_eq!(Reward::Outcome.score(&v), 1.0);
    assert!((Reward::Process.score(&v) - 0.8).abs() < 1e-12);
    assert!((Reward::default().score(&v) - (0.2 + 0.8 * 0.8)).abs() < 1e-12);
    assert_eq!(Reward::Strict.score(&v), 0.0);
    // Penalties: wrong value + wrong parents = 2 of |V| = 5.
    assert_eq!(dagmath::trace::penalties(&v), 2);
    assert!((Reward::Penalty { alpha: 0.2 }.score(&v) - (0.2 + 0.8 * 0.6)).abs() < 1e-12);
    // Wrong answer zeroes the penalty reward but not the mixed one.
    let t = FWD.replace("Answer: 20.", "Answer: 19.");
    let v = strict(&g, &t);
    assert_eq!(Reward::Penalty { alpha: 0.2 }.score(&v), 0.0);
    assert!((Reward::default().score(&v) - 0.8).abs() < 1e-12);
}

/// Randomly mangle a trace at the token level.
pub fn mangle(rng: &mut ChaCha8Rng, t: &str) -> String {
    let mut toks: Vec<&str> = t.split(' ').collect();
    for _ in 0..rng.random_range(1..4) {
        if toks.is_empty() {
            break;
        }
        let i = rng.random_range(0..toks.len());
        match rng.random_range(0..3) {
            0 => {
                toks.remove(i);
            }
            1 => toks.insert(i, toks[i]),
            _ => {
                let j = rng.random_range(0..toks.len());
                toks.swap(i, j);
            }
        }
    }
    toks.join(" ")
}

#[test]
fn fuzz_no_panics_and_digit_changes_rejected() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut ver = Verifier::new();
    for (g, t) in [(fwd_gold(), FWD), (rev_gold(), REV)] {
        let c = completion(t, g.answer);
        // Every single-digit change is caught.
        for (i, ch) in c.bytes().enumerate() {
            if ch.is_ascii_digit() {
                for d in b'0'..=b'9' {
                    if d != ch {
                        let mut m = c.clone().into_bytes();
                        m[i] = d;
                        let m = String::from_utf8(m).unwrap();
                        assert!(!ver.verify(&g, &m, Rule::Strict).verified_correct, "{m}");
                    }
                }
            }
        }
        // Token mangling: no panic; an accepted mangle must still be a sound derivation.
        for _ in 0..3000 {
            let m = mangle(&mut rng, &c);
            let v = ver.verify(&g, &m, Rule::Strict);
            if v.verified_correct {
                assert!(v.nodes.iter().all(|&s| s == NodeStatus::Correct));
            }
            ver.verify(&g, &m, Rule::Interplay);
        }
    }
    // Arbitrary bytes (as lossy UTF-8) and alphabet soup from the trace's own characters.
    let alphabet: Vec<char> =
        "Define as so = + - * / ( ) ; . : x K 1 2 9 0 We know Answer <answer> </solution> é"
            .chars()
            .collect();
    for len in [0usize, 1, 5, 50, 500, 5000] {
        for _ in 0..200 {
            let bytes: Vec<u8> = (0..len).map(|_| rng.random_range(0..=255u8)).collect();
            let s = String::from_utf8_lossy(&bytes);
            ver.verify(&fwd_gold(), &s, Rule::Strict);
            let s: String = (0..len)
                .map(|_| alphabet[rng.random_range(0..alphabet.len())])
                .collect();
            ver.verify(&rev_gold(), &s, Rule::Strict);
        }
    }
}

#[test]
fn pathological_inputs_are_linear() {
    // Deep nesting, long chains, huge numbers, many steps: each finishes (bounded depth, one
    // pass per clause), reported rather than trusted.
    let g = fwd_gold();
    let big = [
        format!("so K = {}1", "(".repeat(100_000)),
        format!(
            "Define adult owl in Jefferson Circus as K; so K = {}2",
            "- ".repeat(100_000)
        ),
        format!(
            "Define adult owl in Jefferson Circus as K; so K = {}2",
            "2 = ".repeat(50_000)
        ),
        format!(
            "Define adult owl in Jefferson Circus as K; so K = {}",
            "9".repeat(100_000)
        ),
        "Define x as K; We know K = 2, so we have : ".repeat(20_000),
        "Define Define as as ; ".repeat(20_000),
        "=".repeat(200_000),
    ];
    for s in &big {
        let v = strict(&g, s);
        assert!(!v.verified_correct);
    }
}

/// Every rendered gold trace verifies under both rules (all templates, both modes, op 1–30),
/// and on each, a random digit change and a dropped step are rejected under Strict.
#[test]
fn rendered_gold_traces_verify() {
    use dagmath::composer::compose_seeded;
    use dagmath::render::Rendered;
    use dagmath::template::TemplateSet;

    let set = TemplateSet::builtin();
    let mut ver = Verifier::new();
    let mut r = Rendered::default();
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let mut checked = 0;
    for tid in ["zoo", "school", "festival"] {
        let t = set.get(tid).expect("builtin template");
        for mode in Mode::ALL {
            for op in 1..=30u32 {
                for seed in 0..50u64 {
                    let p = compose_seeded(t, op, mode, seed * 1000 + op as u64)
                        .expect("op 1-30 composes");
                    let g = GoldGraph::from_problem(t, &p);
                    r.fill(t, &p);
                    let full = format!("{}{}", r.prompt, r.completion);
                    for text in [&r.solution, &r.completion, &full] {
                        for rule in [Rule::Strict, Rule::Interplay] {
                            let v = ver.verify(&g, text, rule);
                            assert!(
                                v.verified_correct,
                                "{tid} {mode} op {op} seed {seed} {rule:?}\n{text}\n{v:#?}"
                            );
                        }
                    }
                    let digits: Vec<usize> = r
                        .completion
                        .bytes()
                        .enumerate()
                        .filter(|(_, c)| c.is_ascii_digit())
                        .map(|(i, _)| i)
                        .collect();
                    let i = digits[rng.random_range(0..digits.len())];
                    let mut m = r.completion.clone().into_bytes();
                    m[i] = if m[i] == b'9' { b'0' } else { m[i] + 1 };
                    let m = String::from_utf8(m).unwrap();
                    assert!(
                        !ver.verify(&g, &m, Rule::Strict).verified_correct,
                        "digit change accepted:\n{m}"
                    );
                    // Drop one whole step (from one `Define` to the next).
                    let starts: Vec<usize> = r
                        .completion
                        .match_indices("Define ")
                        .map(|(i, _)| i)
                        .collect();
                    let k = rng.random_range(0..starts.len());
                    let end = starts
                        .get(k + 1)
                        .copied()
                        .unwrap_or(r.completion.find(" </solution>").unwrap() + 1);
                    let m = format!("{}{}", &r.completion[..starts[k]], &r.completion[end..]);
                    assert!(
                        !ver.verify(&g, &m, Rule::Strict).verified_correct,
                        "dropped step accepted:\n{m}"
                    );
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(checked, 3 * 2 * 30 * 50);
}
