//! One registry over HTTP: its base URL, credentials, timeouts and the retry rule every request
//! follows.

use crate::fail::{Failure, Kind, Result};
use base64::Engine as _;
use serde_json::Value;
use std::io::Read;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How a registry is reached: what the flags and the environment say.
#[derive(Clone, Debug)]
pub struct Settings {
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    /// Attempts after the first one, for failures worth trying again.
    pub retries: u32,
    /// Connections kept open for reuse (one per concurrent transfer).
    pub pool: usize,
}

/// Who we are to the registry. Never printed: [`Remote`]'s `Debug` leaves it out.
#[derive(Clone, Default)]
pub enum Credentials {
    #[default]
    None,
    /// `OPSML_USERNAME` / `OPSML_PASSWORD`, as the opsml Python client sends them.
    Basic { username: String, password: String },
    /// `OPSML_TOKEN`: an API token or the admin token.
    Bearer(String),
}

impl Credentials {
    /// From `<prefix>TOKEN`, else `<prefix>USERNAME` + `<prefix>PASSWORD`. Half a login is an
    /// error: sending none would only get a confusing 401 later.
    pub fn from_env(prefix: &str) -> Result<Credentials> {
        let var = |name: &str| {
            std::env::var(format!("{prefix}{name}"))
                .ok()
                .filter(|v| !v.is_empty())
        };
        if let Some(token) = var("TOKEN") {
            return Ok(Credentials::Bearer(token));
        }
        match (var("USERNAME"), var("PASSWORD")) {
            (Some(username), Some(password)) => Ok(Credentials::Basic { username, password }),
            (None, None) => Ok(Credentials::None),
            (Some(_), None) => Err(Failure::usage(format!(
                "{prefix}USERNAME is set but {prefix}PASSWORD is not: set both, or {prefix}TOKEN"
            ))),
            (None, Some(_)) => Err(Failure::usage(format!(
                "{prefix}PASSWORD is set but {prefix}USERNAME is not: set both, or {prefix}TOKEN"
            ))),
        }
    }

    fn header(&self) -> Option<String> {
        match self {
            Credentials::None => None,
            Credentials::Basic { username, password } => Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"))
            )),
            Credentials::Bearer(token) => Some(format!("Bearer {token}")),
        }
    }
}

/// One registry: `<base>/opsml/<route>`.
pub struct Remote {
    base: String,
    agent: ureq::Agent,
    authorization: Option<String>,
    prod_token: Option<String>,
    retries: u32,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote").field("base", &self.base).finish()
    }
}

/// What one try of a request came to.
pub enum Attempt<T> {
    Done(T),
    /// Worth another try (connection error, cut body, 429, 5xx), after `after` if the server
    /// said so (`Retry-After`).
    Retry {
        why: String,
        after: Option<Duration>,
    },
    Fail(Failure),
}

