"""
`ner-serve`'s page at `GET /`: self-contained (inline style and script allowed by hash, nothing
fetched but /predict), open without the API key, and in a real browser (Debian's headless
Chromium driven by Playwright) the entities it highlights are /predict's.
"""
import json
import os
import re
import shutil
from pathlib import Path

import httpx
import pytest

import ner_elmo
from test_service import serve

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
#: Where the browser test leaves its screenshot (a CI artifact; git ignores it).
ARTIFACTS = Path(os.environ.get("NER_ELMO_TEST_ARTIFACTS", Path(__file__).resolve().parents[1] / "test-artifacts"))
TEXT = "Maria Lindqvist flew to Oslo with Kestrel Trading Company. Then Zoë met <b>Ørsted</b>."


@pytest.fixture(scope="module")
def bundle(tiny_bundle):
    return tiny_bundle


def test_the_page_is_self_contained_and_locked_down(bundle):
    with serve(lambda: ner_elmo.load(bundle)) as server:
        server.wait_ready()
        response = httpx.get(server.url + "/", timeout=30)
    assert response.status_code == 200 and response.headers["content-type"] == "text/html; charset=utf-8"
    policy = response.headers["content-security-policy"]
    assert policy.startswith("default-src 'none'") and "connect-src 'self'" in policy
    assert "unsafe-inline" not in policy and policy.count("'sha256-") == 2
    page = response.text
    assert '<textarea id="text"' in page and '<button id="tag"' in page
    # Nothing is loaded from elsewhere: no src/href but the one documentation link.
    assert not re.search(r"\bsrc=", page)
    assert re.findall(r'href="([^"]+)"', page) == ["https://github.com/ner-elmo/ner-elmo/blob/main/docs/serving.md"]
    assert "innerHTML" not in page  # texts and answers become text nodes only


def test_the_page_needs_no_key_but_predict_does(bundle):
    with serve(lambda: ner_elmo.load(bundle), api_key="s3cret") as server:
        server.wait_ready()
        assert httpx.get(server.url + "/", timeout=30).status_code == 200
        assert httpx.post(server.url + "/predict", json={"text": "Oslo"}, timeout=30).status_code == 401
        assert httpx.get(server.url + "/", headers={"Host": "evil.example"}, timeout=30).status_code == 400


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_typing_a_sentence_and_pressing_tag_highlights_predicts_entities(bundle):
    playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (the dev extra)")
    with serve(lambda: ner_elmo.load(bundle)) as server:
        server.wait_ready()
        expected = httpx.post(server.url + "/predict", json={"text": TEXT}, timeout=30).json()["entities"]
        with playwright.sync_playwright() as driver:
            browser = driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            try:
                page = browser.new_page(viewport={"width": 1000, "height": 700})
                errors = []
                page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
                page.goto(server.url + "/")
                page.fill("#text", TEXT)
                page.click("#tag")
                page.wait_for_selector("body[data-done=yes]", timeout=30_000)
                marks = page.eval_on_selector_all(
                    "mark.entity",
                    "marks => marks.map(m => [m.firstChild.textContent, m.dataset.label, +m.dataset.start, "
                    "+m.dataset.end, m.querySelector('.label').textContent, getComputedStyle(m).backgroundColor])",
                )
                shown_text = page.inner_text("#result")
                ARTIFACTS.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(ARTIFACTS / "try_page.png"), full_page=True)
            finally:
                browser.close()
    assert [(text, label, start, end) for text, label, start, end, _, _ in marks] == [
        (e["text"], e["label"], e["start"], e["end"]) for e in expected
    ]
    assert [mark[1] for mark in marks] == ["PER", "LOC", "ORG", "PER"]
    assert all(mark[4] == mark[1] for mark in marks)
    assert marks[0][5] == "rgb(170, 156, 252)"  # PER's colour, as ner-html draws it
    assert "<b>" in shown_text  # the text's markup is shown as text, not rendered
    assert not errors, errors
    assert (ARTIFACTS / "try_page.png").stat().st_size > 10_000
