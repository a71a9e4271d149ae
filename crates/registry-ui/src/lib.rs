//! The registry's web pages, rendered on the server: every registry browsed by repository,
//! name and version; a card with its fields, tags, linked cards, files and ready-to-copy
//! snippets; a run's metrics as SVG charts. The URLs are opsml 2.2.4's (`/opsml/models/list/`,
//! `/opsml/models/versions/?model=`, `/opsml/data/list/`, `/opsml/projects/list/`,
//! `/opsml/projects/runs/plot/?run_uid=`, ...), so bookmarks keep working.
//!
//! Audit cards are also filled in here (`/opsml/audit/`): answers, approval, comments and the
//! CSV the reference reads and writes, saved under the same rules as every other write.
//!
//! Pages need no JavaScript and load nothing from elsewhere: the style sheet is in the page and
//! charts are inline SVG. Every value is HTML-escaped by the templates.

mod audit_card;
mod audit_form;
mod chart;
mod pages;
mod stored;
mod tree;

use registry_app::request::{read_all, Answer as Reply};
use registry_app::{auth, AppError, Body, Caller, Ctx, Head, Method};
use registry_core::RegistryType;

pub use pages::PAGE_SIZE;

/// The largest form accepted: its answers and a CSV of them.
const MAX_FORM_BYTES: usize = 4 * 1024 * 1024;

/// What a page sends back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Page {
        status: u16,
        html: String,
    },
    /// `303 See Other` to this location.
    Redirect(String),
    /// A file to save (an audit card's CSV).
    File {
        content_type: &'static str,
        filename: String,
        bytes: Vec<u8>,
    },
}

/// A page request: its path, its query string and, for a form, what it sent.
pub struct Request<'a> {
    pub path: &'a str,
    pub query: &'a str,
    /// `GET` or `POST`.
    pub post: bool,
    pub content_type: &'a str,
    pub body: &'a [u8],
    /// Whether a browser sent the request from another site's page ([`from_another_site`]).
    pub cross_site: bool,
}

/// Whether a browser sent a request from a page of another site (a forged form post: the
/// browser would attach the login it keeps for the registry). `Sec-Fetch-Site` decides when
/// the browser sends it; otherwise a present `Origin` must name the `Host`. Scripts send
/// neither and are not affected.
pub fn from_another_site(
    fetch_site: Option<&str>,
    origin: Option<&str>,
    host: Option<&str>,
) -> bool {
    if let Some(site) = fetch_site {
        return !matches!(site.trim(), "same-origin" | "none");
    }
    match origin {
        None => false,
        Some(origin) => {
            let authority = origin
                .split_once("://")
                .map(|(_, rest)| rest.trim_end_matches('/'));
            authority.is_none() || authority != host.map(str::trim)
        }
    }
}

/// Who asks, through what: every read and write goes through the application layer.
pub struct Site<'a> {
    pub ctx: &'a Ctx<'a>,
    pub caller: &'a Caller,
}

