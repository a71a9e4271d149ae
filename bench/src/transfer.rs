//! One large transfer over one connection: `upload` streams a file from disk as the request
//! body (raw or as the single `file` part of a multipart form, as the opsml client frames it);
//! `download` reads a response body to its end, counting bytes. Each prints one JSON line.

use crate::args::{runtime, split_base, Args};
use crate::body::file_body;
use anyhow::{bail, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE, HOST};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use serde_json::json;
use std::path::PathBuf;
use std::time::Instant;
use tokio::net::TcpStream;

fn split_url(url: &str) -> Result<(String, String)> {
    let (addr, path) = split_base(url)?;
    // split_base trims a trailing '/', which matters for a full URL only at the root.
    Ok((addr, if path.is_empty() { "/".into() } else { path }))
}

fn headers(args: &Args) -> Result<Vec<(HeaderName, HeaderValue)>> {
    args.all("header")
        .into_iter()
        .map(|h| {
            let (k, v) = h
                .split_once(':')
                .with_context(|| format!("--header {h:?}: want 'name: value'"))?;
            Ok((
                HeaderName::try_from(k.trim())?,
                HeaderValue::try_from(v.trim())?,
            ))
        })
        .collect()
}

pub fn upload_main(argv: Vec<String>) -> Result<()> {
    let args = Args::parse(argv, &[])?;
    let (addr, path) = split_url(args.required("url")?)?;
    let file = PathBuf::from(args.required("file")?);
    let method = Method::from_bytes(args.get("method").unwrap_or("POST").as_bytes())?;
    let mut extra = headers(&args)?;
    let size = std::fs::metadata(&file)
        .with_context(|| format!("{}", file.display()))?
        .len();
    let (head, tail) = match args.get("multipart") {
        Some(filename) => {
            let boundary = format!("{:032x}", std::process::id() as u128 * 0x9e3779b97f4a7c15);
            extra.push((
                CONTENT_TYPE,
                HeaderValue::try_from(format!("multipart/form-data; boundary={boundary}"))?,
            ));
            let head = format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n\
                 Content-Type: application/octet-stream\r\n\r\n"
            );
            (
                Bytes::from(head),
                Bytes::from(format!("\r\n--{boundary}--\r\n")),
            )
        }
        None => {
            extra.push((
                CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            ));
            (Bytes::new(), Bytes::new())
        }
    };
    let body = file_body(file, head, tail)?;
    runtime(1)?.block_on(async move {
        let stream = TcpStream::connect(&addr).await.with_context(|| format!("connect {addr}"))?;
        stream.set_nodelay(true)?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let mut req = Request::builder().method(method).uri(&path).header(HOST, addr.as_str());
        for (k, v) in extra {
            req = req.header(k, v);
        }
        let started = Instant::now();
        let resp = sender.send_request(req.body(body)?).await?;
        let status = resp.status();
        let answer = resp.into_body().collect().await?.to_bytes();
        let seconds = started.elapsed().as_secs_f64();
        let answer = String::from_utf8_lossy(&answer).into_owned();
        println!(
            "{}",
            json!({"bytes": size, "seconds": seconds, "mb_per_s": size as f64 / 1e6 / seconds,
                   "status": status.as_u16(), "answer": answer.chars().take(300).collect::<String>()})
        );
        if !status.is_success() {
            bail!("{path} answered {status}: {answer}");
        }
        Ok(())
    })
}

pub fn download_main(argv: Vec<String>) -> Result<()> {
    let args = Args::parse(argv, &[])?;
    let (addr, path) = split_url(args.required("url")?)?;
    let expect: Option<u64> = args.parsed("expect-bytes")?;
    let extra = headers(&args)?;
    runtime(1)?.block_on(async move {
        let stream = TcpStream::connect(&addr)
            .await
            .with_context(|| format!("connect {addr}"))?;
        stream.set_nodelay(true)?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let mut req = Request::builder()
            .method(Method::GET)
            .uri(&path)
            .header(HOST, addr.as_str());
        for (k, v) in extra {
            req = req.header(k, v);
        }
        let started = Instant::now();
        let resp = sender
            .send_request(req.body(Empty::<Bytes>::new())?)
            .await?;
        let status = resp.status();
        let mut body = resp.into_body();
        let mut bytes = 0u64;
        let mut first = Vec::new();
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame?.into_data() {
                if first.len() < 300 {
                    first.extend_from_slice(&data[..data.len().min(300 - first.len())]);
                }
                bytes += data.len() as u64;
            }
        }
        let seconds = started.elapsed().as_secs_f64();
        println!(
            "{}",
            json!({"bytes": bytes, "seconds": seconds, "mb_per_s": bytes as f64 / 1e6 / seconds,
                   "status": status.as_u16()})
        );
        if !status.is_success() {
            bail!(
                "{path} answered {status}: {}",
                String::from_utf8_lossy(&first)
            );
        }
        if let Some(n) = expect {
            if n != bytes {
                bail!("{path}: expected {n} bytes, got {bytes}");
            }
        }
        Ok(())
    })
}
