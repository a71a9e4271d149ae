"""The web UI in a real browser: headless Chromium with its ChromeDriver (Debian's `chromium` and
`chromium-driver`; run.sh installs them when missing), driven by selenium, against our host after
the real opsml 2.2.4 client registered a project with two runs, a DataCard and two versions of a
ModelCard (flows/ui_seed.py). Each test opens pages as a person would, follows the links they
would click, and asserts what they see. Screenshots of the main pages go to
$OPSML_UI_SCREENSHOTS (default: the test's temporary directory)."""

from __future__ import annotations

import io
import json
import os
import shutil
import time
import zipfile
from pathlib import Path
from typing import Iterator, List
from urllib.parse import quote, urlencode

import blake3
import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException, StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import Select, WebDriverWait

from support.servers import Server, run_flow, start_host

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def ui_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_host(tmp_path_factory.mktemp("ui-host"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def seeded(ui_host: Server, tmp_path_factory: pytest.TempPathFactory) -> dict:
    result = run_flow("ui_seed", ui_host, tmp_path_factory.mktemp("ui-seed"))
    assert result.ok, result.explain()
    return result.result


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    wanted = os.environ.get("OPSML_UI_SCREENSHOTS")
    folder = Path(wanted) if wanted else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    downloads = tmp_path_factory.mktemp("downloads")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,1000"):
        options.add_argument(arg)
    options.add_experimental_option("prefs", {
        "download.default_directory": str(downloads),
        "download.prompt_for_download": False,
    })
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    driver.downloads = downloads  # type: ignore[attr-defined]
    yield driver
    driver.quit()


def no_alert(driver: WebDriver) -> None:
    try:
        text = driver.switch_to.alert.text
    except NoAlertPresentException:
        return
    raise AssertionError(f"a script ran and opened an alert: {text!r}")


def texts(driver: WebDriver, selector: str) -> List[str]:
    return [e.text for e in driver.find_elements(By.CSS_SELECTOR, selector)]


def downloaded(driver: WebDriver, name: str, timeout: float = 30) -> bytes:
    """Waits for the browser to finish downloading `name` and returns its bytes."""
    path = Path(driver.downloads) / name  # type: ignore[attr-defined]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and not Path(f"{path}.crdownload").exists():
            time.sleep(0.2)
            return path.read_bytes()
        time.sleep(0.1)
    raise AssertionError(f"{name} was not downloaded; the folder has {os.listdir(driver.downloads)}")  # type: ignore[attr-defined]


def page_left(old_root) -> bool:
    """Whether the page holding `old_root` was replaced. Mid-navigation ChromeDriver can answer
    "Node ... does not belong to the document" instead of a stale reference (seen on CI); both
    mean the old page is gone."""
    try:
        old_root.is_enabled()
        return False
    except StaleElementReferenceException:
        return True
    except WebDriverException as error:
        if "does not belong to the document" in str(error.msg):
            return True
        raise


def follow(driver: WebDriver, element, then: str) -> None:
    """Clicks `element` and waits until the page it leads to shows `then` (a CSS selector): a
    click that submits a form or follows a link returns before the next page has loaded."""
    old = driver.find_element(By.TAG_NAME, "html")
    element.click()
    WebDriverWait(driver, 20).until(lambda _: page_left(old))
    WebDriverWait(driver, 20).until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, then)))


def open_model(driver: WebDriver, ui_host: Server) -> None:
    """What a new user does: open the registry's address and click their model."""
    driver.get(ui_host.url + "/")
    follow(driver, driver.find_element(By.LINK_TEXT, "churn-model"), "#card-title")


