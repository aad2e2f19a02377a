//! The verifier's mutation suite (`verifier.rs`) on the `terse` and `long` trace formats: the
//! same gold graphs, the same traces in the other formats' words, the same mutation kinds, each
//! rejected under Strict (zero false accepts); plus what only these formats have: terse steps
//! whose letter is their last assignment's, and long's check sentences, which must agree with
//! their step.

use dagmath::graph::GoldGraph;
use dagmath::trace::{IssueKind, NodeStatus, Rule, TraceFormat, Verdict, Verifier};

use super::verifier::{completion, fwd_gold, rename, rev_gold, FWD, REV};

/// `FWD` in the terse format.
pub const TERSE_FWD: &str = "adult owl in Jefferson Circus: K = 2. adult parrot in Jefferson Circus: Q = K = 2; t = 3 * Q = 3 * 2 = 6. total number of adult animals in Jefferson Circus: U = K + t = 2 + 6 = 8. adult owl in Hamilton Farm: O = U + K = 8 + 2 = 10; A = O + t = 10 + 6 = 16; z = 4 + A = 4 + 16 = 20. total number of adult animals in Hamilton Farm: B = z = 20. Answer: 20.";

/// `REV` in the terse format.
pub const TERSE_REV: &str = "adult wolf in Maple Creek: K = 2. adult fox in Maple Creek: x. adult bear in Maple Creek: J = x; R = 3 + J = 3 + x = x + 3. total number of adult animals in Maple Creek: T = K + x = 2 + x = x + 2; P = T + R = (x + 2) + (x + 3) = 2*x + 5. We know P = 11, so we have 2*x + 5 = 11; 2*x - 6 = 0; 2*x = 6; x = 6 / 2; x = 3. Answer: 3.";

/// `FWD` in the long format: each step followed by its check.
pub fn long_fwd() -> String {
    FWD.replace(
        "so K = 2.",
        "so K = 2. We know K is adult owl in Jefferson Circus, so K = 2.",
    )
    .replace(
        "= 3 * 2 = 6.",
        "= 3 * 2 = 6. We know t is adult parrot in Jefferson Circus, and 3 * 2 = 6, so t = 6.",
    )
    .replace("= 2 + 6 = 8.", "= 2 + 6 = 8. We know U is total number of adult animals in Jefferson Circus, and 2 + 6 = 8, so U = 8.")
    .replace(
        "= 4 + 16 = 20.",
        "= 4 + 16 = 20. We know z is adult owl in Hamilton Farm, and 4 + 16 = 20, so z = 20.",
    )
    .replace("so B = z = 20.", "so B = z = 20. We know B is total number of adult animals in Hamilton Farm, so B = 20.")
}

/// `REV` in the long format.
pub fn long_rev() -> String {
    REV.replace(
        "so K = 2.",
        "so K = 2. We know K is adult wolf in Maple Creek, so K = 2.",
    )
    .replace(
        "= x + 3.",
        "= x + 3. We know R is adult bear in Maple Creek, and 3 + x = x + 3, so R = x + 3.",
    )
    .replace("= 2*x + 5.", "= 2*x + 5. We know P is total number of adult animals in Maple Creek, and (x + 2) + (x + 3) = 2*x + 5, so P = 2*x + 5.")
}

fn judge(f: TraceFormat, g: &GoldGraph, t: &str, rule: Rule) -> Verdict {
    Verifier::for_format(f).verify(g, t, rule).clone()
}

fn strict(f: TraceFormat, g: &GoldGraph, t: &str) -> Verdict {
    judge(f, g, t, Rule::Strict)
}

fn has(v: &Verdict, k: IssueKind) -> bool {
    v.issues.iter().any(|i| i.kind == k)
}

/// Replace `from` (which must occur) by `to`.
fn swap(t: &str, from: &str, to: &str) -> String {
    assert!(t.contains(from), "`{from}` not in {t}");
    t.replace(from, to)
}

/// Remove from the first `from` up to (not including) the next `to`.
fn cut(t: &str, from: &str, to: &str) -> String {
    let a = t
        .find(from)
        .unwrap_or_else(|| panic!("`{from}` not in {t}"));
    let b = a + t[a..]
        .find(to)
        .unwrap_or_else(|| panic!("`{to}` not in {t}"));
    format!("{}{}", &t[..a], &t[b..])
}

