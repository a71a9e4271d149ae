//! The audit form: an audit card's questions by section with their answers, its approval and
//! its comments, filled in the browser and saved as the opsml client stores them (`card.joblib`
//! in the card's folder, `approved` also in the registry row), so `load_card` sees what was
//! typed here.
//!
//! * `GET /opsml/audit/?uid=`: a card's form. `?repository=&model=&version=` (the reference's
//!   link from a model) opens the model's audit card, or a new one for it; no parameter, a new
//!   card.
//! * `POST /opsml/audit/save`: saves the form (a new card gets the next minor version). Needs
//!   `write` in the card's repository and, in production, the prod token (the form's field or
//!   the `X-Prod-Token` header). A refused or failed save shows the form again with what was
//!   typed and why, and changes nothing.
//! * `POST /opsml/audit/upload`: reads answers from a CSV into the form, unsaved, as the
//!   reference does; `GET /opsml/audit/download/?uid=` gives the saved answers as CSV.

use crate::audit_card::{AuditDocument, Comment};
use crate::pages::{card_href, nav, query_string, utc_time, PageError, PageResult};
use crate::stored::MAX_SMALL_FILE_BYTES;
use crate::{Answer, Request, Site};
use askama::Template;
use registry_app::cards::{self, CardWithFile, SaveRefused, StoredCard};
use registry_app::{files, Caller, WritePolicy};
use registry_core::card::{normalize, Card};
use registry_core::multipart::{boundary_from_content_type, Event, MultipartParser};
use registry_core::prod_token::DenyReason;
use registry_core::{HttpError, RegistryType, VersionRequest, VersionType};
use registry_store::cards::ListQuery;
use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Form,
    Save,
    Upload,
    Download,
}

/// Which audit action a path names (`post`: the request is a POST).
pub fn route(path: &str, post: bool) -> Option<Action> {
    match (path, post) {
        ("/opsml/audit", false) => Some(Action::Form),
        ("/opsml/audit/download", false) => Some(Action::Download),
        ("/opsml/audit/save", true) => Some(Action::Save),
        ("/opsml/audit/upload", true) => Some(Action::Upload),
        _ => None,
    }
}

pub fn answer(site: &Site, request: &Request, action: Action) -> PageResult {
    if request.cross_site && matches!(action, Action::Save | Action::Upload) {
        return Err(PageError::new(
            403,
            "This form was sent from another site's page. Audit cards are saved only from the registry's own pages; nothing was saved.",
        ));
    }
    match action {
        Action::Form => form_page(site, request),
        Action::Download => download(site, request),
        Action::Save => save(site, request),
        Action::Upload => upload(site, request),
    }
}

/// The fields a form sent, as `application/x-www-form-urlencoded` or `multipart/form-data`.
struct Form {
    fields: Vec<(String, String)>,
    /// The `audit_file` part, when a file was chosen: its name and bytes.
    file: Option<(String, Vec<u8>)>,
}

impl Form {
    fn parse(request: &Request) -> Result<Form, PageError> {
        let content_type = request.content_type.to_ascii_lowercase();
        if content_type.starts_with("multipart/form-data") {
            return Self::multipart(request);
        }
        let body = std::str::from_utf8(request.body)
            .map_err(|_| PageError::new(400, "The form's data is not UTF-8 text."))?;
        let fields = registry_core::query::pairs(body)
            .map(|pair| {
                pair.ok_or_else(|| PageError::new(400, "The form's data is not correctly encoded."))
            })
            .collect::<Result<_, _>>()?;
        Ok(Form { fields, file: None })
    }

