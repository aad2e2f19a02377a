//! The layering of `src/lib.rs`, enforced on the source text: the data side (`composer`,
//! `graph`, `render`, `trace`, `tokenizer`, `eval::passk`, `family`) imports no arrow, parquet, burn, CLI, nor the
//! crate's layers above it (`dataset`, `model`, `engine`, `train`); `model` imports neither
//! `dataset` nor the CLI. A violation names the file, the line and the path it reached.

use std::path::{Path, PathBuf};

/// The data side: pure Rust, no I/O formats, no tensors, no terminal.
const DATA_SIDE: [&str; 7] = [
    "src/composer",
    "src/graph.rs",
    "src/render",
    "src/trace",
    "src/tokenizer",
    "src/eval/passk.rs",
    "src/family",
];
const DATA_SIDE_FORBIDDEN: [&str; 12] = [
    "arrow",
    "arrow_*",
    "parquet",
    "burn",
    "burn_*",
    "clap",
    "indicatif",
    "crate::cli",
    "crate::dataset",
    "crate::model",
    "crate::engine",
    "crate::train",
];
/// The Python module (`src/python`, feature `python`) is a top layer like the CLI: nothing in
/// the library uses it, nor pyo3.
const PYTHON_FORBIDDEN: [&str; 2] = ["pyo3", "crate::python"];
const MODEL: &str = "src/model";
const MODEL_FORBIDDEN: [&str; 5] = ["crate::dataset", "crate::cli", "clap", "indicatif", "arrow"];

/// Every `.rs` file at or under `path`, sorted.
fn rust_files(path: &Path) -> Vec<PathBuf> {
    if path.is_file() {
        return vec![path.to_path_buf()];
    }
    let mut out = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            out.extend(rust_files(&p));
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
    out
}

/// The source with comments and string/char literals blanked (newlines kept, so byte
/// offsets still give line numbers).
fn code_only(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = b.to_vec();
    let mut i = 0;
    let blank = |out: &mut Vec<u8>, from: usize, to: usize| {
        for c in &mut out[from..to] {
            if *c != b'\n' {
                *c = b' ';
            }
        }
    };
    while i < b.len() {
        match b[i] {
            b'/' if b.get(i + 1) == Some(&b'/') => {
                let end = src[i..].find('\n').map_or(b.len(), |n| i + n);
                blank(&mut out, i, end);
                i = end;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let end = src[i + 2..].find("*/").map_or(b.len(), |n| i + 2 + n + 2);
                blank(&mut out, i, end);
                i = end;
            }
            b'r' if b.get(i + 1) == Some(&b'#') || b.get(i + 1) == Some(&b'"') => {
                // Raw string r"…" / r#"…"#, unless `r` ends an identifier.
                let ident_before = i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_');
                let hashes = b[i + 1..].iter().take_while(|&&c| c == b'#').count();
                if ident_before || b.get(i + 1 + hashes) != Some(&b'"') {
                    i += 1;
                    continue;
                }
                let close = format!("\"{}", "#".repeat(hashes));
                let body = i + 2 + hashes;
                let end = src[body..]
                    .find(&close)
                    .map_or(b.len(), |n| body + n + close.len());
                blank(&mut out, i, end);
                i = end;
            }
            b'"' => {
                let mut j = i + 1;
                while j < b.len() && b[j] != b'"' {
                    j += if b[j] == b'\\' { 2 } else { 1 };
                }
                blank(&mut out, i, (j + 1).min(b.len()));
                i = j + 1;
            }
            b'\'' => {
                // A char literal ('a', '\n', '\''), not a lifetime ('a).
                let end = if b.get(i + 1) == Some(&b'\\') {
                    src[i + 2..].find('\'').map(|n| i + 2 + n + 1)
                } else {
                    let c = src[i + 1..].chars().next().map_or(1, char::len_utf8);
                    (b.get(i + 1 + c) == Some(&b'\'')).then_some(i + 2 + c)
                };
                match end {
                    Some(end) => {
                        blank(&mut out, i, end);
                        i = end;
                    }
                    None => i += 1,
                }
            }
            _ => i += 1,
        }
    }
    String::from_utf8(out).expect("only ASCII was replaced")
}

