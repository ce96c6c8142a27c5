"""The web UI in a real browser: Debian's chromium driven by Playwright (no browser
download: executable_path is the system chromium) against the built server and a real
PostgreSQL. One story, as the people who use Handrail live it:

a responder signs in; an alert fired through the alerts API appears on the Now page by
itself (live refresh); she takes ownership, ticks two steps and skips one with a reason and
proposes a rollback, which a lead confirms as her decision; the incident is resolved; a manager approves the
generated postmortem; a lead generates and acknowledges the week's handoff and finds the
incident, the decision and the skipped step in it.

Throughout: no console errors, no CSP violations, `<script>` in a runbook and in alert
labels stays inert text, and no page scrolls sideways at 375 px. Screenshots of the main
pages, desktop and phone width, go to docs/screenshots/.
"""
import datetime
import os
import pathlib
import shutil
import time

import pytest
import requests

from conftest import ROOT, cli, psql

playwright_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = ROOT / "docs" / "screenshots"
PASSWORD = " chose this password"

XSS_RUNBOOK = """---
id: xss-probe
title: <script>alert("runbook title")</script> probe
match:
  alertname: XssProbe
severity: info
owners: ml-platform
---
# <img src=x onerror=alert(1)> Probe

Raw HTML must not run: <script>alert("runbook body")</script>

## Steps
1. Click [this](javascript:alert(1)) and nothing happens.
2. <b onmouseover=alert(1)>Hover</b> does nothing either.
"""


class Watch:
    """Everything a page reports that a user should never cause: console errors, CSP
    violations, dialogs (an alert() that ran), failed requests to our own server."""

    def __init__(self):
        self.problems = []
        # Documents the story asks for and that answer 4xx on purpose (a refused form, a
        # missing page): the browser logs their status, which is not a problem.
        self.expected_statuses = set()

    def console(self, message, page):
        if message.type != "error":
            return
        url = (message.location or {}).get("url", "")
        if message.text.startswith("Failed to load resource") and url.split("#")[0] in self.expected_statuses:
            return
        self.problems.append(f"console error: {message.text} ({url}) on {page.url}")

    def expect_status(self, url):
        self.expected_statuses.add(url)

    def attach(self, page):
        page.on("console", lambda m: self.console(m, page))
        page.on("pageerror", lambda e: self.problems.append(f"page error: {e} at {page.url}"))
        page.on("dialog", lambda d: (self.problems.append(f"a dialog opened (script ran): {d.message} at {page.url}"), d.dismiss()))
        page.add_init_script(
            "document.addEventListener('securitypolicyviolation', function (e) {"
            "  console.error('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI); });")
        return page


@pytest.fixture
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.fail("chromium is not installed: script/bootstrap installs Debian's chromium")
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield b
        b.close()


