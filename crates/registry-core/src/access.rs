//! Who may do what: the identities a request can carry, the scopes of API tokens, and the
//! decision for each operation.
//!
//! A deployment turns access control on by setting the shared login (`username` and
//! `password`, see [`crate::login`]) or `admin_token`, or both. With neither, every request is
//! [`Identity::Open`] and may do anything (writes still need the prod token in production).
//! Once on, every request needs one of:
//! * the shared login (HTTP Basic): read and write in every repository, as the opsml 2.2.4
//!   server's login allows, but not the admin API;
//! * `admin_token` (as `Authorization: Bearer`, or as the Basic password): the first admin,
//!   from a secret in the runtime-config;
//! * an API token made through the admin API, `Bearer` or as the Basic password (so the opsml
//!   client can send one through `OPSML_PASSWORD`): its scope, optionally limited to some
//!   repositories, until it expires or is revoked.

use std::fmt;

use sha2::{Digest, Sha256};

use crate::error::{HttpError, Status};
use crate::login::{is_login, presented, LoginRefusal, Presented};
use crate::prod_token::constant_time_eq;

/// Every API token starts with this, so a token is told from a password without a lookup.
pub const TOKEN_PREFIX: &str = "opsml_";
/// Hex digits of a token's public id and of its secret part.
const TOKEN_ID_HEX: usize = 16;
const TOKEN_SECRET_HEX: usize = 64;
/// Random bytes a new token needs: its id, then its secret.
pub const TOKEN_RANDOM_BYTES: usize = (TOKEN_ID_HEX + TOKEN_SECRET_HEX) / 2;
/// The shortest `admin_token` accepted: shorter is a misconfiguration, not a secret.
pub const MIN_ADMIN_TOKEN_CHARS: usize = 32;
/// What the audit trail records for the first admin.
pub const ADMIN_TOKEN_IDENTITY: &str = "admin-token";

/// What a token (or identity) may do; each scope includes the ones below it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Read cards, files and metrics.
    Read,
    /// Read, and register cards, upload and delete files, record metrics.
    Write,
    /// Everything, and the admin API (tokens, the audit trail).
    Admin,
}

impl Scope {
    pub fn parse(name: &str) -> Result<Self, AccessError> {
        match name {
            "read" => Ok(Scope::Read),
            "write" => Ok(Scope::Write),
            "admin" => Ok(Scope::Admin),
            other => Err(AccessError::UnknownScope(other.to_string())),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Admin => "admin",
        }
    }
}

/// A scope, in every repository (`None`) or only in the listed ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub scope: Scope,
    pub repositories: Option<Vec<String>>,
}

impl Grant {
    pub fn everywhere(scope: Scope) -> Self {
        Grant {
            scope,
            repositories: None,
        }
    }

    /// Whether it allows `need` in `repository`; `None` is an operation that names no single
    /// repository (the admin API, a listing of every repository's files), which only an
    /// unlimited grant covers.
    pub fn allows(&self, need: Scope, repository: Option<&str>) -> bool {
        self.scope >= need
            && match (&self.repositories, repository) {
                (None, _) => true,
                (Some(allowed), Some(repository)) => allowed.iter().any(|r| r == repository),
                (Some(_), None) => false,
            }
    }
}

/// Who a request is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// Access control is off: anyone may do anything.
    Open,
    /// The shared login (`username`).
    Login(String),
    /// The first admin, `admin_token`.
    AdminToken,
    /// An API token, by its public id.
    Token { id: String, grant: Grant },
}

impl Identity {
    /// How the audit trail names it: never a secret.
    pub fn name(&self) -> String {
        match self {
            Identity::Open => "anonymous".to_string(),
            Identity::Login(username) => format!("login:{username}"),
            Identity::AdminToken => ADMIN_TOKEN_IDENTITY.to_string(),
            Identity::Token { id, .. } => format!("token:{id}"),
        }
    }

    pub fn grant(&self) -> Grant {
        match self {
            Identity::Open | Identity::AdminToken => Grant::everywhere(Scope::Admin),
            Identity::Login(_) => Grant::everywhere(Scope::Write),
            Identity::Token { grant, .. } => grant.clone(),
        }
    }

    /// Allows `need` in `repository` (see [`Grant::allows`]), or says why not.
    pub fn require(&self, need: Scope, repository: Option<&str>) -> Result<(), AccessError> {
        let grant = self.grant();
        if grant.allows(need, repository) {
            return Ok(());
        }
        Err(AccessError::Forbidden {
            identity: self.name(),
            grant,
            need,
            repository: repository.map(str::to_string),
        })
    }

