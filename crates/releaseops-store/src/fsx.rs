//! Reading files inside `.releaseops/` without following symbolic links.
//!
//! Anyone who can write to the repository can commit a link, so a store file
//! that is a link (to `/etc/passwd`, to `/dev/zero`) is refused rather than
//! read: the name is checked with `lstat`, opened, and the opened file is
//! checked to be the same regular file, so a swap in between is caught too.

use std::any::Any;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

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
    let Some(meta) = lstat_opt(path)? else {
        return Ok(None);
    };
    Ok(read_opened(path, &meta, limit)?.map(|(bytes, _)| bytes))
}

fn lstat_opt(path: &Path) -> Result<Option<fs::Metadata>> {
    match fs::symlink_metadata(path) {
        Ok(m) => Ok(Some(m)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StoreError::io("cannot read", path, e)),
    }
}

/// The bytes of the regular file `meta` describes, with the identity of
/// the file they were read from.
fn read_opened(path: &Path, meta: &fs::Metadata, limit: u64) -> Result<Option<(Vec<u8>, FileId)>> {
    check_regular(path, meta)?;
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
    if !same_file(meta, &opened) {
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
    Ok(Some((out, FileId::of(&opened))))
}

/// This machine's clock, in nanoseconds since the epoch.
pub(crate) fn now_ns() -> i128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128)
}

/// What a file parsed to, by path and `kind` (what the caller makes of it):
/// reused while the file is the very one it was parsed from. A file changed less than a second before it was read is
/// parsed again each time (git's rule for racily clean files: a change
/// within the clock's granularity can leave the identity as it was).
pub fn read_parsed<T, E>(
    path: &Path,
    limit: u64,
    kind: &'static str,
    parse: impl FnOnce(&[u8]) -> std::result::Result<T, E>,
) -> Result<Option<std::result::Result<T, E>>>
where
    T: Clone + Send + Sync + 'static,
{
    let now = now_ns();
    let Some(meta) = lstat_opt(path)? else {
        return Ok(None);
    };
    check_regular(path, &meta)?;
    let id = FileId::of(&meta);
    let key = (path.to_path_buf(), kind);
    if let Some(hit) = parsed_cache().lock().ok().and_then(|c| {
        c.entries
            .get(&key)
            .filter(|(at, _)| *at == id)
            .and_then(|(_, v)| v.downcast_ref::<T>().cloned())
    }) {
        return Ok(Some(Ok(hit)));
    }
    let Some((bytes, id)) = read_opened(path, &meta, limit)? else {
        return Ok(None);
    };
    let parsed = parse(&bytes);
    // Kept only while the files kept stay small in all: what a file parses
    // to is taken to be of the order of its size.
    let size = bytes.len() as u64;
    if let Ok(v) = &parsed
        && id.settled(now)
        && size <= PARSED_BYTES
        && let Ok(mut c) = parsed_cache().lock()
    {
        if c.entries.len() >= PARSED_MAX || c.bytes + size > PARSED_BYTES {
            c.entries.clear();
            c.bytes = 0;
        }
        c.bytes += size;
        c.entries.insert(key, (id, Arc::new(v.clone())));
    }
    Ok(Some(parsed))
}

/// A file read one way: its identity when read, and what it parsed to.
type Kept = (FileId, Arc<dyn Any + Send + Sync>);

#[derive(Default)]
struct Parsed {
    entries: std::collections::HashMap<(PathBuf, &'static str), Kept>,
    /// The sizes of the files behind `entries`, in all.
    bytes: u64,
}

const PARSED_MAX: usize = 4096;
const PARSED_BYTES: u64 = 64 * 1024 * 1024;

fn parsed_cache() -> &'static Mutex<Parsed> {
    static CACHE: OnceLock<Mutex<Parsed>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
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

    /// Last changed over a second before `now` (read with [`now_ns`] before
    /// the file was), by this machine's clock: a change since then gets a
    /// later change time, whatever the timestamps' granularity. This takes
    /// the clock of the filesystem to agree with the machine's within that
    /// second, as it does on a local disk. Where there are no inodes and
    /// change times (not unix), nothing is ever settled.
    pub(crate) fn settled(&self, now: i128) -> bool {
        cfg!(unix) && now - self.mtime_ns.max(self.ctime_ns) > 1_000_000_000
    }

    /// The identity of a regular file at `path` (a link is refused).
    pub fn stat(path: &Path) -> Result<FileId> {
        let meta =
            fs::symlink_metadata(path).map_err(|e| StoreError::io("cannot stat", path, e))?;
        check_regular(path, &meta)?;
        Ok(FileId::of(&meta))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn a_parsed_file_is_reused_only_while_it_is_the_same_settled_file() {
        let d = tempfile::tempdir().expect("tmp");
        let p = d.path().join("env.yaml");
        let parses = Cell::new(0);
        let read = |kind: &'static str| {
            read_parsed(&p, 1024, kind, |b| {
                parses.set(parses.get() + 1);
                String::from_utf8(b.to_vec()).map_err(|e| e.to_string())
            })
            .expect("read")
            .expect("there")
            .expect("parsed")
        };
        fs::write(&p, "a: 1\n").expect("w");
        assert_eq!(read("text"), "a: 1\n");
        // Just written: parsed again each time, so a same-size edit within
        // the clock's granularity is still seen.
        fs::write(&p, "a: 2\n").expect("w");
        assert_eq!(read("text"), "a: 2\n");
        assert_eq!(read("text"), "a: 2\n");
        assert_eq!(parses.get(), 3, "nothing kept while the file is fresh");
        std::thread::sleep(std::time::Duration::from_millis(1100));
        assert_eq!(read("text"), "a: 2\n");
        assert_eq!(read("text"), "a: 2\n");
        assert_eq!(parses.get(), 4, "settled: parsed once, then kept");
        // Another kind of reading of the same file is its own entry.
        assert_eq!(read("other"), "a: 2\n");
        assert_eq!(parses.get(), 5);
        // An edit (same size) gives the file a new identity: read again.
        fs::write(&p, "a: 3\n").expect("w");
        assert_eq!(read("text"), "a: 3\n");
        // A file whose times were set back is still changed now (ctime).
        std::thread::sleep(std::time::Duration::from_millis(1100));
        assert_eq!(read("text"), "a: 3\n");
        let before = parses.get();
        fs::write(&p, "a: 4\n").expect("w");
        fs::File::options()
            .write(true)
            .open(&p)
            .expect("open")
            .set_modified(
                std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(86_400),
            )
            .expect("set mtime");
        assert_eq!(read("text"), "a: 4\n");
        assert_eq!(read("text"), "a: 4\n");
        assert_eq!(parses.get(), before + 2, "its change time is fresh");
        // Replaced by a link: refused, whatever was kept.
        fs::remove_file(&p).expect("rm");
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(d.path().join("elsewhere"), &p).expect("ln");
            assert!(read_parsed(&p, 1024, "text", |_| Ok::<_, String>(())).is_err());
            fs::remove_file(&p).expect("rm");
        }
        // Gone: nothing.
        assert!(
            read_parsed(&p, 1024, "text", |_| Ok::<_, String>(()))
                .expect("read")
                .is_none()
        );
    }
}
