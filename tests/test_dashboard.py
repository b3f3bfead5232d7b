"""The usage dashboard at /admin/: sign-in, the overview page, its chart geometry, and one run
in a real headless Chromium against real gunicorn."""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import uuid
from datetime import datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from switchboard import create_app
from switchboard.admin import charts
from switchboard.ledger.call import Call, CallEnd
from switchboard.ledger.usage import Usage
from switchboard.tables import utcnow

from tests.conftest import ADMIN_KEY, ROOT, read_calls, start_server, stop_server, wait_for
from tests.helpers import openai_sdk

COOKIE = "switchboard_dashboard"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


# ---- helpers ----------------------------------------------------------------------------


class Page(HTMLParser):
    """The elements of an HTML page as (tag, attributes, id of the enclosing <svg>)."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None], str | None]] = []
        self._svg: str | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "svg":
            self._svg = found.get("id")
        self.elements.append((tag, found, self._svg))

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg":
            self._svg = None

    def bars(self, svg_id: str) -> list[dict[str, Any]]:
        return [
            a for tag, a, svg in self.elements
            if tag == "rect" and svg == svg_id and a.get("class") == "bar"
        ]  # fmt: skip


def text_of(html: str, element_id: str) -> str:
    match = re.search(rf'id="{element_id}">([^<]*)<', html)
    assert match, f"no element {element_id}"
    return match.group(1).strip()


def table_rows(html: str, table_id: str) -> list[str]:
    start = html.index(f'id="{table_id}"')
    body = html[start : html.index("</table>", start)]
    return re.findall(r"<tr>(.*?)</tr>", body, re.S)[1:]  # without the header row


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token in the form"
    return match.group(1)


def sign_in(client: Any, key: str = ADMIN_KEY) -> Any:
    """Open the login form and post `key` with the form's CSRF token."""
    form = client.get("/admin/login")
    return client.post("/admin/login", data={"csrf_token": csrf_of(form.text), "admin_key": key})