    fn multipart(request: &Request) -> Result<Form, PageError> {
        let bad = |e: registry_core::multipart::MultipartError| PageError::new(400, e.to_string());
        let boundary = boundary_from_content_type(request.content_type).map_err(bad)?;
        let mut parser = MultipartParser::new(&boundary);
        let mut parts: Vec<(registry_core::multipart::PartHeaders, Vec<u8>)> = Vec::new();
        parser
            .push(request.body, |event| {
                match event {
                    Event::PartStart(headers) => parts.push((headers, Vec::new())),
                    Event::Data(bytes) => {
                        if let Some((_, body)) = parts.last_mut() {
                            body.extend_from_slice(bytes);
                        }
                    }
                    Event::PartEnd => {}
                }
                Ok::<(), registry_core::multipart::MultipartError>(())
            })
            .map_err(bad)?;
        parser.finish().map_err(bad)?;
        let mut form = Form {
            fields: Vec::new(),
            file: None,
        };
        for (headers, body) in parts {
            let Some(name) = headers.name else { continue };
            match headers.filename {
                Some(filename) if name == "audit_file" => {
                    if !filename.is_empty() {
                        form.file = Some((filename, body));
                    }
                }
                Some(_) => {}
                None => {
                    let text = String::from_utf8(body).map_err(|_| {
                        PageError::new(400, format!("The form's field {name} is not UTF-8 text."))
                    })?;
                    form.fields.push((name, text));
                }
            }
        }
        Ok(form)
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A field's value, trimmed; `None` when absent or blank.
    fn text(&self, name: &str) -> Option<String> {
        self.get(name)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    }
}

/// An audit card being edited: where it is stored and what it holds.
struct Audit {
    /// The registry row; `None` for a card not saved yet.
    row: Option<StoredCard>,
    doc: AuditDocument,
    /// The model card a new audit card is for.
    model: Option<StoredCard>,
    /// The digest of the stored `card.joblib` the form was made from.
    digest: String,
    notice: Option<String>,
}

impl Audit {
    fn uid(&self) -> String {
        self.row
            .as_ref()
            .map(|r| r.uid().to_string())
            .unwrap_or_default()
    }

