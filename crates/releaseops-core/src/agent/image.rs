//! The memory image: a binary copy of the episodes (`agent/.cache/`, ignored
//! by git) rebuilt whenever the records change under it, appended to in
//! place after a decision, so recall stays fast at 100,000 episodes.

use super::*;

/// The memory image on disk: the byte length of each of its parts, when
/// known to match the memory in hand.
#[derive(Debug, Clone, Copy)]
pub struct Image {
    pub(super) lens: Option<[u64; 3]>,
}

pub(super) fn image_paths(store: &Store) -> (PathBuf, [PathBuf; 3]) {
    let dir = agent_dir(store).join(".cache");
    (
        dir.join("memory.meta"),
        ["memory.ids", "memory.rows", "memory.attrs"].map(|n| dir.join(n)),
    )
}

/// The memory, from the image when it is current, else rebuilt from the
/// records (and the image written again).
pub fn load_memory(store: &Store, head: &Head) -> Result<Memory> {
    let fp = fingerprint(&agent_dir(store), head);
    load_memory_image(store, head, fp).map(|(m, _)| m)
}

pub(super) fn load_memory_image(store: &Store, head: &Head, fp: u64) -> Result<(Memory, Image)> {
    let stamp = [head.decisions, head.outcomes, fp];
    let (meta_path, part_paths) = image_paths(store);
    let parts = part_paths.each_ref().map(|p| read_plain(p));
    if let (Some(meta), [Some(ids), Some(rows), Some(attrs)]) = (read_plain(&meta_path), &parts)
        && let Some((memory, got, lens)) = Memory::decode(&meta, [ids, rows, attrs])
        && got == stamp
    {
        return Ok((memory, Image { lens: Some(lens) }));
    }
    let mut memory = Memory::default();
    let mut seen = std::collections::HashSet::new();
    read_lines(
        store,
        "decisions",
        head.decisions,
        |e: EpisodeLine, path, line| {
            if !seen.insert(e.decision_id.clone()) {
                return Err(corrupt(
                    path,
                    Some(line),
                    &format!("decision id {} appears twice", e.decision_id),
                ));
            }
            memory.append_new(&e.decision_id, e.context.attributes(), e.decision, None);
            Ok(())
        },
    )?;
    read_lines(
        store,
        "outcomes",
        head.outcomes,
        |o: OutcomeLine, path, line| {
            if memory.set_outcome(&o.decision_id, o.outcome) {
                Ok(())
            } else {
                Err(corrupt(
                    path,
                    Some(line),
                    &format!("outcome for unknown decision {}", o.decision_id),
                ))
            }
        },
    )?;
    let image = write_image(store, &memory, stamp, Image { lens: None }, 0);
    Ok((memory, image))
}

/// Best effort (an image that cannot be written is rebuilt next time).
/// With `image.lens` known, only rows from `first_new` on are appended;
/// otherwise every row is written.
pub(super) fn write_image(
    store: &Store,
    memory: &Memory,
    stamp: [u64; 3],
    image: Image,
    first_new: usize,
) -> Image {
    let failed = Image { lens: None };
    let (meta_path, part_paths) = image_paths(store);
    let Some(dir) = meta_path.parent() else {
        return failed;
    };
    if fs::create_dir_all(dir).is_err() {
        return failed;
    }
    if !dir.join(".gitignore").exists() {
        let _ = fs::write(dir.join(".gitignore"), "*\n");
    }
    let mut lens = [0u64; 3];
    match image.lens {
        Some(old) => {
            let new = memory.encode_rows(first_new);
            if !append_parts(&part_paths, old, &new) {
                return failed;
            }
            for i in 0..3 {
                lens[i] = old[i] + new[i].len() as u64;
            }
        }
        None => {
            let all = memory.encode_rows(0);
            for i in 0..3 {
                let tmp = dir.join(format!(".part{i}.{}.tmp", std::process::id()));
                if fs::write(&tmp, &all[i]).is_err() || fs::rename(&tmp, &part_paths[i]).is_err() {
                    return failed;
                }
                lens[i] = all[i].len() as u64;
            }
        }
    }
    let tmp = dir.join(format!(".meta.{}.tmp", std::process::id()));
    if fs::write(&tmp, memory.encode_meta(stamp, lens)).is_err()
        || fs::rename(&tmp, &meta_path).is_err()
    {
        return failed;
    }
    Image { lens: Some(lens) }
}

/// Where recall came from, and so how the image is brought up to date.
pub(super) enum Recall {
    /// The image was current: recalled from it without building the memory;
    /// the new row is appended to it.
    Image(ImageMeta),
    /// The memory was built (the image was missing or stale).
    Memory(Memory, Image),
}

/// Recall straight from the image on disk, when its meta carries `stamp`
/// (checked by the caller once the stamp is known): the table and the
/// attribute ids are streamed, and only the winners' ids are read.
pub(super) fn recall_from_image(
    store: &Store,
    context: &Context,
) -> Option<(ImageMeta, Vec<Recalled>)> {
    use std::io::{Read, Seek, SeekFrom};
    let (meta_path, [ids, table, attrs]) = image_paths(store);
    if ![&ids, &table, &attrs].into_iter().all(|p| is_plain_file(p)) {
        return None;
    }
    let meta = ImageMeta::decode(&read_plain(&meta_path)?)?;
    let mut ids = fs::File::open(ids).ok()?;
    let ids_len = ids.metadata().ok()?.len();
    let found = meta.recall_from(
        fs::File::open(table).ok()?,
        fs::File::open(attrs).ok()?,
        ids_len,
        context,
        RECALL,
        |at, n| {
            let mut buf = vec![0; n];
            ids.seek(SeekFrom::Start(at)).ok()?;
            ids.read_exact(&mut buf).ok()?;
            Some(buf)
        },
    )?;
    Some((meta, found))
}

/// Appends `new` to each part file, cut back to `old` first (a crash may
/// have left a partial row there).
pub(super) fn append_parts(paths: &[PathBuf; 3], old: [u64; 3], new: &[Vec<u8>; 3]) -> bool {
    use std::io::{Seek, SeekFrom, Write};
    (0..3).all(|i| {
        is_plain_file(&paths[i])
            && fs::OpenOptions::new()
                .write(true)
                .open(&paths[i])
                .and_then(|mut f| {
                    f.set_len(old[i])?;
                    f.seek(SeekFrom::Start(old[i]))?;
                    f.write_all(&new[i])
                })
                .is_ok()
    })
}

/// Appends rows to the image's parts (cut back to `old` first: a crash may
/// have left a partial row) and writes the meta that covers them. Best
/// effort: a failure leaves a stale image, which is rebuilt.
pub(super) fn append_image(store: &Store, meta: &ImageMeta, old: [u64; 3], parts: &[Vec<u8>; 3]) {
    let (meta_path, part_paths) = image_paths(store);
    if !append_parts(&part_paths, old, parts) {
        let _ = fs::remove_file(&meta_path);
        return;
    }
    if let Some(dir) = meta_path.parent() {
        let tmp = dir.join(format!(".meta.{}.tmp", std::process::id()));
        if fs::write(&tmp, meta.encode()).is_err() || fs::rename(&tmp, &meta_path).is_err() {
            let _ = fs::remove_file(&meta_path);
        }
    }
}
