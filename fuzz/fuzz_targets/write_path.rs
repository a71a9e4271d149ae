//! `validate_write_path` / `validate_prefix`.
//!
//! Checks: no panic; an accepted path is `opsml-root:/` + the key (+ one `/` for a prefix); the
//! key's first segment is the registry's folder (`OPSML_*_REGISTRY`); no segment is empty,
//! `.` or `..`, or over 255 bytes; no backslash, control character or `%XX` anywhere; the key
//! is at most 1024 bytes; a write path has a segment below the folder; `client_path(key)`
//! validates back to the same key.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use registry_core::write_path::{client_path, MAX_KEY_LEN, MAX_SEGMENT_LEN, PROXY_ROOT};
use registry_core::{validate_prefix, validate_write_path, RegistryType, StorageKey};

const FOLDERS: [&str; 7] = [
    "OPSML_DATA_REGISTRY",
    "OPSML_MODEL_REGISTRY",
    "OPSML_RUN_REGISTRY",
    "OPSML_PIPELINE_REGISTRY",
    "OPSML_PROJECT_REGISTRY",
    "OPSML_AUDIT_REGISTRY",
    "OPSML_BASE_REGISTRY",
];

const PIECES: [&str; 12] = [
    "..",
    ".",
    "",
    "%2e",
    "%2F",
    "%",
    "\\",
    "\0",
    "\u{85}",
    "v1.0.0",
    "model.joblib",
    "a b",
];

#[derive(Arbitrary, Debug)]
enum Segment {
    Piece(u8),
    Text(String),
    Long(u16),
}

#[derive(Arbitrary, Debug)]
enum PathText {
    Raw(String),
    Built {
        prefix: bool,
        folder: u8,
        segments: Vec<Segment>,
        trailing_slash: bool,
    },
}

fn render(p: &PathText) -> String {
    match p {
        PathText::Raw(s) => s.clone(),
        PathText::Built {
            prefix,
            folder,
            segments,
            trailing_slash,
        } => {
            let mut s = if *prefix {
                PROXY_ROOT.to_string()
            } else {
                "/".to_string()
            };
            s.push_str(FOLDERS[*folder as usize % FOLDERS.len()]);
            for seg in segments {
                s.push('/');
                match seg {
                    Segment::Piece(i) => s.push_str(PIECES[*i as usize % PIECES.len()]),
                    Segment::Text(t) => s.push_str(t),
                    Segment::Long(n) => s.push_str(&"x".repeat(*n as usize % 1100)),
                }
            }
            if *trailing_slash {
                s.push('/');
            }
            s
        }
    }
}

fn has_percent_escape(s: &str) -> bool {
    s.as_bytes()
        .windows(3)
        .any(|w| w[0] == b'%' && w[1].is_ascii_hexdigit() && w[2].is_ascii_hexdigit())
}

fn check_key(path: &str, key: &StorageKey, prefix: bool) {
    let k = key.as_str();
    let client = client_path(k);
    assert_eq!(key.client_path(), client);
    if prefix {
        assert!(
            path == client || path == format!("{client}/"),
            "{path:?} -> {k:?}"
        );
    } else {
        assert_eq!(path, client);
    }
    assert!(k.len() <= MAX_KEY_LEN);
    let segments: Vec<&str> = k.split('/').collect();
    assert_eq!(key.segments().collect::<Vec<_>>(), segments);
    assert_eq!(RegistryType::from_storage_folder(segments[0]), key.registry());
    match key.registry() {
        Some(registry) => {
            assert_eq!(registry.storage_folder(), segments[0]);
            assert!(segments[0].starts_with("OPSML_") && segments[0].ends_with("_REGISTRY"));
        }
        None => assert_eq!(segments[0], registry_core::write_path::DEPLOYMENT_FOLDER),
    }
    assert_eq!(key.is_registry_root(), segments.len() == 1);
    if !prefix {
        assert!(segments.len() >= 2, "{k:?}");
    }
    for seg in &segments {
        assert!(!seg.is_empty() && *seg != "." && *seg != "..", "{k:?}");
        assert!(seg.len() <= MAX_SEGMENT_LEN);
    }
    assert!(!k.contains('\\'), "{k:?}");
    assert!(!k.chars().any(char::is_control), "{k:?}");
    assert!(!has_percent_escape(k), "{k:?}");
    assert!(key.contains(k) && key.contains(&format!("{k}/x")) && !key.contains(&format!("{k}x")));

    // Round trip through the client's form.
    assert_eq!(validate_prefix(&client).as_ref(), Ok(key));
    if !key.is_registry_root() {
        assert_eq!(validate_write_path(&client).as_ref(), Ok(key));
    }
}

fuzz_target!(|input: PathText| {
    let path = render(&input);
    if let Ok(key) = validate_write_path(&path) {
        check_key(&path, &key, false);
        assert_eq!(validate_prefix(&path).as_ref(), Ok(&key));
    }
    if let Ok(key) = validate_prefix(&path) {
        check_key(&path, &key, true);
    }
});
