"""The operations dashboard (`/dashboard`): who may see it, what each page shows, the
replay button, and the whole thing in a real browser with no internet.

Chromium is Debian's (`.ci/run` installs it), driven by Playwright, as in
tests/test_schema_offline.py: every request that is not to the host is refused."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import SimpleNamespace

import httpx
from mmo_host import db
from mmo_host.dashboard import access
from playwright.async_api import async_playwright

from tests import fake_provider
from tests.conftest import API_KEY, OTHER_KEY
from tests.test_schema_offline import chromium
from tests.test_webhooks import create_fake_payment, fake_url, post

ARTIFACTS = Path(__file__).parents[1] / "test-artifacts"
NUMBER = "+255712345678"  # create_fake_payment's number


def browserless(host) -> httpx.AsyncClient:
    """A client of the host with no API key and no cookie, that follows no redirect."""
    return httpx.AsyncClient(base_url=host.url, timeout=20, follow_redirects=False)


@asynccontextmanager
async def logged_in(host) -> AsyncIterator[httpx.AsyncClient]:
    async with browserless(host) as client:
        response = await client.post("/dashboard/login", data={"key": API_KEY})
        assert response.status_code == 303 and response.headers["location"] == "/dashboard"
        client.cookies.set(access.COOKIE, response.cookies[access.COOKIE])
        yield client


# -- who may see it ------------------------------------------------------------------------


async def test_without_a_cookie_every_page_sends_you_to_the_login_page(host):
    async with browserless(host) as client:
        for path in ("/dashboard", "/dashboard/payments", "/dashboard/callbacks"):
            response = await client.get(path)
            assert response.status_code == 303, path
            assert response.headers["location"] == "/dashboard/login"
        response = await client.post(f"/dashboard/callbacks/{uuid.uuid4()}/replay")
        assert response.status_code == 303
        login = await client.get("/dashboard/login")
        assert login.status_code == 200 and 'name="key"' in login.text
        assert "default-src 'self'" in login.headers["content-security-policy"]


async def test_a_bad_key_is_refused_and_a_stale_cookie_forgotten(host):
    async with browserless(host) as client:
        response = await client.post(
            "/dashboard/login", data={"key": "sk_test_not_a_key_at_all_0000"}
        )
        assert response.status_code == 401
        assert "not known, revoked or expired" in response.text
        assert access.COOKIE not in response.cookies

        client.cookies.set(access.COOKIE, "sk_test_revoked_long_ago_000000")
        response = await client.get("/dashboard")
        assert response.status_code == 303
        assert response.headers["location"] == "/dashboard/login?expired=1"
        assert re.search(r"mmo_dashboard=\"?\"?;.*Max-Age=0", response.headers["set-cookie"])


async def test_a_payments_key_is_refused_saying_so(host):
    async with browserless(host) as client:
        response = await client.post("/dashboard/login", data={"key": OTHER_KEY})
        assert response.status_code == 403
        assert "no admin scope" in response.text
        assert access.COOKIE not in response.cookies
        # nor does it work as a cookie set by hand
        client.cookies.set(access.COOKIE, OTHER_KEY)
        response = await client.get("/dashboard/payments")
        assert response.status_code == 403 and "no admin scope" in response.text


async def test_the_key_is_kept_in_a_strict_http_only_cookie_and_logout_drops_it(host):
    async with browserless(host) as client:
        response = await client.post("/dashboard/login", data={"key": API_KEY})
        cookie = response.headers["set-cookie"]
        assert (
            "HttpOnly" in cookie
            and "samesite=strict" in cookie.lower()
            and "Path=/dashboard" in cookie
        )
        assert "Secure" not in cookie  # the suite's public URL is http
        client.cookies.set(access.COOKIE, response.cookies[access.COOKIE])
        assert (await client.get("/dashboard")).status_code == 200

        response = await client.post("/dashboard/logout")
        assert response.status_code == 303 and response.headers["location"] == "/dashboard/login"
        assert "Max-Age=0" in response.headers["set-cookie"]


def test_the_cookie_is_secure_behind_an_https_public_url():
    config = SimpleNamespace(base_public_url="https://gateway.example.org")
    connection = SimpleNamespace(
        app=SimpleNamespace(state=SimpleNamespace(gateway=SimpleNamespace(config=config)))
    )
    cookie = access.session_cookie(connection, API_KEY)
    assert cookie.secure is True and cookie.httponly is True and cookie.samesite == "strict"


async def test_a_form_posted_from_another_site_is_refused(api, host):
    async with logged_in(host) as client:
        response = await client.post(
            f"/dashboard/callbacks/{uuid.uuid4()}/replay",
            headers={"Origin": "https://attacker.example"},
        )
        assert response.status_code == 403 and "another site" in response.text
        response = await client.post(
            f"/dashboard/callbacks/{uuid.uuid4()}/replay", headers={"Origin": host.url}
        )
        assert response.status_code == 404  # through the check: no such callback


# -- the pages ---------------------------------------------------------------------------


async def test_the_overview_lists_every_account_and_charts_the_hour(api, host):
    payment = await create_fake_payment(api)
    async with logged_in(host) as client:
        response = await client.get("/dashboard")
    assert response.status_code == 200
    page = response.text
    for name, accounts in host.gateway.accounts.items():
        for account in accounts:
            assert f'data-provider="{name}" data-account="{account}"' in page
    assert 'id="attention-count">0<' in page
    data = json.loads(re.search(r'id="chart-data">(.*?)</script>', page, re.S).group(1))
    assert set(data) == {"payments", "success", "latency"}
    payments = {s["label"]: s["values"] for s in data["payments"]["series"]}
    assert len(data["payments"]["x"]) == 12 and sum(payments["fake"]) == 1
    assert payment["provider"] == "fake"
    # the fake payment is pending: in the count, not in the success rate
    assert all(
        v is None for v in {s["label"]: s["values"] for s in data["success"]["series"]}["fake"]
    )


async def test_search_finds_a_payment_by_id_reference_and_number_and_masks_numbers(api, host):
    payment = await create_fake_payment(api)
    other = await create_fake_payment(api, msisdn="+255712345699")
    async with logged_in(host) as client:
        for query in (payment["id"], NUMBER, NUMBER.lstrip("+")):
            page = (await client.get("/dashboard/payments", params={"q": query})).text
            assert f'data-id="{payment["id"]}"' in page, query
            assert f'data-id="{other["id"]}"' not in page, query
        page = (await client.get("/dashboard/payments", params={"q": "F-1"})).text
        assert page.count('<tr data-id="') == 2  # both have the reference F-1
        assert NUMBER not in page and "+255*******78" in page
        page = (await client.get("/dashboard/payments", params={"q": "no-such-ref"})).text
        assert '<tr data-id="' not in page and "No payment." in page
        response = await client.get("/dashboard/payments", params={"q": "bad\x01text"})
        assert (
            response.status_code == 200
            and "not a payment id, a reference or a number" in response.text
        )


async def test_a_payments_story_shows_history_callbacks_events_and_jobs(api, host):
    payment = await create_fake_payment(api)
    ref = payment["provider_reference"]
    fake_provider.OPERATOR[ref]["status"] = "succeeded"
    message = json.dumps({"ref": ref, "status": "succeeded", "amount": "1000"}).encode()
    assert (await post(fake_url(host), message)).status_code == 200
    async with logged_in(host) as client:
        response = await client.get(f"/dashboard/payments/{payment['id']}")
        missing = await client.get(f"/dashboard/payments/{uuid.uuid4()}")
    assert response.status_code == 200
    page = response.text
    history = re.search(r'<table id="history">(.*?)</table>', page, re.S).group(1)
    assert [s for s in re.findall(r'class="status (\w+)"', history)] == [
        "new",
        "pending",
        "succeeded",
    ]
    [callback] = await db.fetch("SELECT id FROM callbacks")
    assert str(callback["id"]) in re.search(
        r'<table id="callbacks">(.*?)</table>', page, re.S
    ).group(1)
    events = re.search(r'<table id="events">(.*?)</table>', page, re.S).group(1)
    assert "payment.succeeded" in events
    assert "poll" in re.search(r'<table id="jobs">(.*?)</table>', page, re.S).group(1)
    assert NUMBER not in page and "+255*******78" in page
    assert missing.status_code == 404 and "No payment" in missing.text


async def test_an_unmatched_callback_is_replayed_from_its_page(api, host):
    early = json.dumps({"ref": "FK-dash0001", "status": "succeeded"}).encode()
    assert (await post(fake_url(host), early)).status_code == 200
    [callback] = await db.fetch("SELECT id, flag FROM callbacks")
    assert callback["flag"] == "unmatched"
    async with logged_in(host) as client:
        page = (await client.get("/dashboard/callbacks")).text
        assert f'data-id="{callback["id"]}"' in page
        replay = f"/dashboard/callbacks/{callback['id']}/replay"
        assert f'action="{replay}"' in page

        # replayed while still nothing matches: it stays unmatched, and the page says so
        page = (await client.post(replay)).text
        assert re.search(r'id="replay-flag">unmatched<', page)

        payment = await create_fake_payment(api)
        await db.fetch(
            "UPDATE payments SET provider_reference = 'FK-dash0001' WHERE id = $1",
            uuid.UUID(payment["id"]),
        )
        fake_provider.OPERATOR["FK-dash0001"] = {"status": "succeeded"}
        response = await client.post(replay)
        assert response.status_code == 200
        assert re.search(r'id="replay-flag">none \(applied\)<', response.text)
        assert f'href="/dashboard/payments/{payment["id"]}"' in response.text
        assert f'data-id="{callback["id"]}"' not in response.text  # no longer unmatched

        again = await client.post(replay)
        assert "It is not unmatched" in again.text
    row = await db.fetchrow("SELECT flag, payment_id FROM callbacks WHERE id = $1", callback["id"])
    assert row["flag"] is None and str(row["payment_id"]) == payment["id"]
    # both replays are in the audit log, by the environment's key (the third did nothing)
    audited = await db.fetch("SELECT * FROM audit_log ORDER BY id")
    assert [
        (a["action"], a["target"], a["client_id"], a["key_id"], a["status"]) for a in audited
    ] == [("callback.replay", f"callback:{callback['id']}", "env", None, 200)] * 2
    assert json.loads(audited[1]["answer"])["after"] == {"flag": None}
    assert (await api.get(f"/api/v1/payments/{payment['id']}")).json()["status"] == "succeeded"


# -- in a browser -----------------------------------------------------------------------


async def test_the_dashboard_in_chromium_with_no_internet(api, host):
    payment = await create_fake_payment(api)
    # its callback arrives and is confirmed: the success and latency charts have a point
    ref = payment["provider_reference"]
    fake_provider.OPERATOR[ref]["status"] = "succeeded"
    message = json.dumps({"ref": ref, "status": "succeeded", "amount": "1000"}).encode()
    assert (await post(fake_url(host), message)).status_code == 200
    outside: list[str] = []
    errors: list[str] = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=chromium(), args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            context = await browser.new_context(viewport={"width": 1400, "height": 1000})
            page = await context.new_page()

            async def offline(route):
                url = route.request.url
                if url.startswith(host.url):
                    await route.continue_()
                else:
                    outside.append(url)
                    await route.abort()

            await page.route("**/*", offline)
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(str(exc)))

            # not logged in: the login page
            await page.goto(f"{host.url}/dashboard")
            assert page.url == f"{host.url}/dashboard/login"

            # a payments-only key is refused, saying so
            await page.fill("#key", OTHER_KEY)
            await page.click("button[type=submit]")
            assert "no admin scope" in await page.locator("#refusal").inner_text()
            # the page's own 403 is the browser's only console error so far
            assert [e for e in errors if "403" not in e] == []
            errors.clear()

            # the suite's key has admin in the sandbox
            await page.goto(f"{host.url}/dashboard/login")
            await page.fill("#key", API_KEY)
            await page.click("button[type=submit]")
            await page.wait_for_url(f"{host.url}/dashboard")
            for name in host.gateway.registry.providers:
                assert await page.locator(f'#providers tr[data-provider="{name}"]').count() >= 1
            # uPlot drew every chart on a canvas
            for chart in ("payments", "success", "latency"):
                await page.locator(f"#chart-{chart} canvas").first.wait_for(timeout=15000)
            assert await page.locator(".uplot").count() == 3
            legend = await page.locator("#chart-payments .u-legend").inner_text()
            assert "fake" in legend
            row = page.locator('#providers tr[data-provider="fake"]')
            assert "100.0%" in await row.inner_text()
            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)

            # search by reference, then open the payment's story
            await page.click("nav >> text=Payments")
            await page.fill("#q", "F-1")
            await page.click("form.search button")
            row = page.locator(f'#payments tr[data-id="{payment["id"]}"]')
            await row.wait_for()
            assert "+255*******78" in await row.inner_text()
            await row.locator("a").click()
            await page.wait_for_url(f"{host.url}/dashboard/payments/{payment['id']}")
            assert await page.locator("#payment-id").inner_text() == payment["id"]
            assert "succeeded" in await page.locator("#history").inner_text()
            assert "payment.succeeded" in await page.locator("#events").inner_text()
            await page.screenshot(path=str(ARTIFACTS / "dashboard-payment.png"), full_page=True)

            # logging out forgets the key
            await page.click("form.logout button")
            await page.wait_for_url(f"{host.url}/dashboard/login")
            await page.goto(f"{host.url}/dashboard")
            assert page.url == f"{host.url}/dashboard/login"
        finally:
            await browser.close()
    assert outside == [], f"the page asked the internet for {outside}"
    assert errors == [], f"the page's scripts failed: {errors}"
