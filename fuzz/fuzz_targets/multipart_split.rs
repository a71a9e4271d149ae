//! Arbitrary bytes through `MultipartParser`, split at input-derived points.
//!
//! Input: `<boundary>\n<body>` (boundary: up to 70 bytes, lossy UTF-8); without a `\n` in the
//! first 71 bytes, the whole input is the body and the boundary is `boundary`.
//! Checks: no panic; events well nested; the same events (data coalesced), error and
//! done-state whatever the split points (one shot = byte by byte = random chunks = two
//! pieces); no part's data contains the delimiter; data never exceeds the body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use registry_core::multipart::boundary_from_content_type;
use registry_core_fuzz::{feed, find, fnv1a, random_cuts, Ev};

fuzz_target!(|data: &[u8]| {
    let (boundary, body) = match data.iter().take(71).position(|&b| b == b'\n') {
        Some(i) => (
            String::from_utf8_lossy(&data[..i]).into_owned(),
            &data[i + 1..],
        ),
        None => ("boundary".to_string(), data),
    };
    // The header-side helper: never panics, only sane boundaries.
    if let Ok(b) = boundary_from_content_type(&format!("multipart/form-data; boundary={boundary}"))
    {
        assert!(!b.is_empty() && b.len() <= 70);
    }

    let one_shot = feed(&boundary, body, &[]);

    let mut delimiter = b"\r\n--".to_vec();
    delimiter.extend_from_slice(boundary.as_bytes());
    let mut data_len = 0;
    for ev in &one_shot.events {
        if let Ev::Data(d) = ev {
            assert!(
                find(d, &delimiter).is_none(),
                "part data contains the delimiter"
            );
            data_len += d.len();
        }
    }
    assert!(data_len <= body.len());

    let seed = fnv1a(data);
    let every_byte: Vec<usize> = (1..body.len()).collect();
    let max_chunk = 1 + (seed >> 56) as usize % 64;
    let splits = [
        every_byte,
        random_cuts(body.len(), seed, max_chunk),
        random_cuts(body.len(), seed.rotate_left(17), 3),
        vec![(seed as usize) % (body.len() + 1)],
    ];
    for cuts in &splits {
        let split = feed(&boundary, body, cuts);
        let shown = &cuts[..cuts.len().min(16)];
        assert_eq!(one_shot, split, "split at {shown:?}… differs from one shot");
    }
});
