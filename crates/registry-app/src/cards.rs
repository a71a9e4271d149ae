//! Cards: the next version, create, update, delete, and every read (by uid, listings, names,
//! repositories, project ids). Writes need `write` in the card's repository and, in
//! production, the prod token; each is recorded in the audit trail in its own transaction.
//! Reads need `read`, and a caller limited to some repositories sees only those.

use crate::caller::{Caller, WriteCleared, WritePolicy};
use crate::deployment::Ctx;
use crate::error::{AppError, Result};
use registry_core::access::Scope;
use registry_core::card::{self, Card, CardDefaults};
use registry_core::{next_version, RegistryType, VersionRequest, VersionType};
use registry_store::audit::{self, AuditAction, AuditRecord};
use registry_store::browse::{self, Cursor, NameFilter, NamePage};
use registry_store::cards::{self, CardList, ListQuery};
use registry_store::list_request::ListRequest;
use registry_store::sql::transaction;
use registry_store::StoreError;
use serde::Deserialize;
use serde_json::{Map, Value};

/// A stored card as the pages and operations read it: its registry and its fields.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredCard {
    pub registry: RegistryType,
    pub fields: Map<String, Value>,
}

impl StoredCard {
    /// A text field; empty when absent or not text.
    pub fn text(&self, key: &str) -> &str {
        self.fields
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
    }
    pub fn uid(&self) -> &str {
        self.text("uid")
    }
    pub fn name(&self) -> &str {
        self.text("name")
    }
    pub fn repository(&self) -> &str {
        self.text("repository")
    }
    pub fn version(&self) -> &str {
        self.text("version")
    }
    /// Where its files are stored: `OPSML_MODEL_REGISTRY/<repository>/<name>/v<version>`.
    pub fn folder(&self) -> String {
        format!(
            "{}/{}/{}/v{}",
            self.registry.storage_folder(),
            self.repository(),
            self.name(),
            self.version()
        )
    }
}

/// The table behind a registry type; also the two tables that are not card registries.
pub fn registry_table(registry_type: &str) -> Result<&'static str> {
    Ok(match registry_type.trim().to_ascii_lowercase().as_str() {
        "base" => "OPSML_BASE_REGISTRY",
        "metrics" => "OPSML_RUN_METRICS",
        _ => RegistryType::parse(registry_type)
            .map_err(|_| {
                AppError::unprocessable(format!("Registry type {registry_type} does not exist"))
            })?
            .table_name(),
    })
}

/// The registry a request names by `table_name` or `registry_type`.
#[derive(Deserialize, Default)]
pub struct RegistryName {
    #[serde(default)]
    pub registry_type: Option<String>,
    #[serde(default)]
    pub table_name: Option<String>,
}

impl RegistryName {
    pub fn resolve(&self) -> Result<RegistryType> {
        Ok(RegistryType::resolve(
            self.table_name.as_deref(),
            self.registry_type.as_deref(),
        )?)
    }
}

/// Whether a uid is taken (the client asks before it registers): says nothing of any
/// repository, so the scope alone decides.
pub fn uid_exists(ctx: &Ctx, caller: &Caller, registry: RegistryType, uid: &str) -> Result<bool> {
    caller.require_somewhere(Scope::Read)?;
    Ok(cards::get(ctx.db()?, registry, uid)?.is_some())
}

/// A card by uid, if the caller may read it (404 when there is none, 403 when it is in a
/// repository the caller may not read).
pub fn readable(
    ctx: &Ctx,
    caller: &Caller,
    registry: RegistryType,
    uid: &str,
) -> Result<StoredCard> {
    let fields = cards::get(ctx.db()?, registry, uid)?
        .ok_or_else(|| AppError::not_found(format!("No card has uid {uid}.")))?;
    let card = StoredCard { registry, fields };
    caller.require(Scope::Read, Some(card.repository()))?;
    Ok(card)
}

/// Cards as the client lists them, each as stored.
pub fn list(ctx: &Ctx, caller: &Caller, request: ListRequest) -> Result<CardList> {
    let (registry, mut query) = request.into_query()?;
    caller.restrict(&mut query)?;
    Ok(CardList {
        cards: cards::list_stored(ctx.db()?, registry, &query)?,
    })
}

/// Cards matching `query` (narrowed to what the caller may read), highest version first.
pub fn find(
    ctx: &Ctx,
    caller: &Caller,
    registry: RegistryType,
    mut query: ListQuery,
) -> Result<Vec<StoredCard>> {
    caller.restrict(&mut query)?;
    Ok(cards::list(ctx.db()?, registry, &query)?
        .into_iter()
        .map(|fields| StoredCard { registry, fields })
        .collect())
}