    fn repository(&self) -> String {
        self.doc.field("repository")
    }
}

/// The saved card `uid` (the caller needs `read` in its repository).
fn load(site: &Site, uid: &str) -> Result<Audit, PageError> {
    let row = cards::readable(site.ctx, site.caller, RegistryType::Audit, uid)?;
    let found = files::read_current(
        site.ctx,
        site.caller,
        &row,
        "card.joblib",
        MAX_SMALL_FILE_BYTES,
    )?;
    let (doc, digest, notice) = match found {
        Some((file, bytes)) => {
            let doc = AuditDocument::from_pickle(&bytes)
                .map_err(|e| PageError::new(422, format!("{e} ({})", file.path)))?;
            (doc, file.digest, None)
        }
        None => (
            AuditDocument::new(
                row.name(),
                row.repository(),
                row.text("contact"),
                row.version(),
                uid,
            ),
            String::new(),
            Some("This card has no card.joblib yet, so it shows this registry's questions; saving stores them with the card.".to_string()),
        ),
    };
    Ok(Audit {
        row: Some(row),
        doc,
        model: None,
        digest,
        notice,
    })
}

/// The model card named by `model`/`name`, `repository` and `version` (the newest when no
/// version is given).
fn find_model(site: &Site, request: &Request, name: &str) -> Result<StoredCard, PageError> {
    let registry = RegistryType::Model;
    let version = match request.get("version") {
        Some(v) => Some(
            registry_core::VersionFilter::parse(&v)
                .map_err(|e| PageError::new(400, format!("version {v:?} is not a version: {e}")))?,
        ),
        None => None,
    };
    let query = ListQuery {
        name: Some(normalize(registry, name)),
        repository: request.get("repository").map(|r| normalize(registry, &r)),
        version,
        ..Default::default()
    };
    cards::find(site.ctx, site.caller, registry, query)?
        .into_iter()
        .next()
        .ok_or_else(|| PageError::new(404, format!("No model card is named {name} here.")))
}

/// A card not saved yet, from the form's (or the query's) name, repository and contact.
fn unsaved(name: &str, repository: &str, contact: &str, model: Option<StoredCard>) -> Audit {
    let registry = RegistryType::Audit;
    let doc = AuditDocument::new(
        &normalize(registry, name),
        &normalize(registry, repository),
        contact,
        "",
        "",
    );
    Audit {
        row: None,
        doc,
        model,
        digest: String::new(),
        notice: None,
    }
}

fn form_page(site: &Site, request: &Request) -> PageResult {
    if let Some(uid) = request.get("uid") {
        let mut audit = load(site, &uid)?;
        if request.get("saved").is_some() && audit.notice.is_none() {
            audit.notice = Some("Saved.".into());
        }
        return render(site, &audit, 200, None);
    }
    if let Some(name) = request.get("model").or_else(|| request.get("name")) {
        let model = find_model(site, request, &name)?;
        let linked = model.text("auditcard_uid");
        if !linked.is_empty()
            && cards::uid_exists(site.ctx, site.caller, RegistryType::Audit, linked)?
        {
            return Ok(Answer::Redirect(format!(
                "/opsml/audit/{}",
                query_string(&[("uid", linked)])
            )));
        }
        let audit = unsaved(
            model.name(),
            model.repository(),
            model.text("contact"),
            Some(model.clone()),
        );
        return render(site, &audit, 200, None);
    }
    let audit = unsaved("", "", "", None);
    render(site, &audit, 200, None)
}

/// The card the form was made from: saved (`uid`) or new (its name, repository and model).
fn audit_of_form(site: &Site, form: &Form) -> Result<Audit, PageError> {
    if let Some(uid) = form.text("uid") {
        let mut audit = load(site, &uid)?;
        audit.notice = None;
        // The card as it was when the form was opened, not as it is now.
        if let Some(digest) = form.get("digest") {
            audit.digest = digest.to_string();
        }
        return Ok(audit);
    }
    let model = match form.text("model_uid") {
        Some(uid) => Some(cards::readable(
            site.ctx,
            site.caller,
            RegistryType::Model,
            &uid,
        )?),
        None => None,
    };
    Ok(unsaved(
        &form.text("name").unwrap_or_default(),
        &form.text("repository").unwrap_or_default(),
        &form.text("contact").unwrap_or_default(),
        model,
    ))
}

/// Puts what the form says into the card: each answer it shows (an emptied box clears the
/// answer), the approval, and a new comment.
fn apply(site: &Site, form: &Form, audit: &mut Audit) {
    for section in audit.doc.sections() {
        for question in &section.questions {
            if let Some(value) = form.get(&format!("{}_{}", section.key, question.number)) {
                let value = value.replace("\r\n", "\n");
                let answer = (!value.trim().is_empty()).then_some(value);
                audit
                    .doc
                    .set_response(&section.key, question.number, answer);
            }
        }
    }
    match form.get("approved") {
        Some("yes") => audit.doc.set_approved(true),
        Some("no") => audit.doc.set_approved(false),
        _ => {}
    }
    if let Some(comment) = form.text("comment_text") {
        let name = form
            .text("comment_name")
            .unwrap_or_else(|| site.caller.identity.name());
        let now = site.ctx.now_unix();
        audit
            .doc
            .add_comment(&name, &comment, &utc_time(now * 1_000_000));
    }
}

/// What a person is told when the prod token stops a save.
fn refused(reason: DenyReason) -> PageError {
    let message = match reason {
        DenyReason::NoTokenConfigured => {
            "This registry is production and has no prod token configured, so nothing can be saved. Nothing was saved."
        }
        DenyReason::MissingToken => {
            "This registry is production: saving needs the prod token. Enter it in the prod token field and save again. Nothing was saved."
        }
        DenyReason::WrongToken => "The prod token is not this registry's. Nothing was saved.",
    };
    PageError::new(reason.status().code(), message)
}

/// The rows a save writes: the audit card's, and the model's when a new card is linked to it.
fn rows_to_write(site: &Site, audit: &mut Audit) -> Result<(Card, Option<Card>), PageError> {
    let invalid = |e: registry_core::card::CardError| PageError::new(422, e.to_string());
    let defaults = cards::defaults(site.ctx);
    let approved = audit.doc.approved();
    if let Some(row) = &audit.row {
        let mut fields = row.fields.clone();
        fields.insert("approved".into(), json!(approved));
        let card = Card::from_fields(RegistryType::Audit, fields, &defaults).map_err(invalid)?;
        return Ok((card, None));
    }
    let (name, repository) = (audit.doc.field("name"), audit.repository());
    // The opsml client refuses to load a card without any of these.
    if name.is_empty() || repository.is_empty() || audit.doc.field("contact").trim().is_empty() {
        return Err(PageError::new(
            422,
            "A new audit card needs a name, a repository and a contact. Nothing was saved.",
        ));
    }
    let version = cards::next_of(
        site.ctx,
        RegistryType::Audit,
        &name,
        &repository,
        &VersionRequest::new(VersionType::Minor),
    )?;
    audit.doc.set_field("version", &version);
    audit.doc.set_field("uid", &defaults.uid);
    let mut modelcards = Vec::new();
    let model_card = match &audit.model {
        Some(model) => {
            let (model_name, model_version) = (model.name(), model.version());
            audit.doc.add_model(model_name, model_version);
            modelcards
                .push(json!({"name": model_name, "version": model_version, "card_type": "model"}));
            let mut fields = model.fields.clone();
            fields.insert("auditcard_uid".into(), json!(defaults.uid));
            Some(Card::from_fields(RegistryType::Model, fields, &defaults).map_err(invalid)?)
        }
        None => None,
    };
    let fields = json!({
        "name": name, "repository": repository, "contact": audit.doc.field("contact"),
        "version": version, "uid": defaults.uid, "tags": {}, "approved": approved,
        "datacards": [], "modelcards": modelcards, "runcards": [],
    });
    let Value::Object(fields) = fields else {
        unreachable!("a JSON object literal")
    };
    let card = Card::from_fields(RegistryType::Audit, fields, &defaults).map_err(invalid)?;
    Ok((card, model_card))
}

/// Saves the card as the form says, if the caller may: `card.joblib` and its rows in one
/// transaction; returns the card's uid.
fn persist(site: &Site, form: &Form, audit: &mut Audit) -> Result<String, PageError> {
    // The form's prod token field, else the request's header.
    let caller = Caller {
        prod_token: form.text("prod_token").or(site.caller.prod_token.clone()),
        ..site.caller.clone()
    };
    let cleared = caller.clear_write(site.ctx).map_err(refused)?;
    let (card, linked) = rows_to_write(site, audit)?;
    let bytes = audit.doc.to_pickle();
    let save = CardWithFile {
        is_new: audit.row.is_none(),
        linked,
        file_name: "card.joblib",
        bytes: &bytes,
        made_from: &audit.digest,
        card: card.clone(),
    };
    cards::save_with_file(site.ctx, &caller, &cleared, save).map_err(|refusal| match refusal {
        SaveRefused::CardGone => PageError::new(
            409,
            "The audit card was deleted while you edited it. Nothing was saved.",
        ),
        SaveRefused::LinkedGone => PageError::new(
            409,
            "The model card was deleted while you wrote its audit. Nothing was saved.",
        ),
        SaveRefused::FileChanged => PageError::new(
            409,
            "Someone saved this audit card after you opened it. Nothing was saved: open the card again to see their answers, then add yours.",
        ),
        SaveRefused::VersionTaken => PageError::new(
            409,
            format!(
                "{}/{} version {} was registered by someone else at the same moment. Nothing was saved: save again to take the next version.",
                card.repository, card.name, card.version
            ),
        ),
        SaveRefused::Failed(e) => PageError::from(e),
    })?;
    Ok(card.uid)
}

fn save(site: &Site, request: &Request) -> PageResult {
    let form = Form::parse(request)?;
    let mut audit = audit_of_form(site, &form)?;
    apply(site, &form, &mut audit);
    let saved = persist(site, &form, &mut audit);
    match saved {
        Ok(uid) => Ok(Answer::Redirect(format!(
            "/opsml/audit/{}",
            query_string(&[("uid", &uid), ("saved", "1")])
        ))),
        // What was typed comes back with the reason, so nothing is lost.
        Err(error) => {
            let status = error.status;
            render(site, &audit, status, Some(error.message))
        }
    }
}

fn upload(site: &Site, request: &Request) -> PageResult {
    let form = Form::parse(request)?;
    let mut audit = audit_of_form(site, &form)?;
    apply(site, &form, &mut audit);
    let Some((filename, bytes)) = &form.file else {
        return render(
            site,
            &audit,
            422,
            Some("Choose a CSV file to read answers from.".into()),
        );
    };
    match audit.doc.apply_csv(bytes) {
        Ok(count) => {
            audit.notice = Some(format!(
                "Read {count} answers from {filename}. Nothing is saved until you press Save."
            ));
            render(site, &audit, 200, None)
        }
        Err(e) => render(
            site,
            &audit,
            422,
            Some(format!("{filename}: {e}. No answer was taken from it.")),
        ),
    }
}

fn download(site: &Site, request: &Request) -> PageResult {
    let uid = request
        .get("uid")
        .ok_or_else(|| PageError::new(400, "Say which audit card: uid=<uid>."))?;
    let audit = load(site, &uid)?;
    Ok(Answer::File {
        content_type: "text/csv; charset=utf-8",
        filename: format!(
            "{}-{}-audit.csv",
            audit.doc.field("name"),
            audit.doc.field("version")
        ),
        bytes: audit.doc.to_csv(),
    })
}

struct QuestionView {
    field: String,
    number: i64,
    question: String,
    purpose: String,
    response: String,
}

struct SectionView {
    key: String,
    title: String,
    answered: usize,
    questions: Vec<QuestionView>,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    nav: Vec<crate::pages::NavItem>,
    uid: String,
    name: String,
    repository: String,
    contact: String,
    version: String,
    model_uid: String,
    digest: String,
    /// The model versions it audits: (label, href).
    models: Vec<(String, String)>,
    card_href: Option<String>,
    csv_href: Option<String>,
    approved: bool,
    sections: Vec<SectionView>,
    answered: usize,
    total: usize,
    comments: Vec<Comment>,
    production: bool,
    notice: Option<String>,
    error: Option<String>,
}

fn render(site: &Site, audit: &Audit, status: u16, error: Option<String>) -> PageResult {
    let uid = audit.uid();
    let sections: Vec<SectionView> = audit
        .doc
        .sections()
        .into_iter()
        .map(|section| SectionView {
            answered: section
                .questions
                .iter()
                .filter(|q| q.response.is_some())
                .count(),
            questions: section
                .questions
                .into_iter()
                .map(|q| QuestionView {
                    field: format!("{}_{}", section.key, q.number),
                    number: q.number,
                    question: q.question,
                    purpose: q.purpose,
                    response: q.response.unwrap_or_default(),
                })
                .collect(),
            key: section.key,
            title: section.title,
        })
        .collect();
    let html = AuditPage {
        nav: nav(RegistryType::Audit),
        card_href: (!uid.is_empty()).then(|| card_href(RegistryType::Audit, &uid)),
        csv_href: (!uid.is_empty())
            .then(|| format!("/opsml/audit/download/{}", query_string(&[("uid", &uid)]))),
        name: audit.doc.field("name"),
        repository: audit.repository(),
        contact: audit.doc.field("contact"),
        version: audit.doc.field("version"),
        model_uid: audit
            .model
            .as_ref()
            .map(|m| m.uid().to_string())
            .unwrap_or_default(),
        models: match &audit.model {
            Some(m) => vec![(
                format!("{}/{} {}", m.repository(), m.name(), m.version()),
                card_href(RegistryType::Model, m.uid()),
            )],
            None => audit
                .doc
                .models()
                .into_iter()
                .map(|(name, version)| {
                    let href = format!(
                        "/opsml/models/versions/{}",
                        query_string(&[("name", &name), ("version", &version)])
                    );
                    (format!("{name} {version}"), href)
                })
                .collect(),
        },
        digest: audit.digest.clone(),
        approved: audit.doc.approved(),
        answered: sections.iter().map(|s| s.answered).sum(),
        total: sections.iter().map(|s| s.questions.len()).sum(),
        sections,
        comments: audit.doc.comments(),
        production: WritePolicy::load(site.ctx).is_production(),
        notice: audit.notice.clone(),
        error,
        uid,
    }
    .render()?;
    Ok(Answer::Page { status, html })
}

#[cfg(test)]
mod tests {
    use crate::tests::{page, seeded, Fixture};
    use crate::Answer;
    use registry_core::access::{Grant, Identity, Scope};
    use registry_core::RegistryType;
    use registry_store::audit::{self, AuditQuery};
    use registry_store::{cards, files};

