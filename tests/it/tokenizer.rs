//! The domain tokenizer agrees with Hugging Face's Python `tokenizers` on every id.
//!
//! Needs a Python with `tokenizers` installed: set DAGMATH_PYTHON to its interpreter (for
//! example a venv's `bin/python`). Without it the comparison is reported as not run.

use std::process::Command;

use dagmath::composer::{compose_seeded, Mode};
use dagmath::render::Rendered;
use dagmath::template::TemplateSet;
use dagmath::tokenizer::Tokenizer;

#[test]
fn ids_match_python_tokenizers() {
    let Some(python) = std::env::var_os("DAGMATH_PYTHON") else {
        eprintln!("DAGMATH_PYTHON not set: Python tokenizers comparison not run");
        return;
    };
    let set = TemplateSet::builtin();
    let tok = Tokenizer::domain(&set);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokenizer.json");
    tok.save(&path).unwrap();
    let mut cases = Vec::new();
    for tid in ["zoo", "school", "festival"] {
        let t = set.get(tid).unwrap();
        for mode in Mode::ALL {
            for op in [1u32, 4, 9, 15, 25] {
                let r = Rendered::of(t, &compose_seeded(t, op, mode, 3).unwrap());
                let text = format!("{}{}", r.prompt, r.completion);
                let ids = tok.encode(&text).unwrap();
                cases.push(serde_json::json!({"text": text, "ids": ids}));
            }
        }
    }
    let cases_path = dir.path().join("cases.json");
    std::fs::write(&cases_path, serde_json::to_string(&cases).unwrap()).unwrap();
    let script = r#"
import json, sys
from tokenizers import Tokenizer
tok = Tokenizer.from_file(sys.argv[1])
cases = json.load(open(sys.argv[2]))
bad = 0
for c in cases:
    enc = tok.encode(c["text"], add_special_tokens=False)
    if enc.ids != c["ids"]:
        bad += 1
    if tok.decode(enc.ids, skip_special_tokens=False) != c["text"]:
        bad += 1
print(len(cases), "cases", bad, "mismatches")
sys.exit(1 if bad else 0)
"#;
    let out = Command::new(python)
        .args([
            "-c",
            script,
            path.to_str().unwrap(),
            cases_path.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{}", String::from_utf8_lossy(&out.stdout));
}