/// A registry's repositories the caller may read, sorted.
pub fn repositories(ctx: &Ctx, caller: &Caller, registry: RegistryType) -> Result<Vec<String>> {
    caller.require_somewhere(Scope::Read)?;
    let mut repositories = cards::repositories(ctx.db()?, registry)?;
    if let Some(readable) = caller.identity.readable_repositories() {
        repositories.retain(|r| readable.contains(r));
    }
    Ok(repositories)
}

/// A registry's card names, in one repository or in every one the caller may read.
pub fn names(
    ctx: &Ctx,
    caller: &Caller,
    registry: RegistryType,
    repository: Option<&str>,
) -> Result<Vec<String>> {
    let repository = repository
        .filter(|r| !r.is_empty())
        .map(|r| card::normalize(registry, r));
    let db = ctx.db()?;
    Ok(
        match (repository, caller.identity.readable_repositories()) {
            (Some(repository), _) => {
                caller.require(Scope::Read, Some(&repository))?;
                cards::names(db, registry, Some(&repository))?
            }
            (None, None) => {
                caller.require_somewhere(Scope::Read)?;
                cards::names(db, registry, None)?
            }
            (None, Some(readable)) => {
                caller.require_somewhere(Scope::Read)?;
                let mut names = Vec::new();
                for repository in readable {
                    names.extend(cards::names(db, registry, Some(&repository))?);
                }
                names.sort();
                names.dedup();
                names
            }
        },
    )
}

/// A page of a registry's names (for the list pages), in one repository or in those the
/// caller may read, from `cursor`.
pub fn names_page(
    ctx: &Ctx,
    caller: &Caller,
    registry: RegistryType,
    mut filter: NameFilter,
    cursor: &Cursor,
    limit: u64,
) -> Result<NamePage> {
    match &filter.repository {
        Some(repository) => caller.require(Scope::Read, Some(repository))?,
        None => caller.require_somewhere(Scope::Read)?,
    }
    filter.readable_repositories = caller.identity.readable_repositories();
    Ok(browse::names_page(
        ctx.db()?,
        registry,
        &filter,
        cursor,
        limit,
    )?)
}

/// The repositories holding cards named `name` that the caller may read.
pub fn holders(
    ctx: &Ctx,
    caller: &Caller,
    registry: RegistryType,
    name: &str,
) -> Result<Vec<String>> {
    let readable = caller.identity.readable_repositories();
    Ok(browse::repositories_of(
        ctx.db()?,
        registry,
        name,
        readable.as_deref(),
    )?)
}

/// A project's id, or the next free one.
pub fn project_id(ctx: &Ctx, caller: &Caller, name: &str, repository: &str) -> Result<i64> {
    caller.require(Scope::Read, Some(repository))?;
    Ok(cards::project_id(ctx.db()?, name, repository)?)
}

#[derive(Deserialize)]
pub struct SuppliedVersion {
    pub version: String,
}

/// `cards/version`'s body.
#[derive(Deserialize)]
pub struct VersionAsk {
    pub name: String,
    pub repository: String,
    #[serde(default)]
    pub version: Option<SuppliedVersion>,
    pub version_type: String,
    #[serde(flatten)]
    pub registry: RegistryName,
    #[serde(default)]
    pub pre_tag: Option<String>,
    #[serde(default)]
    pub build_tag: Option<String>,
}

/// The next version of a card name: counted over every stored version, by number.
pub fn next(ctx: &Ctx, caller: &Caller, ask: VersionAsk) -> Result<String> {
    let registry = ask.registry.resolve()?;
    let repository = card::normalize(registry, &ask.repository);
    caller.require(Scope::Read, Some(&repository))?;
    let mut request = VersionRequest::new(VersionType::parse(&ask.version_type)?);
    if let Some(supplied) = ask.version {
        request = request.with_version(supplied.version);
    }
    if let Some(tag) = ask.pre_tag {
        request = request.with_pre_tag(tag);
    }
    if let Some(tag) = ask.build_tag {
        request = request.with_build_tag(tag);
    }
    next_of(
        ctx,
        registry,
        &card::normalize(registry, &ask.name),
        &repository,
        &request,
    )
}

