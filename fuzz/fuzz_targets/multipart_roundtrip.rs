//! Well-formed bodies built from fuzzer-chosen parts parse back to exactly those parts,
//! however they are split.
//!
//! The body is framed as httpx (the opsml client) frames it: `--B\r\n`, `Content-Disposition:
//! form-data; name="…"[; filename="…"]`, optional `Content-Type`, `\r\n\r\n`, data, `\r\n--B`,
//! …, `--B--`; plus an optional preamble, transport padding after delimiters, an epilogue, and
//! optionally a header block padded to just under `MAX_HEADER_BYTES`. Inputs whose data or
//! preamble contain the delimiter are skipped (they are not well-formed).
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use registry_core::multipart::{PartHeaders, MAX_HEADER_BYTES};
use registry_core_fuzz::{feed, find, random_cuts, Ev};

/// RFC 2046 `bchars` (the space is left out so a boundary never ends in one).
const BCHARS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'()+_,-./:=?";

#[derive(Arbitrary, Debug)]
enum Boundary {
    /// httpx: 32 lowercase hex characters.
    Hex(u128),
    Chars(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
struct Part {
    name: String,
    filename: Option<String>,
    content_type: Option<String>,
    data: Vec<u8>,
    /// Transport padding after this part's opening delimiter.
    padding: u8,
}

#[derive(Arbitrary, Debug)]
struct Input {
    boundary: Boundary,
    preamble: Option<Vec<u8>>,
    parts: Vec<Part>,
    epilogue: Vec<u8>,
    /// Pads the first part's header block to `MAX_HEADER_BYTES - n` bytes.
    pad_header: Option<u8>,
    split_seed: u64,
    max_chunk: u16,
    cuts: Vec<u16>,
}

/// What the quoted-string-less header syntax can carry.
fn param(s: &str) -> String {
    s.chars()
        .filter(|c| !matches!(c, '"' | ';' | '\r' | '\n'))
        .collect()
}

fn header_text(s: &str) -> String {
    s.chars().filter(|c| !matches!(c, '\r' | '\n')).collect()
}

fuzz_target!(|input: Input| {
    let boundary = match &input.boundary {
        Boundary::Hex(n) => format!("{n:032x}"),
        Boundary::Chars(raw) => {
            let b: String = raw
                .iter()
                .take(70)
                .map(|&c| BCHARS[c as usize % BCHARS.len()] as char)
                .collect();
            if b.is_empty() {
                return;
            }
            b
        }
    };
    let mut delimiter = b"\r\n--".to_vec();
    delimiter.extend_from_slice(boundary.as_bytes());

    let mut body = Vec::new();
    // Offsets where something structural starts; every split around them is tried.
    let mut marks = Vec::new();
    if let Some(pre) = &input.preamble {
        let mut seeded = b"\r\n".to_vec();
        seeded.extend_from_slice(pre);
        seeded.extend_from_slice(&delimiter);
        if find(&seeded, &delimiter) != Some(2 + pre.len()) {
            return;
        }
        body.extend_from_slice(pre);
        body.extend_from_slice(b"\r\n");
    }
    let mut expected = Vec::new();
    for (i, part) in input.parts.iter().enumerate() {
        let mut framed = part.data.clone();
        framed.extend_from_slice(&delimiter);
        if find(&framed, &delimiter) != Some(part.data.len()) {
            return;
        }
        marks.push(body.len());
        body.extend_from_slice(b"--");
        body.extend_from_slice(boundary.as_bytes());
        for k in 0..part.padding % 4 {
            body.push(if (part.padding >> (4 + k)) & 1 == 1 {
                b'\t'
            } else {
                b' '
            });
        }
        body.extend_from_slice(b"\r\n");

        let name = param(&part.name);
        let filename = part.filename.as_deref().map(param);
        let content_type = part.content_type.as_deref().map(header_text);
        let mut block = format!("Content-Disposition: form-data; name=\"{name}\"");
        if let Some(f) = &filename {
            block.push_str(&format!("; filename=\"{f}\""));
        }
        if let Some(ct) = &content_type {
            block.push_str(&format!("\r\nContent-Type: {ct}"));
        }
        if let (0, Some(n)) = (i, input.pad_header) {
            let target = MAX_HEADER_BYTES - usize::from(n % 64);
            let line = "\r\nX-Pad: ";
            if block.len() + line.len() <= target {
                block.push_str(line);
                let fill = target - block.len();
                block.push_str(&"a".repeat(fill));
                assert_eq!(block.len(), target);
            }
        }
        body.extend_from_slice(block.as_bytes());
        marks.push(body.len());
        body.extend_from_slice(b"\r\n\r\n");
        body.extend_from_slice(&part.data);
        body.extend_from_slice(b"\r\n");

        expected.push(Ev::Start(PartHeaders {
            name: Some(name),
            filename,
            content_type: content_type.map(|ct| ct.trim().to_string()),
        }));
        if !part.data.is_empty() {
            expected.push(Ev::Data(part.data.clone()));
        }
        expected.push(Ev::End);
    }
    marks.push(body.len());
    body.extend_from_slice(b"--");
    body.extend_from_slice(boundary.as_bytes());
    body.extend_from_slice(b"--");
    marks.push(body.len());
    body.extend_from_slice(&input.epilogue);

    let check = |cuts: &[usize], how: &str| {
        let got = feed(&boundary, &body, cuts);
        let shown = &cuts[..cuts.len().min(16)];
        assert_eq!(
            got.result,
            Ok(()),
            "{how}: body {} bytes, cuts {shown:?}…",
            body.len()
        );
        assert!(got.done, "{how}");
        assert_eq!(got.events, expected, "{how}: cuts {shown:?}…");
    };
    check(&[], "one shot");
    // At most ~512 pieces: byte-sized pieces over a 16 KiB header block would cost O(n²) in
    // header-terminator searches and slow the target down a hundredfold; the splits around
    // every structural mark below cover the byte-exact cases.
    let max_chunk = usize::from(input.max_chunk).max(body.len() / 512).max(1);
    check(
        &random_cuts(body.len(), input.split_seed, max_chunk),
        "random chunks",
    );
    let cuts: Vec<usize> = input.cuts.iter().map(|&c| usize::from(c)).collect();
    check(&cuts, "chosen cuts");
    // Two pieces, cut at every offset within 5 bytes of a structural mark.
    for &m in &marks {
        for at in m.saturating_sub(5)..=m + 5 {
            check(&[at], "two pieces");
        }
    }
});