def wait_until_live(db, timeout=10):
    """Until the server LISTENs for incident changes: it starts to with a page's first live
    connection, and a change made before that is not pushed to the page (it shows it once
    reloaded). A person does not fire an alert in the milliseconds after a page opens; the
    story does, so it waits for the page to be live first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if psql(db, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'handrail-live' AND query LIKE 'LISTEN%'") != "0":
            return
        time.sleep(0.05)
    raise AssertionError("the server never listened for incident changes")


def sign_in(browser, watch, server, username, width=1280, timezone="UTC"):
    context = browser.new_context(viewport={"width": width, "height": 900}, base_url=server.url, timezone_id=timezone)
    page = watch.attach(context.new_page())
    page.goto("/")
    assert "/login" in page.url
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(username + PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(server.url + "/")
    return page


def no_sideways_scroll(page, what):
    """At 375 px nothing may be wider than the screen; and the page is accessible."""
    accessible(page, what)
    page.set_viewport_size({"width": 375, "height": 800})
    width = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"{what} scrolls sideways at 375 px: content {width[0]} px wide"
    page.set_viewport_size({"width": 1280, "height": 900})


ACCESSIBILITY_JS = """() => {
  const problems = [];
  // Every control has a label (or an aria-label); buttons and links say what they do.
  for (const el of document.querySelectorAll('input:not([type=hidden]), select, textarea')) {
    if (!(el.labels && el.labels.length) && !el.getAttribute('aria-label')) problems.push('unlabelled ' + el.outerHTML.slice(0, 80));
  }
  for (const el of document.querySelectorAll('button, a')) {
    if (!(el.textContent || '').trim() && !el.getAttribute('aria-label')) problems.push('nameless ' + el.outerHTML.slice(0, 80));
  }
  // WCAG AA contrast of visible text against the first opaque background behind it.
  const rgb = c => (c.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => { const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
  const background = el => { for (let e = el; e; e = e.parentElement) { const c = rgb(getComputedStyle(e).backgroundColor);
    if (c.length === 3 || (c.length === 4 && c[3] > 0.9)) return c.slice(0, 3); } return [255, 255, 255]; };
  for (const el of document.querySelectorAll('body *')) {
    const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    if (!own || !el.offsetParent) continue;
    const style = getComputedStyle(el);
    const [l1, l2] = [lum(rgb(style.color).slice(0, 3)), lum(background(el))];
    const ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
    const large = parseFloat(style.fontSize) >= 24 || (parseFloat(style.fontSize) >= 18.66 && Number(style.fontWeight) >= 700);
    if (ratio < (large ? 3 : 4.5)) problems.push('contrast ' + ratio.toFixed(2) + ' for ' + el.tagName + ' "' + el.textContent.trim().slice(0, 40) + '"');
  }
  return problems;
}"""


def accessible(page, what):
    """Labels on every control, names on every button and link, AA contrast."""
    problems = page.evaluate(ACCESSIBILITY_JS)
    assert problems == [], f"{what}: " + "; ".join(problems[:10])


def shoot(page, name):
    """Desktop and phone screenshots of the page as it is now."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}-desktop.png"), full_page=True)
    page.set_viewport_size({"width": 375, "height": 800})
    page.screenshot(path=str(SCREENSHOTS / f"{name}-phone.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})


def iso_week(t):
    year, week, _ = t.isocalendar()
    return f"{year}-W{week:02d}"


def test_responder_lead_and_manager_work_an_incident_in_the_browser(empty_database, start_server, browser, tmp_path):
    db = empty_database
    for name, role in [("rhea", "responder"), ("lena", "lead"), ("mara", "manager"), ("ada", "admin")]:
        made = cli(["users", "create", "--username", name, "--display-name", name.capitalize(), "--role", role, "--password-stdin"],
                   db, stdin=name + PASSWORD + "\n")
        assert made.returncode == 0, made.stderr
    made = cli(["rotations", "create", "ml-platform", "--members", "rhea,lena", "--time-zone", "UTC",
                "--shift-length", "1w", "--handoff", "Monday 09:00", "--start-date", "2026-01-05"], db)
    assert made.returncode == 0, made.stderr
    key = cli(["integrations", "create", "--name", "e2e-generic", "--kind", "generic"], db).stdout.strip()
    runbooks = tmp_path / "runbooks"
    shutil.copytree(ROOT / "runbooks", runbooks)
    (runbooks / "xss-probe.md").write_text(XSS_RUNBOOK)

    server = start_server({"DATABASE_URL": db, "HANDRAIL_BCRYPT_COST": "4", "HANDRAIL_RUNBOOKS_DIR": str(runbooks)})
    server.wait_ready()
    watch = Watch()

    def fire(body):
        sent = requests.post(server.url + "/api/v1/alerts/generic", headers={"Authorization": f"Bearer {key}"}, json=body, timeout=10)
        assert sent.status_code == 200, sent.text
        return sent.json()["alerts"][0]["incident_number"]

    # --- Responder: the Now page shows the alert by itself (server-sent events).
    rhea = sign_in(browser, watch, server, "rhea")
    assert rhea.get_by_text("No open incidents").is_visible()
    rhea.evaluate("window.stayed = true")
    wait_until_live(db)
    number = fire({"dedup_key": "drift-ranker", "alertname": "FeatureDriftHigh", "value": 0.31,
                   "labels": {"model": "ranker", "feature": "age", "metric": "psi", "team": "<script>alert('label')</script>"},
                   "summary": "PSI 0.31 on age"})
    ref = f"INC-{number}"
    rhea.get_by_role("link", name=f"{ref} ").wait_for(timeout=15000)
    # Only the changed row came (GET /now/rows): the page itself never reloaded.
    assert rhea.evaluate("window.stayed === true"), "the Now page reloaded instead of fetching the new row"
    assert rhea.locator("#open-count").inner_text() == "1"
    shoot(rhea, "now")
    no_sideways_scroll(rhea, "the Now page")

    # --- Incident page: take ownership, two steps done, one skipped with a reason.
    rhea.get_by_role("link", name=f"{ref} ").click()
    rhea.wait_for_url(f"**/incidents/{number}")
    assert rhea.locator("#state").inner_text() == "triggered"
    # The label holding <script> is text on the page, and nothing ran.
    assert "team=<script>alert('label')</script>" in rhea.locator("#alerts").inner_text()
    assert "Value 0.31 against psi thresholds warning 0.1, critical 0.25" in rhea.locator("#alerts").inner_text()
    rhea.get_by_role("button", name="Take owner").click()
    rhea.wait_for_load_state()
    assert "Rhea (rhea)" in rhea.locator("#roles").inner_text()
    rhea.get_by_role("button", name="Mark step 1 done").click()
    rhea.locator("#step-1 .mark").wait_for()
    rhea.get_by_role("button", name="Mark step 2 done").click()
    rhea.locator("#step-2 .mark").wait_for()
    # A skip without a reason is refused with the field named; nothing is marked.
    rhea.locator("#step-3 summary").click()
    rhea.get_by_label("Why skip step 3?").fill("   ")
    watch.expect_status(f"{server.url}/incidents/{number}/steps/3")
    rhea.locator("#step-3").get_by_role("button", name="Skip").click()
    assert "note: a skipped step needs a reason" in rhea.get_by_role("alert").inner_text()
    assert rhea.locator("#step-3 .mark").count() == 0
    rhea.locator("#step-3 summary").click()
    rhea.get_by_label("Why skip step 3?").fill("traffic mix unchanged; dashboards show one feature")
    rhea.locator("#step-3").get_by_role("button", name="Skip").click()
    rhea.locator("#step-3 .mark").wait_for()
    steps = rhea.locator("ol.steps").inner_text()
    assert "done by rhea" in rhea.locator("#step-1").inner_text() and "done by rhea" in rhea.locator("#step-2").inner_text()
    assert "skipped by rhea" in rhea.locator("#step-3").inner_text() and "traffic mix unchanged" in steps
    # A responder cannot record a decision on this runbook; she proposes one (the form is open
    # with no decision yet) and a lead confirms it.
    assert "lets lead and up record decisions" in rhea.locator("#decisions").inner_text()
    assert rhea.get_by_role("button", name="Record decision").count() == 0
    rhea.get_by_label("Decision", exact=True).select_option("rollback")
    rhea.get_by_label("From version").fill("ranker-v42")
    rhea.get_by_label("To version").fill("ranker-v41")
    rhea.get_by_label("Why (rationale)").fill("v42 trained on the shifted age mix; v41 held up last week")
    rhea.get_by_role("button", name="Propose decision").click()
    rhea.locator("#proposal-1").wait_for()
    assert "open: waiting for someone the runbook lets decide" in rhea.locator("#proposal-1").inner_text()
    assert rhea.locator("#proposal-1").get_by_role("button", name="Confirm as my decision").count() == 0
    shoot(rhea, "incident")
    no_sideways_scroll(rhea, "the incident page")

    # --- Lead: confirms the proposal as a rollback decision; the responder's open page refreshes by itself.
    lena = sign_in(browser, watch, server, "lena", timezone="Asia/Tokyo")
    lena.goto(f"/incidents/{number}")
    # Her browser is in Japan: pages show her times there, offset written out, and say so.
    assert "Times in Asia/Tokyo (your browser's)" in lena.locator("#page-time").inner_text()
    assert "+09:00" in lena.locator("#timeline").inner_text()
    lena.locator("#proposal-1").get_by_role("button", name="Confirm as my decision").click()
    lena.locator("#decision-1").wait_for()
    assert "rollback ranker ranker-v42 → ranker-v41" in lena.locator("#decision-1").inner_text()
    assert "proposed by rhea" in lena.locator("#decision-1").inner_text()
    assert "confirmed as decision 1 by lena" in lena.locator("#proposal-1").inner_text()
    rhea.locator("#decision-1").wait_for(timeout=15000)  # live refresh on the responder's page
    lena.get_by_role("button", name="Record execution now").click()
    lena.locator("#decision-1").get_by_text("executed by lena").wait_for()

    # --- Resolve with a note.
    rhea.get_by_label("Resolution note (optional)").fill("rolled back to v41; PSI back under 0.1")
    rhea.get_by_role("button", name="Resolve").click()
    rhea.wait_for_load_state()
    assert rhea.locator("#state").inner_text() == "resolved"

    # --- Postmortem: the responder generates the draft and submits it; a manager approves.
    rhea.get_by_role("button", name="Generate the postmortem draft").click()
    rhea.wait_for_url(f"**/incidents/{number}/postmortem")
    rhea.get_by_label("Root cause").fill("The weekly retrain picked up a **shifted** age mix.")
    # Text typed in another section is kept when one section's Save is pressed.
    rhea.get_by_label("What went well").fill("The drift alert fired within minutes.")
    rhea.get_by_role("button", name="Save Root cause").click()
    rhea.wait_for_load_state()
    assert "shifted" in rhea.locator("article.document").inner_text()
    assert "The drift alert fired within minutes." in rhea.locator("article.document").inner_text()
    assert rhea.get_by_label("What went well").input_value() == "The drift alert fired within minutes."
    assert rhea.get_by_role("button", name="Approve").count() == 0
    # Review needs the summary of impact and an action item first, and says so.
    assert "needs: Summary of impact, at least one action item" in rhea.locator("#missing").inner_text()
    rhea.get_by_label("Summary of impact").fill("Ranking served stale scores to 4 % of users for 40 minutes.")
    rhea.get_by_role("button", name="Save Summary of impact").click()
    rhea.wait_for_load_state()
    rhea.get_by_label("New action item").fill("Schema check in the feature pipeline")
    # A new action item is the incident owner's unless someone else is chosen.
    assert rhea.get_by_label("Owner").input_value() == "rhea"
    rhea.get_by_label("Due date").fill("2026-12-31")
    rhea.get_by_role("button", name="Add action item").click()
    rhea.wait_for_load_state()
    assert rhea.locator("#missing").count() == 0
    rhea.get_by_label("Reviewer").select_option("mara")
    rhea.get_by_role("button", name="Assign").click()
    rhea.wait_for_load_state()
    rhea.get_by_role("button", name="Submit for review").click()
    rhea.wait_for_load_state()
    assert rhea.locator("#review-state").inner_text() == "In review"
    assert "Reviewer: mara." in rhea.locator("#review").inner_text()
    assert "Approve needs the manager role or higher." in rhea.locator("#review").inner_text()

    mara = sign_in(browser, watch, server, "mara")
    mara.goto("/postmortems?state=in_review")
    mara.get_by_role("link", name=f"{ref} ").click()
    document = mara.locator("article.document").inner_text()
    assert "traffic mix unchanged" in document and "rollback" in document
    shoot(mara, "postmortem")
    no_sideways_scroll(mara, "the postmortem page")
    mara.get_by_role("button", name="Approve").click()
    mara.wait_for_load_state()
    assert mara.locator("#review-state").inner_text() == "Approved"
    assert "Approved by mara" in mara.locator("#review").inner_text()
    mara.get_by_role("button", name="Publish").click()
    mara.wait_for_load_state()
    assert mara.locator("#review-state").inner_text() == "Published"
    # The published, read-only postmortem still offers its Markdown.
    assert mara.get_by_role("link", name="Markdown").count() == 1

    # --- Lead: the week's handoff, read and acknowledged on behalf of rhea, on call as it ends.
    now = datetime.datetime.now(datetime.timezone.utc)
    week_end = (now - datetime.timedelta(days=now.weekday())).replace(hour=0, minute=0, second=0, microsecond=0) + datetime.timedelta(days=7)
    cover = cli(["rotations", "override", "ml-platform", "--user", "rhea", "--from", (week_end - datetime.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                 "--to", (week_end + datetime.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"), "--reason", "e2e"], db)
    assert cover.returncode == 0, cover.stderr
    lena.goto("/rotations")
    assert "ml-platform" in lena.locator("main").inner_text()
    no_sideways_scroll(lena, "the rotations page")
    lena.get_by_role("link", name="ml-platform").click()
    lena.get_by_label("ISO week, e.g. 2026-W47").fill(iso_week(datetime.datetime.now(datetime.timezone.utc)))
    lena.get_by_label("Note from the outgoing on-call").fill("Watch the ranker canary this week.")
    lena.get_by_role("button", name="Generate handoff").click()
    lena.wait_for_url("**/rotations/ml-platform/handoffs/*")
    handoff = lena.locator("article.document").inner_text()
    assert "Note from the outgoing on-call" in handoff and "Watch the ranker canary this week." in handoff
    assert "On-call load" in handoff and "Humane on-call is a leading indicator of burnout" in handoff
    assert ref in handoff, handoff
    assert f"{ref} decision 1: rollback of ranker ranker-v42 → ranker-v41 by lena" in handoff, handoff
    assert "Why: v42 trained on the shifted age mix" in handoff
    assert "traffic mix unchanged" in handoff
    with lena.expect_download() as download:
        lena.get_by_role("link", name="Download Markdown").click()
    assert ref in pathlib.Path(download.value.path()).read_text()
    shoot(lena, "handoff")
    no_sideways_scroll(lena, "the handoff page")
    # Only rhea acknowledges as the incoming on-call; lena may only act on her behalf, and says so.
    assert lena.get_by_role("button", name="Acknowledge as the incoming on-call").count() == 0
    lena.get_by_role("button", name="Acknowledge on behalf of rhea (as a lead)").click()
    lena.locator("#acknowledged").wait_for()
    assert "Acknowledged by lena on behalf of the incoming on-call, rhea" in lena.locator("#acknowledged").inner_text()

    # --- An XSS runbook renders inert; its page, like the others, fits a phone.
    lena.goto("/runbooks/xss-probe")
    body = lena.locator("article.runbook").inner_html()
    assert "<script" not in body and "onerror" not in body and "javascript:" not in body
    no_sideways_scroll(lena, "a runbook page")
    # --- Admin: a new integration key, shown once, works; the audit log has it; a new
    # person gets a one-time password.
    ada = sign_in(browser, watch, server, "ada")
    ada.get_by_role("link", name="Admin", exact=True).click()
    ada.wait_for_url("**/admin/users")
    ada.get_by_label("Username").fill("nils")
    ada.get_by_label("Display name").fill("Nils")
    ada.get_by_role("button", name="Add person").click()
    assert len(ada.locator("#secret").inner_text()) >= 12
    assert "Nils (nils)" in ada.locator("table").inner_text()
    shoot(ada, "admin-users")
    no_sideways_scroll(ada, "the people page")
    ada.get_by_role("link", name="Integration keys").click()
    ada.get_by_label("Name").fill("ui-made")
    ada.get_by_label("Kind").select_option("generic")
    ada.get_by_role("button", name="Create key").click()
    new_key = ada.locator("#secret").inner_text().strip()
    ada.goto("/admin/integrations")
    assert new_key not in ada.content() and "ui-made" in ada.locator("table").inner_text()  # shown once
    ada.get_by_role("link", name="Audit log").click()
    assert "ui-made" in ada.locator("table").inner_text() and "ada" in ada.locator("table").inner_text()
    no_sideways_scroll(ada, "the audit log")
    key = new_key

    probe = fire({"dedup_key": "xss-1", "alertname": "XssProbe", "labels": {"model": "x"}, "summary": "<img src=x onerror=alert(2)>"})
    lena.goto("/")
    lena.get_by_role("link", name=f"INC-{probe} ").click()
    assert "xss-probe" in lena.locator("#runbook").inner_text()
    assert "<img src=x onerror=alert(2)>" in lena.locator("#alerts").inner_text()
    step = lena.locator("#step-1 .step-body").inner_html()
    assert "javascript:" not in step, step

    # --- Every other page fits a phone and is accessible too (signed out: the sign-in page).
    for path in ["/incidents", "/postmortems", "/rotations/ml-platform", "/runbooks", "/runbooks/feature-drift",
                 "/admin/integrations", "/account/tokens"]:
        ada.goto(path)
        no_sideways_scroll(ada, path)
    signed_out = watch.attach(browser.new_context(base_url=server.url).new_page())
    signed_out.goto("/login")
    no_sideways_scroll(signed_out, "the sign-in page")

    # --- Error pages leak nothing and look like Handrail.
    watch.expect_status(server.url + "/incidents/99999")
    watch.expect_status(server.url + "/no/such/page")
    missing = lena.goto("/incidents/99999")
    assert missing.status == 404 and "no incident INC-99999" in lena.locator("main").inner_text()
    nowhere = lena.goto("/no/such/page")
    assert nowhere.status == 404 and "There is no page here." in lena.locator("main").inner_text()

    assert watch.problems == [], "\n".join(watch.problems)


def test_a_person_adds_an_email_address_confirms_it_sends_a_test_and_sees_it_delivered(empty_database, start_server, browser, mailbox):
    """The notifications page in a real browser, with msmtp and a local SMTP server behind it."""
    import re

    db = empty_database
    made = cli(["users", "create", "--username", "rhea", "--role", "responder", "--password-stdin"], db, stdin="rhea" + PASSWORD + "\n")
    assert made.returncode == 0, made.stderr
    server = start_server({"DATABASE_URL": db, "HANDRAIL_BCRYPT_COST": "4", "HANDRAIL_SENDMAIL": str(mailbox.sendmail)})
    server.wait_ready()
    watch = Watch()
    page = sign_in(browser, watch, server, "rhea")
    page.goto("/account/notifications")
    assert "Handrail cannot reach you" in page.content()
    page.get_by_label("Kind").select_option("email")
    page.get_by_label("Name").fill("work")
    page.get_by_label("Address or URL").fill("rhea@example.test")
    page.get_by_role("button", name="Add").click()
    assert "A code is on its way to rhea@example.test" in page.content()
    deadline = time.monotonic() + 20
    while not mailbox.messages and time.monotonic() < deadline:
        time.sleep(0.2)
    assert mailbox.messages, "the code was e-mailed"
    code = re.search(r"code: (\d{6})", mailbox.messages[0]["Subject"]).group(1)
    page.get_by_label("Code sent to rhea@example.test").fill(code)
    page.get_by_role("button", name="Confirm").click()
    page.get_by_role("button", name="Send a test").click()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        page.goto("/account/notifications")
        if "test: delivered" in page.locator("#contact-methods").inner_text():
            break
        time.sleep(0.5)
    assert "test: delivered" in page.locator("#contact-methods").inner_text()
    assert mailbox.messages[-1]["Subject"] == "[Handrail] Handrail test message for rhea"
    no_sideways_scroll(page, "the notifications page")
    assert watch.problems == []


def test_a_lead_sets_the_rotations_escalation_and_is_told_why_a_channel_is_refused(empty_database, start_server, browser):
    db = empty_database
    for name, role in [("rhea", "responder"), ("lena", "lead")]:
        made = cli(["users", "create", "--username", name, "--role", role, "--password-stdin"], db, stdin=name + PASSWORD + "\n")
        assert made.returncode == 0, made.stderr
    made = cli(["rotations", "create", "ml-platform", "--members", "rhea,lena", "--time-zone", "UTC", "--start-date", "2026-01-05"], db)
    assert made.returncode == 0, made.stderr
    server = start_server({"DATABASE_URL": db, "HANDRAIL_BCRYPT_COST": "4"})
    server.wait_ready()
    watch = Watch()
    page = sign_in(browser, watch, server, "lena")
    page.goto("/rotations/ml-platform")
    assert page.locator("#escalation").inner_text().strip() == "after 0 min: on_call"
    page.get_by_label("Steps, one a line").fill("0 on_call\n10 user rhea")
    page.get_by_label("Remind the owner every").fill("30")
    page.get_by_role("button", name="Save escalation").click()
    assert page.locator("#escalation").inner_text().splitlines() == ["after 0 min: on_call", "after 10 min: user rhea"]
    assert "every 30 min" in page.content()
    # No allow-list: a webhook on this machine is refused, and the page says why.
    watch.expect_status(server.url + "/rotations/ml-platform/channels")
    page.get_by_label("Channel name").fill("#ml")
    page.get_by_label("Webhook URL").fill("http://127.0.0.1:9/hooks/x")
    page.get_by_role("button", name="Add channel").click()
    assert "loopback" in page.locator(".error").inner_text()
    no_sideways_scroll(page, "the rotation page with its settings")
    assert watch.problems == []
    rhea = sign_in(browser, watch, server, "rhea")
    rhea.goto("/rotations/ml-platform")
    assert rhea.get_by_role("button", name="Save escalation").count() == 0, "only leads edit the chain"


def test_an_open_incident_page_patches_in_new_entries_and_alerts_and_reloads_for_the_rest(empty_database, start_server, browser):
    """Live refresh of an incident page in a real browser: a joining alert arrives without a
    reload (only GET /incidents/N/updates); an acknowledgement made elsewhere reloads it."""
    db = empty_database
    made = cli(["users", "create", "--username", "rhea", "--role", "responder", "--password-stdin"], db, stdin="rhea" + PASSWORD + "\n")
    assert made.returncode == 0, made.stderr
    key = cli(["integrations", "create", "--name", "e2e-generic", "--kind", "generic"], db).stdout.strip()
    server = start_server({"DATABASE_URL": db, "HANDRAIL_BCRYPT_COST": "4"})
    server.wait_ready()
    watch = Watch()

    def fire(dedup, feature):
        sent = requests.post(server.url + "/api/v1/alerts/generic", headers={"Authorization": f"Bearer {key}"}, timeout=10,
                             json={"dedup_key": dedup, "alertname": "FeatureDriftHigh", "labels": {"model": "ranker", "feature": feature}})
        assert sent.status_code == 200, sent.text
        return sent.json()["alerts"][0]["incident_number"]

    number = fire("drift-age", "age")
    page = sign_in(browser, watch, server, "rhea")
    page.goto(f"/incidents/{number}")
    page.evaluate("window.stayed = true")
    wait_until_live(db)
    assert fire("drift-country", "country") == number
    page.locator("#alerts", has_text="feature=country").wait_for(timeout=15000)
    assert "Alerts (2)" in page.locator("#alerts").inner_text()
    assert "country" in page.locator("#timeline").inner_text()
    assert page.evaluate("window.stayed === true"), "the incident page reloaded instead of patching"
    # What the page cannot patch (its state, its actions): a reload shows it.
    other = sign_in(browser, watch, server, "rhea")
    other.goto(f"/incidents/{number}")
    other.get_by_role("button", name="Acknowledge").click()
    other.wait_for_load_state()
    page.locator("#state", has_text="acknowledged").wait_for(timeout=15000)
    assert page.evaluate("window.stayed === undefined"), "the page reloaded"
    assert watch.problems == [], "\n".join(watch.problems)


def test_a_lead_decides_a_waiting_rollout_in_the_browser(empty_database, start_server, browser):
    db = empty_database
    for name, role in [("rhea", "responder"), ("lena", "lead")]:
        made = cli(["users", "create", "--username", name, "--role", role, "--password-stdin"], db, stdin=name + PASSWORD + "\n")
        assert made.returncode == 0, made.stderr
    assert cli(["runbooks", "sync", str(ROOT / "runbooks")], db).returncode == 0
    key = cli(["integrations", "create", "--name", "flagger-prod", "--kind", "canary"], db).stdout.strip()
    server = start_server({"DATABASE_URL": db, "HANDRAIL_BCRYPT_COST": "4"})
    server.wait_ready()
    hook = {"name": "ranker", "namespace": "model-serving", "phase": "Progressing", "checksum": "6d5f8c7b9",
            "metadata": {"runbook": "feature-drift", "error_rate_ratio": "1.04", "p99_latency_ratio": "1.10"}}

    def ask():
        return requests.post(f"{server.url}/api/v1/flagger/confirm-promotion?key={key}", json=hook, timeout=10).status_code
    assert ask() == 409
    watch = Watch()
    # A responder sees the rollout and why they cannot decide it (feature-drift: leads and up).
    rhea = sign_in(browser, watch, server, "rhea")
    rhea.get_by_role("link", name="model-serving/ranker").click()
    assert "You cannot decide here: lead, manager, admin" in rhea.content()
    assert rhea.locator("#decision-form").count() == 0
    lena = sign_in(browser, watch, server, "lena")
    assert lena.get_by_role("heading", name="Rollouts waiting for a decision").is_visible()
    lena.get_by_role("link", name="model-serving/ranker").click()
    assert lena.locator("#guards").inner_text().count("error_rate_ratio") == 1
    no_sideways_scroll(lena, "the gate page")
    lena.get_by_label("Go: let it promote the canary").check()
    lena.get_by_label("Why (required)").fill("error rate within 5% of baseline for 2 h")
    lena.get_by_role("button", name="Record decision").click()
    assert "Go: the controller is told it may promote the canary." in lena.locator("#answer").inner_text()
    assert "go by lena" in lena.locator("#decisions").inner_text()
    assert ask() == 200
    lena.goto("/")
    assert lena.get_by_role("heading", name="Rollouts waiting for a decision").count() == 0
    assert watch.problems == []