    /// Allows `need` in some repository (its scope, whatever repositories it is limited to):
    /// for a listing narrowed to what it may read, or an operation on something that does not
    /// exist, which reveals nothing of any repository.
    pub fn require_somewhere(&self, need: Scope) -> Result<(), AccessError> {
        let mut grant = self.grant();
        grant.repositories = None;
        if grant.allows(need, None) {
            return Ok(());
        }
        self.require(need, None)
    }

    /// The repositories it may read; `None` for all. Listings keep only these.
    pub fn readable_repositories(&self) -> Option<Vec<String>> {
        self.grant().repositories
    }
}

/// A refused operation or a bad token request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessError {
    Forbidden {
        identity: String,
        grant: Grant,
        need: Scope,
        repository: Option<String>,
    },
    UnknownScope(String),
    /// A repository list that is given but empty, or names an empty repository.
    BadRepositories(&'static str),
}

impl fmt::Display for AccessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AccessError::Forbidden {
                identity,
                grant,
                need,
                repository,
            } => {
                write!(f, "{identity} (scope {}", grant.scope.as_str())?;
                if let Some(allowed) = &grant.repositories {
                    write!(f, " in {}", allowed.join(", "))?;
                }
                write!(f, ") may not {}", need.as_str())?;
                match (need, repository) {
                    (Scope::Admin, _) => f.write_str(": the admin API needs the admin scope"),
                    (_, Some(repository)) => write!(f, " in repository {repository}"),
                    (_, None) => f.write_str(" outside its repositories: name one of them"),
                }
            }
            AccessError::UnknownScope(scope) => write!(
                f,
                "unknown scope {scope:?}: expected \"read\", \"write\" or \"admin\""
            ),
            AccessError::BadRepositories(why) => write!(f, "repositories: {why}"),
        }
    }
}

impl std::error::Error for AccessError {}

impl HttpError for AccessError {
    fn status(&self) -> Status {
        match self {
            AccessError::Forbidden { .. } => Status::Forbidden,
            _ => Status::UnprocessableEntity,
        }
    }
}

/// What the deployment configured: empty means unset.
#[derive(Debug, Clone, Copy, Default)]
pub struct AccessConfig<'a> {
    pub username: &'a str,
    pub password: &'a str,
    pub admin_token: &'a str,
}

impl AccessConfig<'_> {
    /// Whether requests need credentials at all.
    pub fn is_on(&self) -> Result<bool, LoginRefusal> {
        match (self.username.is_empty(), self.password.is_empty()) {
            (true, false) | (false, true) => return Err(LoginRefusal::HalfConfigured),
            _ => {}
        }
        if !self.admin_token.is_empty() && self.admin_token.chars().count() < MIN_ADMIN_TOKEN_CHARS
        {
            return Err(LoginRefusal::WeakAdminToken);
        }
        Ok(!self.username.is_empty() || !self.admin_token.is_empty())
    }
}

/// The first step of authentication: an identity, or an API token to look up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authenticated {
    Identity(Identity),
    /// A well-formed API token: find its record by `id`, then [`accept_token`].
    LookUp(PresentedToken),
}

/// An API token as presented: its public id and the hash its record must hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresentedToken {
    pub id: String,
    pub hash: String,
}

/// Decides who a request is from its `Authorization` header, as far as the configuration
/// alone can tell.
pub fn authenticate(
    config: &AccessConfig<'_>,
    authorization: Option<&str>,
) -> Result<Authenticated, LoginRefusal> {
    if !config.is_on()? {
        return Ok(Authenticated::Identity(Identity::Open));
    }
    let secret = match presented(authorization)? {
        Presented::Basic { username, password } => {
            let login_set = !config.username.is_empty();
            if login_set && is_login(&username, &password, (config.username, config.password)) {
                return Ok(Authenticated::Identity(Identity::Login(username)));
            }
            password
        }
        Presented::Bearer(token) => token,
    };
    if !config.admin_token.is_empty()
        && constant_time_eq(secret.as_bytes(), config.admin_token.as_bytes())
    {
        return Ok(Authenticated::Identity(Identity::AdminToken));
    }
    match parse_token(&secret) {
        Some(id) => Ok(Authenticated::LookUp(PresentedToken {
            id: id.to_string(),
            hash: token_hash(&secret),
        })),
        None => Err(LoginRefusal::Wrong),
    }
}

