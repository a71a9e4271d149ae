//! A streaming ZIP writer for folder downloads: entries are stored (no compression: models
//! and parquet files are compressed already), each entry's size and CRC-32 follow its bytes
//! in a data descriptor, and every size and offset is ZIP64, so archives of any size stream
//! in constant memory. The caller sends the returned byte pieces in order.

const VERSION: u16 = 45; // ZIP64
/// Bit 3: sizes and CRC in a data descriptor; bit 11: UTF-8 names.
const FLAGS: u16 = 0x0808;
/// 1980-01-01 00:00 in MS-DOS form (the archive carries no meaningful times).
const DOS_DATE: u16 = (1 << 5) | 1;

struct Entry {
    name: String,
    crc: u32,
    size: u64,
    offset: u64,
}

pub struct ZipWriter {
    entries: Vec<Entry>,
    offset: u64,
    current: Option<(crc32fast::Hasher, u64)>,
}

fn u16le(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}
fn u32le(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}
fn u64le(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

impl Default for ZipWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl ZipWriter {
    pub fn new() -> Self {
        Self {
            entries: Vec::new(),
            offset: 0,
            current: None,
        }
    }

    /// Starts an entry; returns its local header.
    pub fn start_entry(&mut self, name: &str) -> Vec<u8> {
        assert!(self.current.is_none(), "finish the previous entry first");
        let mut out = Vec::with_capacity(50 + name.len());
        u32le(&mut out, 0x0403_4b50);
        u16le(&mut out, VERSION);
        u16le(&mut out, FLAGS);
        u16le(&mut out, 0); // stored
        u16le(&mut out, 0); // time
        u16le(&mut out, DOS_DATE);
        u32le(&mut out, 0); // CRC-32: in the data descriptor
        u32le(&mut out, 0xFFFF_FFFF); // sizes: in the ZIP64 data descriptor
        u32le(&mut out, 0xFFFF_FFFF);
        u16le(&mut out, name.len() as u16);
        u16le(&mut out, 20);
        out.extend_from_slice(name.as_bytes());
        // ZIP64 extra field, sizes to follow in the descriptor.
        u16le(&mut out, 0x0001);
        u16le(&mut out, 16);
        u64le(&mut out, 0);
        u64le(&mut out, 0);
        self.entries.push(Entry {
            name: name.to_string(),
            crc: 0,
            size: 0,
            offset: self.offset,
        });
        self.offset += out.len() as u64;
        self.current = Some((crc32fast::Hasher::new(), 0));
        out
    }

    /// Accounts for bytes of the current entry (the caller sends them as they are).
    pub fn data(&mut self, bytes: &[u8]) {
        let (hasher, size) = self.current.as_mut().expect("an entry is open");
        hasher.update(bytes);
        *size += bytes.len() as u64;
        self.offset += bytes.len() as u64;
    }

    /// Ends the current entry; returns its data descriptor.
    pub fn finish_entry(&mut self) -> Vec<u8> {
        let (hasher, size) = self.current.take().expect("an entry is open");
        let crc = hasher.finalize();
        let entry = self.entries.last_mut().expect("an entry is open");
        entry.crc = crc;
        entry.size = size;
        let mut out = Vec::with_capacity(24);
        u32le(&mut out, 0x0807_4b50);
        u32le(&mut out, crc);
        u64le(&mut out, size);
        u64le(&mut out, size);
        self.offset += out.len() as u64;
        out
    }

    /// The central directory and the end records.
    pub fn finish(self) -> Vec<u8> {
        assert!(self.current.is_none(), "finish the last entry first");
        let directory_offset = self.offset;
        let mut out = Vec::new();
        for entry in &self.entries {
            u32le(&mut out, 0x0201_4b50);
            u16le(&mut out, (3 << 8) | VERSION); // made by: Unix
            u16le(&mut out, VERSION);
            u16le(&mut out, FLAGS);
            u16le(&mut out, 0);
            u16le(&mut out, 0);
            u16le(&mut out, DOS_DATE);
            u32le(&mut out, entry.crc);
            u32le(&mut out, 0xFFFF_FFFF);
            u32le(&mut out, 0xFFFF_FFFF);
            u16le(&mut out, entry.name.len() as u16);
            u16le(&mut out, 28);
            u16le(&mut out, 0); // comment
            u16le(&mut out, 0); // disk
            u16le(&mut out, 0); // internal attributes
            u32le(&mut out, 0o100_644 << 16); // a regular file, rw-r--r--
            u32le(&mut out, 0xFFFF_FFFF);
            out.extend_from_slice(entry.name.as_bytes());
            u16le(&mut out, 0x0001);
            u16le(&mut out, 24);
            u64le(&mut out, entry.size);
            u64le(&mut out, entry.size);
            u64le(&mut out, entry.offset);
        }
        let directory_size = out.len() as u64;
        let zip64_end = directory_offset + directory_size;
        let count = self.entries.len() as u64;
        u32le(&mut out, 0x0606_4b50);
        u64le(&mut out, 44);
        u16le(&mut out, VERSION);
        u16le(&mut out, VERSION);
        u32le(&mut out, 0);
        u32le(&mut out, 0);
        u64le(&mut out, count);
        u64le(&mut out, count);
        u64le(&mut out, directory_size);
        u64le(&mut out, directory_offset);
        u32le(&mut out, 0x0706_4b50);
        u32le(&mut out, 0);
        u64le(&mut out, zip64_end);
        u32le(&mut out, 1);
        u32le(&mut out, 0x0605_4b50);
        u16le(&mut out, 0);
        u16le(&mut out, 0);
        u16le(&mut out, 0xFFFF);
        u16le(&mut out, 0xFFFF);
        u32le(&mut out, 0xFFFF_FFFF);
        u32le(&mut out, 0xFFFF_FFFF);
        u16le(&mut out, 0);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut zip = ZipWriter::new();
        let mut out = Vec::new();
        for (name, bytes) in files {
            out.extend(zip.start_entry(name));
            // In two pieces, as a stream would deliver them.
            let (a, b) = bytes.split_at(bytes.len() / 2);
            zip.data(a);
            out.extend_from_slice(a);
            zip.data(b);
            out.extend_from_slice(b);
            out.extend(zip.finish_entry());
        }
        out.extend(zip.finish());
        out
    }

    #[test]
    fn layout_and_checksums() {
        let out = archive(&[("a.txt", b"hello"), ("dir/b.bin", b"")]);
        assert_eq!(&out[..4], &0x0403_4b50u32.to_le_bytes());
        // The first data descriptor carries CRC-32("hello") and the size twice.
        let at = 30 + 5 + 20 + 5;
        assert_eq!(&out[at..at + 4], &0x0807_4b50u32.to_le_bytes());
        assert_eq!(&out[at + 4..at + 8], &0x3610_a686u32.to_le_bytes());
        assert_eq!(&out[at + 8..at + 16], &5u64.to_le_bytes());
        // The archive ends with the classic end record, after the ZIP64 ones.
        let end = out.len() - 22;
        assert_eq!(&out[end..end + 4], &0x0605_4b50u32.to_le_bytes());
        let locator = end - 20;
        assert_eq!(&out[locator..locator + 4], &0x0706_4b50u32.to_le_bytes());
        let zip64_end = u64::from_le_bytes(out[locator + 8..locator + 16].try_into().unwrap());
        assert_eq!(
            &out[zip64_end as usize..zip64_end as usize + 4],
            &0x0606_4b50u32.to_le_bytes()
        );
        let entries = u64::from_le_bytes(
            out[zip64_end as usize + 32..zip64_end as usize + 40]
                .try_into()
                .unwrap(),
        );
        assert_eq!(entries, 2);
    }
}
