//! The pages: what each reads from the store and hands its template.

use crate::stored::{self, DataDetails, ModelMetadata, ParameterTable};
use crate::{chart, section_of, tree, Answer, Request, Site, SECTIONS};
use askama::Template;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use registry_app::cards::{self, StoredCard};
use registry_app::{files, metrics};
use registry_core::card::{card_fields, normalize, utc_date};
use registry_core::write_path::client_path;
use registry_core::{RegistryType, VersionFilter};
use registry_store::browse::{Cursor, NameFilter};
use registry_store::cards::ListQuery;
use serde_json::{Map, Value};

/// Rows on a list page.
pub const PAGE_SIZE: u64 = 50;

/// Why a page could not be shown: its status and a sentence for the person reading it.
#[derive(Debug)]
pub struct PageError {
    pub(crate) status: u16,
    pub(crate) message: String,
}

impl PageError {
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
}

impl From<askama::Error> for PageError {
    fn from(e: askama::Error) -> Self {
        PageError::new(500, format!("the page could not be rendered: {e}"))
    }
}

pub(crate) type PageResult = Result<Answer, PageError>;

/// What a query value keeps unescaped: letters, digits and `-._~/` (readable paths).
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');

/// A query string from pairs, each percent-encoded; pairs with an empty value are left out.
pub(crate) fn query_string(pairs: &[(&str, &str)]) -> String {
    let encoded: Vec<String> = pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", utf8_percent_encode(v, QUERY_VALUE)))
        .collect();
    if encoded.is_empty() {
        String::new()
    } else {
        format!("?{}", encoded.join("&"))
    }
}

/// `YYYY-MM-DD HH:MM` (UTC) of a card timestamp in microseconds.
pub(crate) fn utc_time(micros: i64) -> String {
    let seconds = micros.div_euclid(1_000_000);
    let of_day = seconds.rem_euclid(86_400);
    format!(
        "{} {:02}:{:02}",
        utc_date(seconds),
        of_day / 3600,
        of_day % 3600 / 60
    )
}

/// The navigation bar's entries: (href, label, current).
pub struct NavItem {
    pub href: String,
    pub label: &'static str,
    pub current: bool,
}

pub(crate) fn nav(current: RegistryType) -> Vec<NavItem> {
    SECTIONS
        .iter()
        .map(|(registry, segment, label)| NavItem {
            href: format!("/opsml/{segment}/list/"),
            label,
            current: *registry == current,
        })
        .collect()
}

fn label_of(registry: RegistryType) -> &'static str {
    SECTIONS
        .iter()
        .find(|(r, _, _)| *r == registry)
        .map(|(_, _, label)| *label)
        .unwrap_or("Cards")
}

/// Where a card's page is.
pub(crate) fn card_href(registry: RegistryType, uid: &str) -> String {
    format!(
        "/opsml/{}/versions/{}",
        section_of(registry),
        query_string(&[("uid", uid)])
    )
}

fn page_number(request: &Request) -> Result<u64, PageError> {
    match request.get("page") {
        None => Ok(0),
        Some(page) => page.parse::<u64>().map_err(|_| {
            PageError::new(
                400,
                format!("page must be a whole number from 0 up, not {page:?}"),
            )
        }),
    }
}

pub struct NameRow {
    pub repository: String,
    pub name: String,
    pub versions: i64,
    pub updated: String,
    pub href: String,
}

pub struct RepositoryLink {
    pub name: String,
    pub href: String,
    pub current: bool,
}

#[derive(Template)]
#[template(path = "list.html")]
struct ListPage {
    nav: Vec<NavItem>,
    title: String,
    section: &'static str,
    repositories: Vec<RepositoryLink>,
    all_href: String,
    repository: String,
    search: String,
    tag: String,
    rows: Vec<NameRow>,
    previous: Option<String>,
    next: Option<String>,
}

/// Where a list page starts: `after_name`/`after_repository` (the next page) or
/// `before_name`/`before_repository` (the previous one); neither for the first.
fn cursor(request: &Request) -> Cursor {
    let pair = |side: &str| {
        Some((
            request.get(&format!("{side}_name"))?,
            request.get(&format!("{side}_repository"))?,
        ))
    };
    match (pair("after"), pair("before")) {
        (Some((name, repository)), _) => Cursor::After { name, repository },
        (None, Some((name, repository))) => Cursor::Before { name, repository },
        (None, None) => Cursor::First,
    }
}

