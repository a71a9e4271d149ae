//! Test data: deterministic pseudo-random bytes, digests, and the multipart framing the opsml
//! client puts around a streamed file.

use std::io::{self, Chain, Cursor, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// One step of SplitMix64: a fast, well-mixed 64-bit generator (not cryptographic).
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `len` deterministic pseudo-random bytes as a `Read`: the same `(seed, len)` always gives the
/// same bytes, so a test can regenerate what it sent instead of keeping it in memory.
#[derive(Clone, Debug)]
pub struct PseudoRandom {
    state: u64,
    remaining: u64,
    word: [u8; 8],
    used: usize,
}

impl PseudoRandom {
    pub fn new(seed: u64, len: u64) -> Self {
        Self {
            state: seed,
            remaining: len,
            word: [0; 8],
            used: 8,
        }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> u64 {
        self.remaining
    }
}

/// Shorthand for [`PseudoRandom::new`].
pub fn pseudo_random(seed: u64, len: u64) -> PseudoRandom {
    PseudoRandom::new(seed, len)
}

impl Read for PseudoRandom {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = out
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let out = &mut out[..n];
        let mut i = 0;
        // Finish the current word, then whole words, then the start of the next word.
        while i < n && self.used < 8 {
            out[i] = self.word[self.used];
            self.used += 1;
            i += 1;
        }
        let mut words = out[i..].chunks_exact_mut(8);
        for chunk in &mut words {
            chunk.copy_from_slice(&splitmix64(&mut self.state).to_le_bytes());
        }
        let tail = words.into_remainder();
        if !tail.is_empty() {
            self.word = splitmix64(&mut self.state).to_le_bytes();
            let k = tail.len();
            tail.copy_from_slice(&self.word[..k]);
            self.used = k;
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

/// Length and BLAKE3 digest of everything `reader` yields, streamed (nothing is kept).
pub fn blake3_of(mut reader: impl Read) -> (u64, blake3::Hash) {
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut len = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => panic!("reading the data to hash: {e}"),
        };
        hasher.update(&buf[..n]);
        len += n as u64;
    }
    (len, hasher.finalize())
}

/// `2 * words * 8` lowercase hex characters that differ between calls and processes (time, pid
/// and a counter mixed by SplitMix64): uids and multipart boundaries.
fn hex_words(words: usize) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mut state = nanos
        ^ (u64::from(std::process::id()) << 32)
        ^ COUNTER
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(0x2545_F491_4F6C_DD1D);
    (0..words)
        .map(|_| format!("{:016x}", splitmix64(&mut state)))
        .collect()
}

/// 32 lowercase hex characters, like Python's `uuid4().hex` (the client's card uids).
pub fn random_hex() -> String {
    hex_words(2)
}

/// The `multipart/form-data` framing that httpx (the opsml client) puts around one file: a
/// single part named `file` with the file's basename, `application/octet-stream`, and a random
/// 32-hex-character boundary. The file bytes themselves are streamed between `head` and `tail`.
#[derive(Clone, Debug)]
pub struct Multipart {
    pub boundary: String,
    pub head: Vec<u8>,
    pub tail: Vec<u8>,
}

/// A multipart body: the framing chained around the streamed file.
pub type MultipartBody<R> = Chain<Chain<Cursor<Vec<u8>>, R>, Cursor<Vec<u8>>>;

impl Multipart {
    pub fn new(filename: &str) -> Self {
        Self::with_part_content_type(filename, "application/octet-stream")
    }

    pub fn with_part_content_type(filename: &str, content_type: &str) -> Self {
        let boundary = random_hex();
        let head = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; \
             filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n"
        )
        .into_bytes();
        let tail = format!("\r\n--{boundary}--\r\n").into_bytes();
        Self {
            boundary,
            head,
            tail,
        }
    }

    /// The request's `Content-Type` header.
    pub fn content_type(&self) -> String {
        format!("multipart/form-data; boundary={}", self.boundary)
    }

    /// The whole body's length for a file of `file_len` bytes (the `Content-Length`).
    pub fn body_len(&self, file_len: u64) -> u64 {
        self.head.len() as u64 + file_len + self.tail.len() as u64
    }

    /// The complete body, streamed: head, file bytes, closing boundary.
    pub fn body<R: Read>(self, file: R) -> MultipartBody<R> {
        Cursor::new(self.head)
            .chain(file)
            .chain(Cursor::new(self.tail))
    }

    /// A body cut short: the head and the file bytes, but no closing boundary. Its length is
    /// `head.len() + file_len`.
    pub fn body_without_closing<R: Read>(self, file: R) -> Chain<Cursor<Vec<u8>>, R> {
        Cursor::new(self.head).chain(file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudo_random_is_deterministic_and_exact_in_length() {
        let mut a = Vec::new();
        pseudo_random(7, 1001).read_to_end(&mut a).unwrap();
        assert_eq!(a.len(), 1001);
        // Reading in odd-sized pieces gives the same bytes as one big read.
        let mut b = Vec::new();
        let mut r = pseudo_random(7, 1001);
        let mut buf = [0u8; 13];
        loop {
            let n = r.read(&mut buf[..(b.len() % 13) + 1]).unwrap();
            if n == 0 {
                break;
            }
            b.extend_from_slice(&buf[..n]);
        }
        assert_eq!(a, b);
        let mut c = Vec::new();
        pseudo_random(8, 1001).read_to_end(&mut c).unwrap();
        assert_ne!(a, c);
        assert_eq!(blake3_of(&a[..]).1, blake3_of(pseudo_random(7, 1001)).1);
    }

    #[test]
    fn multipart_framing_matches_the_client() {
        let m = Multipart::new("model.bin");
        assert_eq!(m.boundary.len(), 32);
        assert!(m.boundary.bytes().all(|b| b.is_ascii_hexdigit()));
        let b = m.boundary.clone();
        let len = m.body_len(3);
        let mut body = Vec::new();
        m.body(&b"abc"[..]).read_to_end(&mut body).unwrap();
        assert_eq!(body.len() as u64, len);
        let expected = format!(
            "--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"model.bin\"\r\n\
             Content-Type: application/octet-stream\r\n\r\nabc\r\n--{b}--\r\n"
        );
        assert_eq!(String::from_utf8(body).unwrap(), expected);
        assert_ne!(random_hex(), random_hex());
    }
}