impl Request<'_> {
    /// A parameter, trimmed; `None` when absent or blank.
    fn get(&self, name: &str) -> Option<String> {
        registry_core::query::first(self.query, name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    /// Every non-blank value of a repeated parameter (`run_uid=a&run_uid=b`).
    fn get_all(&self, name: &str) -> Vec<String> {
        registry_core::query::all(self.query, name)
            .into_iter()
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .collect()
    }
}

/// The `ui` component's route: the caller is authenticated as on every route (a refused login
/// is answered as the API answers it, so the browser asks for the login); a page's own errors
/// become pages.
pub fn route(ctx: &Ctx, head: &Head, body: &mut dyn Body) -> registry_app::Result<Reply> {
    let caller = auth::authenticate(ctx, head)?;
    head.expect_method(&[Method::Get, Method::Post])?;
    let post = head.method == Method::Post;
    let form = if post {
        read_all(body, MAX_FORM_BYTES)?
    } else {
        Vec::new()
    };
    let content_type = head.header("content-type").unwrap_or_default();
    let request = Request {
        path: &head.path,
        query: &head.query,
        post,
        content_type: &content_type,
        body: &form,
        cross_site: from_another_site(
            head.header("sec-fetch-site").as_deref(),
            head.header("origin").as_deref(),
            head.header("host").as_deref(),
        ),
    };
    let site = Site {
        ctx,
        caller: &caller,
    };
    Ok(reply(answer(&site, &request)))
}

/// A page's answer as HTTP.
fn reply(answer: Answer) -> Reply {
    match answer {
        Answer::Page { status, html } => Reply::Bytes {
            status,
            headers: vec![
                ("content-type", "text/html; charset=utf-8".to_string()),
                // Pages load nothing from elsewhere and run no script.
                (
                    "content-security-policy",
                    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'".to_string(),
                ),
                ("x-content-type-options", "nosniff".to_string()),
                ("cache-control", "no-store".to_string()),
            ],
            body: html.into_bytes(),
        },
        Answer::Redirect(location) => Reply::Bytes {
            status: 303,
            headers: vec![("location", location)],
            body: Vec::new(),
        },
        Answer::File {
            content_type,
            filename,
            bytes,
        } => Reply::Bytes {
            status: 200,
            headers: vec![
                ("content-type", content_type.to_string()),
                (
                    "content-disposition",
                    format!(
                        "attachment; filename=\"{}\"",
                        filename.replace(['"', '\\'], "_")
                    ),
                ),
                ("x-content-type-options", "nosniff".to_string()),
                ("cache-control", "no-store".to_string()),
            ],
            body: bytes,
        },
    }
}

impl From<AppError> for pages::PageError {
    fn from(e: AppError) -> Self {
        pages::PageError::new(e.status, e.detail)
    }
}

/// The registries in the order the navigation shows them, with the URL segment of each.
pub const SECTIONS: [(RegistryType, &str, &str); 6] = [
    (RegistryType::Model, "models", "Models"),
    (RegistryType::Data, "data", "Data"),
    (RegistryType::Run, "runs", "Runs"),
    (RegistryType::Pipeline, "pipelines", "Pipelines"),
    (RegistryType::Project, "projects", "Projects"),
    (RegistryType::Audit, "audit", "Audits"),
];

/// The URL segment of a registry's pages (`models` for the model registry).
pub fn section_of(registry: RegistryType) -> &'static str {
    SECTIONS
        .iter()
        .find(|(r, _, _)| *r == registry)
        .map(|(_, segment, _)| *segment)
        .unwrap_or("models")
}

