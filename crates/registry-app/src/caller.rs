//! Who a request is and what it may do: its identity (see [`crate::auth`]), the prod token it
//! presented, and the request id its audit records carry. Every operation asks the caller;
//! nothing else decides access or the prod token.

use crate::deployment::Ctx;
use crate::error::Result;
use registry_core::access::{Identity, Scope};
use registry_core::card::Card;
use registry_core::prod_token::{self, DenyReason};
use registry_core::RegistryType;
use registry_store::audit::{AuditAction, AuditRecord};
use registry_store::cards::ListQuery;

/// `env` and `prod_token`: whether a write needs the prod token.
pub struct WritePolicy {
    pub app_env: String,
    pub prod_token: String,
}

impl WritePolicy {
    pub fn load(ctx: &Ctx) -> Self {
        Self {
            app_env: ctx.variable("env"),
            prod_token: ctx.variable("prod_token"),
        }
    }

    pub fn is_production(&self) -> bool {
        prod_token::is_production(&self.app_env)
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

/// Proof that [`Caller::clear_write`] allowed a write.
pub struct WriteCleared(());

#[derive(Clone)]
pub struct Caller {
    pub identity: Identity,
    pub request_id: String,
    /// The `X-Prod-Token` the request presented (or the audit form's field).
    pub prod_token: Option<String>,
}

impl Caller {
    /// Allows `need` in `repository` (`None`: an operation that names no single repository),
    /// or answers 403 with what the caller may do.
    pub fn require(&self, need: Scope, repository: Option<&str>) -> Result<()> {
        Ok(self.identity.require(need, repository)?)
    }

    /// Allows `need` in some repository: for an operation on something that does not exist,
    /// which reveals nothing of any repository.
    pub fn require_somewhere(&self, need: Scope) -> Result<()> {
        Ok(self.identity.require_somewhere(need)?)
    }

    /// Clears this request to write: in production it must carry the prod token (401), and
    /// with no prod token configured there nothing may be written (403). Every write
    /// operation takes the proof, so none can forget to ask; routes ask before they read the
    /// body, as the reference does.
    /// The refusal says why (its status is the core's: 401 or 403); pages phrase it.
    pub fn clear_write(&self, ctx: &Ctx) -> Result<WriteCleared, DenyReason> {
        let policy = WritePolicy::load(ctx);
        prod_token::check(
            &policy.app_env,
            Some(&policy.prod_token),
            self.prod_token.as_deref(),
            true,
        )
        .into_result()?;
        Ok(WriteCleared(()))
    }

    /// Narrows a card listing to what the caller may read: a query naming a repository needs
    /// `read` there (403 otherwise), one naming none lists only the caller's repositories.
    pub fn restrict(&self, query: &mut ListQuery) -> Result<()> {
        match &query.repository {
            Some(repository) => self.require(Scope::Read, Some(repository)),
            None => {
                self.require_somewhere(Scope::Read)?;
                query.readable_repositories = self.identity.readable_repositories();
                Ok(())
            }
        }
    }

    /// An audit record of `action` on `target` by this caller, now; the operation fills in
    /// the card fields it knows.
    pub fn audit(&self, ctx: &Ctx, action: AuditAction, target: impl Into<String>) -> AuditRecord {
        AuditRecord {
            at: ctx.now_micros(),
            request_id: self.request_id.clone(),
            identity: self.identity.name(),
            action: action.as_str().to_string(),
            registry: None,
            repository: None,
            name: None,
            version: None,
            target: target.into(),
            detail: None,
        }
    }

    /// An audit record of `action` on `card`.
    pub fn card_audit(&self, ctx: &Ctx, action: AuditAction, card: &Card) -> AuditRecord {
        self.audit(ctx, action, card.uid.clone()).about_card(card)
    }

    /// An audit record of `action` on the file at storage key `path`: its registry,
    /// repository, card name and version from the path's segments.
    pub fn file_audit(&self, ctx: &Ctx, action: AuditAction, path: &str) -> AuditRecord {
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
            ..self.audit(ctx, action, path)
        }
    }
}
