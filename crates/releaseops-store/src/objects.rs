//! The content-addressed object store, `.releaseops/objects/sha256/<2>/<62>`:
//! the exact bytes every bundle artifact was hashed over, so a bundle can be
//! loaded and verified with no git history and no original files.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use releaseops_format::hash;

use crate::error::{Result, StoreError};

/// No prompt or policy comes near this; a bigger object is not one of ours.
pub const MAX_OBJECT_BYTES: u64 = 64 * 1024 * 1024;

pub struct ObjectStore {
    dir: PathBuf,
}

impl ObjectStore {
    pub(crate) fn new(dir: PathBuf) -> Self {
        ObjectStore { dir }
    }

    /// Path of an object relative to `.releaseops/`.
    pub fn rel_path(content_hash: &str) -> String {
        let hex = hash::hex_part(content_hash);
        format!(
            "objects/sha256/{}/{}",
            &hex[..2.min(hex.len())],
            &hex[2.min(hex.len())..]
        )
    }

    fn path(&self, content_hash: &str) -> PathBuf {
        self.dir.join(Self::rel_path(content_hash))
    }

    /// Stores bytes durably and returns their `sha256:` hash. Idempotent.
    pub fn put(&self, bytes: &[u8]) -> Result<String> {
        let h = hash::sha256_prefixed(bytes);
        let path = self.path(&h);
        if path.exists() {
            return Ok(h);
        }
        let parent = path.parent().unwrap_or(&self.dir);
        fs::create_dir_all(parent).map_err(|e| StoreError::io("cannot create", parent, e))?;
        let tmp = parent.join(format!(".tmp-{}", std::process::id()));
        if let Err(e) = write_synced(&tmp, bytes) {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        if let Err(e) = fs::rename(&tmp, &path) {
            let _ = fs::remove_file(&tmp);
            return Err(StoreError::io("cannot write", &path, e));
        }
        Ok(h)
    }

    /// The stored bytes, or `None` if the object is missing.
    pub fn get(&self, content_hash: &str) -> Result<Option<Vec<u8>>> {
        if !hash::is_valid(content_hash) {
            return Ok(None);
        }
        // Never through a link: one to /dev/zero would be read forever.
        crate::fsx::read_regular_opt(&self.path(content_hash), MAX_OBJECT_BYTES)
    }
}

/// Writes a new file (a temporary one, renamed into place by the caller).
/// Whatever was at `path` is removed first and the file is created anew
/// (`O_CREAT|O_EXCL`), so a link planted at the name is never followed.
pub fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let _ = fs::remove_file(path);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| StoreError::io("cannot create", path, e))?;
    f.write_all(bytes)
        .map_err(|e| StoreError::io("cannot write", path, e))?;
    f.sync_all()
        .map_err(|e| StoreError::io("cannot sync", path, e))?;
    Ok(())
}
