//! A streaming `multipart/form-data` parser: bytes go in as they arrive from the network,
//! part headers and body bytes come out, and memory stays bounded by the header limit plus
//! one delimiter, whatever the size of the parts.

use std::fmt;

/// Part headers larger than this are refused (a client sending more is broken or hostile).
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// What the parser found, in order.
#[derive(Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// A part begins; its `Content-Disposition` and `Content-Type`.
    PartStart(PartHeaders),
    /// Some bytes of the current part's body.
    Data(&'a [u8]),
    /// The current part's body is complete.
    PartEnd,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartHeaders {
    pub name: Option<String>,
    pub filename: Option<String>,
    pub content_type: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultipartError {
    /// The `Content-Type` has no usable `boundary`.
    MissingBoundary,
    /// A part's header block is over [`MAX_HEADER_BYTES`].
    HeadersTooLarge,
    /// A header line is not `Name: value` or not UTF-8.
    MalformedHeader,
    /// The body ended before the closing delimiter.
    Truncated,
    /// Bytes after a delimiter are neither `--` nor a line break.
    MalformedDelimiter,
}

impl fmt::Display for MultipartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MultipartError::MissingBoundary => {
                "Content-Type must be multipart/form-data with a boundary"
            }
            MultipartError::HeadersTooLarge => "a multipart part's headers are too large",
            MultipartError::MalformedHeader => "a multipart part has a malformed header",
            MultipartError::Truncated => {
                "the multipart body ended before its closing boundary (upload cut off?)"
            }
            MultipartError::MalformedDelimiter => {
                "the multipart body has a malformed boundary line"
            }
        })
    }
}

impl std::error::Error for MultipartError {}

impl crate::HttpError for MultipartError {
    fn status(&self) -> crate::Status {
        crate::Status::BadRequest
    }
}

/// The `boundary` parameter of a `multipart/form-data` content type.
pub fn boundary_from_content_type(content_type: &str) -> Result<String, MultipartError> {
    let mut params = content_type.split(';');
    let mime = params.next().unwrap_or("").trim();
    if !mime.eq_ignore_ascii_case("multipart/form-data") {
        return Err(MultipartError::MissingBoundary);
    }
    params
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("boundary"))
        .map(|(_, v)| unquote(v.trim()).to_string())
        .filter(|b| !b.is_empty() && b.len() <= 70)
        .ok_or(MultipartError::MissingBoundary)
}

fn unquote(v: &str) -> &str {
    v.strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(v)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the first delimiter (a preamble is allowed and ignored).
    Preamble,
    /// Right after a delimiter: `--` ends the body, a line break starts a part.
    AfterDelimiter,
    Headers,
    Body,
    /// After the closing delimiter; an epilogue is ignored.
    Done,
}

pub struct MultipartParser {
    /// `\r\n--boundary`: what ends a part body.
    delimiter: Vec<u8>,
    state: State,
    buf: Vec<u8>,
}

impl MultipartParser {
    pub fn new(boundary: &str) -> Self {
        let mut delimiter = b"\r\n--".to_vec();
        delimiter.extend_from_slice(boundary.as_bytes());
        Self {
            delimiter,
            state: State::Preamble,
            // A preamble-less body starts with `--boundary` (no leading line break): seed the
            // buffer so the first delimiter looks like every other one.
            buf: b"\r\n".to_vec(),
        }
    }