def test_a_new_user_finds_the_model_they_registered(ui_host: Server, seeded: dict, browser: WebDriver,
                                                   screenshots: Path) -> None:
    browser.get(ui_host.url + "/")
    # `/` and `/opsml` lead to the models, as in opsml 2.2.4.
    assert browser.current_url == ui_host.url + "/opsml/models/list/"
    assert "churn-model" in texts(browser, "#names td a")
    browser.save_screenshot(str(screenshots / "models-list.png"))

    follow(browser, browser.find_element(By.LINK_TEXT, "churn-model"), "#card-title")
    versions = [m["version"] for m in seeded["models"]]
    assert texts(browser, "#versions a") == sorted(versions, key=lambda v: [int(p) for p in v.split(".")],
                                                     reverse=True)
    newest = seeded["models"][-1]
    assert browser.find_element(By.ID, "card-title").text == f"churn-model {newest['version']}"
    fields = dict(zip(texts(browser, "#fields th"), texts(browser, "#fields td")))
    assert fields["uid"] == newest["uid"]
    assert fields["datacard_uid"] == seeded["data_uid"]
    assert "alpha: 2.0" in browser.find_element(By.ID, "tags").text
    assert f'version="{newest["version"]}"' in browser.find_element(By.ID, "python-snippet").text
    assert "curl -fSL" in browser.find_element(By.ID, "curl-snippet").text
    # What the client wrote in model-metadata.json.
    metadata = dict(zip(texts(browser, "#model-metadata th"), texts(browser, "#model-metadata td")))
    assert metadata["interface"] == "SklearnModel" and metadata["type"] == "LinearRegression"
    assert metadata["ONNX file"] == "none: the model was registered without ONNX"
    assert metadata["sample data"].endswith("sample-model-data.joblib")
    features = [tuple(r.text.split()[:2]) for r in browser.find_elements(By.CSS_SELECTOR, "#model-features tbody tr")]
    assert ("f0", "input") in features and ("f1", "input") in features, features
    browser.get(browser.current_url + "#model-metadata")
    browser.save_screenshot(str(screenshots / "model-metadata.png"))
    browser.save_screenshot(str(screenshots / "model-version.png"))
    no_alert(browser)

    # The linked DataCard is one click away.
    follow(browser, browser.find_element(By.LINK_TEXT, seeded["data_uid"]), "#card-title")
    assert browser.find_element(By.ID, "card-title").text.startswith("churn-data ")
    # What the client kept of the data in the card's file.
    details = dict(zip(texts(browser, "#data-details th"), texts(browser, "#data-details td")))
    assert details["interface"] == "PandasData" and details["dependent variables"] == "y", details
    features = {r.find_elements(By.TAG_NAME, "td")[0].text: [td.text for td in r.find_elements(By.TAG_NAME, "td")]
                for r in browser.find_elements(By.CSS_SELECTOR, "#data-features tbody tr")}
    assert features["f0"][3] == "tenure in months", features
    assert "SELECT f0, f1, y FROM churn" in browser.find_element(By.CSS_SELECTOR, "pre.sql").text
    browser.save_screenshot(str(screenshots / "data-version.png"))


def test_downloads_are_the_bytes_that_were_uploaded(ui_host: Server, seeded: dict, browser: WebDriver) -> None:
    newest = seeded["models"][-1]
    folder = f"opsml-root:/OPSML_MODEL_REGISTRY/team-ui/churn-model/v{newest['version']}"
    # A file with known bytes, uploaded as any client uploads, next to the client's own files.
    known = os.urandom(300_000)
    response = httpx.post(f"{ui_host.api}/files/upload", headers={"write_path": f"{folder}/notes/known.bin"},
                          files={"file": ("known.bin", known)}, timeout=60)
    assert response.status_code == 200, response.text

    open_model(browser, ui_host)
    browser.find_element(By.CSS_SELECTOR, "#files a[href*='known.bin']").click()
    assert downloaded(browser, "known.bin") == known

    # Every file the client uploaded: the browser's bytes have the digest the page shows.
    rows = browser.find_elements(By.CSS_SELECTOR, "#files tbody tr")
    files = [(r.find_element(By.CSS_SELECTOR, "a"), r.find_element(By.CSS_SELECTOR, "td.mono")) for r in rows
             if r.find_element(By.CSS_SELECTOR, "a").get_dom_attribute("download") is not None]
    assert len(files) >= 3, [a.text for a, _ in files]
    checked = 0
    for link, digest in files:
        name = link.text
        if name == "known.bin" or (Path(browser.downloads) / name).exists():  # type: ignore[attr-defined]
            continue
        link.click()
        body = downloaded(browser, name)
        assert digest.get_attribute("title") == f"blake3:{blake3.blake3(body).hexdigest()}", name
        checked += 1
    assert checked >= 2

    # The folder as one zip: the same files, the known one byte for byte.
    browser.find_element(By.ID, "folder-zip").click()
    archive = zipfile.ZipFile(io.BytesIO(downloaded(browser, f"v{newest['version']}.zip")))
    assert archive.read("notes/known.bin") == known
    assert len(archive.namelist()) == len(files)