/// Every path a file names, with the byte offset where it starts: the leaves of each `use`
/// tree (`use crate::{a, b::c}` gives `crate::a` and `crate::b::c`) and every `x::y` path
/// written inline.
fn paths(code: &str) -> Vec<(usize, String)> {
    let b = code.as_bytes();
    let is_ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        // `::x` opens a path only after something that cannot end one (`(::parquet::…`).
        let global = i >= 2
            && &code[i - 2..i] == "::"
            && !code[..i - 2]
                .trim_end()
                .ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == '>');
        if !is_ident(b[i]) || (i > 0 && (is_ident(b[i - 1]) || b[i - 1] == b':') && !global) {
            i += 1;
            continue;
        }
        let start = i;
        // A path: idents joined by `::`, possibly ending in a `{…}` group.
        let mut j = i;
        loop {
            while j < b.len() && is_ident(b[j]) {
                j += 1;
            }
            let k = j + code[j..].len() - code[j..].trim_start().len();
            if code[k..].starts_with("::") {
                let n = k + 2 + code[k + 2..].len() - code[k + 2..].trim_start().len();
                if b.get(n) == Some(&b'{') {
                    j = n;
                    break;
                }
                j = n;
                continue;
            }
            break;
        }
        let head = code[start..j].split_whitespace().collect::<String>();
        if head == "use" || head.starts_with("use ") {
            i = j;
            continue;
        }
        if b.get(j) == Some(&b'{') {
            // Only a `use` tree has a group after `::`; find its end and expand it.
            let mut depth = 0;
            let mut end = j;
            for (n, &c) in b[j..].iter().enumerate() {
                match c {
                    b'{' => depth += 1,
                    b'}' => {
                        depth -= 1;
                        if depth == 0 {
                            end = j + n;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let prefix = head.trim_end_matches("::").to_string();
            for leaf in expand(&code[j + 1..end]) {
                out.push((start, format!("{prefix}::{leaf}")));
            }
            i = end + 1;
        } else {
            if global {
                out.push((start, format!("::{head}")));
            } else if head.contains("::") {
                out.push((start, head));
            } else if code[..start].trim_end().ends_with("use")
                && code[..start].trim_end().len() >= 3
            {
                // `use arrow;` or `use arrow as a;`
                out.push((start, head));
            }
            i = j.max(i + 1);
        }
    }
    out
}

/// The leaves of a `use` group's contents (`a, b::{c, d}` → `a`, `b::c`, `b::d`).
fn expand(group: &str) -> Vec<String> {
    let mut items = Vec::new();
    let (mut depth, mut from) = (0, 0);
    for (n, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&group[from..n]);
                from = n + 1;
            }
            _ => {}
        }
    }
    items.push(&group[from..]);
    let mut out = Vec::new();
    for item in items {
        let item: String = item.split_whitespace().collect::<Vec<_>>().join(" ");
        if item.is_empty() {
            continue;
        }
        match item.find('{') {
            Some(open) => {
                let prefix = item[..open].trim().trim_end_matches("::").trim();
                let inner = &item[open + 1..item.rfind('}').unwrap_or(item.len())];
                for leaf in expand(inner) {
                    out.push(format!("{prefix}::{leaf}"));
                }
            }
            None => out.push(item.replace(' ', "")),
        }
    }
    out
}

/// Whether `path` (`arrow::array::X`, `crate::dataset`, `burn_ndarray::…`) falls under
/// `rule` (`arrow`, `burn_*`, `crate::cli`).
fn matches(path: &str, rule: &str) -> bool {
    let path = path.trim_start_matches("::");
    if let Some(stem) = rule.strip_suffix('*') {
        return path.starts_with(stem);
    }
    path == rule
        || path
            .strip_prefix(rule)
            .is_some_and(|rest| rest.starts_with("::") || rest.starts_with(" as"))
}

/// `file:line: `path` (forbidden: rule)` for every forbidden path under `roots`.
fn violations(root: &Path, dirs: &[&str], forbidden: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for dir in dirs {
        for file in rust_files(&root.join(dir)) {
            let src = std::fs::read_to_string(&file).unwrap();
            let code = code_only(&src);
            for (at, path) in paths(&code) {
                if let Some(rule) = forbidden.iter().find(|r| matches(&path, r)) {
                    let line = src[..at].matches('\n').count() + 1;
                    let rel = file.strip_prefix(root).unwrap_or(&file);
                    out.push(format!(
                        "{}:{line}: `{path}` (this layer must not use `{rule}`)",
                        rel.display()
                    ));
                }
            }
        }
    }
    out
}

#[test]
fn path_extraction_sees_use_trees_and_inline_paths() {
    let code = code_only(
        "use crate::{cli::X, dataset::{a, b}};\n// use arrow::x;\nlet s = \"burn::y\";\n\
         fn f() { ::parquet::file::Reader::new(); }\nuse burn_ndarray as nd;\n",
    );
    let got: Vec<String> = paths(&code).into_iter().map(|p| p.1).collect();
    for want in [
        "crate::cli::X",
        "crate::dataset::a",
        "crate::dataset::b",
        "::parquet::file::Reader::new",
        "burn_ndarray",
    ] {
        assert!(got.iter().any(|g| g == want), "{want} not in {got:?}");
    }
    assert!(
        !got.iter()
            .any(|g| g.contains("arrow") || g.contains("burn::")),
        "{got:?}"
    );
    assert!(matches("burn_ndarray", "burn_*"));
    assert!(matches("crate::dataset::a", "crate::dataset"));
    assert!(!matches("crate::dataset_card", "crate::dataset"));
    assert!(!matches("arrowhead::x", "arrow"));
}

#[test]
fn data_side_and_model_respect_the_layers() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut bad = violations(root, &DATA_SIDE, &DATA_SIDE_FORBIDDEN);
    bad.extend(violations(root, &[MODEL], &MODEL_FORBIDDEN));
    assert!(
        bad.is_empty(),
        "layering broken (see the layer list in src/lib.rs):\n{}",
        bad.join("\n")
    );
}

#[test]
fn only_the_python_layer_uses_pyo3() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut below: Vec<String> = std::fs::read_dir(root.join("src"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "python")
        .map(|n| format!("src/{n}"))
        .collect();
    below.sort();
    let below: Vec<&str> = below.iter().map(String::as_str).collect();
    let bad = violations(root, &below, &PYTHON_FORBIDDEN);
    assert!(
        bad.is_empty(),
        "pyo3 outside src/python:\n{}",
        bad.join("\n")
    );
}