    const FORM: &str = "application/x-www-form-urlencoded";

    fn post(fx: &Fixture, path: &str, body: &str) -> (u16, String) {
        post_as(fx, &Identity::Open, path, body, None)
    }

    fn post_as(
        fx: &Fixture,
        identity: &Identity,
        path: &str,
        body: &str,
        header: Option<&str>,
    ) -> (u16, String) {
        page(fx.send(identity, path, Some((FORM, body.as_bytes())), header))
    }

    fn get(fx: &Fixture, path: &str) -> (u16, String) {
        page(fx.send(&Identity::Open, path, None, None))
    }

    /// What a save leaves: audit rows, trail records, stored files, stored bytes.
    fn written(fx: &Fixture) -> (usize, usize, usize, usize) {
        let trail = audit::list(
            &fx.db,
            &AuditQuery {
                limit: 1000,
                ..Default::default()
            },
        )
        .unwrap()
        .len();
        let rows = cards::list(&fx.db, RegistryType::Audit, &Default::default())
            .unwrap()
            .len();
        let stored = files::list(&fx.db, "OPSML_AUDIT_REGISTRY").unwrap().len();
        (rows, trail, stored, fx.kv.0.borrow().len())
    }

    fn uid_of(location: &str) -> String {
        let uid = location.split("uid=").nth(1).unwrap();
        uid.split('&').next().unwrap().to_string()
    }

