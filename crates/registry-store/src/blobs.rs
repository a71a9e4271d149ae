//! File bytes as fixed-size chunks in a key-value store, digested on the way in.
//! ~1 MiB chunks measured fastest under Spin (121 MB/s against 91 MB/s for 4 MiB).

use crate::{KeyValue, Result, StoreError};

pub const DEFAULT_CHUNK_SIZE: usize = 1 << 20;

/// The content digest recorded for every file (and served as its `ETag`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestAlgorithm {
    /// The default: ~1.1 GB/s in Wasm with SIMD.
    Blake3,
    /// For deployments that must interoperate with SHA-256 tooling: ~0.26 GB/s in Wasm.
    Sha256,
}

impl DigestAlgorithm {
    pub fn parse(name: &str) -> Option<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "" | "blake3" => Some(Self::Blake3),
            "sha256" | "sha-256" => Some(Self::Sha256),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Blake3 => "blake3",
            Self::Sha256 => "sha256",
        }
    }

    fn hasher(self) -> Hasher {
        match self {
            Self::Blake3 => Hasher::Blake3(Box::default()),
            Self::Sha256 => Hasher::Sha256(Default::default()),
        }
    }
}

enum Hasher {
    Blake3(Box<blake3::Hasher>),
    Sha256(sha2::Sha256),
}

impl Hasher {
    fn update(&mut self, data: &[u8]) {
        use sha2::Digest;
        match self {
            Hasher::Blake3(h) => {
                h.update(data);
            }
            Hasher::Sha256(h) => h.update(data),
        }
    }

    fn finish_hex(self) -> String {
        use sha2::Digest;
        match self {
            Hasher::Blake3(h) => h.finalize().to_hex().to_string(),
            Hasher::Sha256(h) => hex::encode(h.finalize()),
        }
    }
}

pub fn chunk_key(blob_id: &str, index: u64) -> String {
    format!("blob/{blob_id}/{index:010}")
}

/// How many chunks hold `size` bytes.
pub fn chunk_count(size: u64, chunk_size: u64) -> u64 {
    size.div_ceil(chunk_size)
}

/// A blob whose every byte is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBlob {
    pub blob_id: String,
    pub size: u64,
    pub digest: String,
    pub algorithm: DigestAlgorithm,
    pub chunk_size: u64,
}

/// Writes a stream of bytes as chunks; nothing refers to them until the caller commits.
pub struct BlobWriter<'k, K: KeyValue + ?Sized> {
    kv: &'k K,
    blob_id: String,
    chunk_size: usize,
    buf: Vec<u8>,
    chunks: u64,
    size: u64,
    algorithm: DigestAlgorithm,
    hasher: Hasher,
}

impl<'k, K: KeyValue + ?Sized> BlobWriter<'k, K> {
    pub fn new(kv: &'k K, blob_id: String, algorithm: DigestAlgorithm, chunk_size: usize) -> Self {
        assert!(chunk_size > 0, "chunk size must be positive");
        Self {
            kv,
            blob_id,
            chunk_size,
            buf: Vec::with_capacity(chunk_size),
            chunks: 0,
            size: 0,
            algorithm,
            hasher: algorithm.hasher(),
        }
    }