def test_a_run_shows_its_metrics_as_a_chart(ui_host: Server, seeded: dict, browser: WebDriver,
                                           screenshots: Path) -> None:
    browser.get(ui_host.url + "/opsml/projects/list/")
    follow(browser, browser.find_element(By.LINK_TEXT, "churn-project"), "#runs")
    runs = texts(browser, "#runs td a")
    assert sorted(runs) == ["baseline", "tuned"], runs
    follow(browser, browser.find_element(By.LINK_TEXT, "baseline"), "figure.metric")
    baseline = seeded["runs"][0]
    chart = browser.find_element(By.CSS_SELECTOR, "figure[data-metric='loss']")
    # One marker per logged step, in the run's colour, and the values behind them.
    assert len(chart.find_elements(By.CSS_SELECTOR, "svg circle")) == len(baseline["loss"])
    chart.find_element(By.TAG_NAME, "summary").click()
    values = [r.text.split() for r in chart.find_elements(By.CSS_SELECTOR, "table.values tbody tr")]
    assert {(step, float(value)) for *_, step, value in values} == \
        {(step, loss) for step, loss in baseline["loss"].items()}
    browser.save_screenshot(str(screenshots / "run-metrics.png"))

    # Both runs of the project overlaid: twice the markers, two colours.
    browser.get(ui_host.url + "/opsml/projects/list/?project=churn-project")
    follow(browser, browser.find_element(By.ID, "overlay"), "figure.metric")
    chart = browser.find_element(By.CSS_SELECTOR, "figure[data-metric='loss']")
    circles = chart.find_elements(By.CSS_SELECTOR, "svg circle")
    assert len(circles) == 2 * len(baseline["loss"])
    assert len({c.get_attribute("fill") for c in circles}) == 2
    # Their parameters side by side, the one that differs marked.
    rows = {r.find_element(By.TAG_NAME, "th").text: [td.text for td in r.find_elements(By.TAG_NAME, "td")]
            for r in browser.find_elements(By.CSS_SELECTOR, "#parameters tbody tr")}
    assert rows["solver"] == ["lbfgs", "lbfgs"]
    assert sorted(float(v) for v in rows["≠ learning_rate"]) == sorted(r["learning_rate"] for r in seeded["runs"])


def test_two_versions_side_by_side(ui_host: Server, seeded: dict, browser: WebDriver, screenshots: Path) -> None:
    open_model(browser, ui_host)
    older = seeded["models"][0]["version"]
    Select(browser.find_element(By.NAME, "b")).select_by_visible_text(older)
    follow(browser, browser.find_element(By.ID, "compare"), "#compare-fields")
    marked = texts(browser, "#compare-fields tr.differs th")
    assert "≠ version" in marked and "≠ tag alpha" in marked, marked
    assert "≠ name" not in marked
    rows = {r.find_element(By.TAG_NAME, "th").text: r for r in browser.find_elements(By.CSS_SELECTOR, "#compare-fields tbody tr")}
    assert [td.text for td in rows["≠ tag alpha"].find_elements(By.TAG_NAME, "td")] == ["2.0", "1.0"]
    # Different models: their files differ too.
    assert texts(browser, "#compare-files tr.differs th")
    browser.save_screenshot(str(screenshots / "compare-versions.png"))


