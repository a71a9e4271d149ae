//! BLAKE3 and SHA-256 over streams and files.

use crate::api::{Algorithm, Digest};
use sha2::Digest as _;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

pub enum Hasher {
    Blake3(Box<blake3::Hasher>),
    Sha256(sha2::Sha256),
}

impl Hasher {
    pub fn new(algorithm: Algorithm) -> Hasher {
        match algorithm {
            Algorithm::Blake3 => Hasher::Blake3(Box::new(blake3::Hasher::new())),
            Algorithm::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
        }
    }

    pub fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Blake3(h) => {
                h.update(bytes);
            }
            Hasher::Sha256(h) => h.update(bytes),
        }
    }

    pub fn finish(self) -> Digest {
        match self {
            Hasher::Blake3(h) => Digest {
                algorithm: Algorithm::Blake3,
                hex: h.finalize().to_hex().to_string(),
            },
            Hasher::Sha256(h) => Digest {
                algorithm: Algorithm::Sha256,
                hex: h.finalize().iter().map(|b| format!("{b:02x}")).collect(),
            },
        }
    }
}

/// The digest and length of everything `reader` yields.
pub fn of_reader(algorithm: Algorithm, mut reader: impl Read) -> io::Result<(Digest, u64)> {
    let mut hasher = Hasher::new(algorithm);
    let mut buf = vec![0u8; 1 << 20];
    let mut len = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        len += n as u64;
    }
    Ok((hasher.finish(), len))
}

pub fn of_file(algorithm: Algorithm, path: &Path) -> io::Result<(Digest, u64)> {
    of_reader(algorithm, File::open(path)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digests() {
        let (b3, len) = of_reader(Algorithm::Blake3, &b"abc"[..]).unwrap();
        assert_eq!(len, 3);
        assert_eq!(
            b3.hex,
            "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85"
        );
        let (sha, _) = of_reader(Algorithm::Sha256, &b"abc"[..]).unwrap();
        assert_eq!(
            sha.hex,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