def record(
    app: Any,
    created_at: datetime,
    model: str,
    key_name: str,
    user: str | None,
    tokens: int | None,
    cost: float | None,
    latency_ms: int,
    outcome: str = "ok",
    status: int = 200,
) -> None:
    """One finished call written through the app's own ledger."""
    call = Call(
        endpoint="/v1/chat/completions", created_at=created_at, model=model, key_name=key_name,
        key_id="k-" + key_name[:20], user=user, provider="fake",
    )  # fmt: skip
    usage = (
        Usage(tokens // 2, tokens - tokens // 2, tokens, source="upstream") if tokens else Usage()
    )
    with app.app_context():
        app.extensions["switchboard"].ledger.finish(
            call, CallEnd(outcome, status, usage, cost_usd=cost, latency_ms=latency_ms)
        )


def day(when: datetime) -> str:
    return when.strftime("%Y-%m-%d")


# ---- fixtures ---------------------------------------------------------------------------


@pytest.fixture
def dash(admin_app: Any) -> Any:
    """A test client of `admin_app`, not signed in."""
    return admin_app.test_client()


@pytest.fixture
def signed_in(dash: Any) -> Any:
    """A test client of `admin_app` signed in to the dashboard."""
    assert sign_in(dash).status_code == 303
    return dash


@pytest.fixture
def seeded(admin_app: Any) -> dict[str, Any]:
    """Five calls over three days, two models, two keys (one call failed); the expectations."""
    now = utcnow().replace(microsecond=0)
    d2, d1, d0 = now - timedelta(days=2), now - timedelta(days=1), now - timedelta(minutes=5)
    record(admin_app, d2, "gpt-4o", "alice-laptop", "alice", 3000, 0.30, 10)
    record(admin_app, d2 + timedelta(seconds=1), "gpt-4o-mini", "bob-ci", "bob", 1000, 0.10, 20)
    record(admin_app, d1, "gpt-4o", "alice-laptop", "alice", 2000, 0.20, 30)
    record(admin_app, d0, "gpt-4o-mini", "bob-ci", "bob", 500, 0.05, 40)
    record(admin_app, d0 + timedelta(seconds=1), "gpt-4o-mini", "bob-ci", "bob", None, None, 50,
           outcome="upstream_error", status=502)  # fmt: skip
    cost = {
        (day(d2), "gpt-4o"): 0.30, (day(d2), "gpt-4o-mini"): 0.10,
        (day(d1), "gpt-4o"): 0.20, (day(d0), "gpt-4o-mini"): 0.05,
    }  # fmt: skip
    tokens = {
        (day(d2), "gpt-4o"): 3000, (day(d2), "gpt-4o-mini"): 1000,
        (day(d1), "gpt-4o"): 2000, (day(d0), "gpt-4o-mini"): 500,
    }  # fmt: skip
    return {"cost": cost, "tokens": tokens}


# ---- sign-in ----------------------------------------------------------------------------


def test_dashboard_is_closed_without_an_admin_key(client):
    for resp in (client.get("/admin/"), client.get("/admin/login"),
                 client.post("/admin/login", data={"admin_key": ""})):  # fmt: skip
        assert resp.status_code == 403
        assert "The dashboard is closed" in resp.text
        assert "<form" not in resp.text


def test_signed_out_pages_redirect_to_the_login_form(dash):
    for resp in (dash.get("/admin/?since=7d"), dash.post("/admin/logout")):
        assert resp.status_code == 303
        assert resp.headers["Location"] == "/admin/login"
    form = dash.get("/admin/login")
    assert form.status_code == 200
    assert 'name="admin_key"' in form.text and 'type="password"' in form.text


def test_the_json_admin_api_still_wants_its_bearer_token(signed_in):
    # A signed-in browser session is no admin API credential.
    assert signed_in.get("/admin/keys").status_code == 401


def test_a_wrong_key_gets_the_form_again_with_401(dash):
    wrong = "adm-wrong-" + uuid.uuid4().hex
    resp = sign_in(dash, wrong)
    assert resp.status_code == 401
    assert "That is not the admin key." in resp.text
    assert 'name="admin_key"' in resp.text
    assert wrong not in resp.text and ADMIN_KEY not in resp.text
    assert dash.get("/admin/").status_code == 303  # still signed out


def test_sign_in_without_the_forms_csrf_token_is_refused(dash):
    dash.get("/admin/login")
    resp = dash.post("/admin/login", data={"csrf_token": "forged", "admin_key": ADMIN_KEY})
    assert resp.status_code == 400
    assert dash.get("/admin/").status_code == 303


def test_sign_in_sets_a_hardened_session_cookie_without_the_key(dash, admin_app):
    resp = sign_in(dash)
    assert resp.status_code == 303 and resp.headers["Location"] == "/admin/"
    cookie = dash.get_cookie(COOKIE, path="/admin")
    assert cookie is not None
    assert cookie.http_only and cookie.same_site == "Lax" and cookie.path == "/admin"
    stored = admin_app.session_interface.get_signing_serializer(admin_app).loads(cookie.value)
    assert set(stored) == {"signed_in", "fp", "csrf"} and stored["signed_in"] is True
    assert ADMIN_KEY not in cookie.value and ADMIN_KEY not in str(stored)
    assert dash.get("/admin/").status_code == 200


def test_every_worker_with_the_admin_key_accepts_the_session_and_a_new_key_does_not(
    settings, signed_in
):
    cookie = signed_in.get_cookie(COOKIE, path="/admin")
    same = create_app(dataclasses.replace(settings, admin_key=ADMIN_KEY))
    rotated = create_app(dataclasses.replace(settings, admin_key=ADMIN_KEY + "-rotated"))
    try:
        assert same.secret_key and same.secret_key != ADMIN_KEY
        for app, status in ((same, 200), (rotated, 303)):
            other = app.test_client()
            other.set_cookie(COOKIE, cookie.value, path="/admin")
            assert other.get("/admin/").status_code == status
    finally:
        same.extensions["switchboard"].close()
        rotated.extensions["switchboard"].close()


def test_logout_needs_the_csrf_token_and_clears_the_session(signed_in):
    page = signed_in.get("/admin/")
    assert signed_in.post("/admin/logout", data={"csrf_token": "forged"}).status_code == 400
    assert signed_in.get("/admin/").status_code == 200  # still signed in
    resp = signed_in.post("/admin/logout", data={"csrf_token": csrf_of(page.text)})
    assert resp.status_code == 303 and resp.headers["Location"] == "/admin/login"
    assert signed_in.get("/admin/").status_code == 303


# ---- the overview -----------------------------------------------------------------------


def test_the_chart_has_one_bar_per_day_and_model_proportional_to_cost(signed_in, seeded):
    resp = signed_in.get("/admin/?since=7d")
    assert resp.status_code == 200
    page = Page(resp.text)
    for chart, expected in (("chart-cost", seeded["cost"]), ("chart-tokens", seeded["tokens"])):
        bars = page.bars(chart)
        assert {(b["data-day"], b["data-model"]): float(b["data-value"]) for b in bars} == (
            pytest.approx(expected)
        )
        per_unit = {float(b["height"]) / float(b["data-value"]) for b in bars}
        assert max(per_unit) - min(per_unit) < 0.01 * max(per_unit), chart
    # The two models of the oldest day are stacked: one's top is the other's bottom.
    oldest = min(d for d, _ in seeded["cost"])
    low, high = sorted(
        (b for b in page.bars("chart-cost") if b["data-day"] == oldest),
        key=lambda b: -float(b["y"]),
    )
    assert low["x"] == high["x"]
    assert float(high["y"]) + float(high["height"]) == pytest.approx(float(low["y"]), abs=0.02)
    assert {b["fill"] for b in page.bars("chart-cost")} == {
        charts.PALETTE[0],
        charts.PALETTE[1],
    }  # one colour per model, the costliest first


def test_the_overview_shows_totals_top_lists_and_recent_calls(signed_in, seeded):
    html = signed_in.get("/admin/?since=7d").text
    assert text_of(html, "total-requests") == "5"
    assert text_of(html, "total-errors") == "1"
    assert text_of(html, "total-error-rate") == "20.0%"
    assert text_of(html, "total-cost") == "$0.65"
    assert text_of(html, "total-tokens") == "6.5k"
    assert (text_of(html, "total-p50"), text_of(html, "total-p95")) == ("30 ms", "50 ms")
    keys = table_rows(html, "top-keys")
    assert [re.search(r"<td>([^<]*)</td>", r).group(1) for r in keys] == ["alice-laptop", "bob-ci"]
    assert "$0.50" in keys[0] and "$0.15" in keys[1]
    users = table_rows(html, "top-users")
    assert "alice" in users[0] and "bob" in users[1]
    calls = table_rows(html, "calls")
    assert len(calls) == 5
    assert "upstream_error" in calls[0] and "502" in calls[0]  # newest first
    assert "gpt-4o" in calls[-1] and "$0.30" in calls[-1]


def test_the_outcome_filter_narrows_the_recent_calls_only(signed_in, seeded):
    html = signed_in.get("/admin/?since=7d&outcome=upstream_error").text
    calls = table_rows(html, "calls")
    assert len(calls) == 1 and "upstream_error" in calls[0]
    assert text_of(html, "total-requests") == "5"
    assert 'value="upstream_error" selected' in html


def test_key_and_model_filters_scope_the_whole_page(signed_in, seeded):
    html = signed_in.get("/admin/?since=7d&key=alice-laptop&model=gpt-4o").text
    assert text_of(html, "total-requests") == "2"
    assert text_of(html, "total-cost") == "$0.50"
    assert {b["data-model"] for b in Page(html).bars("chart-cost")} == {"gpt-4o"}
    assert len(table_rows(html, "calls")) == 2


def test_a_period_without_calls_shows_empty_charts(signed_in, seeded):
    html = signed_in.get("/admin/?since=2001-01-01&until=2001-01-31").text
    assert text_of(html, "total-requests") == "0"
    assert text_of(html, "total-error-rate") == "0.0%"
    assert Page(html).bars("chart-cost") == []
    assert "No calls in this period." in html and "No calls match." in html


def test_a_bad_since_is_a_400_with_the_reason(signed_in):
    resp = signed_in.get("/admin/?since=garbage")
    assert resp.status_code == 400
    assert "not a date" in resp.text and "garbage" in resp.text
    assert 'id="filters"' in resp.text  # the form is there to correct it
    assert 'name="since" value="garbage"' in resp.text


def test_names_from_the_ledger_and_the_query_are_escaped(admin_app, signed_in):
    evil = "<script>alert(1)</script>"
    record(admin_app, utcnow(), "<img src=x onerror=alert(2)>", evil, evil, 10, 0.01, 5)
    html = signed_in.get("/admin/?since=7d").text
    assert "<script" not in html and "<img" not in html
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 3  # top keys, users, calls
    assert "&lt;img src=x onerror=alert(2)&gt;" in html  # legend, tooltips, calls
    resp = signed_in.get("/admin/", query_string={"model": '"><script>x</script>'})
    assert resp.status_code == 200 and "<script" not in resp.text
    assert 'value="&#34;&gt;&lt;script&gt;x&lt;/script&gt;"' in resp.text


def test_pages_forbid_scripts_and_never_show_the_admin_key(signed_in, seeded):
    resp = signed_in.get("/admin/?since=7d")
    csp = resp.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp
    assert resp.headers["Cache-Control"] == "no-store"
    assert ADMIN_KEY not in resp.text and "<script" not in resp.text


# ---- chart geometry ---------------------------------------------------------------------


def rows(*items: tuple[str, str, float]) -> list[dict[str, Any]]:
    return [
        {"day": d, "model": m, "cost_usd": v, "total_tokens": int(v * 1000)} for d, m, v in items
    ]


def test_bar_heights_are_proportional_and_stacks_share_a_column():
    data = rows(("2026-01-01", "a", 3.0), ("2026-01-01", "b", 1.0), ("2026-01-02", "a", 2.0))
    chart = charts.stacked_bars(data, "cost_usd", charts.model_colours(data))
    plot_h = chart.bottom - chart.top
    bars = {(b.day, b.model): b for b in chart.bars}
    assert len(chart.bars) == 3
    # The tallest stack (4) sits under a nice axis top of 5.
    assert bars[("2026-01-01", "a")].height == pytest.approx(3 / 5 * plot_h, abs=0.01)
    assert bars[("2026-01-01", "b")].height == pytest.approx(1 / 5 * plot_h, abs=0.01)
    assert bars[("2026-01-02", "a")].height == pytest.approx(2 / 5 * plot_h, abs=0.01)
    a, b = bars[("2026-01-01", "a")], bars[("2026-01-01", "b")]
    assert a.x == b.x and a.y + a.height == pytest.approx(chart.bottom)  # "a" at the bottom
    assert b.y + b.height == pytest.approx(a.y, abs=0.02)
    assert bars[("2026-01-02", "a")].x > a.x
    assert chart.ticks[-1].label == "5" and chart.ticks[-1].y == chart.top
    assert chart.legend == [("a", charts.PALETTE[0]), ("b", charts.PALETTE[1])]


def test_days_without_calls_keep_their_slot():
    data = rows(("2026-01-01", "a", 1.0), ("2026-01-04", "a", 1.0))
    chart = charts.stacked_bars(data, "cost_usd", charts.model_colours(data))
    assert [d.label for d in chart.day_labels] == ["01-01", "01-02", "01-03", "01-04"]
    first, last = chart.bars
    slot = (chart.right - chart.left) / 4
    assert last.x - first.x == pytest.approx(3 * slot, abs=0.02)


def test_zero_values_draw_no_bar_and_no_legend_entry():
    data = rows(("2026-01-01", "paid", 1.0), ("2026-01-01", "rejected", 0.0))
    chart = charts.stacked_bars(data, "cost_usd", charts.model_colours(data))
    assert [(b.model, b.value) for b in chart.bars] == [("paid", 1.0)]
    assert [name for name, _ in chart.legend] == ["paid"]


def test_no_rows_make_an_empty_chart():
    chart = charts.stacked_bars([], "cost_usd", charts.model_colours([]))
    assert chart.empty and chart.bars == [] and chart.legend == [] and chart.day_labels == []
    assert charts.day_range([]) == []


def test_models_beyond_the_palette_share_one_other_bar():
    data = rows(*[("2026-01-01", f"m{i:02d}", 20.0 - i) for i in range(12)])
    colours = charts.model_colours(data)
    chart = charts.stacked_bars(data, "cost_usd", colours)
    kept = len(charts.PALETTE) - 1
    assert len(chart.bars) == kept + 1
    other = next(b for b in chart.bars if b.model == charts.OTHER)
    assert other.value == pytest.approx(sum(20.0 - i for i in range(kept, 12)))
    assert other.colour == charts.OTHER_COLOUR
    assert chart.legend[-1] == (charts.OTHER, charts.OTHER_COLOUR)
    assert chart.legend[0] == ("m00", charts.PALETTE[0])  # the costliest model first


@pytest.mark.parametrize(
    ("value", "ceiling"),
    [
        (0, 1.0),
        (0.3, 0.5),
        (0.4, 0.5),
        (1, 1.0),
        (1.01, 2.0),
        (2.2, 2.5),
        (7, 10.0),
        (6500, 10000.0),
    ],
)
def test_nice_ceiling(value, ceiling):
    assert charts.nice_ceiling(value) == pytest.approx(ceiling)


def test_top_by_cost_orders_names_and_cuts():
    data = [
        {"key": "cheap", "requests": 9, "cost_usd": 0.1},
        {"key": None, "requests": 1, "cost_usd": 0.0},
        {"key": "dear", "requests": 1, "cost_usd": 5.0},
    ]
    assert [r["name"] for r in charts.top_by_cost(data, "key")] == ["dear", "cheap", "(no key)"]
    assert len(charts.top_by_cost(data * 10, "key", 10)) == 10


def test_totals_from_the_totals_row_or_summed_from_groups():
    row = {"requests": 8, "errors": 2, "total_tokens": 100, "cost_usd": 1.5,
           "latency_p50_ms": 12, "latency_p95_ms": 90}  # fmt: skip
    assert charts.totals(row, []) == row | {"error_rate": 25.0}
    groups = [{"requests": 3, "errors": 0, "total_tokens": 30, "cost_usd": 0.5},
              {"requests": 1, "errors": 1, "total_tokens": None, "cost_usd": None}]  # fmt: skip
    summed = charts.totals(None, groups)
    assert (summed["requests"], summed["errors"], summed["error_rate"]) == (4, 1, 25.0)
    assert (summed["total_tokens"], summed["cost_usd"], summed["latency_p50_ms"]) == (30, 0.5, None)
    assert charts.totals(None, [])["error_rate"] == 0.0


@pytest.mark.parametrize(
    ("fmt", "value", "text"),
    [
        (charts.usd, None, "-"), (charts.usd, 0, "$0"), (charts.usd, 0.00123, "$0.00123"),
        (charts.usd, 0.0000625, "$0.0000625"), (charts.usd, 0.00024347, "$0.0002435"),
        (charts.usd, 0.65, "$0.65"), (charts.usd, 0.5, "$0.50"), (charts.usd, 0.12345, "$0.1235"),
        (charts.usd, 1234.5, "$1,234.50"),
        (charts.count, 950, "950"), (charts.count, 6500, "6.5k"), (charts.count, 4_500_000, "4.5M"),
        (charts.ms, 30, "30 ms"), (charts.ms, 2400, "2.4 s"), (charts.ms, None, "-"),
    ],
)  # fmt: skip
def test_number_formats(fmt, value, text):
    assert fmt(value) == text


# ---- a real browser ---------------------------------------------------------------------


def browser_or_skip() -> None:
    """Chromium and chromedriver must be there in CI; elsewhere their absence skips."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not shutil.which(p)]
    try:
        import selenium  # noqa: F401 - only whether it is installed
    except ImportError:
        missing.append("the selenium package")
    if not missing:
        return
    reason = f"browser test needs {', '.join(missing)} (.ci/run installs them)"
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture
def browser() -> Any:
    """A headless Chromium driven by the system chromedriver (never selenium-manager)."""
    browser_or_skip()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,1000"):  # fmt: skip
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(20)
    try:
        yield driver
    finally:
        driver.quit()


def artifacts_dir() -> Path:
    path = Path(os.environ.get("SWITCHBOARD_TEST_ARTIFACTS") or ROOT / "test-artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.mark.integration
def test_sign_in_and_see_the_chart_in_chromium(browser, upstream, databases, tmp_path):
    import openai
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    srv = start_server(
        tmp_path, upstream.base_url, databases.fresh("dash"),
        extra_env={"SWITCHBOARD_ADMIN_KEY": ADMIN_KEY},
    )  # fmt: skip
    try:
        created = srv.cli("keys", "create", "--name", "browser-key", "--user", "carol")
        assert created.returncode == 0, created.stderr
        client = openai_sdk(srv.base_url + "/v1", created.stdout.strip().splitlines()[-1])
        hello = [{"role": "user", "content": "Hello dashboard"}]
        for model in ("gpt-4o-mini", "gpt-4o-mini", "gpt-4o", "detailed"):
            client.chat.completions.create(model=model, messages=hello)
        for chunk in client.chat.completions.create(model="gpt-4o", messages=hello, stream=True):
            assert chunk is not None
        with pytest.raises(openai.APIStatusError):
            client.chat.completions.create(model="broken", messages=hello)
        client.close()

        def all_ended() -> bool:
            ledger = read_calls(srv.database_url)
            return len(ledger) == 6 and all(r["outcome"] != "in_progress" for r in ledger)

        assert wait_for(all_ended, timeout=10), read_calls(srv.database_url)

        wait = WebDriverWait(browser, 20)
        browser.get(srv.base_url + "/admin/")
        wait.until(ec.url_contains("/admin/login"))
        field = wait.until(ec.presence_of_element_located((By.ID, "admin_key")))
        field.send_keys(ADMIN_KEY)
        browser.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "svg#chart-cost rect.bar")))
        assert browser.current_url.rstrip("/").endswith("/admin")

        bars = browser.find_elements(By.CSS_SELECTOR, "svg#chart-cost rect.bar")
        assert {b.get_attribute("data-model") for b in bars} == {
            "gpt-4o-mini",
            "gpt-4o",
            "detailed",
        }
        assert any(b.size["width"] > 0 and b.size["height"] > 0 for b in bars)
        chart = browser.find_element(By.ID, "chart-cost")
        assert chart.size["width"] > 400 and chart.size["height"] > 100
        assert browser.find_element(By.ID, "total-requests").text == "6"
        assert browser.find_element(By.ID, "total-errors").text == "1"
        assert len(browser.find_elements(By.CSS_SELECTOR, "#calls tbody tr")) == 6
        assert ADMIN_KEY not in browser.page_source

        shot = artifacts_dir() / "dashboard.png"
        shot.unlink(missing_ok=True)
        assert browser.save_screenshot(str(shot))
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert shot.stat().st_size > 10_000

        browser.find_element(By.ID, "logout").click()
        wait.until(ec.url_contains("/admin/login"))
        browser.get(srv.base_url + "/admin/")
        wait.until(ec.url_contains("/admin/login"))
        assert ADMIN_KEY not in srv.log()
    finally:
        stop_server(srv)


def test_api_requests_open_no_session(admin_app):
    interface = admin_app.session_interface
    cookie = {"Cookie": "switchboard_dashboard=x"}
    with admin_app.test_request_context("/v1/models", headers=cookie) as ctx:
        assert interface.is_null_session(interface.open_session(admin_app, ctx.request))
    with admin_app.test_request_context("/admin/", headers=cookie) as ctx:
        assert not interface.is_null_session(interface.open_session(admin_app, ctx.request))
