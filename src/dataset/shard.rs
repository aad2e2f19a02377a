//! Parquet shards: written to a hidden temp file, fsynced, then renamed, so a shard is visible
//! only when complete. zstd compression, bounded row groups, and footer key-value metadata
//! (schema version, recipe hash, seed, split, shard index) on every file.

use std::fs::File;
use std::io::{BufWriter, Read};
use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReaderBuilder, RowSelection, RowSelector};
use parquet::arrow::{ArrowWriter, ProjectionMask};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use sha2::{Digest, Sha256};

use super::schema::{schema, SCHEMA_VERSION, TEXT_COLUMNS};

/// Errors of shard I/O, each naming the file.
#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Parquet {
        path: PathBuf,
        source: parquet::errors::ParquetError,
    },
    #[error("{path}: not a dagmath shard: {problem}")]
    Foreign { path: PathBuf, problem: String },
}

/// Footer metadata of one shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardMeta {
    pub recipe_sha256: String,
    pub seed: u64,
    pub split: String,
    pub shard: usize,
    pub n_shards: usize,
}

impl ShardMeta {
    fn key_values(&self) -> Vec<KeyValue> {
        let kv = |k: &str, v: String| KeyValue::new(format!("dagmath.{k}"), v);
        vec![
            kv("schema_version", SCHEMA_VERSION.to_string()),
            kv("version", env!("CARGO_PKG_VERSION").to_string()),
            kv("recipe_sha256", self.recipe_sha256.clone()),
            kv("seed", self.seed.to_string()),
            kv("split", self.split.clone()),
            kv("shard", format!("{}/{}", self.shard, self.n_shards)),
        ]
    }
}

/// What a finished shard looks like on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardInfo {
    pub rows: u64,
    pub bytes: u64,
    pub sha256: String,
}

/// `{split}-{i:05}-of-{n:05}.parquet`
pub fn shard_file_name(split: &str, i: usize, n: usize) -> String {
    format!("{split}-{i:05}-of-{n:05}.parquet")
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ShardError + '_ {
    move |source| ShardError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn pq(path: &Path) -> impl FnOnce(parquet::errors::ParquetError) -> ShardError + '_ {
    move |source| ShardError::Parquet {
        path: path.to_path_buf(),
        source,
    }
}

/// zstd level of shards: level 1 compresses the text columns 1.6x faster than level 3 for
/// 3% more bytes (`bench_generate` measures both).
pub const SHARD_ZSTD_LEVEL: i32 = 1;

/// Writer properties: zstd, dictionaries and statistics only for the short columns.
fn properties(meta: &ShardMeta, row_group_size: usize) -> WriterProperties {
    let mut b = WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(SHARD_ZSTD_LEVEL).expect("valid level"),
        ))
        .set_max_row_group_row_count(Some(row_group_size))
        .set_key_value_metadata(Some(meta.key_values()));
    for c in TEXT_COLUMNS {
        // Long free text: dictionaries and min/max statistics cost time and help no reader.
        b = b
            .set_column_dictionary_enabled(ColumnPath::from(c), false)
            .set_column_statistics_enabled(ColumnPath::from(c), EnabledStatistics::None);
    }
    b.build()
}

/// A Parquet writer on the temporary sibling of `path` (`.NAME.tmp`), removed again if the
/// writer cannot be made.
fn open_tmp(
    path: &Path,
    schema: arrow::datatypes::SchemaRef,
    props: WriterProperties,
) -> Result<(PathBuf, ArrowWriter<BufWriter<File>>), ShardError> {
    let name = path
        .file_name()
        .expect("path has a file name")
        .to_string_lossy();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    let file = File::create(&tmp).map_err(io(&tmp))?;
    match ArrowWriter::try_new(BufWriter::new(file), schema, Some(props)) {
        Ok(w) => Ok((tmp, w)),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(pq(&tmp)(e))
        }
    }
}

/// Close the writer on `tmp`, fsync it and rename it to `path`.
fn commit(w: ArrowWriter<BufWriter<File>>, tmp: &Path, path: &Path) -> Result<(), ShardError> {
    let buf = w.into_inner().map_err(pq(tmp))?;
    let file = buf.into_inner().map_err(|e| ShardError::Io {
        path: tmp.to_path_buf(),
        source: e.into_error(),
    })?;
    file.sync_all().map_err(io(tmp))?;
    drop(file);
    std::fs::rename(tmp, path).map_err(io(path))
}

/// Writes one shard; `finish` makes it visible.
pub struct ShardWriter {
    tmp: PathBuf,
    path: PathBuf,
    writer: ArrowWriter<BufWriter<File>>,
    rows: u64,
}

impl ShardWriter {
    pub fn create(
        path: &Path,
        meta: &ShardMeta,
        row_group_size: usize,
    ) -> Result<ShardWriter, ShardError> {
        let (tmp, writer) = open_tmp(path, schema(), properties(meta, row_group_size))?;
        Ok(ShardWriter {
            tmp,
            path: path.to_path_buf(),
            writer,
            rows: 0,
        })
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), ShardError> {
        self.rows += batch.num_rows() as u64;
        self.writer.write(batch).map_err(pq(&self.tmp))
    }