/// Answers a page request. Errors become a page with their status and message.
pub fn answer(site: &Site, request: &Request) -> Answer {
    let path = request.path.trim_end_matches('/');
    match path {
        "" => return Answer::Redirect("/opsml".into()),
        "/opsml" => return Answer::Redirect("/opsml/models/list/".into()),
        _ => {}
    }
    let post = request.post;
    let result = if let Some(action) = audit_form::route(path, post) {
        audit_form::answer(site, request, action)
    } else if post {
        Err(pages::PageError::new(
            405,
            "Only the audit form is sent with POST; this page is read with GET.",
        ))
    } else if path == "/opsml/projects/runs/plot" {
        pages::run_page(site, request)
    } else {
        let mut segments = path.trim_start_matches("/opsml/").split('/');
        let section = segments.next().unwrap_or_default();
        let page = segments.next();
        let registry = SECTIONS.iter().find(|(_, s, _)| *s == section);
        match (registry, page, segments.next()) {
            (Some((registry, _, _)), Some("list"), None) => {
                pages::list_page(site, request, *registry)
            }
            (Some((registry, _, _)), Some("versions"), None) => {
                pages::versions_page(site, request, *registry)
            }
            (Some((registry, _, _)), Some("compare"), None) => {
                pages::compare_page(site, request, *registry)
            }
            _ => Err(pages::PageError::new(404, "There is no page here.")),
        }
    };
    match result {
        Ok(answer) => answer,
        Err(error) => pages::error_page(&error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use registry_app::testing::Registry;
    use registry_core::access::{Grant, Identity, Scope};
    use registry_core::card::{Card, CardDefaults};
    use registry_store::testing::Sqlite;
    use registry_store::{cards, metrics};
    use serde_json::{json, Value};

    pub(crate) fn add(db: &Sqlite, registry: RegistryType, fields: Value) {
        let card = Card::from_fields(
            registry,
            fields.as_object().unwrap().clone(),
            &CardDefaults {
                uid: "unused".into(),
                date: "2026-11-30".into(),
                app_env: "development".into(),
                timestamp: 1_764_460_800_000_000,
            },
        )
        .unwrap();
        cards::insert(db, &card).unwrap();
    }

    pub(crate) fn seeded() -> Fixture {
        let fx = Fixture::new();
        let db = &fx.db;
        for (i, version) in ["1.2.0", "1.10.0", "1.9.0"].iter().enumerate() {
            add(
                db,
                RegistryType::Model,
                json!({"name": "churn", "repository": "team-a", "version": version,
                       "uid": format!("m{i}"), "tags": {"stage": "<b>dev</b>"},
                       "datacard_uid": "d0"}),
            );
        }
        add(
            db,
            RegistryType::Model,
            json!({"name": "other", "repository": "team-b", "version": "0.1.0", "uid": "o0"}),
        );
        add(
            db,
            RegistryType::Data,
            json!({"name": "churn-data", "repository": "team-a", "version": "1.0.0", "uid": "d0"}),
        );
        add(
            db,
            RegistryType::Run,
            json!({"name": "<script>alert(1)</script>", "repository": "team-a",
                   "version": "1.0.0", "uid": "r0", "project": "team-a:churn"}),
        );
        metrics::insert(
            db,
            &[metrics::Metric {
                run_uid: "r0".into(),
                name: "loss".into(),
                value: Some(0.25),
                step: Some(3),
                timestamp: None,
            }],
        )
        .unwrap();
        fx
    }

    /// A registry in memory (see `registry_app::testing`), in development unless told.
    pub(crate) struct Fixture {
        pub registry: Registry,
        pub db: std::rc::Rc<Sqlite>,
        pub kv: std::rc::Rc<registry_store::testing::MemoryKv>,
        /// Requests come from another site's page.
        pub cross_site: bool,
    }

    impl Fixture {
        pub fn new() -> Self {
            let registry = Registry::new().with(&[("prod_token", "the-prod-token")]);
            registry.clock.set(1_764_500_000_000_000);
            Fixture {
                db: registry.db.clone(),
                kv: registry.kv.clone(),
                registry,
                cross_site: false,
            }
        }

        /// `APP_ENV` of the registry.
        pub fn set_env(&self, app_env: &str) {
            self.registry
                .variables
                .borrow_mut()
                .insert("env".into(), app_env.into());
        }

        /// Sends a request as `identity`; `form` is a body (then the request is a POST).
        pub fn send(
            &self,
            identity: &Identity,
            path_and_query: &str,
            form: Option<(&str, &[u8])>,
            prod_token_header: Option<&str>,
        ) -> Answer {
            let (path, query) = path_and_query
                .split_once('?')
                .unwrap_or((path_and_query, ""));
            let ctx = Ctx::new(&self.registry);
            let caller = Caller {
                identity: identity.clone(),
                request_id: "r".into(),
                prod_token: prod_token_header.map(str::to_string),
            };
            let (post, content_type, body) = match form {
                Some((content_type, body)) => (true, content_type, body),
                None => (false, "", &[][..]),
            };
            answer(
                &Site {
                    ctx: &ctx,
                    caller: &caller,
                },
                &Request {
                    path,
                    query,
                    post,
                    content_type,
                    body,
                    cross_site: self.cross_site,
                },
            )
        }
    }

    pub(crate) fn page(answer: Answer) -> (u16, String) {
        match answer {
            Answer::Page { status, html } => (status, html),
            Answer::Redirect(to) => (303, to),
            Answer::File { filename, .. } => (200, filename),
        }
    }

    fn get(fixture: &Fixture, identity: &Identity, path_and_query: &str) -> (u16, String) {
        page(fixture.send(identity, path_and_query, None, None))
    }

    #[test]
    fn a_request_from_another_sites_page_is_told_apart() {
        let host = Some("registry.example:3000");
        for (fetch_site, origin, cross) in [
            (Some("same-origin"), Some("https://elsewhere"), false),
            (Some("none"), None, false),
            (
                Some("cross-site"),
                Some("http://registry.example:3000"),
                true,
            ),
            (Some("same-site"), None, true),
            (None, Some("http://registry.example:3000"), false),
            (None, Some("https://registry.example:3000/"), false),
            (None, Some("http://evil.example"), true),
            (None, Some("null"), true),
            (None, None, false),
        ] {
            assert_eq!(
                from_another_site(fetch_site, origin, host),
                cross,
                "{fetch_site:?} {origin:?}"
            );
        }
    }

    #[test]
    fn the_reference_entry_points_redirect_to_the_models() {
        let db = seeded();
        assert_eq!(get(&db, &Identity::Open, "/"), (303, "/opsml".into()));
        assert_eq!(
            get(&db, &Identity::Open, "/opsml"),
            (303, "/opsml/models/list/".into())
        );
        let (status, _) = get(&db, &Identity::Open, "/opsml/nothing/here/");
        assert_eq!(status, 404);
    }

    #[test]
    fn lists_names_and_versions_highest_first_with_links() {
        let db = seeded();
        let (status, html) = get(&db, &Identity::Open, "/opsml/models/list/");
        assert_eq!(status, 200);
        let churn = html.find(">churn</a>").unwrap();
        let other = html.find(">other</a>").unwrap();
        assert!(churn < other);
        assert!(
            html.contains("/opsml/models/versions/?name=churn&#38;repository=team-a"),
            "{html}"
        );
        let (_, html) = get(&db, &Identity::Open, "/opsml/models/versions/?model=churn");
        let order: Vec<usize> = ["1.10.0</a>", "1.9.0</a>", "1.2.0</a>"]
            .iter()
            .map(|v| html.find(v).unwrap())
            .collect();
        assert!(order[0] < order[1] && order[1] < order[2], "{order:?}");
        // The highest version is the one shown, its data card linked.
        assert!(html.contains("<span class=\"mono\">1.10.0</span>"));
        assert!(html.contains("href=\"/opsml/data/versions/?uid=d0\""));
        assert!(html.contains("registry.load_card(name=&#34;churn&#34;"));
        let (_, html) = get(&db, &Identity::Open, "/opsml/models/versions/?uid=m0");
        assert!(html.contains("<span class=\"mono\">1.2.0</span>"));
    }

    #[test]
    fn everything_shown_is_escaped() {
        let db = seeded();
        let (_, html) = get(
            &db,
            &Identity::Open,
            "/opsml/models/list/?q=%3Cscript%3Ealert(1)%3C/script%3E",
        );
        assert!(!html.contains("<script>"));
        assert!(html.contains("&#60;script&#62;alert(1)&#60;/script&#62;"));
        let (_, html) = get(&db, &Identity::Open, "/opsml/models/versions/?uid=m1");
        assert!(html.contains("stage: &#60;b&#62;dev&#60;/b&#62;"));
        let (_, html) = get(
            &db,
            &Identity::Open,
            "/opsml/projects/runs/plot/?run_uid=r0",
        );
        assert!(!html.contains("<script>"));
        assert!(html.contains("&#60;script&#62;alert(1)&#60;/script&#62; 1.0.0"));
        assert!(html.contains("<td>3</td><td>0.25</td>"));
    }

    #[test]
    fn a_limited_token_sees_only_its_repositories() {
        let db = seeded();
        let token = Identity::Token {
            id: "t".into(),
            grant: Grant {
                scope: Scope::Read,
                repositories: Some(vec!["team-b".into()]),
            },
        };
        let (status, html) = get(&db, &token, "/opsml/models/list/");
        assert_eq!(status, 200);
        assert!(html.contains(">other</a>") && !html.contains(">churn</a>"));
        let (status, html) = get(&db, &token, "/opsml/models/versions/?uid=m0");
        assert_eq!(status, 403);
        assert!(html.contains("may not read"), "{html}");
        let (status, _) = get(&db, &token, "/opsml/models/list/?repository=team-a");
        assert_eq!(status, 403);
    }

    /// The hrefs of the list page's links with this `rel`, as the browser would follow them.
    fn link(html: &str, rel: &str) -> Option<String> {
        let at = html.find(&format!("rel=\"{rel}\" href=\""))?;
        let rest = &html[at + rel.len() + 13..];
        Some(rest[..rest.find('"')?].replace("&#38;", "&"))
    }

    #[test]
    fn list_pages_follow_each_other_both_ways() {
        let db = seeded();
        for i in 0..120 {
            add(
                &db.db,
                RegistryType::Data,
                json!({"name": format!("set-{i:03}"), "repository": "bulk", "version": "1.0.0",
                       "uid": format!("bulk{i}")}),
            );
        }
        let mut seen = Vec::new();
        let mut pages = Vec::new();
        let mut next = Some("/opsml/data/list/?repository=bulk".to_string());
        while let Some(href) = next {
            let (status, html) = get(&db, &Identity::Open, &href);
            assert_eq!(status, 200, "{href}");
            seen.extend(
                html.match_indices(">set-")
                    .map(|(at, _)| html[at + 1..at + 8].to_string()),
            );
            next = link(&html, "next");
            pages.push((href, html));
        }
        let expected: Vec<String> = (0..120).map(|i| format!("set-{i:03}")).collect();
        assert_eq!(seen, expected);
        assert_eq!(pages.len(), 3);
        assert!(link(&pages[0].1, "prev").is_none());
        // Back from the last page comes the middle one, then the first.
        let back = link(&pages[2].1, "prev").unwrap();
        assert_eq!(get(&db, &Identity::Open, &back).1, pages[1].1);
        let first = link(&pages[1].1, "prev").unwrap();
        let (_, html) = get(&db, &Identity::Open, &first);
        assert!(html.contains(">set-000<") && !html.contains(">set-050<"));
    }

    #[test]
    fn compare_marks_what_differs() {
        let db = seeded();
        let (status, html) = get(&db, &Identity::Open, "/opsml/models/compare/?a=m0&b=o0");
        assert_eq!(status, 200);
        // o0 differs in name, repository and version, and has no tag.
        assert!(
            html.contains("<tr class=\"differs\"><th>≠ name</th><td>churn</td><td>other</td></tr>"),
            "{html}"
        );
        assert!(html.contains("<th>≠ tag stage</th><td>&#60;b&#62;dev&#60;/b&#62;</td><td></td>"));
        let (_, same) = get(&db, &Identity::Open, "/opsml/models/compare/?a=m0&b=m0");
        assert!(same.contains("<span id=\"differences\">0</span> differences"));
        let (status, _) = get(&db, &Identity::Open, "/opsml/models/compare/?a=m0");
        assert_eq!(status, 400);
    }

    #[test]
    fn bad_input_gets_a_page_that_says_what_is_wrong() {
        let db = seeded();
        for (path, status, says) in [
            (
                "/opsml/models/versions/?name=churn&page=x",
                400,
                "page must be a whole number",
            ),
            (
                "/opsml/models/list/?tag=stage",
                400,
                "a tag filter is key:value",
            ),
            ("/opsml/models/versions/", 400, "Say which card"),
            (
                "/opsml/models/versions/?uid=nope",
                404,
                "No card has uid nope",
            ),
            (
                "/opsml/models/versions/?name=churn&version=7.0.0",
                404,
                "has no version 7.0.0",
            ),
            ("/opsml/projects/runs/plot/", 400, "Say which run"),
        ] {
            let (got, html) = get(&db, &Identity::Open, path);
            assert_eq!(got, status, "{path}");
            assert!(html.contains(says), "{path}: {html}");
        }
    }
}
