"""A real browser for the customer journey: Debian's Chromium driven by Playwright.

Chromium comes from the system (`apt-get install chromium`; .ci/run installs it), never
from a download of Playwright's own. Where it is absent these tests skip and say why.
"""

import os
import shutil
import threading

import pytest

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
# Flags for a headless run as root on a machine with no network but loopback.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip(
            f"Chromium not found at {CHROMIUM}: apt-get install chromium, or set CHROMIUM_PATH"
        )
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls that
    # pytest-django's live server fixtures make here are still synchronous.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
            yield browser
            browser.close()
    finally:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(base_url=live_server.url)
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.fixture
def stripe_over_http(live_server, settings, tmp_path, monkeypatch):
    """The Stripe emulator as its own HTTP server, as the browser and the portal reach it
    in `make run`. No webhook endpoint is registered: the return page records cards."""
    import stripe

    from billing import gateway
    from stripe_emulator import Emulator, EmulatorHTTPServer

    emulator = Emulator(tmp_path / "stripe-emulator")
    server = EmulatorHTTPServer(emulator, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    settings.STRIPE_SECRET_KEY = "sk_test_" + "browser0emulator0key000000"
    settings.BILLING_ENABLED = True
    settings.STRIPE_API_BASE = emulator.base_url
    settings.PORTAL_BASE_URL = live_server.url
    monkeypatch.setattr(stripe, "api_base", emulator.base_url)  # dj-stripe's requests
    gateway.stripe_configure()
    yield stripe.StripeClient(settings.STRIPE_SECRET_KEY, base_addresses={"api": emulator.base_url})
    gateway.stripe_configure()
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)
    emulator.close()