/// The next version of `name` in `repository` that `request` asks for.
pub fn next_of(
    ctx: &Ctx,
    registry: RegistryType,
    name: &str,
    repository: &str,
    request: &VersionRequest,
) -> Result<String> {
    let existing =
        cards::versions_for_next(ctx.db()?, registry, name, repository, &request.scope()?)?;
    Ok(next_version(&existing, request)?.to_string())
}

/// A card write's body: the card's fields and its registry.
#[derive(Deserialize)]
pub struct CardWrite {
    pub card: Map<String, Value>,
    #[serde(flatten)]
    pub registry: RegistryName,
}

/// What a new card gets for the fields the client left out: a uid, today's date, this
/// deployment's `app_env`, now.
pub fn defaults(ctx: &Ctx) -> CardDefaults {
    let now = ctx.now_unix();
    CardDefaults {
        uid: ctx.new_id(),
        date: card::utc_date(now),
        app_env: WritePolicy::load(ctx).app_env_or_default(),
        timestamp: now * 1_000_000,
    }
}

/// Validates a new card (and, for a project, gives it its id), needing `write` in its
/// repository; the caller stores it.
pub fn prepare_new(
    ctx: &Ctx,
    caller: &Caller,
    registry: RegistryType,
    fields: Map<String, Value>,
) -> Result<Card> {
    let mut card = Card::from_fields(registry, fields, &defaults(ctx))?;
    caller.require(Scope::Write, Some(&card.repository))?;
    if registry == RegistryType::Project && card.record["project_id"].is_null() {
        let id = cards::project_id(ctx.db()?, &card.name, &card.repository)?;
        card.record
            .insert("project_id".into(), serde_json::json!(id));
    }
    Ok(card)
}

/// Registers a card. An existing version is a 409.
pub fn create(ctx: &Ctx, caller: &Caller, _: &WriteCleared, write: CardWrite) -> Result<()> {
    let registry = write.registry.resolve()?;
    let card = prepare_new(ctx, caller, registry, write.card)?;
    let record = caller.card_audit(ctx, AuditAction::CardCreate, &card);
    transaction(ctx.db()?, |tx| {
        cards::insert(tx, &card)?;
        audit::record(tx, &record)
    })?;
    Ok(())
}

fn uid_of(card: &Map<String, Value>) -> Result<String> {
    match card.get("uid") {
        Some(Value::String(uid)) if !uid.is_empty() => Ok(uid.clone()),
        _ => Err(AppError::unprocessable(
            "card field \"uid\" (a string) is required",
        )),
    }
}

/// A stored card with `changes` applied, needing `write` where it is and where it goes (a
/// move between repositories needs both); `None` if there is no such card.
pub fn prepare_update(
    ctx: &Ctx,
    caller: &Caller,
    registry: RegistryType,
    changes: Map<String, Value>,
) -> Result<Option<Card>> {
    let uid = uid_of(&changes)?;
    let Some(mut fields) = cards::get(ctx.db()?, registry, &uid)? else {
        caller.require_somewhere(Scope::Write)?;
        return Ok(None);
    };
    let stored = StoredCard {
        registry,
        fields: fields.clone(),
    };
    caller.require(Scope::Write, Some(stored.repository()))?;
    fields.extend(changes);
    let card = Card::from_fields(registry, fields, &defaults(ctx))?;
    caller.require(Scope::Write, Some(&card.repository))?;
    Ok(Some(card))
}

/// Changes the given fields of an existing card; false if there is no such card.
pub fn update(ctx: &Ctx, caller: &Caller, _: &WriteCleared, write: CardWrite) -> Result<bool> {
    let registry = write.registry.resolve()?;
    let Some(card) = prepare_update(ctx, caller, registry, write.card)? else {
        return Ok(false);
    };
    let record = caller.card_audit(ctx, AuditAction::CardUpdate, &card);
    Ok(transaction(ctx.db()?, |tx| {
        let updated = cards::update(tx, &card)?;
        if updated {
            audit::record(tx, &record)?;
        }
        Ok(updated)
    })?)
}

/// Deletes a card by uid; done once it is gone (also if it never existed).
pub fn delete(ctx: &Ctx, caller: &Caller, _: &WriteCleared, write: CardWrite) -> Result<()> {
    let registry = write.registry.resolve()?;
    let uid = uid_of(&write.card)?;
    let db = ctx.db()?;
    let Some(fields) = cards::get(db, registry, &uid)? else {
        caller.require_somewhere(Scope::Write)?;
        return Ok(());
    };
    let existing = StoredCard { registry, fields };
    caller.require(Scope::Write, Some(existing.repository()))?;
    let record = AuditRecord {
        registry: Some(registry.as_str().to_string()),
        repository: Some(existing.repository().to_string()),
        name: Some(existing.name().to_string()),
        version: Some(existing.version().to_string()),
        ..caller.audit(ctx, AuditAction::CardDelete, uid.clone())
    };
    transaction(db, |tx| {
        if cards::delete(tx, registry, &uid)?.is_some() {
            audit::record(tx, &record)?;
        }
        Ok(())
    })?;
    Ok(())
}