    #[test]
    fn a_new_card_saved_from_the_form_is_registered_with_its_answers_and_comment() {
        let fx = seeded();
        let (status, html) = get(&fx, "/opsml/audit/");
        assert_eq!(status, 200);
        assert!(
            html.contains("New audit card") && html.contains("name=\"business_understanding_1\"")
        );
        let (status, to) = post(
            &fx,
            "/opsml/audit/save",
            "name=Churn_Audit&repository=team-a&contact=me&approved=yes&business_understanding_1=To+price+%3Cb%3Erenewals%3C%2Fb%3E&comment_name=ann&comment_text=Looks+fine",
        );
        assert_eq!(status, 303, "{to}");
        let uid = uid_of(&to);
        let row = cards::get(&fx.db, RegistryType::Audit, &uid)
            .unwrap()
            .unwrap();
        assert_eq!(
            (row["name"].as_str(), row["version"].as_str()),
            (Some("churn-audit"), Some("1.0.0"))
        );
        assert_eq!(row["approved"], serde_json::json!(true));
        let (status, html) = get(&fx, &to);
        assert_eq!(status, 200);
        assert!(html.contains("Saved."));
        assert!(
            html.contains("To price &#60;b&#62;renewals&#60;/b&#62;</textarea>"),
            "{html}"
        );
        assert!(html.contains("<strong>ann</strong> <span class=\"hint\">2025-11-30"));
        assert!(html.contains("<option value=\"yes\" selected>"));
        assert_eq!(written(&fx), (1, 2, 1, 1));

        // The next card of that name takes the next minor version.
        let (_, to) = post(
            &fx,
            "/opsml/audit/save",
            "name=churn-audit&repository=team-a&contact=me",
        );
        let row = cards::get(&fx.db, RegistryType::Audit, &uid_of(&to))
            .unwrap()
            .unwrap();
        assert_eq!(row["version"], "1.1.0");
    }