def test_a_script_in_a_card_shows_as_text(ui_host: Server, seeded: dict, browser: WebDriver) -> None:
    script = "<script>alert(1)</script>"
    # Project names are kept as given, so a project can be named like this.
    response = httpx.post(f"{ui_host.api}/cards/create", json={
        "registry_type": "project",
        "card": {"name": script, "repository": "team-ui", "version": "1.0.0", "uid": "xss-project",
                 "project_id": 99},
    })
    assert response.status_code == 200, response.text
    # Other cards' names are checked, but tags and contacts are free text.
    response = httpx.post(f"{ui_host.api}/cards/create", json={
        "registry_type": "model",
        "card": {"name": "xss-model", "repository": "team-ui", "version": "1.0.0", "uid": "xss-model",
                 "contact": script, "tags": {"note": "<img src=x onerror=alert(2)>"}},
    })
    assert response.status_code == 200, response.text
    browser.get(ui_host.url + "/opsml/projects/list/")
    no_alert(browser)
    assert script in texts(browser, "#names td a")
    browser.get(ui_host.url + "/opsml/projects/versions/?uid=xss-project")
    no_alert(browser)
    assert browser.find_element(By.ID, "card-title").text == f"{script} 1.0.0"
    browser.get(ui_host.url + "/opsml/models/versions/?uid=xss-model")
    no_alert(browser)
    assert browser.find_element(By.ID, "tags").text == "note: <img src=x onerror=alert(2)>"
    assert not browser.find_elements(By.CSS_SELECTOR, "#tags img, script")
    browser.get(ui_host.url + "/opsml/models/list/?" + urlencode({"q": script}))
    no_alert(browser)
    assert browser.find_element(By.NAME, "q").get_attribute("value") == script


