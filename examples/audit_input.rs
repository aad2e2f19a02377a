//! The input of the end-to-end audit benchmark: one prediction per gold problem of a dagmath
//! dataset, written as predictions JSONL in the dataset's order. Three in four are the gold
//! completion, every fourth has its answer changed (so a quarter of the verdicts fail).
//!
//! ```sh
//! dagmath generate --ops 10 --count 200000 --mode mixed --out /tmp/gold
//! cargo run --release --example audit_input -- /tmp/gold /tmp/preds.jsonl
//! /usr/bin/time -v dagmath audit --gold /tmp/gold --predictions /tmp/preds.jsonl --out /tmp/audit
//! ```

use std::io::Write;
use std::path::Path;

use dagmath::dataset::reader::{read_rows, Dataset};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [gold, out] = args.as_slice() else {
        return Err("usage: audit_input GOLD_DIR OUT.jsonl".into());
    };
    let ds = Dataset::open(Path::new(gold))?;
    let mut w = std::io::BufWriter::new(std::fs::File::create(out)?);
    let mut n = 0usize;
    for s in &ds.manifest.splits {
        for path in ds.shard_paths(&s.name) {
            for r in read_rows(&path)? {
                let completion = if n % 4 == 3 {
                    r.completion.replace(
                        &format!("<answer> {} </answer>", r.answer),
                        &format!("<answer> {} </answer>", r.answer + 1),
                    )
                } else {
                    r.completion
                };
                let rec = serde_json::json!({"id": r.id, "completion": completion});
                writeln!(w, "{rec}")?;
                n += 1;
            }
        }
    }
    w.flush()?;
    println!("wrote {n} predictions to {out}");
    Ok(())
}