    #[test]
    fn a_model_links_to_its_audit_card_once_one_is_saved() {
        let fx = seeded();
        let link = "/opsml/audit/?repository=team-a&model=churn&version=1.2.0";
        let (status, html) = get(&fx, link);
        assert_eq!(status, 200);
        assert!(
            html.contains("for model <a class=\"audit-model\""),
            "{html}"
        );
        assert!(html.contains("name=\"model_uid\" value=\"m0\""));
        let (status, to) = post(
            &fx,
            "/opsml/audit/save",
            "model_uid=m0&name=churn&repository=team-a&contact=me&evaluation_1=AUC+0.91",
        );
        assert_eq!(status, 303, "{to}");
        let uid = uid_of(&to);
        let model = cards::get(&fx.db, RegistryType::Model, "m0")
            .unwrap()
            .unwrap();
        assert_eq!(model["auditcard_uid"], uid.as_str());
        let audit = cards::get(&fx.db, RegistryType::Audit, &uid)
            .unwrap()
            .unwrap();
        assert_eq!(
            audit["modelcards"],
            serde_json::json!([{"name": "churn", "version": "1.2.0", "card_type": "model"}])
        );
        assert_eq!(get(&fx, link), (303, format!("/opsml/audit/?uid={uid}")));
        let (_, html) = get(&fx, &format!("/opsml/audit/?uid={uid}"));
        assert!(
            html.contains(
                "href=\"/opsml/models/versions/?name=churn&#38;version=1.2.0\">churn 1.2.0</a>"
            ),
            "{html}"
        );
    }