/// The public id of a well-formed token (`opsml_<16 hex>_<64 hex>`).
fn parse_token(token: &str) -> Option<&str> {
    let rest = token.strip_prefix(TOKEN_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let hex = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hex(id, TOKEN_ID_HEX) && hex(secret, TOKEN_SECRET_HEX)).then_some(id)
}

/// What a token's record holds instead of the token: SHA-256, hex. A token carries 256
/// random bits, so a fast hash is enough; a slow one would only slow every request.
pub fn token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A new token from fresh random bytes: its public id, the token (shown once) and its hash.
pub fn new_token(random: &[u8; TOKEN_RANDOM_BYTES]) -> (String, String, String) {
    let (id, secret) = random.split_at(TOKEN_ID_HEX / 2);
    let id = hex(id);
    let token = format!("{TOKEN_PREFIX}{id}_{}", hex(secret));
    let hash = token_hash(&token);
    (id, token, hash)
}

/// A token's record, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredToken {
    pub id: String,
    pub hash: String,
    pub grant: Grant,
    /// Seconds since the Unix epoch.
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
}

/// The identity of a presented token whose record was found (or not), at `now`.
pub fn accept_token(
    presented: &PresentedToken,
    stored: Option<StoredToken>,
    now: i64,
) -> Result<Identity, LoginRefusal> {
    let Some(stored) = stored else {
        return Err(LoginRefusal::Wrong);
    };
    // Only the holder of the secret learns whether it expired or was revoked.
    if !constant_time_eq(presented.hash.as_bytes(), stored.hash.as_bytes()) {
        return Err(LoginRefusal::Wrong);
    }
    if stored.revoked_at.is_some() {
        return Err(LoginRefusal::Revoked);
    }
    if now >= stored.expires_at {
        return Err(LoginRefusal::Expired);
    }
    Ok(Identity::Token {
        id: stored.id,
        grant: stored.grant,
    })
}

/// The repositories a new token is limited to: `None` for all; each normalized as card
/// repositories are, so that `Team_A` means the `team-a` the client registers under.
pub fn token_repositories(given: Option<Vec<String>>) -> Result<Option<Vec<String>>, AccessError> {
    let Some(given) = given else {
        return Ok(None);
    };
    if given.is_empty() {
        return Err(AccessError::BadRepositories(
            "an empty list would allow nothing; leave it out for every repository",
        ));
    }
    let mut repositories = Vec::with_capacity(given.len());
    for repository in given {
        let normalized = crate::naming::db_normalize(repository.trim());
        if normalized.is_empty() {
            return Err(AccessError::BadRepositories("a repository name is empty"));
        }
        if !repositories.contains(&normalized) {
            repositories.push(normalized);
        }
    }
    Ok(Some(repositories))
}

/// Repeated login failures from one client: after the deployment's limit (by default
/// [`DEFAULT_MAX_LOGIN_FAILURES`]) within [`FAILURE_WINDOW_SECONDS`], the client is refused
/// (429), even with the right credentials, until that window ends.
pub const DEFAULT_MAX_LOGIN_FAILURES: i64 = 10;
pub const FAILURE_WINDOW_SECONDS: i64 = 60;

/// A client's failures: since when they count, and how many.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failures {
    pub since: i64,
    pub count: i64,
}

impl Failures {
    /// The record after one more failure at `now` (a window that ended starts again).
    pub fn after_failure(previous: Option<Failures>, now: i64) -> Failures {
        match previous {
            Some(f) if now < f.since + FAILURE_WINDOW_SECONDS => Failures {
                since: f.since,
                count: f.count + 1,
            },
            _ => Failures {
                since: now,
                count: 1,
            },
        }
    }

    /// Refuses the client while it has reached `max` failures in the current window (`max`
    /// 0: never).
    pub fn check(record: Option<Failures>, now: i64, max: i64) -> Result<(), LoginRefusal> {
        match record {
            Some(f) if max > 0 && f.count >= max && now < f.since + FAILURE_WINDOW_SECONDS => {
                Err(LoginRefusal::TooManyFailures {
                    retry_after: f.since + FAILURE_WINDOW_SECONDS - now,
                })
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn basic(credentials: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(credentials)
        )
    }

    const ADMIN: &str = "0123456789abcdef0123456789abcdef-admin";

    fn config<'a>(username: &'a str, password: &'a str, admin_token: &'a str) -> AccessConfig<'a> {
        AccessConfig {
            username,
            password,
            admin_token,
        }
    }

