//! The output folder of a run: checked (empty, or a dataset of the same recipe to resume or
//! replace, never someone else's files), locked for the whole run, cleared of a killed run's
//! temp files, and journalled (`.dagmath-run.json`: the SHA-256 of every finished shard) so
//! `--resume` trusts only the shards whose bytes it recorded.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::GenerateError;
use crate::dataset::shard::{write_atomic, ShardError};

/// Marker file present while a run is in progress (removed when the dataset is complete).
pub const RUN_FILE: &str = ".dagmath-run.json";

/// The run journal (`.dagmath-run.json`): the recipe being written and the SHA-256 of every
/// shard finished so far, rewritten atomically after each shard. `--resume` keeps a shard on
/// disk only if its bytes match the journal.
#[derive(Serialize, Deserialize)]
pub(super) struct RunFile {
    recipe_sha256: String,
    seed: u64,
    /// `data/FILE` → sha256 of the shards complete so far.
    #[serde(default)]
    pub(super) shards: BTreeMap<String, String>,
}

impl RunFile {
    pub(super) fn write(&self, out: &Path) -> Result<(), ShardError> {
        let run = serde_json::to_vec(self).expect("run file serialises");
        write_atomic(&out.join(RUN_FILE), &run)
    }
}

/// An exclusive lock on the output folder, held for the whole run (released on drop): a
/// second run on the same folder stops at once instead of interleaving its shards.
pub struct OutputLock {
    _dir: std::fs::File,
}

/// Takes the lock on folder `dir` (which exists): `flock(LOCK_EX | LOCK_NB)` on the folder
/// itself, so no lock file is left behind. (`std::fs::File::try_lock` does the same but needs
/// Rust 1.89, above this crate's MSRV.) Elsewhere than Unix runs are not locked.
pub fn lock_folder(dir: &Path) -> Result<OutputLock, GenerateError> {
    let io = |source| {
        GenerateError::Shard(ShardError::Io {
            path: dir.to_path_buf(),
            source,
        })
    };
    let f = std::fs::File::open(dir).map_err(io)?;
    #[cfg(unix)]
    {
        use std::os::unix::io::AsRawFd;
        // SAFETY: flock on a descriptor this function owns; no memory is shared.
        let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let e = std::io::Error::last_os_error();
            return Err(if e.kind() == std::io::ErrorKind::WouldBlock {
                GenerateError::Locked(dir.to_path_buf())
            } else {
                io(e)
            });
        }
    }
    Ok(OutputLock { _dir: f })
}

/// The output folder, checked, locked and prepared.
pub(super) struct Prepared {
    pub(super) data: PathBuf,
    /// Shards recorded as complete by the journal (or the manifest of a finished dataset).
    pub(super) journal: RunFile,
    /// Whether this run created the folder (removed again if the run fails on bad input).
    pub(super) created: bool,
    /// Whether the folder was empty (what the run wrote is removed if it fails on bad input).
    pub(super) was_empty: bool,
    _lock: OutputLock,
}