    /// Feeds the next bytes of the body; `on_event` sees each event as it is found.
    pub fn push<E>(
        &mut self,
        input: &[u8],
        mut on_event: impl FnMut(Event<'_>) -> Result<(), E>,
    ) -> Result<(), E>
    where
        E: From<MultipartError>,
    {
        self.buf.extend_from_slice(input);
        let mut start = 0;
        let result = self.run(&mut start, &mut on_event);
        self.buf.drain(..start);
        result
    }

    /// Declares the body complete; fails if the closing delimiter was not seen.
    pub fn finish(&self) -> Result<(), MultipartError> {
        if self.state == State::Done {
            Ok(())
        } else {
            Err(MultipartError::Truncated)
        }
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    fn run<E>(
        &mut self,
        start: &mut usize,
        on_event: &mut impl FnMut(Event<'_>) -> Result<(), E>,
    ) -> Result<(), E>
    where
        E: From<MultipartError>,
    {
        loop {
            let pending = &self.buf[*start..];
            match self.state {
                State::Preamble => match find(pending, &self.delimiter) {
                    Some(at) => {
                        *start += at + self.delimiter.len();
                        self.state = State::AfterDelimiter;
                    }
                    None => {
                        // Keep only what could be the beginning of a delimiter.
                        *start += pending.len().saturating_sub(self.delimiter.len() - 1);
                        return Ok(());
                    }
                },
                State::AfterDelimiter => {
                    // Transport padding (spaces, tabs) may follow a delimiter. It is dropped as
                    // it arrives: kept in the buffer, endless padding would grow it unbounded.
                    let padding = pending
                        .iter()
                        .take_while(|b| **b == b' ' || **b == b'\t')
                        .count();
                    *start += padding;
                    let rest = &pending[padding..];
                    if rest.len() < 2 {
                        return Ok(());
                    }
                    match &rest[..2] {
                        b"--" => {
                            self.state = State::Done;
                            *start = self.buf.len();
                        }
                        b"\r\n" => {
                            *start += 2;
                            self.state = State::Headers;
                        }
                        _ => return Err(MultipartError::MalformedDelimiter.into()),
                    }
                }
                State::Headers => {
                    // An empty header block is a bare "\r\n".
                    let end = if pending.starts_with(b"\r\n") {
                        Some((0, 2))
                    } else {
                        find(pending, b"\r\n\r\n").map(|at| (at, 4))
                    };
                    let Some((at, sep)) = end else {
                        // Up to 3 bytes of the terminator may already be here: refuse only once
                        // a terminator could no longer start within the limit, so that the
                        // outcome does not depend on where the body was split.
                        if pending.len() > MAX_HEADER_BYTES + 3 {
                            return Err(MultipartError::HeadersTooLarge.into());
                        }
                        return Ok(());
                    };
                    if at > MAX_HEADER_BYTES {
                        return Err(MultipartError::HeadersTooLarge.into());
                    }
                    let headers = parse_part_headers(&pending[..at])?;
                    *start += at + sep;
                    self.state = State::Body;
                    on_event(Event::PartStart(headers))?;
                }
                State::Body => match find(pending, &self.delimiter) {
                    Some(at) => {
                        if at > 0 {
                            on_event(Event::Data(&pending[..at]))?;
                        }
                        *start += at + self.delimiter.len();
                        self.state = State::AfterDelimiter;
                        on_event(Event::PartEnd)?;
                    }
                    None => {
                        let safe = pending.len().saturating_sub(self.delimiter.len() - 1);
                        if safe > 0 {
                            on_event(Event::Data(&pending[..safe]))?;
                            *start += safe;
                        }
                        return Ok(());
                    }
                },
                State::Done => {
                    *start = self.buf.len();
                    return Ok(());
                }
            }
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(haystack, needle)
}

fn parse_part_headers(block: &[u8]) -> Result<PartHeaders, MultipartError> {
    let text = std::str::from_utf8(block).map_err(|_| MultipartError::MalformedHeader)?;
    let mut headers = PartHeaders::default();
    for line in text.split("\r\n").filter(|l| !l.is_empty()) {
        let (name, value) = line
            .split_once(':')
            .ok_or(MultipartError::MalformedHeader)?;
        let value = value.trim();
        if name.trim().eq_ignore_ascii_case("content-disposition") {
            for param in value.split(';').skip(1) {
                let Some((k, v)) = param.split_once('=') else {
                    continue;
                };
                let v = unquote(v.trim()).to_string();
                match k.trim().to_ascii_lowercase().as_str() {
                    "name" => headers.name = Some(v),
                    "filename" => headers.filename = Some(v),
                    _ => {}
                }
            }
        } else if name.trim().eq_ignore_ascii_case("content-type") {
            headers.content_type = Some(value.to_string());
        }
    }
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses `body` fed in pieces of `step` bytes into (headers, body bytes) per part.
    fn parse(
        body: &[u8],
        boundary: &str,
        step: usize,
    ) -> Result<Vec<(PartHeaders, Vec<u8>)>, MultipartError> {
        let mut parser = MultipartParser::new(boundary);
        let mut parts: Vec<(PartHeaders, Vec<u8>)> = Vec::new();
        let mut ended = 0;
        for piece in body.chunks(step.max(1)) {
            parser.push(piece, |event| -> Result<(), MultipartError> {
                match event {
                    Event::PartStart(h) => parts.push((h, Vec::new())),
                    Event::Data(d) => parts.last_mut().unwrap().1.extend_from_slice(d),
                    Event::PartEnd => ended += 1,
                }
                Ok(())
            })?;
        }
        parser.finish()?;
        assert_eq!(ended, parts.len());
        Ok(parts)
    }

    fn form(boundary: &str, parts: &[(&str, Option<&str>, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, filename, data) in parts {
            out.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
            match filename {
                Some(f) => out.extend_from_slice(
                    format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes(),
                ),
                None => out.extend_from_slice(
                    format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
                ),
            }
            out.extend_from_slice(data);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        out
    }

    #[test]
    fn parts_survive_every_split_point() {
        // Body bytes that look like parts of the delimiter must come through intact.
        let tricky: &[u8] = b"a\r\n--bound\r\n-\r\n--boundar";
        let body = form(
            "boundary",
            &[("file", Some("m.bin"), tricky), ("note", None, b"hi")],
        );
        for step in 1..body.len() {
            let parts = parse(&body, "boundary", step).unwrap();
            assert_eq!(parts.len(), 2, "step {step}");
            assert_eq!(parts[0].0.name.as_deref(), Some("file"));
            assert_eq!(parts[0].0.filename.as_deref(), Some("m.bin"));
            assert_eq!(
                parts[0].0.content_type.as_deref(),
                Some("application/octet-stream")
            );
            assert_eq!(parts[0].1, tricky, "step {step}");
            assert_eq!(parts[1].0.filename, None);
            assert_eq!(parts[1].1, b"hi");
        }
    }

    #[test]
    fn preamble_epilogue_and_empty_parts() {
        let mut body = b"preamble text\r\n".to_vec();
        body.extend(form("b", &[("f", Some("x"), b"")]));
        body.extend_from_slice(b"epilogue");
        let parts = parse(&body, "b", 3).unwrap();
        assert_eq!(parts.len(), 1);
        assert!(parts[0].1.is_empty());
    }

    #[test]
    fn errors_are_specific() {
        let body = form("b", &[("f", Some("x"), b"data")]);
        // Cut anywhere before the closing delimiter: truncated.
        for cut in 0..body.len() - 4 {
            assert_eq!(
                parse(&body[..cut], "b", 7).unwrap_err(),
                MultipartError::Truncated,
                "cut {cut}"
            );
        }
        assert_eq!(
            parse(b"--bXX\r\n", "b", 4).unwrap_err(),
            MultipartError::MalformedDelimiter
        );
        assert_eq!(
            parse(b"--b\r\nno colon here\r\n\r\nx\r\n--b--", "b", 4).unwrap_err(),
            MultipartError::MalformedHeader
        );
        let mut huge = b"--b\r\nX-Pad: ".to_vec();
        huge.extend(std::iter::repeat_n(b'a', MAX_HEADER_BYTES + 10));
        assert_eq!(
            parse(&huge, "b", 1000).unwrap_err(),
            MultipartError::HeadersTooLarge
        );
    }

    /// Regression (found by fuzz/multipart_roundtrip): a header block of exactly
    /// `MAX_HEADER_BYTES` was refused when a read ended inside its `\r\n\r\n` terminator,
    /// and accepted otherwise.
    #[test]
    fn header_limit_does_not_depend_on_split_points() {
        for (len, ok) in [(MAX_HEADER_BYTES, true), (MAX_HEADER_BYTES + 1, false)] {
            let mut body = b"--b\r\n".to_vec();
            let head = b"Content-Disposition: form-data; name=\"f\"\r\nX-Pad: ";
            body.extend_from_slice(head);
            body.extend(std::iter::repeat_n(b'a', len - head.len()));
            let terminator = body.len();
            body.extend_from_slice(b"\r\n\r\ndata\r\n--b--");
            for cut in terminator - 2..=terminator + 5 {
                let mut parser = MultipartParser::new("b");
                let mut data = Vec::new();
                let result = [&body[..cut], &body[cut..]].iter().try_for_each(|piece| {
                    parser.push(piece, |event| -> Result<(), MultipartError> {
                        if let Event::Data(d) = event {
                            data.extend_from_slice(d);
                        }
                        Ok(())
                    })
                });
                if ok {
                    assert_eq!(result, Ok(()), "cut {cut}");
                    assert_eq!((parser.finish(), &data[..]), (Ok(()), &b"data"[..]));
                } else {
                    assert_eq!(result, Err(MultipartError::HeadersTooLarge), "cut {cut}");
                }
            }
        }
    }

    /// Regression: transport padding after a delimiter was kept in the buffer until the line
    /// break came, so a client sending endless spaces grew it without limit.
    #[test]
    fn transport_padding_is_not_buffered() {
        let mut parser = MultipartParser::new("b");
        let mut parts = 0;
        let mut on_event = |event: Event<'_>| -> Result<(), MultipartError> {
            if let Event::PartStart(_) = event {
                parts += 1;
            }
            Ok(())
        };
        parser.push(b"--b", &mut on_event).unwrap();
        let spaces = [b' '; 64 * 1024];
        for _ in 0..64 {
            parser.push(&spaces, &mut on_event).unwrap();
            assert!(parser.buf.len() < 64, "buffer grew to {}", parser.buf.len());
        }
        parser
            .push(
                b" \t\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\nx\r\n--b--",
                &mut on_event,
            )
            .unwrap();
        parser.finish().unwrap();
        assert_eq!(parts, 1);
    }

    #[test]
    fn boundary_from_headers() {
        assert_eq!(
            boundary_from_content_type("multipart/form-data; boundary=abc").unwrap(),
            "abc"
        );
        assert_eq!(
            boundary_from_content_type("Multipart/Form-Data;boundary=\"a b\"").unwrap(),
            "a b"
        );
        for bad in [
            "application/json",
            "multipart/form-data",
            "multipart/form-data; boundary=",
        ] {
            assert_eq!(
                boundary_from_content_type(bad),
                Err(MultipartError::MissingBoundary),
                "{bad}"
            );
        }
    }
}
