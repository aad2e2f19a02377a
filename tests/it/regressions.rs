//! One test per failure that adversarial probes found (issue 15), each named after the failure
//! it pins: bad input exits 2 with a message naming the value, writes nothing, and never panics,
//! hangs or aborts; resumed state is verified; output folders are locked and never clobbered.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::cli::dagmath;

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Exit 2, the message contains `needle`, and it is not a panic.
fn assert_exit_2(o: &Output, needle: &str) {
    let e = stderr(o);
    assert_eq!(o.status.code(), Some(2), "stderr: {e}");
    assert!(e.contains(needle), "expected `{needle}` in: {e}");
    assert!(!e.contains("panicked"), "{e}");
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A small quick-set dataset written by the binary.
fn quickset(out: &Path, count: &str) {
    let o = dagmath(&[
        "generate",
        "--ops",
        "2-3",
        "--count",
        count,
        "--shard-size",
        "20",
        "--threads",
        "1",
        "--out",
        s(out),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
}

// Row 1.
#[test]
fn audit_self_on_a_multibyte_trace_letter_is_an_error_not_a_panic() {
    use dagmath::dataset::reference::graph_from_gold_trace;
    let e = graph_from_gold_trace("Define a as é; so é = 2. Answer: 2.").unwrap_err();
    assert!(e.contains("ASCII letter"), "{e}");
    let tmp = tempfile::tempdir().unwrap();
    let gold = tmp.path().join("ref.jsonl");
    let rec = serde_json::json!({
        "problem": "p", "question": "q", "op": 1, "template": "zoo",
        "solution": "Define a as é; so é = 2. Answer: 2.",
    });
    std::fs::write(&gold, format!("{rec}\n")).unwrap();
    assert_exit_2(
        &dagmath(&["audit", "--gold", s(&gold), "--self"]),
        "ASCII letter",
    );
}

// Row 2.
#[test]
fn inspect_row_past_a_shard_the_manifest_overstates_exits_2() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("d");
    quickset(&d, "20");
    let mp = d.join("manifest.json");
    let mut m: serde_json::Value = serde_json::from_slice(&std::fs::read(&mp).unwrap()).unwrap();
    m["splits"][0]["rows"] = 3000.into();
    m["splits"][0]["shards"][0]["rows"] = 3000.into();
    std::fs::write(&mp, m.to_string()).unwrap();
    assert_exit_2(
        &dagmath(&["inspect", s(&d), "--split", "train", "--row", "2500"]),
        "holds 20 rows but manifest.json says 3000",
    );
}

// Row 7.
#[test]
fn generate_with_a_hundred_thousand_threads_exits_2_naming_threads() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("o");
    for n in ["100000", "1000"] {
        assert_exit_2(
            &dagmath(&[
                "generate",
                "--ops",
                "2",
                "--count",
                "5",
                "--threads",
                n,
                "--out",
                s(&out),
            ]),
            "--threads",
        );
        assert!(!out.exists());
    }
    let o = dagmath(&[
        "audit",
        "--gold",
        s(tmp.path()),
        "--self",
        "--threads",
        "100000",
    ]);
    assert_exit_2(&o, "--threads");
}

// Row 8.
#[test]
fn op_weights_whose_sum_overflows_are_refused_not_turned_into_six_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let recipe = tmp.path().join("r.toml");
    std::fs::write(
        &recipe,
        "seed = 1\n[[splits]]\nname = \"train\"\nsize = 200\nop_weights = { \"2-4\" = 1e308, \"5-7\" = 1e308 }\n",
    )
    .unwrap();
    let out = tmp.path().join("o");
    assert_exit_2(
        &dagmath(&["generate", "--recipe", s(&recipe), "--out", s(&out)]),
        "op_weights",
    );
    assert!(!out.exists());
}

// Row 9.
#[test]
fn op_60_quick_set_writes_every_row_or_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("o");
    let o = dagmath(&[
        "generate",
        "--ops",
        "60",
        "--count",
        "200",
        "--seed",
        "1",
        "--out",
        s(&out),
    ]);
    if o.status.success() {
        let m: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
        assert_eq!(m["splits"][0]["rows"], 200);
        assert!(!out.join(".dagmath-run.json").exists());
    } else {
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert!(!out.exists(), "a refused run leaves nothing behind");
    }
}

// Row 10.
#[test]
fn quick_flags_are_values_never_pasted_into_toml() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("o");
    let quick = |extra: &[&str]| {
        let mut args = vec!["generate", "--ops", "2", "--count", "5", "--out", s(&out)];
        args.extend_from_slice(extra);
        dagmath(&args)
    };
    for split in ["a\" #", "a\\u0062"] {
        let o = quick(&["--split", split]);
        assert_exit_2(&o, "--split");
        assert!(!stderr(&o).contains("[[splits]]"), "{}", stderr(&o));
        assert!(!out.exists());
    }
    let o = quick(&["--template", "zoo,zoo"]);
    assert_exit_2(&o, "--template");
    assert!(!stderr(&o).contains("[[splits]]"), "{}", stderr(&o));
}

