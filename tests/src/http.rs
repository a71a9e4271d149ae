//! A small blocking HTTP/1.1 client for the tests, over `std::net::TcpStream`.
//!
//! Why not an off-the-shelf client: a server may answer an upload *before* reading its body
//! (a missing `write_path`, a bad token) and close the connection; the rest of the body then
//! meets a reset and the client's write fails. httpx (through httpcore), the opsml client's HTTP
//! library, ignores that write error and reads the response that is already there; so does this
//! client. It also streams a request body from any `Read` with an exact `Content-Length`, sends
//! header names exactly as given (`write_path` has an underscore), and streams response bodies
//! (`Content-Length`, chunked, or until close).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Response headers, looked up case-insensitively.
#[derive(Clone, Debug, Default)]
pub struct Headers(pub Vec<(String, String)>);

impl Headers {
    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Timeouts of one exchange.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    pub connect: Duration,
    /// Each read and each write (not the whole exchange).
    pub io: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(5),
            io: Duration::from_secs(120),
        }
    }
}

/// A request body: `len` bytes from `reader`, sent with `Content-Length: len`.
pub struct Body<'a> {
    pub reader: Box<dyn Read + 'a>,
    pub len: u64,
}

impl<'a> Body<'a> {
    pub fn new(reader: impl Read + 'a, len: u64) -> Self {
        Self {
            reader: Box::new(reader),
            len,
        }
    }

    pub fn bytes(bytes: &'a [u8]) -> Self {
        Self::new(bytes, bytes.len() as u64)
    }
}

/// A response whose body has not been read yet: read it through `Read`.
pub struct Response {
    pub status: u16,
    pub headers: Headers,
    /// Set when sending the request body failed (the server answered early and closed): the
    /// response was read all the same, as httpcore does.
    pub send_error: Option<io::Error>,
    body: BodyReader,
}

impl Read for Response {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.body.read(buf)
    }
}

enum BodyReader {
    Empty,
    Length {
        stream: BufReader<TcpStream>,
        left: u64,
    },
    Chunked {
        stream: BufReader<TcpStream>,
        /// Bytes left in the current chunk; `None` before the first size line.
        left: Option<u64>,
        done: bool,
    },
    UntilClose(BufReader<TcpStream>),
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

fn read_line(stream: &mut BufReader<TcpStream>) -> io::Result<String> {
    let mut line = Vec::new();
    stream.read_until(b'\n', &mut line)?;
    if line.last() != Some(&b'\n') {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the connection closed in the middle of a line",
        ));
    }
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    String::from_utf8(line).map_err(|_| invalid("a header line is not UTF-8"))
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            BodyReader::Empty => Ok(0),
            BodyReader::UntilClose(stream) => stream.read(buf),
            BodyReader::Length { stream, left } => {
                if *left == 0 || buf.is_empty() {
                    return Ok(0);
                }
                let max = buf.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
                let n = stream.read(&mut buf[..max])?;
                if n == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("the connection closed with {left} body bytes outstanding"),
                    ));
                }
                *left -= n as u64;
                Ok(n)
            }
            BodyReader::Chunked { stream, left, done } => loop {
                if *done || buf.is_empty() {
                    return Ok(0);
                }
                match *left {
                    Some(0) => {
                        // End of a chunk's data: its CRLF.
                        if !read_line(stream)?.is_empty() {
                            return Err(invalid("a chunk is longer than its size"));
                        }
                        *left = None;
                    }
                    None => {
                        let line = read_line(stream)?;
                        let size = line.split(';').next().unwrap_or("").trim();
                        let size = u64::from_str_radix(size, 16)
                            .map_err(|_| invalid(format!("bad chunk size line {line:?}")))?;
                        if size == 0 {
                            // Trailers, then the empty line.
                            while !read_line(stream)?.is_empty() {}
                            *done = true;
                        } else {
                            *left = Some(size);
                        }
                    }
                    Some(n) => {
                        let max = buf.len().min(usize::try_from(n).unwrap_or(usize::MAX));
                        let got = stream.read(&mut buf[..max])?;
                        if got == 0 {
                            return Err(io::Error::new(
                                io::ErrorKind::UnexpectedEof,
                                "the connection closed inside a chunk",
                            ));
                        }
                        *left = Some(n - got as u64);
                        return Ok(got);
                    }
                }
            },
        }
    }
}

/// Whether a write failed because the server stopped reading and closed.
fn is_closed_by_peer(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
    )
}

/// Sends one request on a new connection and reads the response head. `Host` and (with a
/// body) `Content-Length` are added; every other header is sent as given.
pub fn send(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: Option<Body<'_>>,
    timeouts: Timeouts,
) -> io::Result<Response> {
    let stream = TcpStream::connect_timeout(&addr, timeouts.connect)?;
    stream.set_read_timeout(Some(timeouts.io))?;
    stream.set_write_timeout(Some(timeouts.io))?;
    stream.set_nodelay(true)?;
    let mut head = format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(body) = &body {
        head.push_str(&format!("Content-Length: {}\r\n", body.len));
    }
    head.push_str("\r\n");

    let mut writer = &stream;
    let mut send_error = None;
    if let Err(e) = writer.write_all(head.as_bytes()) {
        if !is_closed_by_peer(&e) {
            return Err(e);
        }
        send_error = Some(e);
    }
    if let (Some(mut body), None) = (body, &send_error) {
        let mut buf = vec![0u8; 64 << 10];
        let mut sent = 0u64;
        loop {
            let n = match body.reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if let Err(e) = writer.write_all(&buf[..n]) {
                if !is_closed_by_peer(&e) {
                    return Err(e);
                }
                // The server answered early and closed: read what it said.
                send_error = Some(e);
                break;
            }
            sent += n as u64;
        }
        if send_error.is_none() && sent != body.len {
            return Err(io::Error::other(format!(
                "the request body had {sent} bytes, not the {} announced",
                body.len
            )));
        }
    }

    let mut reader = BufReader::with_capacity(64 << 10, stream);
    let (status, headers) = loop {
        let status_line = read_line(&mut reader).map_err(|e| {
            let sending = send_error
                .as_ref()
                .map(|s| format!(" (sending the body failed first: {s})"))
                .unwrap_or_default();
            io::Error::new(e.kind(), format!("reading the status line: {e}{sending}"))
        })?;
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap_or("");
        let status: u16 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .filter(|_| version.starts_with("HTTP/1."))
            .ok_or_else(|| invalid(format!("bad status line {status_line:?}")))?;
        let mut headers = Vec::new();
        loop {
            let line = read_line(&mut reader)?;
            if line.is_empty() {
                break;
            }
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| invalid(format!("bad header line {line:?}")))?;
            headers.push((name.trim().to_string(), value.trim().to_string()));
        }
        // Interim responses (100 Continue) are followed by the real one.
        if (100..200).contains(&status) {
            continue;
        }
        break (status, Headers(headers));
    };

    let chunked = headers
        .get("transfer-encoding")
        .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
    let body = if method == "HEAD" || status == 204 || status == 304 {
        BodyReader::Empty
    } else if chunked {
        BodyReader::Chunked {
            stream: reader,
            left: None,
            done: false,
        }
    } else if let Some(len) = headers.get("content-length") {
        let left = len
            .parse()
            .map_err(|_| invalid(format!("bad content-length {len:?}")))?;
        BodyReader::Length {
            stream: reader,
            left,
        }
    } else {
        BodyReader::UntilClose(reader)
    };
    Ok(Response {
        status,
        headers,
        send_error,
        body,
    })
}