    fn identity(config: &AccessConfig<'_>, header: Option<&str>) -> Result<Identity, LoginRefusal> {
        match authenticate(config, header)? {
            Authenticated::Identity(identity) => Ok(identity),
            Authenticated::LookUp(token) => panic!("unexpected lookup of {token:?}"),
        }
    }

    #[test]
    fn nothing_configured_lets_every_request_in() {
        let open = config("", "", "");
        assert_eq!(identity(&open, None), Ok(Identity::Open));
        assert_eq!(identity(&open, Some("Basic garbage")), Ok(Identity::Open));
    }

    #[test]
    fn half_a_login_or_a_short_admin_token_refuses_everything() {
        for (user, password) in [("alice", ""), ("", "secret")] {
            let refusal = identity(&config(user, password, ""), Some(&basic("alice:secret")));
            assert_eq!(refusal, Err(LoginRefusal::HalfConfigured));
            assert_eq!(
                LoginRefusal::HalfConfigured.status(),
                Status::InternalServerError
            );
        }
        let short = config("", "", "too-short");
        assert_eq!(
            identity(&short, Some("Bearer too-short")),
            Err(LoginRefusal::WeakAdminToken)
        );
    }

    #[test]
    fn only_the_configured_login_passes() {
        let login = config("alice", "s3cret:x", "");
        let check = |header: Option<&str>| identity(&login, header);
        assert_eq!(
            check(Some(&basic("alice:s3cret:x"))),
            Ok(Identity::Login("alice".into()))
        );
        // The scheme is case-insensitive and surrounding spaces are ignored.
        let lower = basic("alice:s3cret:x").replace("Basic", "basic");
        assert_eq!(
            check(Some(&format!("  {lower} "))),
            Ok(Identity::Login("alice".into()))
        );
        for wrong in [
            "alice:s3cret",
            "Alice:s3cret:x",
            "alice:",
            ":s3cret:x",
            "bob:s3cret:x",
        ] {
            assert_eq!(
                check(Some(&basic(wrong))),
                Err(LoginRefusal::Wrong),
                "{wrong}"
            );
        }
        assert_eq!(check(Some("Bearer abc")), Err(LoginRefusal::Wrong));
        for missing in [None, Some(""), Some("Digest abc")] {
            assert_eq!(check(missing), Err(LoginRefusal::Missing), "{missing:?}");
        }
        for malformed in [
            "Basic".to_string(),
            "Basic !!!notbase64".to_string(),
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode([0xff, b':', b'x'])
            ),
            basic("no colon"),
            "Bearer ".to_string(),
        ] {
            assert!(
                matches!(check(Some(&malformed)), Err(LoginRefusal::Malformed(_))),
                "{malformed}"
            );
        }
    }

    #[test]
    fn the_admin_token_passes_as_bearer_or_as_the_basic_password() {
        let admin = config("alice", "pw", ADMIN);
        for header in [format!("Bearer {ADMIN}"), basic(&format!("anyone:{ADMIN}"))] {
            assert_eq!(identity(&admin, Some(&header)), Ok(Identity::AdminToken));
        }
        // With only the admin token set, the shared login does not exist.
        let only_admin = config("", "", ADMIN);
        assert_eq!(
            identity(&only_admin, Some(&basic("alice:pw"))),
            Err(LoginRefusal::Wrong)
        );
        assert_eq!(identity(&only_admin, None), Err(LoginRefusal::Missing));
        assert_eq!(
            identity(&only_admin, Some(&format!("Bearer {ADMIN}x"))),
            Err(LoginRefusal::Wrong)
        );
    }

    #[test]
    fn a_token_is_looked_up_by_id_and_accepted_by_hash() {
        let (id, token, hash) = new_token(&[7; TOKEN_RANDOM_BYTES]);
        assert_eq!(id, "0707070707070707");
        assert!(token.starts_with("opsml_0707070707070707_"));
        let on = config("", "", ADMIN);
        let expected = Authenticated::LookUp(PresentedToken {
            id: id.clone(),
            hash: hash.clone(),
        });
        assert_eq!(
            authenticate(&on, Some(&format!("Bearer {token}"))),
            Ok(expected.clone())
        );
        assert_eq!(
            authenticate(&on, Some(&basic(&format!("ci:{token}")))),
            Ok(expected)
        );
        let grant = Grant {
            scope: Scope::Read,
            repositories: Some(vec!["team-a".into()]),
        };
        let stored = StoredToken {
            id: id.clone(),
            hash,
            grant: grant.clone(),
            expires_at: 1_000,
            revoked_at: None,
        };
        let presented = PresentedToken {
            id: id.clone(),
            hash: token_hash(&token),
        };
        assert_eq!(
            accept_token(&presented, Some(stored.clone()), 999),
            Ok(Identity::Token { id, grant })
        );
        assert_eq!(
            accept_token(&presented, Some(stored.clone()), 1_000),
            Err(LoginRefusal::Expired)
        );
        let revoked = StoredToken {
            revoked_at: Some(5),
            ..stored.clone()
        };
        assert_eq!(
            accept_token(&presented, Some(revoked.clone()), 10),
            Err(LoginRefusal::Revoked)
        );
        // A wrong secret for a known id learns nothing about the record.
        let forged = PresentedToken {
            id: presented.id.clone(),
            hash: token_hash("opsml_0707070707070707_00"),
        };
        assert_eq!(
            accept_token(&forged, Some(revoked), 10),
            Err(LoginRefusal::Wrong)
        );
        assert_eq!(accept_token(&presented, None, 10), Err(LoginRefusal::Wrong));
        // Not a token's shape: no lookup.
        for wrong in ["opsml_07_00", "opsml_zz07070707070707_", "ghp_abc"] {
            assert_eq!(
                authenticate(&on, Some(&format!("Bearer {wrong}"))),
                Err(LoginRefusal::Wrong)
            );
        }
    }

    #[test]
    fn grants_by_scope_and_repository() {
        let team_a_reader = Identity::Token {
            id: "abc".into(),
            grant: Grant {
                scope: Scope::Read,
                repositories: Some(vec!["team-a".into()]),
            },
        };
        assert_eq!(team_a_reader.require(Scope::Read, Some("team-a")), Ok(()));
        let refusal = team_a_reader
            .require(Scope::Write, Some("team-a"))
            .unwrap_err();
        assert_eq!(refusal.status(), Status::Forbidden);
        assert_eq!(
            refusal.to_string(),
            "token:abc (scope read in team-a) may not write in repository team-a"
        );
        assert!(team_a_reader.require(Scope::Read, Some("team-b")).is_err());
        assert!(team_a_reader.require(Scope::Read, None).is_err());
        assert_eq!(
            team_a_reader.readable_repositories(),
            Some(vec!["team-a".to_string()])
        );
        let login = Identity::Login("alice".into());
        assert_eq!(login.require(Scope::Write, None), Ok(()));
        assert!(login.require(Scope::Admin, None).is_err());
        for admin in [Identity::Open, Identity::AdminToken] {
            assert_eq!(admin.require(Scope::Admin, None), Ok(()));
        }
        assert_eq!(Identity::AdminToken.name(), "admin-token");
        assert_eq!(login.name(), "login:alice");
    }

    #[test]
    fn scopes_and_repositories_of_a_new_token() {
        assert_eq!(Scope::parse("write"), Ok(Scope::Write));
        let unknown = Scope::parse("owner").unwrap_err();
        assert_eq!(unknown.status(), Status::UnprocessableEntity);
        assert_eq!(token_repositories(None), Ok(None));
        assert_eq!(
            token_repositories(Some(vec!["Team_A".into(), "team-a".into(), "b".into()])),
            Ok(Some(vec!["team-a".into(), "b".into()]))
        );
        assert!(token_repositories(Some(vec![])).is_err());
        assert!(token_repositories(Some(vec![" ".into()])).is_err());
    }

    #[test]
    fn failures_lock_a_client_out_until_their_window_ends() {
        let mut record = None;
        let max = DEFAULT_MAX_LOGIN_FAILURES;
        for i in 0..max {
            assert_eq!(Failures::check(record, 100 + i, max), Ok(()));
            record = Some(Failures::after_failure(record, 100 + i));
        }
        assert_eq!(
            Failures::check(record, 110, max),
            Err(LoginRefusal::TooManyFailures { retry_after: 50 })
        );
        assert_eq!(Failures::check(record, 110, 0), Ok(()), "0: no limit");
        assert_eq!(Failures::check(record, 110, max + 1), Ok(()));
        assert_eq!(Failures::check(record, 160, max), Ok(()));
        // A failure after the window starts a new one.
        assert_eq!(
            Failures::after_failure(record, 160),
            Failures {
                since: 160,
                count: 1
            }
        );
    }

    #[test]
    fn refusals_never_echo_a_secret() {
        let login = config("alice", "hunter2", "");
        let refusal = identity(&login, Some(&basic("alice:hunter3"))).unwrap_err();
        assert!(!refusal.to_string().contains("hunter"));
    }
}
