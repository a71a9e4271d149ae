//! S3-compatible object storage (AWS S3, GCS interoperability, R2, MinIO) for the registry's
//! blobs. This crate holds the parts with no I/O, so they are tested natively against AWS's
//! published examples: request signing ([`sigv4`]).

pub mod sigv4;