impl Remote {
    /// `base` is `OPSML_TRACKING_URI`: `http(s)://host[:port][/prefix]`.
    pub fn new(
        base: &str,
        credentials: Credentials,
        prod_token: Option<String>,
        settings: &Settings,
    ) -> Result<Remote> {
        let base = base.trim().trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) || base.len() < 10 {
            return Err(Failure::usage(format!(
                "the registry address {base:?} is not an http:// or https:// URL \
                 (OPSML_TRACKING_URI is the server's address, e.g. http://127.0.0.1:8888)"
            )));
        }
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(settings.connect_timeout)
            .timeout_read(settings.read_timeout)
            .timeout_write(settings.read_timeout)
            .max_idle_connections(settings.pool.max(2))
            .max_idle_connections_per_host(settings.pool.max(2))
            .user_agent(concat!("opsml-registry/", env!("CARGO_PKG_VERSION")))
            .build();
        Ok(Remote {
            base,
            agent,
            authorization: credentials.header(),
            prod_token: prod_token.filter(|t| !t.is_empty()),
            retries: settings.retries,
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// `<base>/opsml/<route>?<query>`, the query encoded as httpx encodes `params=`.
    pub fn url(&self, route: &str, query: &[(&str, &str)]) -> String {
        let mut url = format!("{}/opsml/{route}", self.base);
        for (i, (key, value)) in query.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(&registry_core::query::encode(key));
            url.push('=');
            url.push_str(&registry_core::query::encode(value));
        }
        url
    }

    /// A request with our credentials; writes (every method but GET) carry the prod token.
    pub fn request(&self, method: &str, route: &str, query: &[(&str, &str)]) -> ureq::Request {
        let mut request = self.agent.request(method, &self.url(route, query));
        if let Some(auth) = &self.authorization {
            request = request.set("Authorization", auth);
        }
        if method != "GET" {
            if let Some(token) = &self.prod_token {
                request = request.set("X-Prod-Token", token);
            }
        }
        request
    }

    /// Runs `op` until it is done, fails for good, or the retries are spent (then a
    /// [`Kind::Network`] failure naming the last reason). Waits grow exponentially with
    /// jitter, or as long as `Retry-After` asks.
    pub fn retrying<T>(&self, what: &str, mut op: impl FnMut() -> Attempt<T>) -> Result<T> {
        let mut failures = 0u32;
        loop {
            match op() {
                Attempt::Done(value) => return Ok(value),
                Attempt::Fail(failure) => return Err(failure.context(what)),
                Attempt::Retry { why, after } => {
                    if failures >= self.retries {
                        return Err(Failure::new(
                            Kind::Network,
                            format!("{what}: gave up after {} attempts: {why}", failures + 1),
                        ));
                    }
                    std::thread::sleep(after.unwrap_or_else(|| backoff(failures)));
                    failures += 1;
                }
            }
        }
    }

    /// Sends a request once and sorts the outcome into done, retry or fail.
    pub fn attempt(&self, request: ureq::Request, body: Option<&[u8]>) -> Attempt<ureq::Response> {
        let result = match body {
            Some(bytes) => request
                .set("Content-Type", "application/json")
                .send_bytes(bytes),
            None => request.call(),
        };
        classify(result)
    }

    fn json(
        &self,
        method: &str,
        route: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Value> {
        let bytes = body.map(|b| serde_json::to_vec(b).expect("JSON values serialise"));
        let what = format!("{method} {}", self.url(route, query));
        self.retrying(&what, || {
            let response = match self.attempt(self.request(method, route, query), bytes.as_deref())
            {
                Attempt::Done(r) => r,
                Attempt::Retry { why, after } => return Attempt::Retry { why, after },
                Attempt::Fail(f) => return Attempt::Fail(f),
            };
            let mut text = Vec::new();
            if let Err(e) = response
                .into_reader()
                .take(256 << 20)
                .read_to_end(&mut text)
            {
                return Attempt::Retry {
                    why: format!("reading the answer: {e}"),
                    after: None,
                };
            }
            match serde_json::from_slice(&text) {
                Ok(value) => Attempt::Done(value),
                Err(e) => Attempt::Fail(Failure::other(format!(
                    "the answer is not JSON ({e}): {}",
                    snippet(&text)
                ))),
            }
        })
    }

    pub fn get_json(&self, route: &str, query: &[(&str, &str)]) -> Result<Value> {
        self.json("GET", route, query, None)
    }

    pub fn post_json(&self, route: &str, body: &Value) -> Result<Value> {
        self.json("POST", route, &[], Some(body))
    }

    pub fn put_json(&self, route: &str, body: &Value) -> Result<Value> {
        self.json("PUT", route, &[], Some(body))
    }
}

/// Sorts a ureq result: 2xx/3xx done; 429 and 5xx and transport errors worth a retry; other
/// statuses a failure of the matching kind with the server's `detail`.
pub fn classify(
    result: std::result::Result<ureq::Response, ureq::Error>,
) -> Attempt<ureq::Response> {
    match result {
        Ok(response) => Attempt::Done(response),
        Err(ureq::Error::Status(code, response)) => {
            let after = response
                .header("retry-after")
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(|s| Duration::from_secs(s.min(300)));
            let detail = detail_of(response);
            if code == 429 || code >= 500 {
                Attempt::Retry {
                    why: format!("{code} {detail}"),
                    after,
                }
            } else {
                Attempt::Fail(status_failure(code, &detail))
            }
        }
        Err(ureq::Error::Transport(transport)) => Attempt::Retry {
            why: transport.to_string(),
            after: None,
        },
    }
}

/// The failure a final HTTP status stands for.
pub fn status_failure(code: u16, detail: &str) -> Failure {
    let kind = match code {
        401 | 403 => Kind::Denied,
        404 | 410 => Kind::NotFound,
        _ => Kind::Other,
    };
    Failure {
        status: Some(code),
        ..Failure::new(kind, format!("{code} {detail}"))
    }
}

/// The `detail` of an error answer, or the start of its body.
pub fn detail_of(response: ureq::Response) -> String {
    let mut body = Vec::new();
    let _ = response.into_reader().take(64 << 10).read_to_end(&mut body);
    match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(map)) if map.contains_key("detail") => match &map["detail"] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        },
        _ => snippet(&body),
    }
}

fn snippet(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(300)]).into_owned();
    if text.is_empty() {
        "(empty body)".to_string()
    } else {
        text
    }
}

/// 250 ms doubling per failure up to 10 s, each wait drawn between half and all of it, so that
/// many clients that failed together do not come back together.
pub fn backoff(failures: u32) -> Duration {
    let full = Duration::from_millis(250)
        .saturating_mul(1u32 << failures.min(6))
        .min(Duration::from_secs(10));
    let half = full / 2;
    half + half.mul_f64(jitter())
}

/// A number in [0, 1) that differs between processes and calls (no need for a real RNG).
fn jitter() -> f64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static STATE: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mut x = STATE.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
        ^ nanos
        ^ (std::process::id() as u64) << 32;
    // splitmix64's finaliser.
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 31;
    (x >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_stays_bounded() {
        for failures in 0..20 {
            let wait = backoff(failures);
            let full = Duration::from_millis(250)
                .saturating_mul(1 << failures.min(6))
                .min(Duration::from_secs(10));
            assert!(wait >= full / 2 && wait <= full, "{failures}: {wait:?}");
        }
    }

    #[test]
    fn half_a_login_is_refused() {
        // Only this test touches these variables.
        std::env::set_var("TESTCRED_USERNAME", "u");
        std::env::remove_var("TESTCRED_PASSWORD");
        std::env::remove_var("TESTCRED_TOKEN");
        let err = Credentials::from_env("TESTCRED_").err().expect("refused");
        assert_eq!(err.kind, Kind::Usage);
        assert!(!err.message.contains("u:"), "{}", err.message);
    }
}
