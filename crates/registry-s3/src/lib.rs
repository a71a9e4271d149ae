//! S3-compatible object storage (AWS S3, GCS interoperability, R2, MinIO) for the registry's
//! blobs. This crate holds the parts with no I/O, so they are tested natively against AWS's
//! published examples: request signing ([`sigv4`]), and the requests and XML answers of the
//! operations the registry uses ([`protocol`]). The I/O lives in `registry-spin`.

pub mod protocol;
pub mod sigv4;