/// Check, lock and prepare the output directory. Writes nothing unless the run may proceed
/// (a folder it had to create for the lock is removed again).
pub(super) fn prepare_output(
    out: &Path,
    hash: &str,
    seed: u64,
    resume: bool,
    force: bool,
) -> Result<Prepared, GenerateError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| GenerateError::Shard(ShardError::Io { path, source })
    };
    if out.exists() && !out.is_dir() {
        return Err(GenerateError::NotAFolder(out.to_path_buf()));
    }
    let created = !out.exists();
    let was_empty = created
        || std::fs::read_dir(out)
            .map(|mut d| d.next().is_none())
            .unwrap_or(false);
    std::fs::create_dir_all(out).map_err(io(out))?;
    let lock = lock_folder(out)?;
    let checked = check_output(out, hash, seed, resume, force);
    let journal = match checked {
        Ok(j) => j,
        Err(e) => {
            if created {
                let _ = std::fs::remove_dir(out);
            }
            return Err(e);
        }
    };
    let data = out.join("data");
    if force && !resume {
        for f in ["manifest.json", "README.md", RUN_FILE] {
            let p = out.join(f);
            if p.exists() {
                std::fs::remove_file(&p).map_err(io(&p))?;
            }
        }
    }
    std::fs::create_dir_all(&data).map_err(io(&data))?;
    // Leftover temp files of a killed run, and (with --force) old shards.
    for e in std::fs::read_dir(&data).map_err(io(&data))? {
        let p = e.map_err(io(&data))?.path();
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let stale_tmp = name.starts_with('.') && name.ends_with(".tmp");
        let old_shard = force && !resume && name.ends_with(".parquet");
        if stale_tmp || old_shard {
            std::fs::remove_file(&p).map_err(io(&p))?;
        }
    }
    let journal = RunFile {
        recipe_sha256: hash.to_string(),
        seed,
        shards: journal.shards,
    };
    journal.write(out)?;
    Ok(Prepared {
        data,
        journal,
        created,
        was_empty,
        _lock: lock,
    })
}

/// Whether the run may write into `out` (locked); returns what the journal (or a finished
/// dataset's manifest) records as done.
fn check_output(
    out: &Path,
    hash: &str,
    seed: u64,
    resume: bool,
    force: bool,
) -> Result<RunFile, GenerateError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| GenerateError::Shard(ShardError::Io { path, source })
    };
    let empty = RunFile {
        recipe_sha256: hash.to_string(),
        seed,
        shards: BTreeMap::new(),
    };
    let non_empty = std::fs::read_dir(out).map_err(io(out))?.next().is_some();
    if !non_empty {
        return Ok(empty);
    }
    if !resume && !force {
        return Err(GenerateError::NotEmpty(out.to_path_buf()));
    }
    // What dagmath wrote here: the journal of an unfinished run, else a finished manifest.
    let read = |name: &str| -> Option<serde_json::Value> {
        let b = std::fs::read(out.join(name)).ok()?;
        let v: serde_json::Value = serde_json::from_slice(&b).ok()?;
        v.get("recipe_sha256")?.as_str()?;
        Some(v)
    };
    let found = read(RUN_FILE)
        .map(|v| (v, true))
        .or_else(|| read("manifest.json").map(|v| (v, false)));
    let Some((v, is_journal)) = found else {
        if resume {
            return Err(GenerateError::NothingToResume {
                path: out.to_path_buf(),
            });
        }
        // --force replaces a dataset, never a folder of someone else's files.
        let file = std::fs::read_dir(out)
            .map_err(io(out))?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .min()
            .unwrap_or_default();
        return Err(GenerateError::Foreign {
            path: out.to_path_buf(),
            file,
        });
    };
    if !resume {
        return Ok(empty);
    }
    let f = v["recipe_sha256"].as_str().unwrap_or_default();
    if f != hash {
        return Err(GenerateError::OtherRecipe {
            path: out.to_path_buf(),
            found: f.to_string(),
            expected: hash.to_string(),
        });
    }
    let mut shards = BTreeMap::new();
    if is_journal {
        if let Some(m) = v.get("shards").and_then(|m| m.as_object()) {
            for (file, sha) in m {
                if let Some(sha) = sha.as_str() {
                    shards.insert(file.clone(), sha.to_string());
                }
            }
        }
    } else {
        for split in v
            .get("splits")
            .and_then(|s| s.as_array())
            .into_iter()
            .flatten()
        {
            for sh in split
                .get("shards")
                .and_then(|s| s.as_array())
                .into_iter()
                .flatten()
            {
                if let (Some(file), Some(sha)) = (
                    sh.get("file").and_then(|x| x.as_str()),
                    sh.get("sha256").and_then(|x| x.as_str()),
                ) {
                    shards.insert(file.to_string(), sha.to_string());
                }
            }
        }
    }
    Ok(RunFile { shards, ..empty })
}