/// `/opsml/<registry>/list/?repository=&q=&tag=key:value&after_name=&after_repository=`: a
/// registry's names, a page at a time (`before_name=&before_repository=` goes back),
/// with its repositories to choose from. `/opsml/projects/list/?project=` shows a project's
/// runs, as the reference does.
pub fn list_page(site: &Site, request: &Request, registry: RegistryType) -> PageResult {
    if registry == RegistryType::Project {
        if let Some(project) = request.get("project") {
            return project_runs_page(site, &project);
        }
    }
    let section = section_of(registry);
    let repository = request.get("repository").map(|r| normalize(registry, &r));
    let search = request.get("q").unwrap_or_default();
    let tag_text = request.get("tag").unwrap_or_default();
    let tag = match tag_text.split_once(':') {
        Some((k, v)) => Some((k.trim().to_string(), v.trim().to_string())),
        None if tag_text.is_empty() => None,
        None => {
            return Err(PageError::new(
                400,
                format!("a tag filter is key:value (for example stage:prod), not {tag_text:?}"),
            ))
        }
    };
    // A token limited to some repositories browses those.
    let filter = NameFilter {
        repository: repository.clone(),
        search: Some(search.clone()),
        tag,
        readable_repositories: None,
    };
    let found = cards::names_page(
        site.ctx,
        site.caller,
        registry,
        filter,
        &cursor(request),
        PAGE_SIZE,
    )?;
    let repositories = cards::repositories(site.ctx, site.caller, registry)?;
    // A page of this list from a cursor: (side, name, repository), side "after" or "before".
    let here = |repository: &str, from: Option<(&str, &str, &str)>| {
        let (side, name, at) = from.unwrap_or_default();
        let (name_key, repository_key) = (format!("{side}_name"), format!("{side}_repository"));
        format!(
            "/opsml/{section}/list/{}",
            query_string(&[
                ("repository", repository),
                ("q", &search),
                ("tag", &tag_text),
                (&name_key, name),
                (&repository_key, at),
            ])
        )
    };
    let current = repository.clone().unwrap_or_default();
    let rows = found
        .names
        .iter()
        .map(|n| NameRow {
            // A project's page is its runs, as in the reference.
            href: if registry == RegistryType::Project {
                format!(
                    "/opsml/projects/list/{}",
                    query_string(&[("project", &n.name)])
                )
            } else {
                format!(
                    "/opsml/{section}/versions/{}",
                    query_string(&[("name", &n.name), ("repository", &n.repository)])
                )
            },
            repository: n.repository.clone(),
            name: n.name.clone(),
            versions: n.versions,
            updated: utc_time(n.updated),
        })
        .collect();
    let html = ListPage {
        nav: nav(registry),
        title: label_of(registry).to_string(),
        section,
        repositories: repositories
            .iter()
            .map(|r| RepositoryLink {
                href: here(r, None),
                current: repository.as_deref() == Some(r.as_str()),
                name: r.clone(),
            })
            .collect(),
        all_href: here("", None),
        repository: current.clone(),
        search: search.clone(),
        tag: tag_text.clone(),
        rows,
        previous: found
            .names
            .first()
            .filter(|_| found.earlier)
            .map(|n| here(&current, Some(("before", &n.name, &n.repository)))),
        next: found
            .names
            .last()
            .filter(|_| found.later)
            .map(|n| here(&current, Some(("after", &n.name, &n.repository)))),
    }
    .render()?;
    Ok(Answer::Page { status: 200, html })
}

pub struct VersionRow {
    pub version: String,
    pub date: String,
    pub href: String,
    pub uid: String,
    pub current: bool,
}

/// One field of a card: its value as text, and a link when it names another card.
pub struct FieldRow {
    pub key: String,
    pub value: String,
    pub links: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "card.html")]