def load_audit(server: Server, uid: str, workdir: Path) -> dict:
    """The audit card as the opsml client's `load_card` returns it."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "args.json").write_text(json.dumps({"uid": uid}))
    result = run_flow("audit_load", server, workdir)
    assert result.ok, result.explain()
    return result.result


def answer(driver: WebDriver, field: str, text: str) -> None:
    box = driver.find_element(By.NAME, field)
    box.clear()
    box.send_keys(text)


def test_an_auditor_fills_in_the_audit_card_the_client_registered(
        ui_host: Server, seeded: dict, browser: WebDriver, tmp_path: Path) -> None:
    audit = seeded["audit"]
    browser.get(ui_host.url + "/opsml/audit/list/")
    follow(browser, browser.find_element(By.LINK_TEXT, "churn-audit"), "#card-title")
    follow(browser, browser.find_element(By.ID, "audit-link"), "#audit-form")
    assert browser.find_element(By.ID, "audit-title").text == f"Audit churn-audit {audit['version']}"
    # The client's questions, its answer and its comment.
    first = browser.find_element(By.CSS_SELECTOR, "label[for='business_understanding_1']").text
    assert first == f"1. {audit['questions']['business_understanding']['1']}"
    assert browser.find_element(By.NAME, "business_understanding_1").get_property("value") == "Prices contract renewals"
    assert "Data sources confirmed with the owners" in browser.find_element(By.ID, "audit-comments").text

    answer(browser, "data_understanding_1", "CRM exports 2021–2026, owned by <sales ops>")
    Select(browser.find_element(By.ID, "audit-approved")).select_by_visible_text("Approved")
    browser.find_element(By.ID, "comment-name").send_keys("bea")
    browser.find_element(By.ID, "comment-text").send_keys("Approved after review")
    follow(browser, browser.find_element(By.ID, "audit-save"), "#audit-notice")
    assert browser.find_element(By.ID, "audit-notice").text == "Saved."
    assert browser.find_element(By.NAME, "data_understanding_1").get_property("value") == \
        "CRM exports 2021–2026, owned by <sales ops>"
    no_alert(browser)

    # What the client loads is what was typed, next to what it stored itself.
    loaded = load_audit(ui_host, audit["uid"], tmp_path / "load")
    assert loaded["approved"] is True
    assert loaded["answers"]["data_understanding"]["1"] == "CRM exports 2021–2026, owned by <sales ops>"
    assert loaded["answers"]["business_understanding"]["1"] == "Prices contract renewals"
    assert loaded["comments"] == [{"name": "bea", "comment": "Approved after review"},
                                  {"name": "ann", "comment": "Data sources confirmed with the owners"}]
    assert loaded["modelcards"] == [{"name": "churn-model", "version": seeded["models"][0]["version"]}]
    # The registry row agrees.
    rows = httpx.post(f"{ui_host.api}/cards/list", json={"registry_type": "audit", "uid": audit["uid"]}).json()
    assert rows["cards"][0]["approved"] is True


def test_a_new_audit_card_for_a_model_with_answers_from_a_csv(
        ui_host: Server, seeded: dict, browser: WebDriver, screenshots: Path, tmp_path: Path) -> None:
    newest = seeded["models"][-1]
    open_model(browser, ui_host)
    follow(browser, browser.find_element(By.ID, "audit-link"), "#audit-form")
    assert browser.find_element(By.ID, "audit-title").text == "New audit card"
    assert f"churn-model {newest['version']}" in browser.find_element(By.CSS_SELECTOR, ".audit-model").text
    name = browser.find_element(By.ID, "audit-name")
    name.clear()
    name.send_keys("churn-model-review")
    answer(browser, "business_understanding_1", "Which customers get a renewal offer")
    answer(browser, "evaluation_1", "AUC 0.91 on the 2026 hold-out")
    follow(browser, browser.find_element(By.ID, "audit-save"), "#audit-notice")
    assert browser.find_element(By.ID, "audit-title").text == "Audit churn-model-review 1.0.0"

    # The saved answers as CSV, in the reference's columns.
    browser.find_element(By.ID, "audit-csv").click()
    csv_text = downloaded(browser, "churn-model-review-1.0.0-audit.csv").decode()
    assert csv_text.startswith("topic,number,question,purpose,response\r\n")
    assert "evaluation,1," in csv_text
    assert "AUC 0.91 on the 2026 hold-out" in csv_text

    # Answers read from a CSV fill the form; only Save stores them.
    upload = tmp_path / "answers.csv"
    upload.write_text('topic,number,response\r\nmodeling,1,"Gradient boosting, against a logistic baseline"\r\n')
    browser.find_element(By.ID, "audit-file").send_keys(str(upload))
    follow(browser, browser.find_element(By.ID, "audit-load-csv"), "#audit-notice")
    assert "Read 1 answers from answers.csv" in browser.find_element(By.ID, "audit-notice").text
    assert browser.find_element(By.NAME, "modeling_1").get_property("value") == \
        "Gradient boosting, against a logistic baseline"
    uid = browser.find_element(By.NAME, "uid").get_property("value")
    assert load_audit(ui_host, uid, tmp_path / "before")["answers"]["modeling"]["1"] is None
    follow(browser, browser.find_element(By.ID, "audit-save-bottom"), "#audit-notice")
    assert f"churn-model {newest['version']}" in browser.find_element(By.CSS_SELECTOR, ".audit-model").text
    browser.save_screenshot(str(screenshots / "audit-form.png"))
    loaded = load_audit(ui_host, uid, tmp_path / "after")
    assert loaded["answers"]["modeling"]["1"] == "Gradient boosting, against a logistic baseline"
    assert loaded["answers"]["evaluation"]["1"] == "AUC 0.91 on the 2026 hold-out"
    assert loaded["modelcards"] == [{"name": "churn-model", "version": newest["version"]}]

    # The model now links to it, and its audit link opens it.
    open_model(browser, ui_host)
    fields = dict(zip(texts(browser, "#fields th"), texts(browser, "#fields td")))
    assert fields["auditcard_uid"] == uid
    follow(browser, browser.find_element(By.ID, "audit-link"), "#audit-form")
    assert browser.find_element(By.ID, "audit-title").text == "Audit churn-model-review 1.0.0"


PROD_TOKEN = "prod-token-for-the-browser-test"


@pytest.fixture(scope="module")
def prod_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_host(tmp_path_factory.mktemp("ui-prod"), env={"APP_ENV": "production",
                                                                   "OPSML_PROD_TOKEN": PROD_TOKEN})
    yield server
    server.stop()


def test_in_production_the_audit_form_needs_the_prod_token(
        prod_host: Server, browser: WebDriver, screenshots: Path, tmp_path: Path) -> None:
    def audit_cards() -> list:
        listed = httpx.post(f"{prod_host.api}/cards/list", json={"registry_type": "audit"})
        assert listed.status_code == 200, listed.text
        return listed.json()["cards"]

    browser.get(prod_host.url + "/opsml/audit/list/")
    follow(browser, browser.find_element(By.ID, "new-audit"), "#audit-form")
    browser.find_element(By.ID, "audit-name").send_keys("pricing-audit")
    browser.find_element(By.ID, "audit-repository").send_keys("team-prod")
    browser.find_element(By.ID, "audit-contact").send_keys("risk@example.com")
    answer(browser, "misc_1", "Falls under the pricing policy")

    follow(browser, browser.find_element(By.ID, "audit-save"), "#audit-error")
    refusal = browser.find_element(By.ID, "audit-error").text
    assert "saving needs the prod token" in refusal and "Nothing was saved" in refusal
    # What was typed is still there, and nothing was registered.
    assert browser.find_element(By.NAME, "misc_1").get_property("value") == "Falls under the pricing policy"
    assert audit_cards() == []
    browser.save_screenshot(str(screenshots / "audit-prod-refused.png"))

    browser.find_element(By.ID, "prod-token").send_keys("not-the-token")
    follow(browser, browser.find_element(By.ID, "audit-save"), "#audit-error")
    assert "not this registry's" in browser.find_element(By.ID, "audit-error").text
    assert audit_cards() == []

    browser.find_element(By.ID, "prod-token").send_keys(PROD_TOKEN)
    follow(browser, browser.find_element(By.ID, "audit-save"), "#audit-notice")
    assert browser.find_element(By.ID, "audit-notice").text == "Saved."
    [card] = audit_cards()
    assert (card["name"], card["repository"], card["version"]) == ("pricing-audit", "team-prod", "1.0.0")
    loaded = load_audit(prod_host, card["uid"], tmp_path / "load")
    assert loaded["answers"]["misc"]["1"] == "Falls under the pricing policy"


def test_a_form_on_another_site_cannot_save_an_audit_card(ui_host: Server, browser: WebDriver) -> None:
    # A page of another origin (here a data: URL) posting to the registry, as a forged form would;
    # the browser would attach the login it keeps for the registry.
    forged = (f'<form method="post" action="{ui_host.url}/opsml/audit/save">'
              '<input name="name" value="forged-audit"><input name="repository" value="team-ui">'
              '<input name="contact" value="x"><button id="forge">Send</button></form>')
    browser.get("data:text/html," + quote(forged))
    follow(browser, browser.find_element(By.ID, "forge"), "#error-message")
    assert "sent from another site" in browser.find_element(By.ID, "error-message").text
    listed = httpx.post(f"{ui_host.api}/cards/list", json={"registry_type": "audit", "name": "forged-audit"})
    assert listed.json()["cards"] == []
