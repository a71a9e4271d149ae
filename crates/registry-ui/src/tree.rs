//! A card's files as a tree: folders first appear as their own rows, each file under them.

use crate::pages::query_string;
use registry_core::card::utc_date;
use registry_core::write_path::client_path;
use registry_store::files::FileRecord;

/// One row of the tree, indented by `depth`.
pub struct Entry {
    pub depth: usize,
    pub name: String,
    pub folder: bool,
    /// Bytes, for files.
    pub size: String,
    pub digest: String,
    /// The digest's first 12 hex digits, for the table (the whole one is its title).
    pub digest_short: String,
    pub created: String,
    /// A file downloads as itself; a folder as a zip of everything under it.
    pub href: String,
}

/// A size as people read it: `1.5 MiB`, `512 B`.
fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// The rows for `files` (in path order, as `files::list` returns them) under `root`.
pub fn entries(root: &str, files: &[FileRecord]) -> Vec<Entry> {
    let mut rows = Vec::new();
    let mut open: Vec<String> = Vec::new();
    for file in files {
        let relative = file
            .path
            .strip_prefix(root)
            .map(|r| r.trim_start_matches('/'))
            .unwrap_or(&file.path);
        let mut parts: Vec<&str> = relative.split('/').collect();
        let file_name = parts.pop().unwrap_or_default();
        // Close the folders this file is not in, then open the ones it is in.
        let shared = open
            .iter()
            .zip(&parts)
            .take_while(|(a, b)| a.as_str() == **b)
            .count();
        open.truncate(shared);
        for part in &parts[shared..] {
            let mut segments = vec![root];
            segments.extend(open.iter().map(String::as_str));
            segments.push(part);
            let path = segments.join("/");
            rows.push(Entry {
                depth: open.len(),
                name: format!("{part}/"),
                folder: true,
                size: String::new(),
                digest: String::new(),
                digest_short: String::new(),
                created: String::new(),
                href: format!(
                    "/opsml/files/download/ui{}",
                    query_string(&[("path", &client_path(&path))])
                ),
            });
            open.push(part.to_string());
        }
        rows.push(Entry {
            depth: open.len(),
            name: file_name.to_string(),
            folder: false,
            size: human_size(file.size),
            digest: format!("{}:{}", file.digest_algorithm.name(), file.digest),
            digest_short: format!(
                "{}:{}…",
                file.digest_algorithm.name(),
                file.digest.get(..12).unwrap_or(&file.digest)
            ),
            created: utc_date(file.created),
            href: format!(
                "/opsml/files/download{}",
                query_string(&[("path", &client_path(&file.path))])
            ),
        });
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use registry_store::blobs::DigestAlgorithm;

    fn file(path: &str, size: u64) -> FileRecord {
        FileRecord {
            path: path.into(),
            size,
            digest: "ab12".into(),
            digest_algorithm: DigestAlgorithm::Blake3,
            blob_id: "b".into(),
            chunk_size: 1,
            created: 1_764_460_800,
        }
    }

    #[test]
    fn folders_open_once_and_files_sit_under_them() {
        let root = "OPSML_MODEL_REGISTRY/r/m/v1.0.0";
        let files = [
            file(&format!("{root}/a/b/x.bin"), 10),
            file(&format!("{root}/a/b/y.bin"), 2048),
            file(&format!("{root}/a/z.txt"), 3 * 1024 * 1024 / 2),
            file(&format!("{root}/model.onnx"), 5),
        ];
        let rows: Vec<(usize, String, String)> = entries(root, &files)
            .into_iter()
            .map(|e| (e.depth, e.name, e.size))
            .collect();
        let expected = [
            (0, "a/", ""),
            (1, "b/", ""),
            (2, "x.bin", "10 B"),
            (2, "y.bin", "2.0 KiB"),
            (1, "z.txt", "1.5 MiB"),
            (0, "model.onnx", "5 B"),
        ];
        let expected: Vec<(usize, String, String)> = expected
            .iter()
            .map(|(d, n, s)| (*d, n.to_string(), s.to_string()))
            .collect();
        assert_eq!(rows, expected);
        let all = entries(root, &files);
        assert_eq!(
            all[1].href,
            "/opsml/files/download/ui?path=opsml-root%3A/OPSML_MODEL_REGISTRY/r/m/v1.0.0/a/b"
        );
        assert_eq!(all[5].digest, "blake3:ab12");
        assert_eq!(all[5].created, "2025-11-30");
    }
}