/// The two formats under test, each with its forward and reverse gold trace and how a step
/// starts in it.
fn cases() -> [(TraceFormat, String, String, &'static str); 2] {
    [
        (
            TraceFormat::Terse,
            TERSE_FWD.to_string(),
            TERSE_REV.to_string(),
            "",
        ),
        (TraceFormat::Long, long_fwd(), long_rev(), "Define "),
    ]
}

#[test]
fn gold_traces_pass_in_their_format_only() {
    for (f, fwd, rev, _) in cases() {
        for (g, t) in [(fwd_gold(), &fwd), (rev_gold(), &rev)] {
            for rule in [Rule::Strict, Rule::Interplay] {
                let v = judge(f, &g, t, rule);
                assert!(
                    v.verified_correct && !v.outcome_only,
                    "{f} {rule:?}: {v:#?}"
                );
                assert!(v.issues.is_empty() && v.extra.is_empty(), "{f}: {v:#?}");
                assert_eq!(v.process_acc, 1.0);
            }
            let c = completion(t, g.answer);
            let prompt = format!("<question> Q? </question> <solution>{c}");
            let cut = c.strip_suffix(" </answer>").unwrap();
            for text in [&c, &prompt, cut] {
                assert!(strict(f, &g, text).verified_correct, "{f}: {text}");
            }
            // Read as `full`, a terse step is free text with `=` and a check is an unsupported
            // claim: the format must be the dataset's.
            let v = strict(TraceFormat::Full, &g, t);
            assert!(!v.verified_correct && has(&v, IssueKind::Malformed), "{f}");
        }
    }
    // A full trace is sound in any format's reader (its shapes stay readable).
    for f in [TraceFormat::Terse, TraceFormat::Long] {
        assert!(strict(f, &fwd_gold(), FWD).verified_correct, "{f}");
        assert!(strict(f, &rev_gold(), REV).verified_correct, "{f}");
    }
}

#[test]
fn forward_mutations_are_rejected() {
    let g = fwd_gold();
    for (f, t, _, step) in cases() {
        let so = if f == TraceFormat::Terse { "" } else { "so " };
        // Wrong final value.
        let m = swap(&t, "B = z = 20.", "B = z = 21.").replace("Answer: 20.", "Answer: 21.");
        let v = strict(f, &g, &m);
        assert!(!v.verified_correct && !v.answer_correct, "{f}");
        assert_eq!(v.nodes[4], NodeStatus::WrongValue, "{f}");
        // The right answer does not rescue a wrong final node.
        let m = swap(&t, "B = z = 20.", "B = 21.");
        let v = judge(f, &g, &m, Rule::Interplay);
        assert!(v.answer_correct && !v.verified_correct, "{f}");
        assert_eq!(v.nodes[4], NodeStatus::WrongValueAndParents, "{f}");
        // A wrong intermediate with the right final number; a wrong substitution.
        let m = swap(&t, "A = O + t = 10 + 6 = 16", "A = O + t = 10 + 6 = 15");
        let v = strict(f, &g, &m);
        assert!(
            !v.verified_correct && has(&v, IssueKind::WrongResult),
            "{f}"
        );
        assert_eq!(v.nodes[3], NodeStatus::Flawed, "{f}");
        let m = swap(&t, "8 + 2 = 10", "8 + 3 = 10");
        let v = strict(f, &g, &m);
        assert!(
            !v.verified_correct && has(&v, IssueKind::WrongSubstitution),
            "{f}"
        );
        // Wrong parents: an extra one, and a value stated without its parent.
        let m = swap(&t, "B = z = 20", "B = z + K - K = 20 + 2 - 2 = 20");
        let v = strict(f, &g, &m);
        assert!(!v.verified_correct, "{f}");
        assert_eq!(v.nodes[4], NodeStatus::WrongParents, "{f}");
        let m = swap(&swap(&t, "Q = K = 2; ", ""), "3 * Q = 3 * 2 = 6", "6");
        let v = strict(f, &g, &m);
        assert!(!v.verified_correct, "{f}: {m}");
        assert_eq!(v.nodes[1], NodeStatus::WrongParents, "{f}");
        // A missing step.
        let m = cut(
            &t,
            &format!("{step}total number of adult animals in Jefferson Circus"),
            &format!("{step}adult owl in Hamilton Farm"),
        );
        let v = strict(f, &g, &m);
        assert!(
            !v.verified_correct && has(&v, IssueKind::UndefinedLetter('U')),
            "{f}"
        );
        assert_eq!(v.nodes[2], NodeStatus::Missing, "{f}");
        // An extra step: Strict fails it, the reference's rule tolerates it.
        let extra = match f {
            TraceFormat::Terse => "adult crow in Jefferson Circus: W = 1. ".to_string(),
            _ => "Define adult crow in Jefferson Circus as W; so W = 1. We know W is adult crow in Jefferson Circus, so W = 1. ".to_string(),
        };
        let last = format!("{step}total number of adult animals in Hamilton Farm");
        let m = swap(&t, &last, &format!("{extra}{last}"));
        let v = strict(f, &g, &m);
        assert!(!v.verified_correct && v.process_acc == 1.0, "{f}: {v:#?}");
        assert!(judge(f, &g, &m, Rule::Interplay).verified_correct, "{f}");
        // A renamed node.
        let m = swap(
            &t,
            "adult owl in Jefferson Circus",
            "adult owl in Jefferson Zoo",
        );
        let v = strict(f, &g, &m);
        assert!(!v.verified_correct, "{f}");
        assert_eq!(v.nodes[0], NodeStatus::Missing, "{f}");
        // Undefined and reused letters.
        let m = swap(&t, "U = K + t = 2 + 6", "U = K + Y = 2 + 6");
        let v = strict(f, &g, &m);
        assert!(
            !v.verified_correct && has(&v, IssueKind::UndefinedLetter('Y')),
            "{f}"
        );
        let m = swap(&t, "O = U + K", "K = U + K");
        assert!(!strict(f, &g, &m).verified_correct, "{f}");
        // Conflicting answers.
        let c = completion(&t, 20).replace(" </solution>", " Answer: 21. </solution>");
        let v = strict(f, &g, &c);
        assert!(
            v.answer_correct && has(&v, IssueKind::AnswerConflict),
            "{f}"
        );
        assert!(!v.verified_correct);
        // A trace for another problem.
        assert!(!strict(f, &rev_gold(), &t).verified_correct, "{f}");
        // A step's own letter given no value.
        let m = swap(&t, &format!("{so}K = 2."), "");
        assert!(!strict(f, &g, &m).verified_correct, "{f}: {m}");
    }
}

#[test]
fn consistent_renaming_passes_and_every_digit_change_and_cut_fails() {
    let map = |c: u8| match c {
        b'x' => b'x',
        b'A'..=b'Z' => b'A' + (c - b'A' + 7) % 26,
        _ => match b'a' + (c - b'a' + 5) % 26 {
            b'x' => b'X',
            r => r,
        },
    };
    for (f, fwd, rev, _) in cases() {
        for (g, t) in [(fwd_gold(), &fwd), (rev_gold(), &rev)] {
            let r = rename(t, map);
            assert_ne!(&r, t);
            assert!(strict(f, &g, &r).verified_correct, "{f}: {r}");
            let c = completion(t, g.answer);
            for (i, ch) in c.bytes().enumerate().filter(|(_, c)| c.is_ascii_digit()) {
                for d in (b'0'..=b'9').filter(|&d| d != ch) {
                    let mut m = c.clone().into_bytes();
                    m[i] = d;
                    let m = String::from_utf8(m).unwrap();
                    assert!(!strict(f, &g, &m).verified_correct, "{f}: {m}");
                }
            }
            let full = c.len() - " </answer>".len();
            for end in (0..full).filter(|&i| c.is_char_boundary(i)) {
                let v = strict(f, &g, &c[..end]);
                assert!(
                    !v.verified_correct,
                    "{f}: accepted a cut at {end}: {}",
                    &c[..end]
                );
            }
        }
    }
}

#[test]
fn reverse_mutations_are_rejected() {
    let g = rev_gold();
    let terse = [
        ("2*x - 6 = 0", "2*x - 5 = 0"),
        ("We know P = 11", "We know P = 12"),
        ("We know P = 11", "We know R = 11"),
        ("so we have 2*x + 5 = 11", "so we have 2*x + 4 = 11"),
        ("x = 6 / 2; x = 3.", "x = 6 / 2."),
        ("R = 3 + J = 3 + x = x + 3", "R = 3 + J = 3 + 3 = 6"),
        (
            "= (x + 2) + (x + 3) = 2*x + 5",
            "= (x + 2) + (x + 3) = 2*x + 6",
        ),
        (
            "adult fox in Maple Creek: x.",
            "adult fox in Maple Creek: x = 3.",
        ),
        ("adult fox in Maple Creek: x.", "adult fox in Maple Creek:"),
        (
            " We know P = 11, so we have 2*x + 5 = 11; 2*x - 6 = 0; 2*x = 6; x = 6 / 2; x = 3.",
            "",
        ),
        (
            "adult fox in Maple Creek: x",
            "adult deer in Maple Creek: x",
        ),
    ];
    for (from, to) in terse {
        let m = swap(TERSE_REV, from, to);
        let v = strict(TraceFormat::Terse, &g, &m);
        assert!(!v.verified_correct, "terse accepted `{to}`: {v:#?}");
    }
    let long = [
        (
            "Move all terms to one side: 2*x - 6 = 0",
            "Move all terms to one side: 2*x - 5 = 0",
        ),
        ("We know P = 11", "We know P = 12"),
        ("Solution: x = 3. ", ""),
        ("so R = 3 + J = 3 + x = x + 3", "so R = 3 + J = 3 + 3 = 6"),
        (
            "as x; we don't know its value yet but will find it out later.",
            "as x; so x = 3.",
        ),
    ];
    let lr = long_rev();
    for (from, to) in long {
        let m = swap(&lr, from, to);
        let v = strict(TraceFormat::Long, &g, &m);
        assert!(!v.verified_correct, "long accepted `{to}`: {v:#?}");
    }
    // The unknown introduced for another node.
    for (f, _, t, _) in cases() {
        let m = t
            .replace("adult wolf", "adult tmp")
            .replace("adult fox", "adult wolf")
            .replace("adult tmp", "adult fox");
        assert!(!strict(f, &g, &m).verified_correct, "{f}");
        assert!(!judge(f, &g, &m, Rule::Interplay).verified_correct, "{f}");
    }
}

#[test]
fn a_check_that_contradicts_its_step_is_an_issue() {
    let (g, t) = (fwd_gold(), long_fwd());
    // A right check adds nothing.
    let full = strict(TraceFormat::Full, &g, FWD);
    let long = strict(TraceFormat::Long, &g, &t);
    assert_eq!(
        (long.nodes.clone(), long.process_acc),
        (full.nodes, full.process_acc)
    );
    for (from, to, node) in [
        ("We know t is", "We know Q is", 1),
        ("We know t is", "We know K is", 1),
        (
            "We know U is total number of adult animals in Jefferson Circus",
            "We know U is total number of adult animals in Hamilton Farm",
            2,
        ),
        ("and 2 + 6 = 8, so U = 8.", "and 2 + 5 = 8, so U = 8.", 2),
        ("and 2 + 6 = 8, so U = 8.", "and 2 + 7 = 9, so U = 9.", 2),
        ("and 2 + 6 = 8, so U = 8.", "and 2 + 6 = 8, so U = 9.", 2),
        ("and 2 + 6 = 8, so U = 8.", "and 2 + 6 = 8, so t = 6.", 2),
        ("Farm, so B = 20.", "Farm, so B = 21.", 4),
    ] {
        let m = swap(&t, from, to);
        let v = strict(TraceFormat::Long, &g, &m);
        assert!(
            !v.verified_correct && has(&v, IssueKind::CheckMismatch),
            "`{to}`: {v:#?}"
        );
        assert_eq!(v.nodes[node], NodeStatus::Flawed, "`{to}`");
    }
    // A check before any step, and one that is not a check's shape.
    let m = format!("We know K is adult owl in Jefferson Circus, so K = 2. {t}");
    assert!(has(
        &strict(TraceFormat::Long, &g, &m),
        IssueKind::CheckMismatch
    ));
    let m = swap(
        &t,
        "We know U is total number of adult animals in Jefferson Circus, and 2 + 6 = 8, so U = 8.",
        "We know U = 8 holds.",
    );
    let v = strict(TraceFormat::Long, &g, &m);
    assert!(!v.verified_correct && has(&v, IssueKind::Malformed));
    // Reverse mode: checks of linear forms in x.
    let m = swap(
        &long_rev(),
        "and 3 + x = x + 3, so R = x + 3",
        "and 3 + x = x + 4, so R = x + 4",
    );
    let v = strict(TraceFormat::Long, &rev_gold(), &m);
    assert!(!v.verified_correct && has(&v, IssueKind::CheckMismatch));
}

/// Token-level mangling of terse and long traces and alphabet soup of their characters: no
/// panic, and an accepted mangle is still a sound derivation (every step correct).
#[test]
fn fuzz_terse_and_long_readers() {
    use rand::{RngExt, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(23);
    let alphabet: Vec<char> =
        "adult owl in: We know K is , and so = + * ( ) ; . x 1 2 9 Answer <answer>"
            .chars()
            .collect();
    for (f, fwd, rev, _) in cases() {
        let mut ver = Verifier::for_format(f);
        for (g, t) in [(fwd_gold(), &fwd), (rev_gold(), &rev)] {
            let c = completion(t, g.answer);
            for _ in 0..2000 {
                let m = super::verifier::mangle(&mut rng, &c);
                let v = ver.verify(&g, &m, Rule::Strict);
                if v.verified_correct {
                    assert!(
                        v.nodes.iter().all(|&s| s == NodeStatus::Correct),
                        "{f}: {m}"
                    );
                }
                ver.verify(&g, &m, Rule::Interplay);
            }
            for len in [1usize, 10, 100, 1000] {
                for _ in 0..100 {
                    let s: String = (0..len)
                        .map(|_| alphabet[rng.random_range(0..alphabet.len())])
                        .collect();
                    ver.verify(&g, &s, Rule::Strict);
                }
            }
        }
    }
}
