//! The `dagmath` binary: help, quick flags, bad input (exit code 2, a message naming the value,
//! nothing written), and resume after a real kill.

use std::path::Path;
use std::process::{Command, Output};

pub fn dagmath(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dagmath"))
        .args(args)
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn assert_usage_error(o: &Output, needle: &str) {
    assert_eq!(o.status.code(), Some(2), "stderr: {}", stderr(o));
    assert!(
        stderr(o).contains(needle),
        "expected `{needle}` in: {}",
        stderr(o)
    );
}

#[test]
fn help_for_every_command() {
    for args in [
        &["--help"][..],
        &["generate", "--help"],
        &["inspect", "--help"],
        &["audit", "--help"],
        #[cfg(feature = "train")]
        &["eval", "--help"],
        #[cfg(feature = "train")]
        &["select", "--help"],
        #[cfg(feature = "train")]
        &["train", "rl", "--help"],
        #[cfg(feature = "train")]
        &["report", "--help"],
    ] {
        let o = dagmath(args);
        assert!(o.status.success());
        assert!(String::from_utf8_lossy(&o.stdout).contains("Usage"));
    }
}

#[test]
fn bad_inputs_exit_2_name_the_value_and_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let o = out.to_str().unwrap();
    assert_usage_error(
        &dagmath(&[
            "generate",
            "--ops",
            "2-3",
            "--count",
            "5",
            "--template",
            "moon",
            "--out",
            o,
        ]),
        "moon",
    );
    assert_usage_error(
        &dagmath(&["generate", "--ops", "0-3", "--count", "5", "--out", o]),
        "0-3",
    );
    assert_usage_error(
        &dagmath(&[
            "generate", "--ops", "2-3", "--count", "5", "--mode", "up", "--out", o,
        ]),
        "`up`",
    );
    let bad = tmp.path().join("bad.toml");
    std::fs::write(&bad, "seed = 1\n[[splits]\nname = 'x'\n").unwrap();
    assert_usage_error(
        &dagmath(&["generate", "--recipe", bad.to_str().unwrap(), "--out", o]),
        "bad.toml",
    );
    std::fs::write(
        &bad,
        "seed = 1\n[[splits]]\nname = 'train'\nsize = 3\nops = '2-99'\n",
    )
    .unwrap();
    assert_usage_error(
        &dagmath(&["generate", "--recipe", bad.to_str().unwrap(), "--out", o]),
        "splits[0].ops",
    );
    let missing = tmp.path().join("nope.toml");
    assert_usage_error(
        &dagmath(&[
            "generate",
            "--recipe",
            missing.to_str().unwrap(),
            "--out",
            o,
        ]),
        "nope.toml",
    );
    assert_usage_error(&dagmath(&["generate", "--out", o]), "--recipe");
    assert!(!out.exists(), "nothing may be written on bad input");

    // An existing non-empty directory is refused and left alone.
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("keep.txt"), "mine").unwrap();
    assert_usage_error(
        &dagmath(&["generate", "--ops", "2-3", "--count", "5", "--out", o]),
        "not empty",
    );
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 1);
    // --resume on something that is not a dagmath run.
    assert_usage_error(
        &dagmath(&[
            "generate", "--ops", "2-3", "--count", "5", "--out", o, "--resume",
        ]),
        "nothing to resume",
    );
    // A bad template directory names the file and key.
    let tdir = tmp.path().join("templates");
    std::fs::create_dir(&tdir).unwrap();
    std::fs::write(tdir.join("cars.toml"), "id = 'cars'\ncategory = 'cars'\n[[location_groups]]\nname = 'a'\nnames = ['Alpha', 'Alpha']\n[[item_groups]]\nname = 'b'\nnames = ['red car', 'blue car']\n").unwrap();
    let o2 = tmp.path().join("o2");
    assert_usage_error(
        &dagmath(&[
            "generate",
            "--templates",
            tdir.to_str().unwrap(),
            "--ops",
            "2",
            "--count",
            "1",
            "--out",
            o2.to_str().unwrap(),
        ]),
        "location_groups[0].names[1]",
    );
    assert_usage_error(
        &dagmath(&["inspect", tmp.path().to_str().unwrap()]),
        "manifest.json",
    );
}

