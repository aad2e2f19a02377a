//! Files written atomically: a temporary file in the same folder, fsynced, then renamed over
//! the target, so a reader (or a full disk, or a kill) never sees a half-written file. On
//! failure the temporary file is removed and the target is left as it was.

use std::io::Write;
use std::path::{Path, PathBuf};

/// The temporary sibling of `path`: `.NAME.tmp` in the same folder.
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    path.with_file_name(format!(".{name}.tmp"))
}

/// Writes `bytes` to `path` atomically. The error says which step failed and on which path.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), (PathBuf, std::io::Error)> {
    let tmp = temp_path(path);
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err((tmp, e));
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        (path.to_path_buf(), e)
    })
}

/// Makes a file written in full at [`temp_path`]`(path)` (by a library that writes files
/// itself, such as the SVG plots) visible at `path`: fsync, then rename. On failure the
/// temporary file is removed.
pub fn commit(path: &Path) -> Result<(), String> {
    let tmp = temp_path(path);
    let done = std::fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .and_then(|()| std::fs::rename(&tmp, path));
    done.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("{}: {e}", path.display())
    })
}
