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
    let lock = dagmath::dataset::generate::lock_folder(&out).unwrap();
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
    let resume = || {
        dagmath(&[
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
        ])
    };
    assert_exit_2(&resume(), "train-00001-of-00003.parquet");
    assert_eq!(std::fs::read(d.join("manifest.json")).unwrap(), before);
    // The same after a kill: the run journal records each finished shard's checksum.
    std::fs::remove_file(d.join("manifest.json")).unwrap();
    let mut journal = serde_json::json!({"recipe_sha256": serde_json::from_slice::<serde_json::Value>(&before).unwrap()["recipe_sha256"], "seed": 0, "shards": {}});
    let m: serde_json::Value = serde_json::from_slice(&before).unwrap();
    for sh in m["splits"][0]["shards"].as_array().unwrap() {
        journal["shards"][sh["file"].as_str().unwrap()] = sh["sha256"].clone();
    }
    std::fs::write(d.join(".dagmath-run.json"), journal.to_string()).unwrap();
    assert_exit_2(&resume(), "does not match the run journal");
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
    // An existing file that is not a tokenizer is never overwritten; a tokenizer is replaced.
    let notes = tmp.path().join("notes.txt");
    std::fs::write(&notes, "mine").unwrap();
    assert_exit_2(
        &dagmath(&["tokenizer", "--out", s(&notes)]),
        "refusing to overwrite",
    );
    assert_eq!(std::fs::read_to_string(&notes).unwrap(), "mine");
    for _ in 0..2 {
        let o = dagmath(&["tokenizer", "--out", s(&out)]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
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

/// A training config file (TOML) for a tiny model writing to `out`; `model`, `budget` and
/// `data_extra` lines go into their sections.
#[cfg(feature = "train")]
fn train_config(
    dir: &Path,
    data: &Path,
    out: &str,
    model: &str,
    budget: &str,
    data_extra: &str,
) -> PathBuf {
    let text = format!(
        "seed = 3\nout = \"{out}\"\n[model]\npreset = \"tiny\"\nhidden_size = 32\nnum_hidden_layers = 1\n\
         intermediate_size = 64\n{model}\n[data]\ndir = \"{data}\"\nseq_len = 32\nshuffle_block = 4\n\
         {data_extra}\n[budget]\ntokens = 256\nbatch_size = 4\n{budget}\n[checkpoint]\nevery = 1\nkeep = 3\n",
        data = data.display(),
    );
    let p = dir.join(format!("cfg-{}.toml", text.len()));
    std::fs::write(&p, text).unwrap();
    p
}

/// `train pretrain --config FILE` run in `cwd`.
#[cfg(feature = "train")]
fn train_in(cwd: &Path, cfg: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dagmath"))
        .current_dir(cwd)
        .args(["train", "pretrain", "--config", s(cfg)])
        .args(extra)
        .output()
        .unwrap()
}

// Row 3.
#[cfg(feature = "train")]
#[test]
fn batch_size_times_grad_accum_that_wraps_is_a_config_error_not_a_divide_by_zero() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let cfg = train_config(
        tmp.path(),
        &tmp.path().join("nodata"),
        s(&out),
        "",
        "grad_accum = 4294967296",
        "",
    );
    replace_in(&cfg, "batch_size = 4", "batch_size = 4294967296");
    assert_exit_2(&train_in(tmp.path(), &cfg, &[]), "budget.batch_size");
    assert!(!out.exists());
}

// Row 4.
#[cfg(feature = "train")]
#[test]
fn model_and_batch_sizes_beyond_memory_are_refused_before_out_is_created() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let data = tmp.path().join("nodata");
    for (model, budget, needle) in [
        (
            "hidden_size = 1000000\nintermediate_size = 100000000000",
            "",
            "hidden_size 1000000",
        ),
        (
            "num_hidden_layers = 1000000000",
            "",
            "num_hidden_layers 1000000000",
        ),
        ("", "batch_size = 1000000000000", "budget.batch_size"),
    ] {
        let cfg = train_config(tmp.path(), &data, s(&out), model, "", "");
        let text = std::fs::read_to_string(&cfg).unwrap();
        // Later keys of a section override: drop the defaults the case replaces.
        let mut text = text;
        if model.contains("intermediate_size") {
            text = text
                .replace("hidden_size = 32\n", "")
                .replace("intermediate_size = 64\n", "");
        }
        if model.contains("num_hidden_layers") {
            text = text.replace("num_hidden_layers = 1\n", "");
        }
        if !budget.is_empty() {
            text = text.replace("batch_size = 4\n", &format!("{budget}\n"));
        }
        std::fs::write(&cfg, text).unwrap();
        let o = train_in(tmp.path(), &cfg, &[]);
        assert_exit_2(&o, needle);
        assert!(stderr(&o).contains("memory"), "{}", stderr(&o));
        assert!(!out.exists(), "out/ must not be created");
    }
}