    /// Give up on the shard: its temp file is removed and nothing becomes visible.
    pub fn abandon(self) -> ShardError {
        let ShardWriter { tmp, writer, .. } = self;
        drop(writer);
        let _ = std::fs::remove_file(&tmp);
        ShardError::Io {
            path: tmp,
            source: std::io::Error::other("shard abandoned before its last row"),
        }
    }

    /// Close, fsync and rename into place; returns size and checksum.
    pub fn finish(self) -> Result<ShardInfo, ShardError> {
        commit(self.writer, &self.tmp, &self.path)?;
        let (bytes, sha256) = file_sha256(&self.path)?;
        Ok(ShardInfo {
            rows: self.rows,
            bytes,
            sha256,
        })
    }
}

/// Size and SHA-256 (hex) of a file.
pub fn file_sha256(path: &Path) -> Result<(u64, String), ShardError> {
    let mut f = File::open(path).map_err(io(path))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf).map_err(io(path))?;
        if k == 0 {
            break;
        }
        n += k as u64;
        h.update(&buf[..k]);
    }
    Ok((n, h.finalize().iter().map(|b| format!("{b:02x}")).collect()))
}

/// Read a shard's footer metadata and row count, checking it is one of ours.
pub fn read_meta(path: &Path) -> Result<(ShardMeta, u64), ShardError> {
    let file = File::open(path).map_err(io(path))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(pq(path))?;
    let md = builder.metadata().file_metadata();
    let foreign = |problem: &str| ShardError::Foreign {
        path: path.to_path_buf(),
        problem: problem.into(),
    };
    let kv = md
        .key_value_metadata()
        .ok_or_else(|| foreign("no dagmath footer metadata"))?;
    let get = |k: &str| {
        kv.iter()
            .find(|e| e.key == format!("dagmath.{k}"))
            .and_then(|e| e.value.clone())
            .ok_or_else(|| foreign(&format!("footer key dagmath.{k} missing")))
    };
    let version = get("schema_version")?;
    if version != SCHEMA_VERSION.to_string() {
        return Err(foreign(&format!(
            "schema version {version}, this dagmath reads {SCHEMA_VERSION}"
        )));
    }
    let shard = get("shard")?;
    let (i, n) = shard
        .split_once('/')
        .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
        .ok_or_else(|| foreign(&format!("bad dagmath.shard `{shard}`")))?;
    let meta = ShardMeta {
        recipe_sha256: get("recipe_sha256")?,
        seed: get("seed")?
            .parse()
            .map_err(|_| foreign("bad dagmath.seed"))?,
        split: get("split")?,
        shard: i,
        n_shards: n,
    };
    Ok((meta, md.num_rows() as u64))
}

/// Read every batch of a shard.
pub fn read_batches(path: &Path) -> Result<Vec<RecordBatch>, ShardError> {
    read_batch_stream(path)?.collect()
}

/// Stream the batches of `path`, 8192 rows at a time.
pub fn read_batch_stream(
    path: &Path,
) -> Result<impl Iterator<Item = Result<RecordBatch, ShardError>> + Send + 'static, ShardError> {
    let file = File::open(path).map_err(io(path))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(pq(path))?
        .with_batch_size(8192)
        .build()
        .map_err(pq(path))?;
    let path = path.to_path_buf();
    Ok(reader.map(move |b| {
        b.map_err(|e| ShardError::Parquet {
            path: path.clone(),
            source: e.into(),
        })
    }))
}

/// Stream the batches of the named columns of `path` (the other columns are never
/// decompressed), 8192 rows at a time. A name the file lacks is an error naming it.
pub fn read_columns<'a>(
    path: &'a Path,
    names: &[&str],
) -> Result<impl Iterator<Item = Result<RecordBatch, ShardError>> + 'a, ShardError> {
    read_columns_of(path, names, None)
}

/// The number of rows of each row group of `path` (read from the footer alone).
pub fn row_group_rows(path: &Path) -> Result<Vec<usize>, ShardError> {
    let file = File::open(path).map_err(io(path))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(pq(path))?;
    Ok(builder
        .metadata()
        .row_groups()
        .iter()
        .map(|g| g.num_rows() as usize)
        .collect())
}

/// [`read_columns`] of one row group only (`Some(i)`), or of all (`None`).
pub fn read_columns_of<'a>(
    path: &'a Path,
    names: &[&str],
    row_group: Option<usize>,
) -> Result<impl Iterator<Item = Result<RecordBatch, ShardError>> + 'a, ShardError> {
    let file = File::open(path).map_err(io(path))?;
    let mut builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(pq(path))?;
    if let Some(g) = row_group {
        builder = builder.with_row_groups(vec![g]);
    }
    project(path, builder, names, 8192)
}

