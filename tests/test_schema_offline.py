"""`/schema` renders in a real browser with no internet: Swagger UI's scripts come from the
host itself. Chromium is Debian's (`.ci/run` installs it); every request that is not to
the host is refused, as on a machine with no internet."""

from __future__ import annotations

import shutil
from pathlib import Path

from playwright.async_api import async_playwright

ARTIFACTS = Path(__file__).parents[1] / "test-artifacts"


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "Chromium is needed (apt-get install chromium; .ci/run installs it)"
    return found


async def test_schema_renders_offline_in_chromium(host):
    outside: list[str] = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=chromium(), args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = await browser.new_page()

            async def offline(route):
                url = route.request.url
                if url.startswith(host.url):
                    await route.continue_()
                else:
                    outside.append(url)
                    await route.abort()

            await page.route("**/*", offline)
            response = await page.goto(f"{host.url}/schema", wait_until="networkidle")
            assert response is not None and response.status == 200
            title = page.locator(".swagger-ui .info .title")
            await title.wait_for(timeout=15000)
            assert "Mobile-money gateway" in await title.inner_text()
            # the operations are listed, read from /schema/openapi.json
            await page.locator(".opblock").first.wait_for(timeout=15000)
            assert await page.locator(".opblock").count() > 10
            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / "schema.png"), full_page=False)
        finally:
            await browser.close()
    assert outside == [], f"the page asked the internet for {outside}"