/// A Hugging Face folder of a micro model with the domain tokenizer; `edit` changes its
/// config.json.
#[cfg(feature = "train")]
fn hf_folder(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) -> PathBuf {
    use dagmath::model::{hf, weights, ModelConfig};
    let tok = dagmath::tokenizer::Tokenizer::domain(&dagmath::template::TemplateSet::builtin());
    let c = ModelConfig {
        hidden_size: 32,
        num_hidden_layers: 1,
        intermediate_size: 64,
        ..ModelConfig::preset("tiny", tok.vocab_size()).unwrap()
    };
    let out = dir.join(format!("hf-{}", std::fs::read_dir(dir).unwrap().count()));
    hf::export(&out, &c, &weights::init(&c, 5), tok.json(), 0, 1).unwrap();
    let p = out.join("config.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    edit(&mut v);
    std::fs::write(&p, v.to_string()).unwrap();
    out
}

// Row 5.
#[cfg(feature = "train")]
#[test]
fn import_of_a_config_with_a_billion_layers_is_refused_before_building_names() {
    let tmp = tempfile::tempdir().unwrap();
    let hf = hf_folder(tmp.path(), |v| {
        v["num_hidden_layers"] = 1_000_000_000u64.into()
    });
    let out = tmp.path().join("imp");
    let t0 = std::time::Instant::now();
    let o = dagmath(&["import", "--hf", s(&hf), "--out", s(&out)]);
    assert_exit_2(&o, "num_hidden_layers 1000000000");
    assert!(
        t0.elapsed().as_secs() < 20,
        "refused only after {:?}",
        t0.elapsed()
    );
    assert!(!out.exists());
    // `--resume` and `--from` read checkpoints through the same check.
    let e = dagmath::train::checkpoint::load(&hf)
        .unwrap_err()
        .to_string();
    assert!(e.contains("memory"), "{e}");
}

// Row 6.
#[cfg(feature = "train")]
#[test]
fn shuffle_block_beyond_memory_is_a_config_error_not_a_hang() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let cfg = train_config(tmp.path(), &tmp.path().join("nodata"), s(&out), "", "", "");
    replace_in(&cfg, "shuffle_block = 4", "shuffle_block = 100000000000");
    assert_exit_2(&train_in(tmp.path(), &cfg, &[]), "data.shuffle_block");
    assert!(!out.exists());
}

// Row 15.
#[cfg(feature = "train")]
#[test]
fn infinite_rms_norm_eps_and_empty_out_are_config_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let cfg = train_config(
        tmp.path(),
        &tmp.path().join("nodata"),
        s(&out),
        "rms_norm_eps = inf",
        "",
        "",
    );
    assert_exit_2(&train_in(tmp.path(), &cfg, &[]), "rms_norm_eps");
    let cfg = train_config(tmp.path(), &tmp.path().join("nodata"), "", "", "", "");
    let before = std::fs::read_dir(tmp.path()).unwrap().count();
    assert_exit_2(&train_in(tmp.path(), &cfg, &[]), "out = \"\"");
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), before);
}