/// A card saved together with a file in its folder (an audit card and its `card.joblib`),
/// and a linked card changed with them (the model a new audit card is for).
pub struct CardWithFile<'a> {
    pub card: Card,
    /// A card not stored yet; else one being changed.
    pub is_new: bool,
    pub linked: Option<Card>,
    pub file_name: &'a str,
    pub bytes: &'a [u8],
    /// For a changed card: the digest of the file the change was made from ("" when there was
    /// none). The file is replaced only if it still has that digest.
    pub made_from: &'a str,
}

/// Why [`save_with_file`] saved nothing.
#[derive(Debug)]
pub enum SaveRefused {
    /// The card being changed was deleted meanwhile.
    CardGone,
    /// The linked card was deleted meanwhile.
    LinkedGone,
    /// Someone replaced the file after the change was made from it.
    FileChanged,
    /// A new card's version was registered by someone else meanwhile.
    VersionTaken,
    Failed(AppError),
}

impl<E: Into<AppError>> From<E> for SaveRefused {
    fn from(e: E) -> Self {
        SaveRefused::Failed(e.into())
    }
}

/// Stores the file and the rows in one transaction with their audit records (needing `write`
/// in both cards' repositories): all of it or nothing.
pub fn save_with_file(
    ctx: &Ctx,
    caller: &Caller,
    _: &WriteCleared,
    save: CardWithFile<'_>,
) -> std::result::Result<(), SaveRefused> {
    let CardWithFile {
        card,
        is_new,
        linked,
        file_name,
        bytes,
        made_from,
    } = save;
    caller.require(Scope::Write, Some(&card.repository))?;
    if let Some(linked) = &linked {
        caller.require(Scope::Write, Some(&linked.repository))?;
    }
    let folder = StoredCard {
        registry: card.registry,
        fields: card.record.clone(),
    }
    .folder();
    let path = format!("{folder}/{file_name}");
    let action = if is_new {
        AuditAction::CardCreate
    } else {
        AuditAction::CardUpdate
    };
    let card_record = caller.card_audit(ctx, action, &card);
    let file_record = caller
        .audit(ctx, AuditAction::FileUpload, path.clone())
        .about_card(&card);
    let linked_record = linked
        .as_ref()
        .map(|l| caller.card_audit(ctx, AuditAction::CardUpdate, l));
    let rows = |tx: &dyn registry_store::Sql, _: &str| -> registry_store::Result<()> {
        if is_new {
            cards::insert(tx, &card)?;
        } else if !cards::update(tx, &card)? {
            return Err(StoreError::Gone("the card".into()));
        }
        audit::record(tx, &card_record)?;
        audit::record(tx, &file_record)?;
        if let (Some(linked), Some(record)) = (&linked, &linked_record) {
            if !cards::update(tx, linked)? {
                return Err(StoreError::Gone("the linked card".into()));
            }
            audit::record(tx, record)?;
        }
        Ok(())
    };
    let written = registry_store::files::write_file::<StoreError>(
        ctx.db()?,
        ctx.blobs()?,
        &path,
        &ctx.new_id(),
        crate::settings::digest_algorithm(ctx)?,
        Some(bytes.len() as u64),
        || ctx.now_unix(),
        match (is_new, made_from) {
            (true, _) => registry_store::files::Replacing::Anything,
            (false, "") => registry_store::files::Replacing::Exactly(None),
            (false, digest) => registry_store::files::Replacing::Exactly(Some(digest)),
        },
        &rows,
        |sink| sink.write(bytes),
    );
    match written {
        Ok(_) => Ok(()),
        Err(StoreError::Gone(what)) if what == "the card" => Err(SaveRefused::CardGone),
        Err(StoreError::Gone(_)) => Err(SaveRefused::LinkedGone),
        Err(StoreError::Conflict(_)) if is_new => Err(SaveRefused::VersionTaken),
        Err(StoreError::Conflict(_)) => Err(SaveRefused::FileChanged),
        Err(other) => Err(other.into()),
    }
}
