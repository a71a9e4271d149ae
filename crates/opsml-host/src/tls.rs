//! Outbound TLS as Spin configures it: `[[client_tls]]` tables in the runtime-config give,
//! per component and host, extra CA roots from a PEM file, the webpki roots on or off (on by
//! default unless a roots file is given), and a client certificate. A request to a host no
//! table names for its component trusts the webpki roots. A table that Spin 3.6.3 refuses is
//! refused here with the same reason.

use anyhow::{bail, ensure, Context, Result};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use serde::Deserialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio::time::timeout;
use wasmtime_wasi_http::bindings::http::types::{DnsErrorPayload, ErrorCode};
use wasmtime_wasi_http::body::HyperOutgoingBody;
use wasmtime_wasi_http::hyper_request_error;
use wasmtime_wasi_http::types::{
    HostFutureIncomingResponse, IncomingResponse, OutgoingRequestConfig,
};

/// One `[[client_tls]]` table, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientTlsTable {
    component_ids: Vec<String>,
    hosts: Vec<String>,
    ca_use_webpki_roots: Option<bool>,
    ca_roots_file: Option<PathBuf>,
    client_cert_file: Option<PathBuf>,
    client_private_key_file: Option<PathBuf>,
}

/// The TLS client configuration of every (component, host), and the default one.
#[derive(Debug)]
pub struct ClientTls {
    by_component: HashMap<String, HashMap<String, Arc<ClientConfig>>>,
    default: Arc<ClientConfig>,
}

impl Default for ClientTls {
    fn default() -> Self {
        Self {
            by_component: HashMap::new(),
            default: client_config(Vec::new(), true, None).expect("the webpki roots load"),
        }
    }
}

impl ClientTls {
    /// From the `client_tls` array of a runtime-config (paths relative to `dir`). The first
    /// table naming a (component, host) pair wins, as in Spin.
    pub fn from_tables(tables: Vec<toml::Value>, dir: &Path) -> Result<Self> {
        let mut tls = Self::default();
        for table in tables {
            let table: ClientTlsTable = table
                .try_into()
                .map_err(|e: toml::de::Error| anyhow::anyhow!("{}", e.message().trim()))?;
            for component in &table.component_ids {
                check_kebab_id(component)
                    .with_context(|| format!("in `component_ids`: {component:?}"))?;
            }
            for host in &table.hosts {
                check_host(host)?;
            }
            let config = load_table(&table, dir).context("failed to parse TLS config")?;
            for component in &table.component_ids {
                let hosts = tls.by_component.entry(component.clone()).or_default();
                for host in &table.hosts {
                    hosts.entry(host.clone()).or_insert_with(|| config.clone());
                }
            }
        }
        Ok(tls)
    }

    /// The configuration for a request of `component` to `host`.
    pub fn config(&self, component: &str, host: &str) -> Arc<ClientConfig> {
        self.by_component
            .get(component)
            .and_then(|hosts| hosts.get(host))
            .unwrap_or(&self.default)
            .clone()
    }
}

fn load_table(table: &ClientTlsTable, dir: &Path) -> Result<Arc<ClientConfig>> {
    ensure!(
        !table.component_ids.is_empty(),
        "'component_ids' list may not be empty"
    );
    ensure!(!table.hosts.is_empty(), "'hosts' list may not be empty");
    // Explicit roots replace the webpki ones unless asked for both.
    let use_webpki_roots = table
        .ca_use_webpki_roots
        .unwrap_or(table.ca_roots_file.is_none());
    let roots = match &table.ca_roots_file {
        Some(path) => load_certificates(&dir.join(path))?,
        None => Vec::new(),
    };
    let client_cert = match (&table.client_cert_file, &table.client_private_key_file) {
        (Some(cert), Some(key)) => {
            let key_path = dir.join(key);
            let key = PrivateKeyDer::from_pem_file(&key_path)
                .with_context(|| format!("failed to load key from '{}'", key_path.display()))?;
            Some((load_certificates(&dir.join(cert))?, key))
        }
        (None, None) => None,
        (Some(_), None) => bail!("client_cert_file specified without client_private_key_file"),
        (None, Some(_)) => bail!("client_private_key_file specified without client_cert_file"),
    };
    client_config(roots, use_webpki_roots, client_cert)
}

