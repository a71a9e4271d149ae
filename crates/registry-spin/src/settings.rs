//! Deployment settings, read from Spin variables (filled per environment by the
//! runtime-config's providers: `APP_ENV` → `env`, `OPSML_PROD_TOKEN` → `prod_token`, …).

use crate::http::RequestHead;
use crate::storage::{new_id, now_micros, now_unix, open_database};
use crate::ApiError;
use registry_core::access::{self, AccessConfig, Authenticated, Failures, Identity, Scope};
use registry_core::login::LoginRefusal;
use registry_core::RegistryType;
use registry_store::audit::AuditRecord;
use registry_store::blobs::DigestAlgorithm;
use registry_store::cards::ListQuery;
use registry_store::tokens;
use spin_sdk::variables;

/// A variable the component declares; absent or undefined counts as empty.
pub(crate) fn variable(name: &str) -> String {
    variables::get(name).unwrap_or_default()
}

/// `env` and `prod_token`: what decides whether a write needs the prod token.
pub struct WritePolicy {
    pub app_env: String,
    pub prod_token: String,
}

impl WritePolicy {
    pub fn load() -> Self {
        Self {
            app_env: variable("env"),
            prod_token: variable("prod_token"),
        }
    }

    /// Refuses a write in production unless the request carries the prod token.
    pub fn authorize(&self, head: &RequestHead) -> Result<(), ApiError> {
        let presented = head.header(registry_core::prod_token::PROD_TOKEN_HEADER);
        registry_core::prod_token::check(
            &self.app_env,
            Some(&self.prod_token),
            presented.as_deref(),
            true,
        )
        .into_result()?;
        Ok(())
    }

    /// The `app_env` recorded on new cards.
    pub fn app_env_or_default(&self) -> String {
        if self.app_env.trim().is_empty() {
            "development".to_string()
        } else {
            self.app_env.trim().to_string()
        }
    }
}

/// Who sent a request, and the id its audit records carry.
pub struct Caller {
    pub identity: Identity,
    pub request_id: String,
}

impl Caller {
    /// Allows `need` in `repository` (`None`: an operation that names no single repository),
    /// or answers 403 with what the caller may do.
    pub fn require(&self, need: Scope, repository: Option<&str>) -> Result<(), ApiError> {
        Ok(self.identity.require(need, repository)?)
    }

    /// Narrows a card listing to what the caller may read: a query naming a repository needs
    /// `read` there (403 otherwise), one naming none lists only the caller's repositories.
    pub fn restrict(&self, query: &mut ListQuery) -> Result<(), ApiError> {
        match &query.repository {
            Some(repository) => self.require(Scope::Read, Some(repository)),
            None => {
                self.require_scope(Scope::Read)?;
                query.readable_repositories = self.identity.readable_repositories();
                Ok(())
            }
        }
    }

    /// Allows `need` at the storage path in the `path` query parameter (the repository is its
    /// second segment); a request without one is left to its route to refuse.
    pub fn require_at_path(&self, need: Scope, head: &RequestHead) -> Result<(), ApiError> {
        let Some(path) = head.query_param("path") else {
            return Ok(());
        };
        let key = registry_core::validate_prefix(&path)?;
        self.require(need, key.repository())
    }

    /// Allows `need` in some repository: for an operation on something that does not exist,
    /// which reveals nothing of any repository.
    pub fn require_scope(&self, need: Scope) -> Result<(), ApiError> {
        Ok(self.identity.require_somewhere(need)?)
    }

    /// An audit record of `action` on the file at storage key `path`: its registry,
    /// repository, card name and version from the path's segments.
    pub fn file_audit(&self, action: &str, path: &str) -> AuditRecord {
        let mut segments = path.split('/');
        let registry = segments
            .next()
            .and_then(RegistryType::from_storage_folder)
            .map(|r| r.as_str().to_string());
        let mut part = || segments.next().map(str::to_string);
        let (repository, name) = (part(), part());
        let version = part().map(|v| v.strip_prefix('v').unwrap_or(&v).to_string());
        AuditRecord {
            registry,
            repository,
            name,
            version,
            ..self.audit(action, path)
        }
    }

    /// An audit record of `action` on `target` by this caller, now; the caller fills in the
    /// card fields it knows.
    pub fn audit(&self, action: &str, target: impl Into<String>) -> AuditRecord {
        AuditRecord {
            at: now_micros(),
            request_id: self.request_id.clone(),
            identity: self.identity.name(),
            action: action.to_string(),
            registry: None,
            repository: None,
            name: None,
            version: None,
            target: target.into(),
            detail: None,
        }
    }
}

