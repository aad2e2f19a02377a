//! Files written atomically: a temporary file in the same folder, fsynced, then renamed over
//! the target, so a reader (or a full disk, or a kill) never sees a half-written file. On
//! failure the temporary file is removed and the target is left as it was.
//!
//! The temporary file is a `tempfile` one: unique, so two writers never share it, and removed
//! when dropped, so no error path can leave it behind. Its name is `.NAME.XXXXXX.tmp` beside
//! the target, hidden and marked as a temporary file for the folder scans that clear stale ones.

use std::io::Write;
use std::path::{Path, PathBuf};

use tempfile::{Builder, TempPath};

/// The file name of `path` (`file` if it has none).
fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into())
}

/// The temporary sibling of `path`: `.NAME.tmp` in the same folder.
pub fn temp_path(path: &Path) -> PathBuf {
    path.with_file_name(format!(".{}.tmp", file_name(path)))
}

/// Writes `bytes` to `path` atomically. The error says which step failed and on which path:
/// the target for creating the temporary file and for the rename, the temporary file for
/// writing and syncing it.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), (PathBuf, std::io::Error)> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let prefix = format!(".{}.", file_name(path));
    let mut builder = Builder::new();
    builder.prefix(&prefix).suffix(".tmp");
    // Created as `File::create` would (0o666 less the umask), not the private 0o600 a
    // temporary file gets by default: the renamed file is an ordinary output.
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
    let mut tmp = builder
        .tempfile_in(dir)
        .map_err(|e| (path.to_path_buf(), e))?;
    let written = tmp.write_all(bytes).and_then(|()| tmp.as_file().sync_all());
    if let Err(e) = written {
        // Dropping `tmp` removes the temporary file.
        return Err((tmp.path().to_path_buf(), e));
    }
    tmp.persist(path)
        .map(drop)
        .map_err(|e| (path.to_path_buf(), e.error))
}

/// Makes a file written in full at [`temp_path`]`(path)` (by a library that writes files
/// itself, such as the SVG plots) visible at `path`: fsync, then rename. On failure the
/// temporary file is removed.
pub fn commit(path: &Path) -> Result<(), (PathBuf, std::io::Error)> {
    let done = TempPath::try_from_path(temp_path(path)).and_then(|tmp| {
        // `tmp` removes the file when dropped, unless it is persisted.
        std::fs::File::open(&tmp)?.sync_all()?;
        tmp.persist(path).map_err(|e| e.error)
    });
    done.map_err(|e| (path.to_path_buf(), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_atomic_replaces_the_target_and_leaves_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.json");
        write_atomic(&target, b"one").unwrap();
        write_atomic(&target, b"two").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&target).unwrap().permissions().mode();
            let plain = dir.path().join("plain");
            std::fs::write(&plain, b"x").unwrap();
            let want = std::fs::metadata(&plain).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, want & 0o777, "the mode File::create gives");
        }
    }

    #[test]
    fn a_failed_rename_keeps_the_target_and_removes_the_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        // A folder in the target's place: the rename fails.
        let target = dir.path().join("taken");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("inside"), b"mine").unwrap();
        let (at, _) = write_atomic(&target, b"new").unwrap_err();
        assert_eq!(at, target);
        assert_eq!(std::fs::read(target.join("inside")).unwrap(), b"mine");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn commit_renames_or_removes_the_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("plot.svg");
        std::fs::write(temp_path(&target), b"<svg/>").unwrap();
        commit(&target).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"<svg/>");
        assert!(!temp_path(&target).exists());
        let taken = dir.path().join("taken");
        std::fs::create_dir(&taken).unwrap();
        std::fs::write(taken.join("inside"), b"mine").unwrap();
        std::fs::write(temp_path(&taken), b"<svg/>").unwrap();
        assert_eq!(commit(&taken).unwrap_err().0, taken);
        assert!(!temp_path(&taken).exists());
    }
}