    #[test]
    fn in_production_a_save_needs_the_prod_token_and_a_refusal_keeps_what_was_typed() {
        let fx = seeded();
        fx.set_env("production");
        let (_, html) = get(&fx, "/opsml/audit/");
        assert!(html.contains("name=\"prod_token\""));
        let body = "name=churn-audit&repository=team-a&contact=me&modeling_1=gradient+boosting";
        let (status, html) = post(&fx, "/opsml/audit/save", body);
        assert_eq!(status, 401);
        assert!(
            html.contains("saving needs the prod token") && html.contains("Nothing was saved"),
            "{html}"
        );
        assert!(html.contains(">gradient boosting</textarea>"));
        assert!(html.contains("value=\"churn-audit\""));
        let (status, html) = post(
            &fx,
            "/opsml/audit/save",
            &format!("{body}&prod_token=guess"),
        );
        assert_eq!(status, 401);
        assert!(html.contains("not this registry"));
        assert_eq!(written(&fx), (0, 0, 0, 0));

        let (status, _) = post(
            &fx,
            "/opsml/audit/save",
            &format!("{body}&prod_token=the-prod-token"),
        );
        assert_eq!(status, 303);
        let (status, _) = post_as(
            &fx,
            &Identity::Open,
            "/opsml/audit/save",
            body,
            Some("the-prod-token"),
        );
        assert_eq!(status, 303);
        assert_eq!(written(&fx).0, 2);
    }

    #[test]
    fn a_token_that_may_only_read_is_refused_and_nothing_is_written() {
        let fx = seeded();
        let reader = Identity::Token {
            id: "t".into(),
            grant: Grant {
                scope: Scope::Read,
                repositories: None,
            },
        };
        let (status, html) = post_as(
            &fx,
            &reader,
            "/opsml/audit/save",
            "name=a&repository=team-a&contact=me",
            None,
        );
        assert_eq!(status, 403, "{html}");
        assert!(html.contains("id=\"audit-error\""));
        assert_eq!(written(&fx), (0, 0, 0, 0));
    }

