//! Golden files pin the rendered format of a few seeded problems byte for byte.
//! Set DAGMATH_BLESS=1 to rewrite them after an intended format change.

use std::path::PathBuf;

use dagmath::composer::{compose_seeded, Mode};
use dagmath::render::Rendered;
use dagmath::template::TemplateSet;

const CASES: [(&str, u32, Mode, u64); 6] = [
    ("zoo", 4, Mode::Forward, 1),
    ("zoo", 6, Mode::Reverse, 2),
    ("school", 10, Mode::Forward, 3),
    ("school", 8, Mode::Reverse, 4),
    ("festival", 3, Mode::Forward, 5),
    ("festival", 12, Mode::Reverse, 6),
];

#[test]
fn rendered_formats_match_golden_files() {
    let set = TemplateSet::builtin();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let bless = std::env::var_os("DAGMATH_BLESS").is_some();
    for (tid, op, mode, seed) in CASES {
        let t = set.get(tid).unwrap();
        let r = Rendered::of(t, &compose_seeded(t, op, mode, seed).unwrap());
        let text = format!(
            "problem: {}\nquestion: {}\nsolution: {}\nanswer: {}\nprompt: {}\ncompletion: {}\n",
            r.problem, r.question, r.solution, r.answer, r.prompt, r.completion
        );
        let path = dir.join(format!("{tid}-{mode}-op{op}-seed{seed}.txt"));
        if bless {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &text).unwrap();
        }
        let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (run with DAGMATH_BLESS=1 to create)",
                path.display()
            )
        });
        assert_eq!(text, want, "{} differs", path.display());
    }
}