/// Who the request is (see `registry_core::access`): checked before anything else, the body
/// unread. With a login or `admin_token` configured, a client address whose failures reached
/// `max_login_failures` within a minute is refused (429) until that minute ends, even with
/// good credentials, so that guessing goes no faster than that from one address.
pub fn authenticate(head: &RequestHead) -> Result<Caller, ApiError> {
    let (username, password, admin_token) = (
        variable("username"),
        variable("password"),
        variable("admin_token"),
    );
    let config = AccessConfig {
        username: &username,
        password: &password,
        admin_token: &admin_token,
    };
    let caller = |identity| Caller {
        identity,
        request_id: new_id(),
    };
    let authorization = head.header("authorization");
    let first = access::authenticate(&config, authorization.as_deref());
    match &first {
        Ok(Authenticated::Identity(Identity::Open)) => return Ok(caller(Identity::Open)),
        Err(LoginRefusal::HalfConfigured | LoginRefusal::WeakAdminToken) => {
            return Err(refused(first.unwrap_err()))
        }
        _ => {}
    }
    let max_failures = number_variable(
        "max_login_failures",
        access::DEFAULT_MAX_LOGIN_FAILURES as u64,
    )? as i64;
    let db = open_database()?;
    let client = client_address(head);
    let now = now_unix();
    let failures = tokens::failures(&db, &client)?;
    let identity = match first {
        Ok(Authenticated::Identity(identity)) => Ok(identity),
        Ok(Authenticated::LookUp(token)) => {
            access::accept_token(&token, tokens::find(&db, &token.id)?, now)
        }
        Err(refusal) => Err(refusal),
    };
    match identity {
        Ok(identity) => {
            Failures::check(failures, now, max_failures).map_err(refused)?;
            Ok(caller(identity))
        }
        // Asking without credentials guesses nothing.
        Err(LoginRefusal::Missing) => Err(refused(LoginRefusal::Missing)),
        Err(refusal) => {
            let counted = Failures::after_failure(failures, now);
            tokens::record_failures(&db, &client, counted)?;
            Failures::check(Some(counted), now, max_failures).map_err(refused)?;
            Err(refused(refusal))
        }
    }
}

/// A refusal as an answer: a 401 challenges for Basic credentials, a 429 says when to retry.
fn refused(refusal: LoginRefusal) -> ApiError {
    let mut error = ApiError::from(refusal);
    match refusal {
        LoginRefusal::TooManyFailures { retry_after } => error.retry_after = Some(retry_after),
        _ if error.status == 401 => error.challenge = Some(registry_core::login::CHALLENGE),
        _ => {}
    }
    error
}

/// The client's IP address, without its port (`spin-client-addr`, set by Spin and by
/// opsml-host: the peer of the connection, so a proxy in front is one client).
fn client_address(head: &RequestHead) -> String {
    let addr = head.header("spin-client-addr").unwrap_or_default();
    match addr.parse::<std::net::SocketAddr>() {
        Ok(socket) => socket.ip().to_string(),
        Err(_) => addr,
    }
}

/// The content digest chosen for the deployment (`digest_algorithm`: blake3 or sha256).
pub fn digest_algorithm() -> Result<DigestAlgorithm, ApiError> {
    let name = variable("digest_algorithm");
    DigestAlgorithm::parse(&name).ok_or_else(|| {
        ApiError::new(
            500,
            format!("server misconfigured: digest_algorithm {name:?} is not blake3 or sha256"),
        )
    })
}

/// A numeric variable; unset means `default`, anything else must be a number.
fn number_variable(name: &str, default: u64) -> Result<u64, ApiError> {
    let text = variable(name);
    if text.trim().is_empty() {
        return Ok(default);
    }
    text.trim().parse().map_err(|_| {
        ApiError::new(
            500,
            format!("server misconfigured: {name} {text:?} is not a whole number"),
        )
    })
}

/// How large an upload may be and when an unfinished one counts as dead.
pub struct UploadLimits {
    /// `max_upload_bytes`: larger files are refused with 413 (default 50 GiB, as the reference).
    pub max_upload_bytes: u64,
    /// `upload_stale_seconds`: an upload that stored nothing for this long is collected
    /// (default 900).
    pub stale_after_seconds: u64,
}

impl UploadLimits {
    pub fn load() -> Result<Self, ApiError> {
        Ok(Self {
            max_upload_bytes: number_variable("max_upload_bytes", 50 << 30)?,
            stale_after_seconds: number_variable("upload_stale_seconds", 900)?,
        })
    }
}