struct CardPage {
    nav: Vec<NavItem>,
    label: &'static str,
    name: String,
    repository: String,
    version: String,
    uid: String,
    other_repositories: Vec<RepositoryLink>,
    versions: Vec<VersionRow>,
    previous: Option<String>,
    next: Option<String>,
    fields: Vec<FieldRow>,
    tags: Vec<(String, String)>,
    files: Vec<tree::Entry>,
    folder: String,
    folder_zip: String,
    python_snippet: String,
    curl_snippet: String,
    metrics_href: Option<String>,
    /// The audit form: of this audit card, or of this model's audit.
    audit_link: Option<(String, &'static str)>,
    /// A model's `model-metadata.json`, or why it could not be read.
    model_metadata: Option<Result<ModelMetadata, String>>,
    /// A data card's interface details, or why they could not be read.
    data_details: Option<Result<DataDetails, String>>,
    /// A run's parameters.
    parameters: Option<ParameterTable>,
    /// A data card's profile report (`data-profile.html`), to download: it runs scripts, so
    /// it is not shown inside these pages.
    data_profile: Option<String>,
    compare_action: String,
}

/// The registry a `*card_uid(s)` field points into.
fn linked_registry(field: &str) -> Option<RegistryType> {
    let prefix = field.split("card").next()?;
    match prefix {
        "data" => Some(RegistryType::Data),
        "model" => Some(RegistryType::Model),
        "run" => Some(RegistryType::Run),
        "pipeline" => Some(RegistryType::Pipeline),
        "audit" => Some(RegistryType::Audit),
        _ => None,
    }
}

fn field_text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn field_rows(registry: RegistryType, card: &Map<String, Value>) -> Vec<FieldRow> {
    let known = card_fields(registry);
    let mut keys: Vec<&str> = known.iter().copied().filter(|k| *k != "tags").collect();
    let mut extra: Vec<&str> = card
        .keys()
        .map(String::as_str)
        .filter(|k| !known.contains(k) && *k != "tags")
        .collect();
    extra.sort_unstable();
    keys.extend(extra);
    keys.into_iter()
        .filter_map(|key| {
            let value = card.get(key)?;
            let links = match (linked_registry(key), value) {
                (Some(target), Value::String(uid)) if !uid.is_empty() => {
                    vec![(uid.clone(), card_href(target, uid))]
                }
                (Some(target), Value::Array(uids)) => uids
                    .iter()
                    .filter_map(Value::as_str)
                    .map(|uid| (uid.to_string(), card_href(target, uid)))
                    .collect(),
                (Some(target), Value::Object(by_name)) => by_name
                    .values()
                    .filter_map(Value::as_str)
                    .map(|uid| (uid.to_string(), card_href(target, uid)))
                    .collect(),
                _ => Vec::new(),
            };
            let value = if key == "timestamp" {
                value
                    .as_i64()
                    .map(|micros| format!("{} UTC ({micros})", utc_time(micros)))
                    .unwrap_or_else(|| field_text(value))
            } else if links.is_empty() {
                field_text(value)
            } else {
                String::new()
            };
            Some(FieldRow {
                key: key.to_string(),
                value,
                links,
            })
        })
        .collect()
}

/// When a card was registered (microseconds), 0 when unknown.
fn timestamp(card: &StoredCard) -> i64 {
    card.fields
        .get("timestamp")
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

/// `/opsml/<registry>/versions/?name=&repository=&version=&uid=&page=` (the model pages also
/// take the reference's `model=`): a name's versions, highest first and paged, and one card.
pub fn versions_page(site: &Site, request: &Request, registry: RegistryType) -> PageResult {
    let section = section_of(registry);
    let (name, given_repository, selected) = match request.get("uid") {
        Some(uid) => {
            let card = cards::readable(site.ctx, site.caller, registry, &uid)?;
            (
                card.name().to_string(),
                Some(card.repository().to_string()),
                Some(card),
            )
        }
        None => {
            let name = request
                .get("name")
                .or_else(|| request.get("model"))
                .map(|n| normalize(registry, &n))
                .ok_or_else(|| PageError::new(400, "Say which card: name=<name> or uid=<uid>."))?;
            let repository = request.get("repository").map(|r| normalize(registry, &r));
            (name, repository, None)
        }
    };
    // The readable repositories holding the name: to choose from, and the first by default.
    let holders = cards::holders(site.ctx, site.caller, registry, &name)?;
    let repository = match given_repository {
        Some(repository) => repository,
        None => holders
            .first()
            .cloned()
            .ok_or_else(|| PageError::new(404, format!("No card is named {name}.")))?,
    };
    let page = page_number(request)?;
    let versions = |version: Option<VersionFilter>, limit: Option<u64>| {
        let query = ListQuery {
            name: Some(name.clone()),
            repository: Some(repository.clone()),
            version,
            limit,
            ..Default::default()
        };
        cards::find(site.ctx, site.caller, registry, query)
    };
    let listed = versions(None, Some((page + 1) * PAGE_SIZE + 1))?;
    let more = listed.len() as u64 > (page + 1) * PAGE_SIZE;
    let on_page: Vec<&StoredCard> = listed
        .iter()
        .skip(usize::try_from(page * PAGE_SIZE).unwrap_or(usize::MAX))
        .take(PAGE_SIZE as usize)
        .collect();
    let card = match (selected, request.get("version")) {
        (Some(card), _) => card,
        (None, Some(version)) => {
            let filter = VersionFilter::parse(&version).map_err(|e| {
                PageError::new(400, format!("version {version:?} is not a version: {e}"))
            })?;
            versions(Some(filter), None)?
                .into_iter()
                .find(|c| c.version() == version)
                .ok_or_else(|| {
                    PageError::new(
                        404,
                        format!("{repository}/{name} has no version {version}."),
                    )
                })?
        }
        (None, None) => listed
            .first()
            .cloned()
            .ok_or_else(|| PageError::new(404, format!("No card is named {name}.")))?,
    };
    let version = card.version().to_string();
    let uid = card.uid().to_string();
    let folder = card.folder();
    let stored = files::of_card(site.ctx, site.caller, &card)?;
    let here = |page: u64| {
        let page = page.to_string();
        format!(
            "/opsml/{section}/versions/{}",
            query_string(&[
                ("name", &name),
                ("repository", &repository),
                ("version", &version),
                ("page", &page),
            ])
        )
    };
    let other_repositories = holders
        .into_iter()
        .map(|other| RepositoryLink {
            href: format!(
                "/opsml/{section}/versions/{}",
                query_string(&[("name", &name), ("repository", &other)])
            ),
            current: other == repository,
            name: other,
        })
        .collect();
    let mut tags: Vec<(String, String)> = card
        .fields
        .get("tags")
        .and_then(Value::as_object)
        .map(|t| t.iter().map(|(k, v)| (k.clone(), field_text(v))).collect())
        .unwrap_or_default();
    tags.sort();
    let html = CardPage {
        nav: nav(registry),
        label: label_of(registry),
        versions: on_page
            .iter()
            .map(|c| VersionRow {
                version: c.version().to_string(),
                date: utc_time(timestamp(c)),
                href: card_href(registry, c.uid()),
                uid: c.uid().to_string(),
                current: c.uid() == uid,
            })
            .collect(),
        previous: (page > 0).then(|| here(page - 1)),
        next: more.then(|| here(page + 1)),
        fields: field_rows(registry, &card.fields),
        tags,
        files: tree::entries(&folder, &stored),
        folder_zip: format!(
            "/opsml/files/download/ui{}",
            query_string(&[("path", &client_path(&folder))])
        ),
        python_snippet: format!(
            "from opsml import CardRegistry\n\nregistry = CardRegistry(\"{}\")\ncard = registry.load_card(name=\"{name}\", repository=\"{repository}\", version=\"{version}\")",
            registry.as_str()
        ),
        curl_snippet: format!(
            "curl -fSL -o {name}-{version}.zip \"$OPSML_TRACKING_URI/opsml/files/download/ui{}\"",
            query_string(&[("path", &client_path(&folder))])
        ),
        compare_action: format!("/opsml/{section}/compare/"),
        data_profile: stored
            .iter()
            .find(|f| registry == RegistryType::Data && f.path == format!("{folder}/data-profile.html"))
            .map(|f| {
                format!(
                    "/opsml/files/download{}",
                    query_string(&[("path", &client_path(&f.path))])
                )
            }),
        data_details: match registry {
            RegistryType::Data => stored::data_details(site, &card).transpose(),
            _ => None,
        },
        model_metadata: match registry {
            RegistryType::Model => stored::model_metadata(site, &card).transpose(),
            _ => None,
        },
        parameters: (registry == RegistryType::Run)
            .then(|| ParameterTable::of(site, &[(version.clone(), &card)])),
        audit_link: match registry {
            RegistryType::Audit => Some((
                format!("/opsml/audit/{}", query_string(&[("uid", &uid)])),
                "Open the audit form",
            )),
            RegistryType::Model => Some((
                format!(
                    "/opsml/audit/{}",
                    query_string(&[
                        ("repository", &repository),
                        ("model", &name),
                        ("version", &version)
                    ])
                ),
                "Audit this model",
            )),
            _ => None,
        },
        metrics_href: (registry == RegistryType::Run).then(|| {
            format!(
                "/opsml/projects/runs/plot/{}",
                query_string(&[("run_uid", &uid)])
            )
        }),
        other_repositories,
        folder,
        name,
        repository,
        version,
        uid,
    }
    .render()?;
    Ok(Answer::Page { status: 200, html })
}

pub struct RunRow {
    pub name: String,
    pub version: String,
    pub date: String,
    pub uid: String,
    pub href: String,
}

#[derive(Template)]
#[template(path = "project.html")]
struct ProjectPage {
    nav: Vec<NavItem>,
    project: String,
    runs: Vec<RunRow>,
    overlay: Option<String>,
}

/// `/opsml/projects/list/?project=`: a project's runs, newest first, each linking to its
/// metrics, and one link overlaying them all.
fn project_runs_page(site: &Site, project: &str) -> PageResult {
    let mut query = ListQuery {
        sort_by_timestamp: true,
        limit: Some(PAGE_SIZE),
        ..Default::default()
    };
    query
        .query_terms
        .insert("project".into(), Value::String(project.to_string()));
    let runs: Vec<RunRow> = cards::find(site.ctx, site.caller, RegistryType::Run, query)?
        .iter()
        .map(|c| RunRow {
            name: c.name().to_string(),
            version: c.version().to_string(),
            date: utc_time(timestamp(c)),
            href: format!(
                "/opsml/projects/runs/plot/{}",
                query_string(&[("run_uid", c.uid())])
            ),
            uid: c.uid().to_string(),
        })
        .collect();
    let overlay = (runs.len() > 1).then(|| {
        let pairs: Vec<(&str, &str)> = runs.iter().map(|r| ("run_uid", r.uid.as_str())).collect();
        format!("/opsml/projects/runs/plot/{}", query_string(&pairs))
    });
    let html = ProjectPage {
        nav: nav(RegistryType::Project),
        project: project.to_string(),
        runs,
        overlay,
    }
    .render()?;
    Ok(Answer::Page { status: 200, html })
}

pub struct RunSummary {
    pub label: String,
    pub colour: String,
    pub href: String,
}

#[derive(Template)]
#[template(path = "run.html")]
struct RunPage {
    nav: Vec<NavItem>,
    runs: Vec<RunSummary>,
    charts: Vec<chart::Chart>,
    parameters: ParameterTable,
}

/// `/opsml/projects/runs/plot/?run_uid=<uid>[&run_uid=<uid>...]`: each metric of the runs as
/// a chart of value by step, the runs overlaid, with the values as a table.
pub fn run_page(site: &Site, request: &Request) -> PageResult {
    let uids = request.get_all("run_uid");
    if uids.is_empty() {
        return Err(PageError::new(400, "Say which run: run_uid=<uid>."));
    }
    let mut runs = Vec::new();
    let mut series = Vec::new();
    let mut cards_shown = Vec::new();
    for (index, uid) in uids.iter().enumerate() {
        let card = cards::readable(site.ctx, site.caller, RegistryType::Run, uid)?;
        let label = format!("{} {}", card.name(), card.version());
        runs.push(RunSummary {
            colour: chart::colour(index),
            href: card_href(RegistryType::Run, uid),
            label: label.clone(),
        });
        series.push((
            label.clone(),
            metrics::of_run(site.ctx, site.caller, &card)?,
        ));
        cards_shown.push((label, card));
    }
    let folders: Vec<(String, &StoredCard)> =
        cards_shown.iter().map(|(l, c)| (l.clone(), c)).collect();
    let html = RunPage {
        nav: nav(RegistryType::Project),
        runs,
        charts: chart::charts(&series),
        parameters: ParameterTable::of(site, &folders),
    }
    .render()?;
    Ok(Answer::Page { status: 200, html })
}

/// One row of a side-by-side comparison.
pub struct CompareRow {
    pub key: String,
    pub left: String,
    pub right: String,
    pub differs: bool,
}

pub struct CardSide {
    pub title: String,
    pub href: String,
}

#[derive(Template)]
#[template(path = "compare.html")]
struct ComparePage {
    nav: Vec<NavItem>,
    label: &'static str,
    left: CardSide,
    right: CardSide,
    fields: Vec<CompareRow>,
    files: Vec<CompareRow>,
    differences: usize,
    runs: Vec<RunSummary>,
    charts: Vec<chart::Chart>,
    parameters: Option<ParameterTable>,
}

/// Rows for the union of two key sets, in `order` first, then the rest by name.
fn compare_rows(
    order: &[String],
    left: &std::collections::BTreeMap<String, String>,
    right: &std::collections::BTreeMap<String, String>,
) -> Vec<CompareRow> {
    let mut keys: Vec<String> = order.to_vec();
    for key in left.keys().chain(right.keys()) {
        if !keys.contains(key) {
            keys.push(key.clone());
        }
    }
    keys.into_iter()
        .filter(|k| left.contains_key(k) || right.contains_key(k))
        .map(|key| {
            let l = left.get(&key).cloned().unwrap_or_default();
            let r = right.get(&key).cloned().unwrap_or_default();
            CompareRow {
                differs: l != r,
                left: l,
                right: r,
                key,
            }
        })
        .collect()
}

/// `/opsml/<registry>/compare/?a=<uid>&b=<uid>`: two cards side by side, fields, tags and
/// files, the rows that differ marked; two runs also get their metrics overlaid.
pub fn compare_page(site: &Site, request: &Request, registry: RegistryType) -> PageResult {
    let (Some(a), Some(b)) = (request.get("a"), request.get("b")) else {
        return Err(PageError::new(400, "Say which two cards: a=<uid>&b=<uid>."));
    };
    let cards = [
        cards::readable(site.ctx, site.caller, registry, &a)?,
        cards::readable(site.ctx, site.caller, registry, &b)?,
    ];
    // Identity fields would always differ; they head each column instead.
    let skip = ["uid", "timestamp", "date", "tags"];
    let field_map = |card: &StoredCard| {
        let mut map: std::collections::BTreeMap<String, String> =
            field_rows(registry, &card.fields)
                .into_iter()
                .filter(|f| !skip.contains(&f.key.as_str()))
                .map(|f| {
                    let text = if f.links.is_empty() {
                        f.value
                    } else {
                        f.links
                            .into_iter()
                            .map(|(uid, _)| uid)
                            .collect::<Vec<_>>()
                            .join(", ")
                    };
                    (f.key, text)
                })
                .collect();
        if let Some(tags) = card.fields.get("tags").and_then(Value::as_object) {
            for (k, v) in tags {
                map.insert(format!("tag {k}"), field_text(v));
            }
        }
        map
    };
    let order: Vec<String> = card_fields(registry)
        .into_iter()
        .filter(|k| !skip.contains(k))
        .map(str::to_string)
        .collect();
    let file_map = |card: &StoredCard| -> Result<_, PageError> {
        let folder = card.folder();
        Ok(files::of_card(site.ctx, site.caller, card)?
            .into_iter()
            .map(|f| {
                let relative = f.path[folder.len()..].trim_start_matches('/').to_string();
                (
                    relative,
                    format!("{} · {}:{}", f.size, f.digest_algorithm.name(), f.digest),
                )
            })
            .collect::<std::collections::BTreeMap<_, _>>())
    };
    let fields = compare_rows(&order, &field_map(&cards[0]), &field_map(&cards[1]));
    let files = compare_rows(&[], &file_map(&cards[0])?, &file_map(&cards[1])?);
    let side = |card: &StoredCard| CardSide {
        title: format!("{}/{} {}", card.repository(), card.name(), card.version()),
        href: card_href(registry, card.uid()),
    };
    let (mut runs, mut charts, mut parameters) = (Vec::new(), Vec::new(), None);
    if registry == RegistryType::Run {
        let mut series = Vec::new();
        let folders: Vec<(String, &StoredCard)> =
            cards.iter().map(|card| (side(card).title, card)).collect();
        parameters = Some(ParameterTable::of(site, &folders));
        for (index, card) in cards.iter().enumerate() {
            let label = side(card).title;
            runs.push(RunSummary {
                colour: chart::colour(index),
                href: card_href(registry, card.uid()),
                label: label.clone(),
            });
            series.push((label, metrics::of_run(site.ctx, site.caller, card)?));
        }
        charts = chart::charts(&series);
    }
    let html = ComparePage {
        nav: nav(registry),
        label: label_of(registry),
        left: side(&cards[0]),
        right: side(&cards[1]),
        differences: fields.iter().chain(&files).filter(|r| r.differs).count(),
        fields,
        files,
        runs,
        charts,
        parameters,
    }
    .render()?;
    Ok(Answer::Page { status: 200, html })
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    nav: Vec<NavItem>,
    status: u16,
    message: &'a str,
}

pub fn error_page(error: &PageError) -> Answer {
    let html = ErrorPage {
        nav: nav(RegistryType::Model),
        status: error.status,
        message: &error.message,
    }
    .render()
    .unwrap_or_else(|_| format!("{} {}", error.status, error.message));
    Answer::Page {
        status: error.status,
        html,
    }
}