// Row 14 and row 18 (checkpoints).
#[cfg(feature = "train")]
#[test]
fn resume_from_an_altered_checkpoint_exits_2() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    quickset(&data, "200");
    let out = tmp.path().join("run");
    let cfg = train_config(tmp.path(), &data, s(&out), "", "", "");
    let o = train_in(tmp.path(), &cfg, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let ck = out.join("checkpoints/step-00000002");
    let state_path = ck.join("state.json");
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&state_path).unwrap()).unwrap();
    assert!(
        state["checksums"]["model.safetensors"].is_string(),
        "{state}"
    );
    // Resuming the finished run is accepted.
    let o = train_in(tmp.path(), &cfg, &["--resume"]);
    assert!(o.status.success(), "{}", stderr(&o));

    // Two bytes of the weights flipped.
    let w = ck.join("model.safetensors");
    let good = std::fs::read(&w).unwrap();
    let mut bad = good.clone();
    let n = bad.len();
    bad[n - 8] ^= 0x40;
    bad[n - 3] ^= 0x01;
    std::fs::write(&w, &bad).unwrap();
    assert_exit_2(&train_in(tmp.path(), &cfg, &["--resume"]), "does not match");
    std::fs::write(&w, &good).unwrap();

    // A cursor far past the data, and a step past the run.
    let edit = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut v = state.clone();
        f(&mut v);
        std::fs::write(&state_path, v.to_string()).unwrap();
    };
    edit(&|v| v["cursor"]["start"]["streams"][0]["row"] = 1_000_000_000_000u64.into());
    assert_exit_2(&train_in(tmp.path(), &cfg, &["--resume"]), "cursor");
    edit(&|v| v["step"] = (1u64 << 63).into());
    assert_exit_2(
        &train_in(tmp.path(), &cfg, &["--resume"]),
        "step 9223372036854775808",
    );
    // A checkpoint written before checksums were recorded still loads (unchecked).
    edit(&|v| {
        v.as_object_mut().unwrap().remove("checksums");
    });
    let o = train_in(tmp.path(), &cfg, &["--resume"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // A truncated state.json is bad input too, not a system failure.
    std::fs::write(&state_path, b"{\"step\": 2,").unwrap();
    assert_exit_2(&train_in(tmp.path(), &cfg, &["--resume"]), "state.json");
}

// Row 17.
#[cfg(feature = "train")]
#[test]
fn import_of_shards_that_both_hold_a_tensor_is_refused() {
    use dagmath::model::weights::{load_safetensors, save_safetensors};
    let tmp = tempfile::tempdir().unwrap();
    let hf = hf_folder(tmp.path(), |_| {});
    let w = load_safetensors(&hf.join("model.safetensors")).unwrap();
    std::fs::remove_file(hf.join("model.safetensors")).unwrap();
    let dup = "model.norm.weight";
    let second: dagmath::model::Weights = w
        .iter()
        .filter(|(k, _)| *k == dup)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    save_safetensors(&hf.join("model-00001-of-00002.safetensors"), &w, None).unwrap();
    save_safetensors(&hf.join("model-00002-of-00002.safetensors"), &second, None).unwrap();
    let mut map = serde_json::Map::new();
    for k in w.keys() {
        map.insert(k.clone(), "model-00001-of-00002.safetensors".into());
    }
    map.insert(dup.into(), "model-00002-of-00002.safetensors".into());
    std::fs::write(
        hf.join("model.safetensors.index.json"),
        serde_json::json!({"weight_map": map}).to_string(),
    )
    .unwrap();
    let out = tmp.path().join("imp");
    assert_exit_2(
        &dagmath(&["import", "--hf", s(&hf), "--out", s(&out)]),
        "tensor model.norm.weight is in two shards",
    );
    assert!(!out.exists());
}

// Row 19.
#[cfg(feature = "train")]
#[test]
fn import_reads_rope_parameters_and_refuses_rope_it_does_not_implement() {
    let tmp = tempfile::tempdir().unwrap();
    let tf5 = |v: &mut serde_json::Value| {
        v.as_object_mut().unwrap().remove("rope_theta");
        v["rope_parameters"] = serde_json::json!({"rope_theta": 10000.0, "rope_type": "default"});
    };
    let hf = hf_folder(tmp.path(), tf5);
    let out = tmp.path().join("imp");
    let o = dagmath(&["import", "--hf", s(&hf), "--out", s(&out)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let c: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(c["rope_theta"], 10000.0);
    for (edit, needle) in [
        (
            serde_json::json!({"rope_parameters": {"rope_theta": 10000.0, "rope_type": "yarn", "factor": 4.0}}),
            "rope_parameters.rope_type",
        ),
        (
            serde_json::json!({"rope_parameters": null}),
            "no \"rope_theta\"",
        ),
        (serde_json::json!({"hidden_act": "gelu"}), "hidden_act"),
        (
            serde_json::json!({"use_sliding_window": true}),
            "use_sliding_window",
        ),
    ] {
        let hf = hf_folder(tmp.path(), |v| {
            v.as_object_mut().unwrap().remove("rope_theta");
            if edit.get("rope_parameters").is_none() {
                v["rope_theta"] = 1e6.into();
            }
            for (k, x) in edit.as_object().unwrap() {
                v[k] = x.clone();
            }
        });
        let out = tmp.path().join("imp2");
        assert_exit_2(
            &dagmath(&["import", "--hf", s(&hf), "--out", s(&out)]),
            needle,
        );
    }
}

// Row 20.
#[cfg(feature = "train")]
#[test]
fn import_of_a_vocabulary_padded_past_the_tokenizer_is_refused_at_import() {
    use dagmath::model::{hf, weights, ModelConfig};
    let tmp = tempfile::tempdir().unwrap();
    let tok = dagmath::tokenizer::Tokenizer::domain(&dagmath::template::TemplateSet::builtin());
    let c = ModelConfig {
        hidden_size: 32,
        num_hidden_layers: 1,
        intermediate_size: 64,
        ..ModelConfig::preset("tiny", 512).unwrap()
    };
    let padded = tmp.path().join("padded");
    hf::export(&padded, &c, &weights::init(&c, 5), tok.json(), 0, 1).unwrap();
    let out = tmp.path().join("imp");
    assert_exit_2(
        &dagmath(&["import", "--hf", s(&padded), "--out", s(&out)]),
        "vocab_size 512",
    );
    assert!(!out.exists());
    // Mid-training straight from the padded folder is refused the same way.
    let cfg = tmp.path().join("mid.toml");
    std::fs::write(
        &cfg,
        format!(
            "out = \"{}\"\n[data]\ndir = \"nodata\"\nseq_len = 32\n[budget]\ntokens = 256\nbatch_size = 4\n",
            s(&tmp.path().join("run"))
        ),
    )
    .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_dagmath"))
        .current_dir(tmp.path())
        .args([
            "train",
            "midtrain",
            "--config",
            s(&cfg),
            "--from",
            s(&padded),
        ])
        .output()
        .unwrap();
    assert_exit_2(&o, "vocab_size 512");
    assert!(!tmp.path().join("run").exists());
}

// Rows 21 and 22, and the `logits` command.
#[cfg(feature = "train")]
#[test]
fn export_loads_with_auto_tokenizer_and_stops_generation_at_answer() {
    let tmp = tempfile::tempdir().unwrap();
    let hf = hf_folder(tmp.path(), |_| {});
    let read = |f: &str| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(hf.join(f)).unwrap()).unwrap()
    };
    let tc = read("tokenizer_config.json");
    assert_eq!(tc["tokenizer_class"], "PreTrainedTokenizerFast");
    assert_eq!(
        tc["auto_map"]["AutoTokenizer"][1],
        "PreTrainedTokenizerFast"
    );
    let tok = dagmath::tokenizer::Tokenizer::domain(&dagmath::template::TemplateSet::builtin());
    let answer = tok.token_id("</answer>").unwrap();
    let g = read("generation_config.json");
    let stops: Vec<u64> = g["eos_token_id"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect();
    assert!(stops.contains(&(answer as u64)), "{g}");
    assert_eq!(
        (g["top_k"].as_u64(), g["top_p"].as_f64()),
        (Some(0), Some(1.0))
    );
    assert_eq!(g["temperature"].as_f64(), Some(0.7));
    // `dagmath logits` prints what examples/hf_check.py reads.
    let text = "<question> Define K as 2.";
    let o = dagmath(&["logits", "--model", s(&hf), "--text", text]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let n = tok.encode(text).unwrap().len();
    assert_eq!(v["input_ids"][0].as_array().unwrap().len(), n);
    assert_eq!(v["logits"][0].as_array().unwrap().len(), n);
    assert_eq!(
        v["logits"][0][0].as_array().unwrap().len(),
        tok.vocab_size()
    );
    // With transformers at hand, AutoTokenizer must encode like tokenizer.json.
    if let Ok(python) = std::env::var("DAGMATH_PYTHON") {
        let file = tmp.path().join("logits.json");
        std::fs::write(&file, &o.stdout).unwrap();
        let c = Command::new(python)
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/hf_check.py"))
            .args([s(&hf), s(&file)])
            .output()
            .unwrap();
        assert!(
            c.status.success(),
            "{}{}",
            String::from_utf8_lossy(&c.stdout),
            stderr(&c)
        );
    }
}

// Row 18 (the model side) and row 13's principle for the other commands.
#[cfg(feature = "train")]
#[test]
fn out_naming_a_file_exits_2_and_force_never_deletes_foreign_folders() {
    let tmp = tempfile::tempdir().unwrap();
    let hf = hf_folder(tmp.path(), |_| {});
    let file = tmp.path().join("plain.txt");
    std::fs::write(&file, "x").unwrap();
    assert_exit_2(
        &dagmath(&["export", "--checkpoint", s(&hf), "--out", s(&file)]),
        "is a file, not a folder",
    );
    assert_exit_2(
        &dagmath(&["audit", "--gold", s(&hf), "--self", "--out", s(&file)]),
        "is a file, not a folder",
    );
    let cfg = train_config(tmp.path(), &tmp.path().join("nodata"), s(&file), "", "", "");
    assert_exit_2(&train_in(tmp.path(), &cfg, &[]), "is a file, not a folder");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "x");
    // --force replaces an export, never a folder of someone else's files.
    let mine = tmp.path().join("mine");
    std::fs::create_dir(&mine).unwrap();
    std::fs::write(mine.join("notes.md"), "keep").unwrap();
    assert_exit_2(
        &dagmath(&[
            "export",
            "--checkpoint",
            s(&hf),
            "--out",
            s(&mine),
            "--force",
        ]),
        "did not write",
    );
    assert_eq!(
        std::fs::read_to_string(mine.join("notes.md")).unwrap(),
        "keep"
    );
    let out = tmp.path().join("exp");
    for _ in 0..2 {
        let o = dagmath(&[
            "export",
            "--checkpoint",
            s(&hf),
            "--out",
            s(&out),
            "--force",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
}

// Row 4's principle for `train rl`: rollouts per step are sized against memory, `out` checked.
#[cfg(feature = "train")]
#[test]
fn rl_rollouts_beyond_memory_and_empty_out_are_config_errors() {
    use dagmath::train::rl::RlConfig;
    let base = "out = \"o\"\n[data]\ndir = \"d\"\nsplits = [\"train\"]\n";
    RlConfig::from_toml(base).unwrap().validate().unwrap();
    let huge = format!("{base}[rl]\ngroup_size = 1000000000000\n");
    let e = RlConfig::from_toml(&huge)
        .unwrap()
        .validate()
        .unwrap_err()
        .to_string();
    assert!(e.contains("rl.group_size") && e.contains("memory"), "{e}");
    let e = RlConfig::from_toml(&base.replace("\"o\"", "\"\""))
        .unwrap()
        .validate()
        .unwrap_err()
        .to_string();
    assert!(e.contains("out = \"\""), "{e}");
}

// Row 4's principle for `eval`: samples and batch rows are sized before sampling.
#[cfg(feature = "train")]
#[test]
fn eval_sizes_beyond_memory_exit_2_before_sampling() {
    let tmp = tempfile::tempdir().unwrap();
    let hf = hf_folder(tmp.path(), |_| {});
    let data = tmp.path().join("data");
    quickset(&data, "20");
    let out = tmp.path().join("ev");
    let eval = |extra: &[&str]| {
        let mut args = vec![
            "eval",
            "--checkpoint",
            s(&hf),
            "--data",
            s(&data),
            "--splits",
            "train",
            "--out",
            s(&out),
        ];
        args.extend_from_slice(extra);
        dagmath(&args)
    };
    assert_exit_2(&eval(&["--batch-rows", "1000000000000"]), "--batch-rows");
    assert_exit_2(&eval(&["--samples", "100000000000000"]), "--samples");
    assert!(!out.exists(), "nothing written");
}

// Row 9: a cell whose later candidates cannot be composed (here a user template whose world is
// barely big enough for op 15; the probes hit it at op 60) used to stop part-way, leaving the
// run journal and an empty data/. Now nothing is left behind.
#[test]
fn generate_failing_part_way_on_bad_input_leaves_nothing_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let templates = tmp.path().join("templates");
    std::fs::create_dir(&templates).unwrap();
    std::fs::write(
        templates.join("tiny.toml"),
        "id = \"tiny\"\ndescription = \"a tiny world\"\ncategory = \"movies\"\n\n\
         [[location_groups]]\nname = \"festivals\"\nnames = [\"Taylor Movie Festival\", \"Verdi Movie Festival\"]\n\n\
         [[item_groups]]\nname = \"genres\"\nnames = [\"upbeat metropolis comedy\", \"solemn period drama\", \"futuristic sci-fi movie\"]\n",
    )
    .unwrap();
    let out = tmp.path().join("o");
    let run = || {
        dagmath(&[
            "generate",
            "--templates",
            s(&templates),
            "--template",
            "tiny",
            "--ops",
            "15",
            "--count",
            "3000",
            "--threads",
            "1",
            "--out",
            s(&out),
        ])
    };
    assert_exit_2(&run(), "op 15");
    assert!(
        !out.exists(),
        "a run refused part-way leaves nothing behind"
    );
    // In a folder the user made, the folder stays and is left empty.
    std::fs::create_dir(&out).unwrap();
    assert_exit_2(&run(), "op 15");
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 0);
}

/// Replace `from` with `to` in the file at `path`.
#[cfg(feature = "train")]
fn replace_in(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap().replace(from, to);
    std::fs::write(path, text).unwrap();
}