    #[test]
    fn editing_changes_only_what_the_form_shows_and_a_stale_form_is_refused() {
        let fx = seeded();
        let (_, to) = post(
            &fx,
            "/opsml/audit/save",
            "name=a&repository=team-a&contact=me&modeling_1=one&modeling_2=two",
        );
        let uid = uid_of(&to);
        let (_, html) = get(&fx, &to);
        let digest = html
            .split("name=\"digest\" value=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .to_string();
        // An emptied box clears its answer; a box not sent leaves it.
        let (status, _) = post(
            &fx,
            "/opsml/audit/save",
            &format!("uid={uid}&digest={digest}&modeling_1=&approved=yes"),
        );
        assert_eq!(status, 303);
        let (_, html) = get(&fx, &to);
        assert!(html.contains("name=\"modeling_1\" rows=\"3\"></textarea>"));
        assert!(html.contains(">two</textarea>"));
        assert_eq!(
            cards::get(&fx.db, RegistryType::Audit, &uid)
                .unwrap()
                .unwrap()["approved"],
            true
        );
        // The form opened before that save is refused, and the card is left as it is.
        let before = written(&fx);
        let (status, html) = post(
            &fx,
            "/opsml/audit/save",
            &format!("uid={uid}&digest={digest}&modeling_2=mine"),
        );
        assert_eq!(status, 409);
        assert!(
            html.contains("Someone saved this audit card after you opened it")
                && html.contains(">mine</textarea>")
        );
        assert_eq!(written(&fx), before);
        assert!(get(&fx, &to).1.contains(">two</textarea>"));
    }

    #[test]
    fn csv_downloads_the_saved_answers_and_an_upload_fills_the_form_without_saving() {
        let fx = seeded();
        let (_, to) = post(
            &fx,
            "/opsml/audit/save",
            "name=a&repository=team-a&contact=me&misc_1=GDPR",
        );
        let uid = uid_of(&to);
        let Answer::File {
            content_type,
            filename,
            bytes,
        } = fx.send(
            &Identity::Open,
            &format!("/opsml/audit/download/?uid={uid}"),
            None,
            None,
        )
        else {
            panic!("not a file")
        };
        assert_eq!(
            (content_type, filename.as_str()),
            ("text/csv; charset=utf-8", "a-1.0.0-audit.csv")
        );
        let csv = String::from_utf8(bytes).unwrap();
        assert!(csv.starts_with("topic,number,question,purpose,response\r\n"));
        assert!(csv.contains(",GDPR\r\n"));

        let multipart = |csv: &str| {
            format!(
                "--XX\r\nContent-Disposition: form-data; name=\"uid\"\r\n\r\n{uid}\r\n--XX\r\nContent-Disposition: form-data; name=\"audit_file\"; filename=\"answers.csv\"\r\nContent-Type: text/csv\r\n\r\n{csv}\r\n--XX--\r\n"
            )
        };
        let send = |body: String| {
            page(fx.send(
                &Identity::Open,
                "/opsml/audit/upload",
                Some(("multipart/form-data; boundary=XX", body.as_bytes())),
                None,
            ))
        };
        let before = written(&fx);
        let (status, html) = send(multipart(
            "topic,number,response\r\nevaluation,1,AUC 0.91\r\n",
        ));
        assert_eq!(status, 200, "{html}");
        assert!(html
            .contains("Read 1 answers from answers.csv. Nothing is saved until you press Save."));
        assert!(html.contains(">AUC 0.91</textarea>") && html.contains(">GDPR</textarea>"));
        let (status, html) = send(multipart(
            "topic,number,response\r\nevaluation,1,x\r\nevaluation,40,y\r\n",
        ));
        assert_eq!(status, 422);
        assert!(
            html.contains("answers.csv: CSV line 3: this card has no question 40"),
            "{html}"
        );
        assert!(!html.contains(">x</textarea>"));
        assert_eq!(written(&fx), before);
        assert!(!get(&fx, &to).1.contains("AUC 0.91"));
    }

    #[test]
    fn a_form_sent_from_another_site_is_refused_but_pages_still_open() {
        let mut fx = seeded();
        fx.cross_site = true;
        let (status, html) = post(
            &fx,
            "/opsml/audit/save",
            "name=a&repository=team-a&contact=me",
        );
        assert_eq!(status, 403);
        assert!(html.contains("sent from another site"), "{html}");
        assert_eq!(written(&fx), (0, 0, 0, 0));
        assert_eq!(get(&fx, "/opsml/audit/").0, 200);
    }

    #[test]
    fn bad_requests_say_what_is_wrong() {
        let fx = seeded();
        let (status, html) = post(
            &fx,
            "/opsml/audit/save",
            "name=&repository=team-a&contact=me",
        );
        assert_eq!(status, 422);
        assert!(html.contains("needs a name, a repository and a contact"));
        assert_eq!(
            post(&fx, "/opsml/audit/save", "name=a&repository=team-a").0,
            422
        );
        assert_eq!(get(&fx, "/opsml/audit/?uid=nope").0, 404);
        assert_eq!(get(&fx, "/opsml/audit/download/").0, 400);
        assert_eq!(post(&fx, "/opsml/audit/save", "uid=nope").0, 404);
        assert_eq!(post(&fx, "/opsml/audit/save", "name=%zz").0, 400);
        assert_eq!(post(&fx, "/opsml/models/list/", "x=1").0, 405);
        assert_eq!(written(&fx), (0, 0, 0, 0));
    }
}
