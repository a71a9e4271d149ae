//! Helpers shared by the fuzz targets (see README.md).

use registry_core::multipart::{Event, MultipartError, MultipartParser, PartHeaders};

/// A parser event with owned data; adjacent `Data` events are coalesced, so two feeds of the
/// same body compare equal whatever their split points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ev {
    Start(PartHeaders),
    Data(Vec<u8>),
    End,
}

/// Everything observable about one parse.
#[derive(Debug, PartialEq, Eq)]
pub struct Outcome {
    pub events: Vec<Ev>,
    /// The first error of `push`, else the result of `finish`.
    pub result: Result<(), MultipartError>,
    pub done: bool,
}

/// Feeds `body` to a new parser, cut at the offsets `cuts` (any order, any values: they are
/// clamped, sorted and deduplicated). Panics when events are not well nested
/// (`PartStart Data* PartEnd`)*.
pub fn feed(boundary: &str, body: &[u8], cuts: &[usize]) -> Outcome {
    let mut cuts: Vec<usize> = cuts.iter().map(|&c| c.min(body.len())).collect();
    cuts.push(0);
    cuts.push(body.len());
    cuts.sort_unstable();
    cuts.dedup();
    let mut parser = MultipartParser::new(boundary);
    let mut events: Vec<Ev> = Vec::new();
    let mut in_part = false;
    let mut result = Ok(());
    for w in cuts.windows(2) {
        let piece = &body[w[0]..w[1]];
        let pushed = parser.push(piece, |event| -> Result<(), MultipartError> {
            match event {
                Event::PartStart(h) => {
                    assert!(!in_part, "PartStart inside a part");
                    in_part = true;
                    events.push(Ev::Start(h));
                }
                Event::Data(d) => {
                    assert!(in_part, "Data outside a part");
                    match events.last_mut() {
                        Some(Ev::Data(prev)) => prev.extend_from_slice(d),
                        _ => events.push(Ev::Data(d.to_vec())),
                    }
                }
                Event::PartEnd => {
                    assert!(in_part, "PartEnd outside a part");
                    in_part = false;
                    events.push(Ev::End);
                }
            }
            Ok(())
        });
        if let Err(e) = pushed {
            result = Err(e);
            break;
        }
    }
    if result.is_ok() {
        result = parser.finish();
        if result.is_ok() {
            assert!(!in_part, "finish() succeeded inside a part");
        }
    }
    Outcome {
        events,
        result,
        done: parser.is_done(),
    }
}

/// Cut offsets for chunks of 1..=max_chunk bytes, sizes drawn from `seed`.
pub fn random_cuts(len: usize, seed: u64, max_chunk: usize) -> Vec<usize> {
    let mut state = seed | 1;
    let mut cuts = Vec::new();
    let mut at = 0;
    while at < len {
        // xorshift64
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        at += 1 + (state as usize) % max_chunk.max(1);
        cuts.push(at);
    }
    cuts
}

/// FNV-1a, to derive split points from the input itself.
pub fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// First offset of `needle` in `haystack`.
pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}
