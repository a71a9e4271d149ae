//! Streamed bodies: a file read on its own thread, 1 MiB at a time, never held whole.

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use std::io::Read;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::sync::mpsc;

pub const CHUNK: usize = 1 << 20;

/// A body whose frames arrive on a channel; `len` is its exact length when known.
pub struct ChannelBody {
    rx: mpsc::Receiver<std::io::Result<Bytes>>,
    len: Option<u64>,
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(Ok(b))) => Poll::Ready(Some(Ok(Frame::data(b)))),
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self.len {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}

impl ChannelBody {
    pub fn new(rx: mpsc::Receiver<std::io::Result<Bytes>>, len: Option<u64>) -> Self {
        ChannelBody { rx, len }
    }
}

/// `head`, then the file's bytes, then `tail`, as one body of exact length.
pub fn file_body(path: PathBuf, head: Bytes, tail: Bytes) -> std::io::Result<ChannelBody> {
    let file = std::fs::File::open(&path)?;
    let size = file.metadata()?.len();
    let len = head.len() as u64 + size + tail.len() as u64;
    let (tx, rx) = mpsc::channel(4);
    std::thread::spawn(move || {
        let mut file = file;
        if !head.is_empty() && tx.blocking_send(Ok(head)).is_err() {
            return;
        }
        let mut left = size;
        while left > 0 {
            let mut buf = vec![0u8; CHUNK.min(left as usize)];
            if let Err(e) = file.read_exact(&mut buf) {
                let _ = tx.blocking_send(Err(e));
                return;
            }
            left -= buf.len() as u64;
            if tx.blocking_send(Ok(Bytes::from(buf))).is_err() {
                return; // the receiver hung up
            }
        }
        if !tail.is_empty() {
            let _ = tx.blocking_send(Ok(tail));
        }
    });
    Ok(ChannelBody { rx, len: Some(len) })
}