#[test]
fn user_template_quick_set_and_inspect() {
    let tmp = tempfile::tempdir().unwrap();
    let tdir = tmp.path().join("templates");
    std::fs::create_dir(&tdir).unwrap();
    std::fs::write(
        tdir.join("garage.toml"),
        "id = 'garage'\ncategory = 'cars'\n[[location_groups]]\nname = 'towns'\nnames = ['Alpha Town', 'Beta Town', 'Gamma Town', 'Delta Town']\n\
         [[item_groups]]\nname = 'cars'\nnames = ['red car', 'blue car', 'green car', 'black car']\n",
    )
    .unwrap();
    let out = tmp.path().join("g");
    let o = dagmath(&[
        "generate",
        "--templates",
        tdir.to_str().unwrap(),
        "--template",
        "garage,zoo",
        "--ops",
        "3-12",
        "--count",
        "50",
        "--mode",
        "mixed",
        "--split",
        "ood",
        "--held-out",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let i = dagmath(&["inspect", out.to_str().unwrap()]);
    assert!(i.status.success(), "{}", stderr(&i));
    let text = String::from_utf8_lossy(&i.stdout);
    assert!(
        text.contains("split ood (50 rows")
            && text.contains("garage:2")
            && text.contains("zoo:2")
            && text.contains("solution:"),
        "{text}"
    );
}

#[test]
fn killed_run_resumes_to_the_same_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let recipe = tmp.path().join("r.toml");
    std::fs::write(
        &recipe,
        super::dataset::RECIPE.replace("size = 400", "size = 6000"),
    )
    .unwrap();
    let r = recipe.to_str().unwrap();
    let full = tmp.path().join("full");
    assert!(
        dagmath(&["generate", "--recipe", r, "--out", full.to_str().unwrap()])
            .status
            .success()
    );
    let cut = tmp.path().join("cut");
    // Kill at some point (whenever it lands, the resumed result must be identical).
    let mut child = Command::new(env!("CARGO_BIN_EXE_dagmath"))
        .args([
            "generate",
            "--recipe",
            r,
            "--out",
            cut.to_str().unwrap(),
            "--threads",
            "1",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(150));
    let _ = child.kill();
    let _ = child.wait();
    let args = [
        "generate",
        "--recipe",
        r,
        "--out",
        cut.to_str().unwrap(),
        "--resume",
    ];
    let o = if Path::new(&cut).join("manifest.json").exists()
        || Path::new(&cut).join(".dagmath-run.json").exists()
    {
        dagmath(&args)
    } else {
        // Killed before anything was written: a fresh run is the resume.
        dagmath(&args[..5])
    };
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        super::dataset::snapshot(&cut),
        super::dataset::snapshot(&full)
    );
}

#[test]
fn force_replaces_a_dataset_and_resume_of_another_recipe_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("d");
    let o = out.to_str().unwrap();
    let gen = |extra: &[&str], ops: &str| {
        let mut args = vec!["generate", "--ops", ops, "--count", "30", "--out", o];
        args.extend_from_slice(extra);
        dagmath(&args)
    };
    assert!(gen(&[], "2-4").status.success());
    let first = super::dataset::snapshot(&out);
    assert_usage_error(&gen(&[], "2-4"), "not empty");
    assert_usage_error(&gen(&["--resume"], "5-6"), "different recipe");
    assert!(gen(&["--force"], "5-6").status.success());
    assert_ne!(super::dataset::snapshot(&out), first);
    assert!(gen(&["--force"], "2-4").status.success());
    assert_eq!(super::dataset::snapshot(&out), first);
}

#[test]
fn generate_quick_flags_beside_a_recipe_are_refused_not_ignored() {
    // `--distractors none` with `--recipe` used to be dropped silently: the dataset kept the
    // recipe's reference noise.
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    for flag in [
        &["--distractors", "none"][..],
        &["--template", "school"],
        &["--mode", "reverse"],
        &["--split", "x"],
        &["--held-out"],
        &["--shard-size", "10"],
    ] {
        let mut args = vec![
            "generate",
            "--recipe",
            "datasets/quickstart.toml",
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(flag);
        let o = dagmath(&args);
        assert_usage_error(&o, flag[0]);
        assert!(!out.exists(), "{flag:?} wrote {}", out.display());
    }
}