    pub fn write(&mut self, mut data: &[u8]) -> Result<()> {
        self.hasher.update(data);
        self.size += data.len() as u64;
        while !data.is_empty() {
            let take = (self.chunk_size - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.buf.len() == self.chunk_size {
                self.flush()?;
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        self.kv
            .set(&chunk_key(&self.blob_id, self.chunks), &self.buf)?;
        self.chunks += 1;
        self.buf.clear();
        Ok(())
    }

    /// Stores the last partial chunk and returns what was written.
    pub fn finish(mut self) -> Result<StoredBlob> {
        if !self.buf.is_empty() {
            self.flush()?;
        }
        Ok(StoredBlob {
            blob_id: self.blob_id,
            size: self.size,
            digest: self.hasher.finish_hex(),
            algorithm: self.algorithm,
            chunk_size: self.chunk_size as u64,
        })
    }

    /// Deletes the chunks written so far (best effort: leftovers are only unreferenced bytes).
    pub fn abort(self) {
        for i in 0..self.chunks {
            let _ = self.kv.delete(&chunk_key(&self.blob_id, i));
        }
    }
}

/// Reads one chunk of a committed blob; a missing chunk means the store lost data.
pub fn read_chunk<K: KeyValue + ?Sized>(kv: &K, blob_id: &str, index: u64) -> Result<Vec<u8>> {
    kv.get(&chunk_key(blob_id, index))?
        .ok_or_else(|| StoreError::Corrupt(format!("chunk {index} of blob {blob_id} is missing")))
}

/// Deletes the chunks of a blob whose size is unknown (an upload cut off mid-way): chunk by
/// chunk until the first missing one.
pub fn delete_partial_blob<K: KeyValue + ?Sized>(kv: &K, blob_id: &str) -> Result<u64> {
    let mut index = 0;
    while kv.exists(&chunk_key(blob_id, index))? {
        kv.delete(&chunk_key(blob_id, index))?;
        index += 1;
    }
    Ok(index)
}

pub fn delete_blob<K: KeyValue + ?Sized>(
    kv: &K,
    blob_id: &str,
    size: u64,
    chunk_size: u64,
) -> Result<()> {
    for i in 0..chunk_count(size, chunk_size) {
        kv.delete(&chunk_key(blob_id, i))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::MemoryKv;

    fn store(
        data: &[u8],
        chunk: usize,
        write_step: usize,
        alg: DigestAlgorithm,
    ) -> (MemoryKv, StoredBlob) {
        let kv = MemoryKv::default();
        let mut w = BlobWriter::new(&kv, "b1".into(), alg, chunk);
        for piece in data.chunks(write_step) {
            w.write(piece).unwrap();
        }
        let blob = w.finish().unwrap();
        (kv, blob)
    }

    fn read_all(kv: &MemoryKv, blob: &StoredBlob) -> Vec<u8> {
        (0..chunk_count(blob.size, blob.chunk_size))
            .flat_map(|i| read_chunk(kv, &blob.blob_id, i).unwrap())
            .collect()
    }

    #[test]
    fn bytes_and_digests_round_trip() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
        for (chunk, step) in [(1024, 1), (1024, 1024), (1000, 333), (20_000, 4096)] {
            let (kv, blob) = store(&data, chunk, step, DigestAlgorithm::Blake3);
            assert_eq!(blob.size, data.len() as u64);
            assert_eq!(blob.digest, blake3::hash(&data).to_hex().to_string());
            assert_eq!(read_all(&kv, &blob), data);
            assert_eq!(
                kv.0.borrow().len() as u64,
                chunk_count(blob.size, blob.chunk_size)
            );
        }
    }

    #[test]
    fn sha256_matches_a_known_vector() {
        let (_, blob) = store(b"abc", 1024, 1, DigestAlgorithm::Sha256);
        assert_eq!(
            blob.digest,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn empty_blob_has_no_chunks() {
        let (kv, blob) = store(b"", 1024, 1, DigestAlgorithm::Blake3);
        assert_eq!(blob.size, 0);
        assert!(kv.0.borrow().is_empty());
        assert_eq!(read_all(&kv, &blob), b"");
    }

    #[test]
    fn abort_and_delete_leave_nothing() {
        let kv = MemoryKv::default();
        let mut w = BlobWriter::new(&kv, "b2".into(), DigestAlgorithm::Blake3, 10);
        w.write(&[1; 35]).unwrap();
        assert_eq!(kv.0.borrow().len(), 3);
        w.abort();
        assert!(kv.0.borrow().is_empty());
        let (kv, blob) = store(&[2; 35], 10, 7, DigestAlgorithm::Blake3);
        delete_blob(&kv, &blob.blob_id, blob.size, blob.chunk_size).unwrap();
        assert!(kv.0.borrow().is_empty());
        assert!(matches!(
            read_chunk(&kv, "b1", 0),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[test]
    fn partial_blobs_are_deleted_without_knowing_their_size() {
        let kv = MemoryKv::default();
        let mut w = BlobWriter::new(&kv, "cut".into(), DigestAlgorithm::Blake3, 10);
        w.write(&[1; 45]).unwrap();
        // Dropped without finish or abort: as if the process died.
        drop(w);
        kv.set("blob/other/0000000000", b"keep").unwrap();
        assert_eq!(delete_partial_blob(&kv, "cut").unwrap(), 4);
        assert_eq!(kv.0.borrow().len(), 1);
    }

    #[test]
    fn algorithm_names() {
        assert_eq!(
            DigestAlgorithm::parse("BLAKE3"),
            Some(DigestAlgorithm::Blake3)
        );
        assert_eq!(DigestAlgorithm::parse(""), Some(DigestAlgorithm::Blake3));
        assert_eq!(
            DigestAlgorithm::parse("sha256"),
            Some(DigestAlgorithm::Sha256)
        );
        assert_eq!(DigestAlgorithm::parse("md5"), None);
    }
}
