//! Reading files inside `.releaseops/` without following symbolic links.
//!
//! Anyone who can write to the repository can commit a link, so a store file
//! that is a link (to `/etc/passwd`, to `/dev/zero`) is refused rather than
//! read: the name is checked with `lstat`, opened, and the opened file is
//! checked to be the same regular file, so a swap in between is caught too.

use std::fs;
use std::io::Read;
use std::path::Path;

use crate::error::{Result, StoreError};

/// The bytes of a regular file, refusing links, devices, directories and
/// anything longer than `limit`.
pub fn read_regular(path: &Path, limit: u64) -> Result<Vec<u8>> {
    match read_regular_opt(path, limit)? {
        Some(b) => Ok(b),
        None => Err(StoreError::io(
            "cannot read",
            path,
            std::io::Error::from(std::io::ErrorKind::NotFound),
        )),
    }
}

/// As [`read_regular`], into `buf` (cleared first), so a reader of many
/// files reuses one allocation instead of mapping fresh memory for each.
pub fn read_regular_into(path: &Path, limit: u64, buf: &mut Vec<u8>) -> Result<()> {
    buf.clear();
    let meta = fs::symlink_metadata(path).map_err(|e| StoreError::io("cannot read", path, e))?;
    check_regular(path, &meta)?;
    let file = fs::File::open(path).map_err(|e| StoreError::io("cannot read", path, e))?;
    let opened = file
        .metadata()
        .map_err(|e| StoreError::io("cannot read", path, e))?;
    if !same_file(&meta, &opened) {
        return Err(StoreError::Corrupt {
            path: path.to_path_buf(),
            message: "the file was replaced while it was being opened".into(),
        });
    }
    file.take(limit.saturating_add(1))
        .read_to_end(buf)
        .map_err(|e| StoreError::io("cannot read", path, e))?;
    if buf.len() as u64 > limit {
        return Err(StoreError::format(
            path,
            releaseops_format::FormatError::TooLarge {
                size: buf.len(),
                limit: usize::try_from(limit).unwrap_or(usize::MAX),
            },
        ));
    }
    Ok(())
}

/// As [`read_regular`], with `None` when the file does not exist.
pub fn read_regular_opt(path: &Path, limit: u64) -> Result<Option<Vec<u8>>> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StoreError::io("cannot read", path, e)),
    };
    check_regular(path, &meta)?;
    if meta.len() > limit {
        return Err(StoreError::format(
            path,
            releaseops_format::FormatError::TooLarge {
                size: usize::try_from(meta.len()).unwrap_or(usize::MAX),
                limit: usize::try_from(limit).unwrap_or(usize::MAX),
            },
        ));
    }
    let file = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StoreError::io("cannot read", path, e)),
    };
    let opened = file
        .metadata()
        .map_err(|e| StoreError::io("cannot read", path, e))?;
    if !same_file(&meta, &opened) {
        return Err(StoreError::Corrupt {
            path: path.to_path_buf(),
            message: "the file was replaced while it was being opened".into(),
        });
    }
    let mut out = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(limit.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| StoreError::io("cannot read", path, e))?;
    if out.len() as u64 > limit {
        return Err(StoreError::format(
            path,
            releaseops_format::FormatError::TooLarge {
                size: out.len(),
                limit: usize::try_from(limit).unwrap_or(usize::MAX),
            },
        ));
    }
    Ok(Some(out))
}

/// Refuses anything but a regular file (a link above all).
pub fn check_regular(path: &Path, meta: &fs::Metadata) -> Result<()> {
    let ft = meta.file_type();
    if ft.is_symlink() {
        return Err(StoreError::Corrupt {
            path: path.to_path_buf(),
            message: "is a symbolic link; releaseops never follows links inside .releaseops".into(),
        });
    }
    if !ft.is_file() {
        return Err(StoreError::Corrupt {
            path: path.to_path_buf(),
            message: "is not a regular file".into(),
        });
    }
    Ok(())
}

#[cfg(unix)]
fn same_file(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.dev() == b.dev() && a.ino() == b.ino() && b.file_type().is_file()
}

#[cfg(not(unix))]
fn same_file(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    a.len() == b.len() && b.file_type().is_file()
}

/// What identifies one version of a file on this machine: a file rewritten
/// (by us, by git, by hand) gets a new change time, so a cached verdict
/// keyed by this is never reused for other bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileId {
    pub len: u64,
    pub dev: u64,
    pub ino: u64,
    pub mtime_ns: i128,
    pub ctime_ns: i128,
}

impl FileId {
    pub fn of(meta: &fs::Metadata) -> FileId {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            FileId {
                len: meta.len(),
                dev: meta.dev(),
                ino: meta.ino(),
                mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
                ctime_ns: i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()),
            }
        }
        #[cfg(not(unix))]
        {
            let mtime_ns = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos() as i128);
            FileId {
                len: meta.len(),
                dev: 0,
                ino: 0,
                mtime_ns,
                ctime_ns: mtime_ns,
            }
        }
    }

    /// The identity of a regular file at `path` (a link is refused).
    pub fn stat(path: &Path) -> Result<FileId> {
        let meta =
            fs::symlink_metadata(path).map_err(|e| StoreError::io("cannot stat", path, e))?;
        check_regular(path, &meta)?;
        Ok(FileId::of(&meta))
    }
}
