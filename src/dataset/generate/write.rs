//! Writing a split's shards. Rows are selected in fixed-size chunks and rendered in fixed-size
//! parts (both independent of the thread count), so memory stays bounded whatever the shard
//! size and the Parquet bytes do not depend on threads. A writer thread encodes and compresses
//! the parts while the pool prepares the next chunk. A shard appears by rename when complete
//! and is then recorded in the run journal; on `--resume` a recorded shard is checked and its
//! rows only replayed (rendered and counted, not encoded).

use arrow::array::RecordBatch;
use rayon::prelude::*;

use super::output::Prepared;
use super::plan::row_tokens;
use super::select::Selection;
use super::{GenerateError, Run};
use crate::composer::{Problem, ProblemId};
use crate::dataset::bloom::Bloom;
use crate::dataset::manifest::{Fingerprints, ShardEntry, SplitManifest};
use crate::dataset::recipe::SplitSpec;
use crate::dataset::schema::BatchBuilder;
use crate::dataset::shard::{
    file_sha256, read_meta, shard_file_name, ShardError, ShardInfo, ShardMeta, ShardWriter,
};
use crate::render::Rendered;
use crate::template::Template;
use crate::tokenizer::{Tokenizer, TokenizerError};
use crate::trace::TraceFormat;

/// Rows selected, rendered and written per step (fixed, so output does not depend on threads).
const CHUNK_ROWS: usize = 1024;
/// Rows rendered and encoded as one Arrow batch (fixed, for the same reason).
const PART_ROWS: usize = 256;
/// Batches the writer thread may have queued (bounds memory when encoding is the slower side).
const WRITER_QUEUE: usize = 8;

/// A split being written: its selection, its manifest entry so far and the tokens written
/// per cell (which sizing predicted, for token budgets).
pub(super) struct SplitProgress<'t> {
    /// The split's index in the recipe.
    pub(super) index: usize,
    pub(super) spec: &'t SplitSpec,
    pub(super) rows: u64,
    pub(super) selection: Selection<'t>,
    pub(super) manifest: SplitManifest,
    pub(super) cell_tokens: Vec<u64>,
}

/// Select, render and write shard `shard` of the split (or, resuming, check the one on disk
/// and replay its rows), then record it in the journal and the split's manifest.
pub(super) fn write_shard(
    run: &Run,
    prepared: &mut Prepared,
    sp: &mut SplitProgress,
    shard: usize,
    bloom: &mut Bloom,
    fingerprints: &mut Fingerprints,
) -> Result<(), GenerateError> {
    let recipe = run.recipe;
    let n_shards = sp.rows.div_ceil(recipe.shard_size) as usize;
    let lo = shard as u64 * recipe.shard_size;
    let rows = (sp.rows - lo).min(recipe.shard_size) as usize;
    let file = shard_file_name(&sp.spec.name, shard, n_shards);
    let path = prepared.data.join(&file);
    let meta = ShardMeta {
        recipe_sha256: run.hash.clone(),
        seed: recipe.seed,
        split: sp.spec.name.clone(),
        shard,
        n_shards,
    };
    // A shard the journal does not record (killed between its rename and the journal's
    // update) is simply written again: the bytes are deterministic.
    let key = format!("data/{file}");
    let done = match prepared.journal.shards.get(&key).cloned() {
        Some(expected) if run.opts.resume && path.exists() => {
            Some(check_done(run, &path, &key, expected, &meta, rows)?)
        }
        _ => None,
    };
    let writer = match done {
        Some(_) => None,
        None => Some(ShardWriter::create(&path, &meta, recipe.row_group_size)?),
    };
    let (written, shard_tokens) = select_and_write(run, sp, rows, writer, bloom, fingerprints)?;
    let (bytes, sha256) = match (written, done) {
        (Some(info), _) => (info.bytes, info.sha256),
        (None, Some(d)) => d,
        (None, None) => unreachable!("a shard is either written or already done"),
    };
    sp.manifest.tokens += shard_tokens;
    prepared.journal.shards.insert(key, sha256.clone());
    prepared.journal.write(&run.opts.out)?;
    sp.manifest.shards.push(ShardEntry {
        file: format!("data/{file}"),
        rows: rows as u64,
        tokens: shard_tokens,
        bytes,
        sha256,
    });
    Ok(())
}