// Row 11.
#[test]
fn generate_on_a_folder_another_run_holds_exits_2() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("o");
    std::fs::create_dir(&out).unwrap();
    // Stand in for a concurrent run: hold the folder's lock as dagmath does.
    let lock = std::fs::File::open(&out).unwrap();
    lock.try_lock().unwrap();
    let o = dagmath(&["generate", "--ops", "2", "--count", "5", "--out", s(&out)]);
    assert_exit_2(&o, "another dagmath run");
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 0, "wrote nothing");
    drop(lock);
    // Two real runs at once: one wins, the other stops, and the manifest matches the files.
    let a = tmp.path().join("two");
    let spawn = || {
        Command::new(env!("CARGO_BIN_EXE_dagmath"))
            .args([
                "generate",
                "--ops",
                "2-3",
                "--count",
                "3000",
                "--shard-size",
                "500",
                "--threads",
                "1",
                "--force",
                "--out",
                s(&a),
            ])
            .output()
    };
    std::fs::create_dir(&a).unwrap();
    std::fs::write(
        a.join(".dagmath-run.json"),
        "{\"recipe_sha256\":\"x\",\"seed\":0}",
    )
    .unwrap();
    let (x, y) = std::thread::scope(|sc| {
        let x = sc.spawn(spawn);
        let y = sc.spawn(spawn);
        (x.join().unwrap().unwrap(), y.join().unwrap().unwrap())
    });
    assert!(x.status.success() || y.status.success());
    for o in [&x, &y] {
        assert!(
            o.status.success() || o.status.code() == Some(2),
            "{}",
            stderr(o)
        );
    }
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(a.join("manifest.json")).unwrap()).unwrap();
    for sh in m["splits"][0]["shards"].as_array().unwrap() {
        let (_, sha) =
            dagmath::dataset::shard::file_sha256(&a.join(sh["file"].as_str().unwrap())).unwrap();
        assert_eq!(sh["sha256"].as_str().unwrap(), sha);
    }
}

// Row 12.
#[test]
fn resume_over_a_corrupted_shard_exits_2_and_keeps_the_manifest() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("d");
    quickset(&d, "60");
    let shard = d.join("data/train-00001-of-00003.parquet");
    let mut bytes = std::fs::read(&shard).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&shard, &bytes).unwrap();
    let before = std::fs::read(d.join("manifest.json")).unwrap();
    let o = dagmath(&[
        "generate",
        "--ops",
        "2-3",
        "--count",
        "60",
        "--shard-size",
        "20",
        "--threads",
        "1",
        "--resume",
        "--out",
        s(&d),
    ]);
    assert_exit_2(&o, "train-00001-of-00003.parquet");
    assert_eq!(std::fs::read(d.join("manifest.json")).unwrap(), before);
    // The same after a kill: the run journal records each finished shard's checksum.
    std::fs::remove_file(d.join("manifest.json")).unwrap();
    let mut journal = serde_json::json!({"recipe_sha256": serde_json::from_slice::<serde_json::Value>(&before).unwrap()["recipe_sha256"], "seed": 0, "shards": {}});
    let m: serde_json::Value = serde_json::from_slice(&before).unwrap();
    for sh in m["splits"][0]["shards"].as_array().unwrap() {
        journal["shards"][sh["file"].as_str().unwrap()] = sh["sha256"].clone();
    }
    std::fs::write(d.join(".dagmath-run.json"), journal.to_string()).unwrap();
    let o = dagmath(&[
        "generate",
        "--ops",
        "2-3",
        "--count",
        "60",
        "--shard-size",
        "20",
        "--threads",
        "1",
        "--resume",
        "--out",
        s(&d),
    ]);
    assert_exit_2(&o, "does not match the run journal");
}

// Row 13.
#[test]
fn force_never_overwrites_a_folder_dagmath_did_not_write() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("d");
    std::fs::create_dir(&d).unwrap();
    std::fs::write(d.join("README.md"), "my notes\n").unwrap();
    let o = dagmath(&[
        "generate",
        "--ops",
        "2",
        "--count",
        "5",
        "--force",
        "--out",
        s(&d),
    ]);
    assert_exit_2(&o, "README.md");
    assert_eq!(
        std::fs::read_to_string(d.join("README.md")).unwrap(),
        "my notes\n"
    );
    assert_eq!(std::fs::read_dir(&d).unwrap().count(), 1);
}

// Row 16.
#[test]
fn tokenizer_write_that_fails_leaves_no_truncated_file() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("tok.json");
    // A file-size limit of one block stands in for a full disk: the write fails part-way.
    let o = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "trap '' XFSZ; ulimit -f 1; exec '{}' tokenizer --out '{}'",
            env!("CARGO_BIN_EXE_dagmath"),
            s(&out)
        ))
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        !out.exists(),
        "a failed write must not leave a partial tok.json"
    );
    let left: Vec<PathBuf> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

// Row 18 (the data side).
#[test]
fn truncated_shard_and_out_naming_a_file_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("d");
    quickset(&d, "20");
    let shard = d.join("data/train-00000-of-00001.parquet");
    let bytes = std::fs::read(&shard).unwrap();
    std::fs::write(&shard, &bytes[..bytes.len() / 2]).unwrap();
    assert_exit_2(
        &dagmath(&["inspect", s(&d)]),
        "train-00000-of-00001.parquet",
    );
    let file = tmp.path().join("plain.txt");
    std::fs::write(&file, "x").unwrap();
    assert_exit_2(
        &dagmath(&["generate", "--ops", "2", "--count", "5", "--out", s(&file)]),
        "is not a folder",
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "x");
}
