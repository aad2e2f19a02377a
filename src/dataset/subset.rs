//! A dataset made of chosen rows of another (`dagmath select` keeps the problems at a model's
//! edge of competence): the kept rows of each split, copied unchanged into one shard per split,
//! and a manifest that records where they came from. The manifest is written last, so a killed
//! run never leaves something that opens as a complete dataset.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use arrow::array::{Array, AsArray, BooleanArray, RecordBatch};
use arrow::compute::{concat_batches, filter_record_batch};
use serde::Serialize;

use super::reader::{read_rows, Dataset, ReadError};
use super::schema::schema;
use super::shard::{
    read_batches, shard_file_name, write_atomic, ShardError, ShardMeta, ShardWriter,
};

#[derive(Debug, Serialize)]
struct SubsetManifest<'a> {
    dagmath_version: &'a str,
    recipe_sha256: &'a str,
    seed: u64,
    derived_from: String,
    selection: &'a serde_json::Value,
    splits: Vec<SubsetSplit>,
}

#[derive(Debug, Serialize)]
struct SubsetSplit {
    name: String,
    held_out: bool,
    rows: u64,
    shards: Vec<SubsetShard>,
    op_hist: BTreeMap<u32, u64>,
    template_hist: BTreeMap<String, u64>,
    mode_hist: BTreeMap<String, u64>,
}

#[derive(Debug, Serialize)]
struct SubsetShard {
    file: String,
    rows: u64,
    bytes: u64,
    sha256: String,
}

/// Writes the rows of `src`'s `splits` whose id is in `keep` as a dataset at `out` (an empty
/// or new folder); `selection` is recorded in the manifest. Returns rows kept per split.
pub fn write_subset(
    src: &Dataset,
    splits: &[String],
    keep: &HashSet<String>,
    out: &Path,
    selection: &serde_json::Value,
) -> Result<Vec<(String, u64)>, ReadError> {
    std::fs::create_dir_all(out).map_err(|e| ShardError::Io {
        path: out.to_path_buf(),
        source: e,
    })?;
    let mut entries = Vec::new();
    let mut counts = Vec::new();
    for split in splits {
        let Some(m) = src.manifest.splits.iter().find(|s| &s.name == split) else {
            continue;
        };
        let mut parts = Vec::new();
        for path in src.shard_paths(split) {
            for b in read_batches(&path)? {
                let ids = b
                    .column_by_name("id")
                    .and_then(|c| c.as_string_opt::<i32>())
                    .ok_or_else(|| ReadError::Column {
                        path: path.clone(),
                        column: "id".into(),
                        problem: "missing or not a string column".into(),
                    })?;
                let mask: BooleanArray = (0..ids.len())
                    .map(|i| Some(keep.contains(ids.value(i))))
                    .collect();
                let kept = filter_record_batch(&b, &mask).map_err(|e| ReadError::Column {
                    path: path.clone(),
                    column: "id".into(),
                    problem: e.to_string(),
                })?;
                if kept.num_rows() > 0 {
                    parts.push(kept);
                }
            }
        }
        let rows: u64 = parts.iter().map(|b| b.num_rows() as u64).sum();
        counts.push((split.clone(), rows));
        if rows == 0 {
            continue;
        }
        let batch: RecordBatch =
            concat_batches(&schema(), &parts).map_err(|e| ReadError::Column {
                path: src.root.clone(),
                column: "*".into(),
                problem: e.to_string(),
            })?;
        let file = shard_file_name(split, 0, 1);
        let path = out.join(&file);
        let meta = ShardMeta {
            recipe_sha256: src.manifest.recipe_sha256.clone(),
            seed: src.manifest.seed,
            split: split.clone(),
            shard: 0,
            n_shards: 1,
        };
        let mut w = ShardWriter::create(&path, &meta, 2048)?;
        w.write(&batch)?;
        let info = w.finish()?;
        let (mut op_hist, mut template_hist, mut mode_hist) =
            (BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
        for r in read_rows(&path)? {
            *op_hist.entry(r.op).or_insert(0) += 1;
            *template_hist.entry(r.template).or_insert(0) += 1;
            *mode_hist.entry(r.mode.as_str().to_string()).or_insert(0) += 1;
        }
        entries.push(SubsetSplit {
            name: split.clone(),
            held_out: m.held_out,
            rows,
            shards: vec![SubsetShard {
                file,
                rows: info.rows,
                bytes: info.bytes,
                sha256: info.sha256,
            }],
            op_hist,
            template_hist,
            mode_hist,
        });
    }
    let manifest = SubsetManifest {
        dagmath_version: env!("CARGO_PKG_VERSION"),
        recipe_sha256: &src.manifest.recipe_sha256,
        seed: src.manifest.seed,
        derived_from: src.root.display().to_string(),
        selection,
        splits: entries,
    };
    let json = serde_json::to_string_pretty(&manifest).expect("manifest serialises");
    write_atomic(&out.join("manifest.json"), format!("{json}\n").as_bytes())?;
    Ok(counts)
}
