//! File manifests: a file exists (for list, exists and download) exactly when its row here
//! exists, and the row is written only after every chunk of its blob is stored.

use crate::blobs::{BlobSink, BlobStore, DigestAlgorithm, StoredBlob};
use crate::sql::{transaction, upsert};
use crate::{Dialect, Result, Row, Sql, SqlValue, StoreError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRecord {
    /// The storage key: `OPSML_MODEL_REGISTRY/repo/name/v1.0.0/model.joblib`.
    pub path: String,
    pub size: u64,
    pub digest: String,
    pub digest_algorithm: DigestAlgorithm,
    pub blob_id: String,
    pub chunk_size: u64,
    /// Seconds since the Unix epoch.
    pub created: i64,
}

const COLUMNS: [&str; 7] = [
    "path",
    "size",
    "digest",
    "digest_algorithm",
    "blob_id",
    "chunk_size",
    "created",
];

fn from_row(row: &Row) -> Result<FileRecord> {
    let algorithm = row.text(3)?;
    Ok(FileRecord {
        path: row.text(0)?,
        size: row.int(1)? as u64,
        digest: row.text(2)?,
        digest_algorithm: DigestAlgorithm::parse(&algorithm).ok_or_else(|| {
            StoreError::Corrupt(format!("unknown digest algorithm {algorithm:?}"))
        })?,
        blob_id: row.text(4)?,
        chunk_size: row.int(5)? as u64,
        created: row.int(6)?,
    })
}

/// Records that a blob is being written, so that an upload cut off before `commit` leaves a
/// trace from which its chunks can be collected.
pub fn begin(db: &dyn Sql, blob_id: &str, now: i64) -> Result<()> {
    db.execute(
        "INSERT INTO opsml_pending_blobs (blob_id, started, touched) VALUES (?, ?, ?)",
        &[blob_id.into(), now.into(), now.into()],
    )?;
    Ok(())
}

/// Marks a pending blob as still being written, so that [`stale_pending`] leaves it alone.
pub fn touch(db: &dyn Sql, blob_id: &str, now: i64) -> Result<()> {
    db.execute(
        "UPDATE opsml_pending_blobs SET touched = ? WHERE blob_id = ?",
        &[now.into(), blob_id.into()],
    )?;
    Ok(())
}

/// Pending blobs not touched since `before`: uploads that died (client gone, host killed).
pub fn stale_pending(db: &dyn Sql, before: i64) -> Result<Vec<String>> {
    db.execute(
        "SELECT blob_id FROM opsml_pending_blobs WHERE touched < ? ORDER BY touched",
        &[before.into()],
    )?
    .iter()
    .map(|r| r.text(0))
    .collect()
}

/// Deletes the bytes of the pending blobs not touched since `before` ([`stale_pending`]) and
/// forgets them. Best effort: what fails stays pending and is tried again next time.
pub fn collect_stale(db: &dyn Sql, blobs: &dyn BlobStore, before: i64) {
    let Ok(stale) = stale_pending(db, before) else {
        return;
    };
    for blob_id in stale {
        if blobs.delete_partial(db, &blob_id).is_ok() {
            let _ = abandon(db, &blob_id);
        }
    }
}

/// What must be written in the same transaction as a file's row, or not at all (the audit
/// record), given the file's path.
pub type AlongWith<'a> = &'a dyn Fn(&dyn Sql, &str) -> Result<()>;

/// An [`AlongWith`] that writes nothing more.
pub fn nothing_more(_: &dyn Sql, _: &str) -> Result<()> {
    Ok(())
}

/// What a write may replace at its path: a compare-and-set on the file's digest, so that an
/// edit made from an old copy cannot overwrite a newer one unseen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replacing<'a> {
    /// Whatever is there, or nothing.
    Anything,
    /// Exactly the file with this digest; `None`: no file at all.
    Exactly(Option<&'a str>),
}

/// Makes a fully stored blob visible at `path`, replacing what was there, in one transaction
/// with `along_with` (readers see the old file or the new one, never a mix). Returns the
/// replaced record, whose blob the caller deletes.
pub fn commit(
    db: &dyn Sql,
    path: &str,
    blob: &StoredBlob,
    now: i64,
    along_with: AlongWith<'_>,
) -> Result<Option<FileRecord>> {
    commit_if(db, path, blob, now, Replacing::Anything, along_with)
}

/// [`commit`] only if what is at `path` is what `replacing` says; otherwise
/// [`StoreError::Conflict`] and nothing changes. The file's row is read locked (PostgreSQL and
/// MySQL; SQLite transactions take the write lock at the start), so of two writes expecting the
/// same file only one goes ahead.
pub fn commit_if(
    db: &dyn Sql,
    path: &str,
    blob: &StoredBlob,
    now: i64,
    replacing: Replacing<'_>,
    along_with: AlongWith<'_>,
) -> Result<Option<FileRecord>> {
    let previous = transaction(db, |tx| {
        let previous = match (replacing, tx.dialect()) {
            (Replacing::Exactly(Some(_)), Dialect::Postgres | Dialect::Mysql) => {
                get_where(tx, path, " FOR UPDATE")?
            }
            _ => get(tx, path)?,
        };
        if let Replacing::Exactly(expected) = replacing {
            if previous.as_ref().map(|p| p.digest.as_str()) != expected {
                return Err(StoreError::Conflict(format!(
                    "{path} changed since it was read"
                )));
            }
        }
        let values = [
            path.into(),
            (blob.size as i64).into(),
            blob.digest.as_str().into(),
            blob.algorithm.name().into(),
            blob.blob_id.as_str().into(),
            (blob.chunk_size as i64).into(),
            now.into(),
        ];
        let statement = if replacing == Replacing::Exactly(None) {
            // A file written meanwhile makes the insert fail rather than be replaced.
            format!(
                "INSERT INTO opsml_files ({}) VALUES ({})",
                COLUMNS.join(", "),
                vec!["?"; COLUMNS.len()].join(", ")
            )
        } else {
            upsert(tx.dialect(), "opsml_files", &COLUMNS, "path")
        };
        tx.execute(&statement, &values)?;
        abandon(tx, &blob.blob_id)?;
        along_with(tx, path)?;
        Ok(previous)
    })?;
    Ok(previous.filter(|p| p.blob_id != blob.blob_id))
}

/// [`commit_if`], then deletes the replaced file's bytes ([`release`]).
pub fn commit_replacing(
    db: &dyn Sql,
    blobs: &dyn BlobStore,
    path: &str,
    blob: &StoredBlob,
    now: i64,
    replacing: Replacing<'_>,
    along_with: AlongWith<'_>,
) -> Result<()> {
    if let Some(old) = commit_if(db, path, blob, now, replacing, along_with)? {
        release(db, blobs, &old);
    }
    Ok(())
}

/// Deletes the bytes of a file whose row is gone. If the store fails (unreachable, say), the
/// blob is recorded as a pending blob that is already stale, so the next [`collect_stale`]
/// deletes it: the bytes are unreachable either way, and this way they are
/// not left behind for good.
pub fn release(db: &dyn Sql, blobs: &dyn BlobStore, file: &FileRecord) {
    if blobs.delete(file).is_err() {
        let _ = begin(db, &file.blob_id, 0);
    }
}

/// Writes a file: what `fill` puts into a new blob becomes visible at `path` (replacing what
/// was there, when it is what `replacing` allows) only once all of it is stored. If anything fails, the bytes stored so far are
/// deleted and nothing changes at `path`. While `fill` runs, the blob is pending, so a
/// component that dies mid-way leaves a trace from which its bytes are collected.
#[allow(clippy::too_many_arguments)]
pub fn write_file<E: From<StoreError>>(
    db: &dyn Sql,
    blobs: &dyn BlobStore,
    path: &str,
    blob_id: &str,
    algorithm: DigestAlgorithm,
    size_hint: Option<u64>,
    now: impl Fn() -> i64,
    replacing: Replacing<'_>,
    along_with: AlongWith<'_>,
    fill: impl FnOnce(&mut dyn BlobSink) -> Result<(), E>,
) -> Result<StoredBlob, E> {
    begin(db, blob_id, now())?;
    let discard = || {
        if blobs.delete_partial(db, blob_id).is_ok() {
            let _ = abandon(db, blob_id);
        }
    };
    let mut sink = match blobs.create(db, blob_id, algorithm, size_hint) {
        Ok(sink) => sink,
        Err(e) => {
            discard();
            return Err(e.into());
        }
    };
    if let Err(e) = fill(sink.as_mut()) {
        sink.abort();
        discard();
        return Err(e);
    }
    let stored = sink.finish().and_then(|blob| {
        commit_replacing(db, blobs, path, &blob, now(), replacing, along_with).map(|()| blob)
    });
    stored.map_err(|e| {
        discard();
        e.into()
    })
}

/// Deletes every file at or under `prefix`, each row in one transaction with `along_with`,
/// then its bytes ([`release`]). Returns how many files went.
pub fn delete_under(
    db: &dyn Sql,
    blobs: &dyn BlobStore,
    prefix: &str,
    along_with: AlongWith<'_>,
) -> Result<usize> {
    let mut deleted = 0;
    for file in list(db, prefix)? {
        let gone = transaction(db, |tx| {
            let gone = delete(tx, &file.path)?;
            if gone.is_some() {
                along_with(tx, &file.path)?;
            }
            Ok(gone)
        })?;
        if let Some(gone) = gone {
            release(db, blobs, &gone);
            deleted += 1;
        }
    }
    Ok(deleted)
}

/// Forgets a pending blob: committed, or its bytes deleted by the caller.
pub fn abandon(db: &dyn Sql, blob_id: &str) -> Result<()> {
    db.execute(
        "DELETE FROM opsml_pending_blobs WHERE blob_id = ?",
        &[blob_id.into()],
    )?;
    forget_multipart(db, blob_id)
}

/// Records the object store's multipart upload behind a pending blob, so that it can be
/// aborted if the upload dies.
pub fn record_multipart(db: &dyn Sql, blob_id: &str, upload_id: &str) -> Result<()> {
    db.execute(
        "INSERT INTO opsml_multipart_uploads (blob_id, upload_id) VALUES (?, ?)",
        &[blob_id.into(), upload_id.into()],
    )?;
    Ok(())
}

/// The multipart upload recorded for a blob, if any.
pub fn multipart_upload(db: &dyn Sql, blob_id: &str) -> Result<Option<String>> {
    db.execute(
        "SELECT upload_id FROM opsml_multipart_uploads WHERE blob_id = ?",
        &[blob_id.into()],
    )?
    .first()
    .map(|r| r.text(0))
    .transpose()
}

pub fn forget_multipart(db: &dyn Sql, blob_id: &str) -> Result<()> {
    db.execute(
        "DELETE FROM opsml_multipart_uploads WHERE blob_id = ?",
        &[blob_id.into()],
    )?;
    Ok(())
}

pub fn get(db: &dyn Sql, path: &str) -> Result<Option<FileRecord>> {
    get_where(db, path, "")
}

/// [`get`] with `suffix` after the query (a lock clause).
fn get_where(db: &dyn Sql, path: &str, suffix: &str) -> Result<Option<FileRecord>> {
    db.execute(
        &format!(
            "SELECT {} FROM opsml_files WHERE path = ?{suffix}",
            COLUMNS.join(", ")
        ),
        &[path.into()],
    )?
    .first()
    .map(from_row)
    .transpose()
}

/// Files whose path is `prefix` itself or lies under the folder `prefix`, in path order.
pub fn list(db: &dyn Sql, prefix: &str) -> Result<Vec<FileRecord>> {
    let folder = prefix.trim_end_matches('/');
    // `folder/` ≤ path < `folder0` selects the folder's contents ('0' follows '/').
    db.execute(
        &format!(
            "SELECT {} FROM opsml_files
             WHERE path = ? OR (path >= ? AND path < ?) ORDER BY path",
            COLUMNS.join(", ")
        ),
        &[
            folder.into(),
            format!("{folder}/").into(),
            format!("{folder}0").into(),
        ],
    )?
    .iter()
    .map(from_row)
    .collect()
}

/// Removes a file's row; returns it so the caller can delete its blob.
pub fn delete(db: &dyn Sql, path: &str) -> Result<Option<FileRecord>> {
    let Some(record) = get(db, path)? else {
        return Ok(None);
    };
    db.execute(
        "DELETE FROM opsml_files WHERE path = ? AND blob_id = ?",
        &[path.into(), SqlValue::Text(record.blob_id.clone())],
    )?;
    Ok(Some(record))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blobs::ChunkStore;
    use crate::testing::{MemoryKv, Sqlite};

    fn blob(id: &str, size: u64) -> StoredBlob {
        StoredBlob {
            blob_id: id.into(),
            size,
            digest: format!("d-{id}"),
            algorithm: DigestAlgorithm::Blake3,
            chunk_size: 1024,
        }
    }

    fn db() -> Sqlite {
        let db = Sqlite::memory();
        crate::schema::migrate(&db).unwrap();
        db
    }

    #[test]
    fn a_file_exists_only_after_commit() {
        let db = db();
        begin(&db, "b1", 1).unwrap();
        assert_eq!(get(&db, "R/a/f").unwrap(), None);
        assert!(list(&db, "R/a").unwrap().is_empty());
        assert_eq!(
            commit(&db, "R/a/f", &blob("b1", 5), 2, &nothing_more).unwrap(),
            None
        );
        let got = get(&db, "R/a/f").unwrap().unwrap();
        assert_eq!((got.size, got.digest.as_str(), got.created), (5, "d-b1", 2));
        let pending = db
            .execute("SELECT COUNT(*) FROM opsml_pending_blobs", &[])
            .unwrap();
        assert_eq!(pending[0].int(0).unwrap(), 0);
    }

    #[test]
    fn a_commit_whose_record_fails_changes_nothing() {
        let db = db();
        commit(&db, "R/a/f", &blob("b1", 5), 1, &nothing_more).unwrap();
        begin(&db, "b2", 2).unwrap();
        let refuse = |_: &dyn Sql, path: &str| -> Result<()> {
            Err(StoreError::Backend(format!("no record for {path}")))
        };
        let failed = commit(&db, "R/a/f", &blob("b2", 9), 3, &refuse);
        assert_eq!(
            failed,
            Err(StoreError::Backend("no record for R/a/f".into()))
        );
        assert_eq!(get(&db, "R/a/f").unwrap().unwrap().blob_id, "b1");
        // Still pending, so its bytes are collected later.
        assert_eq!(stale_pending(&db, 10).unwrap(), ["b2"]);
        assert!(delete_under(&db, &ChunkStore(MemoryKv::default()), "R/a", &refuse).is_err());
        assert!(get(&db, "R/a/f").unwrap().is_some());
    }

    #[test]
    fn only_untouched_pending_blobs_are_stale() {
        let db = db();
        begin(&db, "old", 10).unwrap();
        begin(&db, "busy", 10).unwrap();
        begin(&db, "new", 50).unwrap();
        touch(&db, "busy", 60).unwrap();
        assert_eq!(stale_pending(&db, 40).unwrap(), ["old"]);
        record_multipart(&db, "old", "u-1").unwrap();
        assert_eq!(
            multipart_upload(&db, "old").unwrap().as_deref(),
            Some("u-1")
        );
        abandon(&db, "old").unwrap();
        assert!(stale_pending(&db, 40).unwrap().is_empty());
        assert_eq!(multipart_upload(&db, "old").unwrap(), None);
    }

    #[test]
    fn replacing_returns_the_old_blob() {
        let db = db();
        commit(&db, "R/f", &blob("b1", 5), 1, &nothing_more).unwrap();
        let old = commit(&db, "R/f", &blob("b2", 7), 2, &nothing_more)
            .unwrap()
            .unwrap();
        assert_eq!(old.blob_id, "b1");
        assert_eq!(get(&db, "R/f").unwrap().unwrap().blob_id, "b2");
    }

    #[test]
    fn list_stays_inside_the_folder() {
        let db = db();
        for (i, p) in ["R/a/x", "R/a/y/z", "R/a0", "R/ab", "R/a"]
            .iter()
            .enumerate()
        {
            commit(&db, p, &blob(&format!("b{i}"), 1), 1, &nothing_more).unwrap();
        }
        let paths = |prefix| {
            list(&db, prefix)
                .unwrap()
                .into_iter()
                .map(|r| r.path)
                .collect::<Vec<_>>()
        };
        assert_eq!(paths("R/a"), ["R/a", "R/a/x", "R/a/y/z"]);
        assert_eq!(paths("R/a/"), ["R/a", "R/a/x", "R/a/y/z"]);
        assert_eq!(paths("R/a/y"), ["R/a/y/z"]);
        assert!(paths("R/b").is_empty());
    }

    /// A finished blob of `bytes` in `blobs` (not yet committed to a path).
    fn stored(db: &Sqlite, blobs: &ChunkStore<MemoryKv>, id: &str, bytes: &[u8]) -> StoredBlob {
        let mut w = blobs.create(db, id, DigestAlgorithm::Blake3, None).unwrap();
        w.write(bytes).unwrap();
        w.finish().unwrap()
    }

    #[test]
    fn a_write_expecting_another_file_changes_nothing() {
        let db = db();
        let commit_expecting = |id: &str, expected: Option<&str>| {
            commit_if(
                &db,
                "R/a/f",
                &blob(id, 1),
                1,
                Replacing::Exactly(expected),
                &nothing_more,
            )
        };
        let digest = |db: &Sqlite| get(db, "R/a/f").unwrap().map(|f| f.digest);
        assert!(matches!(
            commit_expecting("b1", Some("d-b0")),
            Err(StoreError::Conflict(_))
        ));
        assert_eq!(digest(&db), None);
        commit_expecting("b1", None).unwrap();
        assert!(matches!(
            commit_expecting("b2", None),
            Err(StoreError::Conflict(_))
        ));
        // Two edits of the file b1: the first goes ahead, the second finds b2 and stops.
        commit_expecting("b2", Some("d-b1")).unwrap();
        assert!(matches!(
            commit_expecting("b3", Some("d-b1")),
            Err(StoreError::Conflict(_))
        ));
        assert_eq!(digest(&db).as_deref(), Some("d-b2"));
    }

    #[test]
    fn replacing_and_deleting_free_the_bytes() {
        let db = db();
        let blobs = ChunkStore(MemoryKv::default());
        let store = |id: &str, bytes: &[u8]| stored(&db, &blobs, id, bytes);
        let chunks = || blobs.0 .0.borrow().len();
        let first = store("b1", b"0123456789");
        commit_replacing(
            &db,
            &blobs,
            "R/d/f",
            &first,
            1,
            Replacing::Anything,
            &nothing_more,
        )
        .unwrap();
        let second = store("b2", b"abc");
        commit_replacing(
            &db,
            &blobs,
            "R/d/f",
            &second,
            2,
            Replacing::Anything,
            &nothing_more,
        )
        .unwrap();
        assert_eq!(chunks(), 1, "the first file's chunk is gone");
        let third = store("b3", b"xyz");
        commit_replacing(
            &db,
            &blobs,
            "R/d/g",
            &third,
            3,
            Replacing::Anything,
            &nothing_more,
        )
        .unwrap();
        assert_eq!(delete_under(&db, &blobs, "R/d", &nothing_more).unwrap(), 2);
        assert_eq!(chunks(), 0);
        assert!(list(&db, "R").unwrap().is_empty());
    }

    #[test]
    fn bytes_whose_delete_failed_are_collected_later() {
        let db = db();
        let blobs = ChunkStore(MemoryKv::default());
        let store = |id: &str, bytes: &[u8]| stored(&db, &blobs, id, bytes);
        let chunks = || blobs.0 .0.borrow().len();
        let first = store("b1", b"first");
        commit_replacing(
            &db,
            &blobs,
            "R/d/f",
            &first,
            10,
            Replacing::Anything,
            &nothing_more,
        )
        .unwrap();
        let second = store("b2", b"second");
        commit_replacing(
            &db,
            &blobs,
            "R/e/g",
            &second,
            10,
            Replacing::Anything,
            &nothing_more,
        )
        .unwrap();

        blobs.0 .1.set(Some(0));
        let third = store("b3", b"third");
        commit_replacing(
            &db,
            &blobs,
            "R/d/f",
            &third,
            11,
            Replacing::Anything,
            &nothing_more,
        )
        .unwrap();
        assert_eq!(delete_under(&db, &blobs, "R/e", &nothing_more).unwrap(), 1);
        assert_eq!(chunks(), 3, "b1 and b2 could not be deleted");
        let mut stale = stale_pending(&db, 1).unwrap();
        stale.sort();
        assert_eq!(stale, ["b1", "b2"]);

        // What the next upload does.
        blobs.0 .1.set(None);
        collect_stale(&db, &blobs, 1);
        assert_eq!(chunks(), 1, "only the file still stored keeps its bytes");
        assert!(stale_pending(&db, i64::MAX).unwrap().is_empty());
        assert_eq!(get(&db, "R/d/f").unwrap().unwrap().blob_id, "b3");
    }

    #[test]
    fn delete_returns_the_record() {
        let db = db();
        commit(&db, "R/f", &blob("b1", 5), 1, &nothing_more).unwrap();
        assert_eq!(delete(&db, "R/f").unwrap().unwrap().blob_id, "b1");
        assert_eq!(delete(&db, "R/f").unwrap(), None);
        assert_eq!(get(&db, "R/f").unwrap(), None);
    }
}