/// [`read_columns`] of rows `from .. from + take` only (the pages before them are skipped,
/// not decoded), in batches of at most `take` rows: a window of a shard in bounded memory.
pub fn read_column_rows<'a>(
    path: &'a Path,
    names: &[&str],
    from: usize,
    take: usize,
) -> Result<impl Iterator<Item = Result<RecordBatch, ShardError>> + 'a, ShardError> {
    let file = File::open(path).map_err(io(path))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(pq(path))?
        .with_row_selection(RowSelection::from(vec![
            RowSelector::skip(from),
            RowSelector::select(take),
        ]));
    project(path, builder, names, take.max(1))
}

/// The reader of `builder` over the named columns only, `batch_size` rows a batch. A name the
/// file lacks is an error naming it.
fn project<'a>(
    path: &'a Path,
    builder: ParquetRecordBatchReaderBuilder<File>,
    names: &[&str],
    batch_size: usize,
) -> Result<impl Iterator<Item = Result<RecordBatch, ShardError>> + 'a, ShardError> {
    let mut roots = Vec::with_capacity(names.len());
    for n in names {
        let i = builder
            .schema()
            .index_of(n)
            .map_err(|_| ShardError::Parquet {
                path: path.to_path_buf(),
                source: parquet::errors::ParquetError::General(format!("no column `{n}`")),
            })?;
        roots.push(i);
    }
    let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
    let reader = builder
        .with_projection(mask)
        .with_batch_size(batch_size)
        .build()
        .map_err(pq(path))?;
    Ok(reader.map(move |b| {
        b.map_err(|e| ShardError::Parquet {
            path: path.to_path_buf(),
            source: e.into(),
        })
    }))
}

/// Write one table to `path` as zstd Parquet, atomically (temp file, fsync, rename).
pub fn write_table_atomic(path: &Path, batch: &RecordBatch) -> Result<(), ShardError> {
    let mut w = TableWriter::create(path, batch.schema())?;
    w.write(batch)?;
    w.finish()
}

/// A zstd Parquet table written batch by batch (one row group per batch at most), made
/// visible at `path` only by [`TableWriter::finish`]: until then it is a temporary sibling,
/// removed if the writer is dropped unfinished.
pub struct TableWriter {
    path: PathBuf,
    tmp: PathBuf,
    w: Option<ArrowWriter<BufWriter<File>>>,
}

impl TableWriter {
    pub fn create(path: &Path, schema: arrow::datatypes::SchemaRef) -> Result<Self, ShardError> {
        let (tmp, w) = open_tmp(path, schema, table_properties())?;
        Ok(TableWriter {
            path: path.to_path_buf(),
            tmp,
            w: Some(w),
        })
    }

    /// Append `batch` and close its row group, so memory stays at one batch.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), ShardError> {
        let w = self.w.as_mut().expect("not finished");
        w.write(batch).map_err(pq(&self.tmp))?;
        w.flush().map_err(pq(&self.tmp))
    }

    /// Close, fsync and rename into place.
    pub fn finish(mut self) -> Result<(), ShardError> {
        let w = self.w.take().expect("not finished");
        commit(w, &self.tmp, &self.path)
    }
}

impl Drop for TableWriter {
    fn drop(&mut self) {
        if self.w.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Writer properties of a [`TableWriter`]: zstd level 3.
fn table_properties() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(3).expect("valid level"),
        ))
        .build()
}

/// One batch as the bytes of a Parquet table written like a [`TableWriter`]'s, for the
/// formats' round-trip tests in memory.
#[cfg(test)]
pub(crate) fn parquet_bytes(batch: &RecordBatch) -> Vec<u8> {
    let mut out = Vec::new();
    let mut w = ArrowWriter::try_new(&mut out, batch.schema(), Some(table_properties())).unwrap();
    w.write(batch).unwrap();
    w.close().unwrap();
    out
}

/// The batches of a Parquet table held in memory.
#[cfg(test)]
pub(crate) fn batches_of_bytes(bytes: Vec<u8>) -> Vec<RecordBatch> {
    ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes))
        .unwrap()
        .build()
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Write bytes to `path` atomically (temp file in the same directory, fsync, rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ShardError> {
    crate::fs::write_atomic(path, bytes).map_err(|(path, source)| ShardError::Io { path, source })
}

/// Write `batch` to Parquet in memory and decode every batch read back with `decode`: the
/// tables' round-trip tests.
#[cfg(test)]
pub(crate) fn round_trip<T>(
    batch: &RecordBatch,
    decode: impl Fn(&Path, &RecordBatch) -> Result<Vec<T>, super::reader::ReadError>,
) -> Vec<T> {
    let back = batches_of_bytes(parquet_bytes(batch));
    assert_eq!(back[0].schema(), batch.schema());
    back.iter()
        .flat_map(|b| decode(Path::new("memory"), b).unwrap())
        .collect()
}