/// A shard already on disk (resume): its bytes must match the journal and its footer this
/// run. Returns its size and SHA-256.
fn check_done(
    run: &Run,
    path: &std::path::Path,
    key: &str,
    expected: String,
    meta: &ShardMeta,
    rows: usize,
) -> Result<(u64, String), GenerateError> {
    let (bytes, found) = file_sha256(path)?;
    if found != expected {
        return Err(GenerateError::Corrupted {
            path: run.opts.out.clone(),
            file: key.to_string(),
            found,
            expected,
        });
    }
    let (m, n) = read_meta(path)?;
    if &m != meta || n != rows as u64 {
        return Err(GenerateError::OtherRecipe {
            path: path.to_path_buf(),
            found: m.recipe_sha256,
            expected: run.hash.clone(),
        });
    }
    Ok((bytes, found))
}

/// Select `rows` rows chunk by chunk, render and count them and, with a `writer`, encode them
/// on a writer thread. Returns the written shard (if any) and its tokens.
fn select_and_write(
    run: &Run,
    sp: &mut SplitProgress,
    rows: usize,
    writer: Option<ShardWriter>,
    bloom: &mut Bloom,
    fingerprints: &mut Fingerprints,
) -> Result<(Option<ShardInfo>, u64), GenerateError> {
    let encode = writer.is_some();
    let mut shard_tokens = 0u64;
    let written = std::thread::scope(|sc| -> Result<Option<ShardInfo>, GenerateError> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<ToWriter>(WRITER_QUEUE);
        let handle = writer.map(|w| sc.spawn(move || encode_shard(w, rx)));
        let mut left = rows;
        while left > 0 {
            let n = left.min(CHUNK_ROWS);
            left -= n;
            let chunk =
                sp.selection
                    .next_chunk(n, sp.index, bloom, &mut sp.manifest, fingerprints)?;
            let parts: Vec<(Option<RecordBatch>, Vec<u64>)> = chunk
                .rows
                .par_chunks(PART_ROWS)
                .map(|part| {
                    let format = run.recipe.trace_format;
                    prepare_part(part, &sp.spec.name, &run.tok, format, encode)
                })
                .collect::<Result<_, TokenizerError>>()?;
            let mut row = 0;
            for (batch, tokens) in parts {
                for n in tokens {
                    sp.cell_tokens[chunk.cells[row] as usize] += n;
                    shard_tokens += n;
                    row += 1;
                }
                // A closed channel means the writer failed: its join says why.
                if let Some(b) = batch {
                    if tx.send(ToWriter::Batch(b)).is_err() {
                        break;
                    }
                }
            }
            run.obs.rows_done(n as u64);
        }
        let _ = tx.send(ToWriter::Finish);
        drop(tx);
        match handle {
            Some(h) => Ok(Some(h.join().expect("the shard writer does not panic")?)),
            None => Ok(None),
        }
    })?;
    Ok((written, shard_tokens))
}

/// What the selecting loop sends the shard's writer thread.
enum ToWriter {
    Batch(RecordBatch),
    /// Every row was sent: close the shard and make it visible.
    Finish,
}

/// The writer thread of one shard: encode the batches in order, and make the shard visible
/// only once `Finish` arrives (a channel closed early leaves the temp file, removed on the
/// next run).
fn encode_shard(
    mut w: ShardWriter,
    rx: std::sync::mpsc::Receiver<ToWriter>,
) -> Result<ShardInfo, ShardError> {
    for msg in rx {
        match msg {
            ToWriter::Batch(b) => w.write(&b)?,
            ToWriter::Finish => return w.finish(),
        }
    }
    Err(w.abandon())
}

/// Render (traces in `format`) and count one part of a chunk and, if `encode`, build its
/// Arrow batch.
fn prepare_part(
    part: &[(&Template, Problem, ProblemId)],
    split: &str,
    tok: &Tokenizer,
    format: TraceFormat,
    encode: bool,
) -> Result<(Option<RecordBatch>, Vec<u64>), TokenizerError> {
    let mut r = Rendered::in_format(format);
    let mut b = BatchBuilder::with_rows(if encode { part.len() } else { 0 });
    let mut tokens = Vec::with_capacity(part.len());
    for (t, p, id) in part {
        r.fill(t, p);
        tokens.push(row_tokens(tok, &r)?);
        if encode {
            b.push(split, t, id, p, &r);
        }
    }
    Ok((encode.then(|| b.finish()), tokens))
}
