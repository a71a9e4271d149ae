//! The web pages on every runtime and backend: the SQL behind list pages (grouping, search,
//! tag filter, keyset paging) and card pages, checked through the HTML a browser gets. The
//! pages as a person sees them are tested in headless Chromium (tests/python/test_ui_browser.py).

use e2e::harness::{create_request, Host};
use serde_json::json;

/// The names a list page shows, in order, and its next page's link.
fn names_and_next(host: &Host, target: &str) -> (Vec<String>, Option<String>) {
    let reply = host.get(target);
    assert_eq!(reply.status, 200, "{target}: {}", reply.text());
    let html = reply.text();
    let names = html
        .split("<td><a href=\"/opsml/models/versions/?name=")
        .skip(1)
        .map(|row| {
            let start = row.find('>').unwrap() + 1;
            row[start..start + row[start..].find('<').unwrap()].to_string()
        })
        .collect();
    let next = html.find("rel=\"next\" href=\"").map(|at| {
        let rest = &html[at + 17..];
        rest[..rest.find('"').unwrap()].replace("&#38;", "&")
    });
    (names, next)
}

#[test]
fn list_pages_search_filter_and_page_on_every_backend() {
    let host = Host::start(&[]);
    // 60 names in two repositories, a few with several versions and a tag.
    for i in 0..60 {
        let repository = if i % 2 == 0 { "ui-even" } else { "ui-odd" };
        let versions = if i % 10 == 0 { 3 } else { 1 };
        for v in 0..versions {
            let tags = if i % 10 == 0 {
                json!({"stage": "prod", "n": i})
            } else {
                json!({"stage": "dev_50%"})
            };
            let card = json!({"name": format!("ui-model-{i:02}"), "repository": repository,
                              "version": format!("1.{v}.0"), "contact": "ui@example.com",
                              "uid": format!("ui-{i}-{v}"), "tags": tags});
            let (status, body) =
                host.post_json("/opsml/cards/create", &create_request("model", card), &[]);
            assert_eq!(status, 200, "{body}");
        }
    }
    // Two pages of 50 and 10, in name order, through the next link.
    let (first, next) = names_and_next(&host, "/opsml/models/list/");
    assert_eq!(first.len(), 50);
    let (second, last) = names_and_next(&host, &next.expect("a next page"));
    assert_eq!(second.len(), 10);
    assert!(last.is_none());
    let all: Vec<String> = first.into_iter().chain(second).collect();
    let expected: Vec<String> = (0..60).map(|i| format!("ui-model-{i:02}")).collect();
    assert_eq!(all, expected);

    let (odd, _) = names_and_next(&host, "/opsml/models/list/?repository=ui-odd");
    assert_eq!(odd.len(), 30);
    let (found, _) = names_and_next(&host, "/opsml/models/list/?q=MODEL-1");
    assert_eq!(
        found,
        (10..20)
            .map(|i| format!("ui-model-{i}"))
            .collect::<Vec<_>>()
    );
    // LIKE's wildcards are text here.
    let (none, _) = names_and_next(&host, "/opsml/models/list/?q=%25");
    assert!(none.is_empty());
    let (prod, _) = names_and_next(&host, "/opsml/models/list/?tag=stage:prod");
    assert_eq!(
        prod,
        (0..60)
            .step_by(10)
            .map(|i| format!("ui-model-{i:02}"))
            .collect::<Vec<_>>()
    );
    let (number, _) = names_and_next(&host, "/opsml/models/list/?tag=n:20");
    assert_eq!(number, ["ui-model-20"]);
    let (escaped, _) = names_and_next(
        &host,
        "/opsml/models/list/?repository=ui-odd&tag=stage:dev_50%25",
    );
    assert_eq!(escaped.len(), 30);
    // The version count of a name with three versions, and its page, highest first.
    let html = host.get("/opsml/models/list/?q=ui-model-30").text();
    assert!(html.contains("<td>ui-even</td><td>3</td>"), "{html}");
    let html = host
        .get("/opsml/models/versions/?name=ui-model-30&repository=ui-even")
        .text();
    let order: Vec<usize> = ["1.2.0</a>", "1.1.0</a>", "1.0.0</a>"]
        .iter()
        .map(|v| html.find(v).unwrap())
        .collect();
    assert!(order[0] < order[1] && order[1] < order[2]);
    assert!(html.contains("stage: prod"));
}

#[test]
fn the_entry_points_redirect_and_unknown_pages_say_so() {
    let host = Host::start(&[]);
    for (from, to) in [("/", "/opsml"), ("/opsml", "/opsml/models/list/")] {
        let reply = host.get(from);
        assert_eq!(reply.status, 303, "{from}");
        assert_eq!(reply.headers.get("location"), Some(to));
    }
    let reply = host.get("/opsml/models/versions/?uid=nope");
    assert_eq!(reply.status, 404);
    assert!(reply.text().contains("No card has uid nope."));
    assert_eq!(
        reply.headers.get("content-type"),
        Some("text/html; charset=utf-8")
    );
}

/// Posts the audit form (urlencoded) and returns the status and the `Location` or page.
fn save_audit(host: &Host, form: &str) -> (u16, String) {
    let reply = host.request(
        "POST",
        "/opsml/audit/save",
        &[("content-type", "application/x-www-form-urlencoded")],
        Some(form.as_bytes()),
    );
    let location = reply.headers.get("location").map(str::to_string);
    (reply.status, location.unwrap_or_else(|| reply.text()))
}

/// The value of a hidden field of a form page.
fn hidden(html: &str, name: &str) -> String {
    let at = html.find(&format!("name=\"{name}\" value=\"")).unwrap() + name.len() + 15;
    html[at..at + html[at..].find('"').unwrap()].to_string()
}

#[test]
fn of_several_saves_from_one_copy_of_an_audit_form_exactly_one_goes_through() {
    let host = Host::start(&[]);
    let (status, location) = save_audit(
        &host,
        "name=race-audit&repository=ui-race&contact=me&modeling_1=first",
    );
    assert_eq!(status, 303, "{location}");
    let form = host.get(&location).text();
    let (uid, digest) = (hidden(&form, "uid"), hidden(&form, "digest"));
    // Eight people who opened the same form save at once: one wins, the others are told.
    let outcomes: Vec<(u16, String)> = std::thread::scope(|scope| {
        let saves: Vec<_> = (0..8)
            .map(|i| {
                let host = &host;
                let (uid, digest) = (&uid, &digest);
                scope.spawn(move || {
                    save_audit(
                        host,
                        &format!("uid={uid}&digest={digest}&modeling_1=answer+{i}"),
                    )
                })
            })
            .collect();
        saves.into_iter().map(|s| s.join().unwrap()).collect()
    });
    let won: Vec<usize> = (0..8).filter(|&i| outcomes[i].0 == 303).collect();
    assert_eq!(won.len(), 1, "{outcomes:?}");
    for (status, page) in outcomes.iter().filter(|(status, _)| *status != 303) {
        assert_eq!(*status, 409, "{page}");
        assert!(page.contains("Someone saved this audit card after you opened it"));
    }
    let page = host.get(&format!("/opsml/audit/?uid={uid}")).text();
    assert!(
        page.contains(&format!(">answer {}</textarea>", won[0])),
        "the winner's answer is stored"
    );
    // The trail has the first save and the winner's, nothing of the refused ones.
    let (status, trail) = host.get_json("/opsml/admin/audit?repository=ui-race");
    assert_eq!(status, 200, "{trail}");
    let updates = trail["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["action"] == "card.update")
        .count();
    assert_eq!(updates, 1, "{trail}");
}