fn load_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    CertificateDer::pem_file_iter(path)
        .and_then(Iterator::collect)
        .with_context(|| format!("failed to load certificate(s) from '{}'", path.display()))
}

fn client_config(
    roots: Vec<CertificateDer<'static>>,
    use_webpki_roots: bool,
    client_cert: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> Result<Arc<ClientConfig>> {
    let mut store = RootCertStore::empty();
    if use_webpki_roots {
        store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    for root in roots {
        store.add(root)?;
    }
    let builder = ClientConfig::builder().with_root_certificates(store);
    let config = match client_cert {
        Some((chain, key)) => builder.with_client_auth_cert(chain, key)?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// A host name without a port (Spin does not match on ports).
fn check_host(host: &str) -> Result<()> {
    let authority: http::uri::Authority = host
        .parse()
        .with_context(|| format!("invalid TLS 'host' {host:?}"))?;
    ensure!(
        authority.port().is_none(),
        "invalid TLS 'host' {host:?}; ports not currently supported"
    );
    Ok(())
}

/// A component id as Spin accepts it: words of ASCII letters and digits, each starting with a
/// letter, joined by `-`, each all lower or all upper case.
fn check_kebab_id(id: &str) -> Result<()> {
    ensure!(!id.is_empty(), "empty");
    ensure!(
        !id.contains('_'),
        "words must be separated with '-', not '_'"
    );
    for word in id.split('-') {
        let mut chars = word.chars();
        let Some(first) = chars.next() else {
            bail!("'-'-separated words must not be empty");
        };
        ensure!(
            first.is_ascii_alphabetic(),
            "'-'-separated words must start with an ASCII letter; got {first:?}"
        );
        for c in chars {
            ensure!(
                c.is_ascii_alphanumeric(),
                "'-'-separated words may only contain alphanumeric ASCII; got {c:?}"
            );
            ensure!(
                c.is_ascii_digit() || c.is_ascii_uppercase() == first.is_ascii_uppercase(),
                "'-'-separated words must be all lowercase or all UPPERCASE; got {word:?}"
            );
        }
    }
    Ok(())
}

/// Sends an `https` request with the given TLS configuration, within the request's timeouts.
pub fn send(
    request: hyper::Request<HyperOutgoingBody>,
    config: OutgoingRequestConfig,
    tls: Arc<ClientConfig>,
) -> HostFutureIncomingResponse {
    let handle =
        wasmtime_wasi::runtime::spawn(async move { Ok(send_over_tls(request, config, tls).await) });
    HostFutureIncomingResponse::pending(handle)
}

fn dns_error(what: &str) -> ErrorCode {
    ErrorCode::DnsError(DnsErrorPayload {
        rcode: Some(what.to_string()),
        info_code: Some(0),
    })
}

async fn send_over_tls(
    mut request: hyper::Request<HyperOutgoingBody>,
    config: OutgoingRequestConfig,
    tls: Arc<ClientConfig>,
) -> Result<IncomingResponse, ErrorCode> {
    let host = request
        .uri()
        .host()
        .ok_or(ErrorCode::HttpRequestUriInvalid)?
        .to_string();
    let port = request.uri().port_u16().unwrap_or(443);
    let tcp = match timeout(
        config.connect_timeout,
        TcpStream::connect((host.as_str(), port)),
    )
    .await
    {
        Err(_) => return Err(ErrorCode::ConnectionTimeout),
        Ok(Err(e)) if e.to_string().contains("failed to lookup address") => {
            return Err(dns_error("address not available"))
        }
        Ok(Err(_)) => return Err(ErrorCode::ConnectionRefused),
        Ok(Ok(tcp)) => tcp,
    };
    let name = ServerName::try_from(host.clone()).map_err(|_| dns_error("invalid dns name"))?;
    let connector = tokio_rustls::TlsConnector::from(tls);
    let stream = match timeout(config.connect_timeout, connector.connect(name, tcp)).await {
        Err(_) => return Err(ErrorCode::ConnectionTimeout),
        Ok(Err(e)) => {
            tracing::warn!("TLS with {host}:{port} failed: {e}");
            return Err(ErrorCode::TlsProtocolError);
        }
        Ok(Ok(stream)) => stream,
    };
    let (mut sender, connection) = timeout(
        config.connect_timeout,
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)),
    )
    .await
    .map_err(|_| ErrorCode::ConnectionTimeout)?
    .map_err(hyper_request_error)?;
    let worker = wasmtime_wasi::runtime::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!("outbound connection: {e}");
        }
    });
    // Origin-form on the wire: scheme and authority are for a proxy only.
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    *request.uri_mut() = path.parse().map_err(|_| ErrorCode::HttpRequestUriInvalid)?;
    let response = timeout(config.first_byte_timeout, sender.send_request(request))
        .await
        .map_err(|_| ErrorCode::ConnectionReadTimeout)?
        .map_err(hyper_request_error)?;
    use http_body_util::BodyExt;
    Ok(IncomingResponse {
        resp: response.map(|body| body.map_err(hyper_request_error).boxed_unsync()),
        worker: Some(worker),
        between_bytes_timeout: config.between_bytes_timeout,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<ClientTls> {
        let table: toml::Table = toml::from_str(text).unwrap();
        let tables = match table.get("client_tls") {
            Some(toml::Value::Array(tables)) => tables.clone(),
            _ => Vec::new(),
        };
        ClientTls::from_tables(tables, Path::new("/nowhere"))
    }

    fn refusal(text: &str) -> String {
        format!("{:#}", load(text).map(drop).expect_err("refused"))
    }

    #[test]
    fn tables_spin_refuses_are_refused_with_its_reason() {
        let table = |extra: &str| format!("[[client_tls]]\n{extra}\n");
        let valid = "component_ids = [\"upload\"]\nhosts = [\"localhost\"]";
        assert!(load(&table(valid)).is_ok());
        for (body, reason) in [
            (
                "component_ids = [\"upload\"]\nhosts = [\"localhost:9000\"]",
                "invalid TLS 'host' \"localhost:9000\"; ports not currently supported",
            ),
            (
                "component_ids = [\"upload\"]\nhosts = [\"localhost\"]\nca_roots_file = \"missing.pem\"",
                "failed to parse TLS config: failed to load certificate(s) from '/nowhere/missing.pem'",
            ),
            (
                "component_ids = [\"upload\"]\nhosts = [\"localhost\"]\nclient_cert_file = \"c.pem\"",
                "client_cert_file specified without client_private_key_file",
            ),
            (
                "component_ids = []\nhosts = [\"localhost\"]",
                "'component_ids' list may not be empty",
            ),
            (
                "component_ids = [\"upload\"]\nhosts = [\"localhost\"]\nca_root_file = \"x.pem\"",
                "unknown field `ca_root_file`",
            ),
            (
                "component_ids = [\"Not_Kebab\"]\nhosts = [\"localhost\"]",
                "words must be separated with '-', not '_'",
            ),
        ] {
            let said = refusal(&table(body));
            assert!(said.contains(reason), "{body}: {said}");
        }
    }

    #[test]
    fn the_first_table_naming_a_pair_wins_and_others_get_the_default() {
        let tls = load(
            "[[client_tls]]\ncomponent_ids = [\"upload\"]\nhosts = [\"s3.internal\"]\nca_use_webpki_roots = false\n\
             [[client_tls]]\ncomponent_ids = [\"upload\"]\nhosts = [\"s3.internal\"]\n",
        )
        .unwrap();
        let named = tls.config("upload", "s3.internal");
        assert!(!Arc::ptr_eq(&named, &tls.config("download", "s3.internal")));
        assert!(Arc::ptr_eq(
            &tls.config("download", "s3.internal"),
            &tls.default
        ));
        assert!(Arc::ptr_eq(
            &tls.config("upload", "elsewhere"),
            &tls.default
        ));
    }
}
