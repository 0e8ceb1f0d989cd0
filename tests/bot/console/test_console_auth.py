"""Signing in to the console: token, cookie, CSRF on forms, and the console off or open as configured."""

from __future__ import annotations

import aiohttp
from aiohttp import web
from console_helpers import TOKEN, text_of

from handoff.bot.console import ConsoleSettings, register_console
from handoff.bot.core.context import Core
from handoff.bot.fakes.stack import SAMPLE_ROUTING
from handoff.bot.routing_file import load_routing

CORE = web.AppKey("core", Core)


async def console_client(aiohttp_client, fresh_store, clock, settings: ConsoleSettings):
    app = web.Application()
    app[CORE] = Core(store=fresh_store, routing=load_routing(SAMPLE_ROUTING), connectors={}, clock=clock)
    register_console(app, settings, CORE)
    return await aiohttp_client(app, cookie_jar=aiohttp.CookieJar(unsafe=True))


async def test_pages_redirect_to_sign_in_without_the_cookie(browser):
    async with browser.http.get("/console/outbox", allow_redirects=False) as response:
        assert response.status == 303
        assert response.headers["Location"] == "/console/login?next=/console/outbox"
    status, page = await browser.get("/console/outbox")
    assert status == 200 and "Admin token" in text_of(page)


async def test_a_wrong_token_is_refused_and_says_where_the_token_comes_from(browser):
    status, page = await browser.post("/console/login", {"token": "guess", "next": "/console/"})
    assert status == 401
    assert "That token is not the console's admin token. Check HANDOFF_CONSOLE__TOKEN on the server." in text_of(page)
    status, _ = await browser.get("/console/")
    assert "Admin token" in text_of(_)


async def test_the_right_token_sets_a_strict_http_only_cookie_and_returns_to_the_page_asked_for(browser):
    async with browser.http.post("/console/login", data={"token": TOKEN, "next": "/console/routing"}, allow_redirects=False) as response:
        assert response.status == 303 and response.headers["Location"] == "/console/routing"
        cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and TOKEN not in cookie
    status, page = await browser.get("/console/routing")
    assert status == 200 and "Explain an event" in text_of(page)


async def test_sign_in_never_redirects_off_the_console(browser):
    async with browser.http.post("/console/login", data={"token": TOKEN, "next": "//evil.example/"}, allow_redirects=False) as response:
        assert response.headers["Location"] == "/console/"


async def test_forms_need_the_csrf_token_the_page_carried(browser):
    await browser.sign_in()
    status, page = await browser.post("/console/outbox/1/retry", {"csrf": "forged"})
    assert status == 403 and "security token is missing or out of date" in text_of(page)
    await browser.get("/console/outbox")
    status, page = await browser.post("/console/outbox/1/retry", {"csrf": browser.csrf})
    assert status == 404 and "Outbox item 1 does not exist" in text_of(page)


async def test_forms_posted_from_another_site_are_refused(browser):
    await browser.sign_in()
    await browser.get("/console/outbox")
    async with browser.http.post("/console/outbox/1/retry", data={"csrf": browser.csrf}, headers={"Origin": "https://evil.example"}) as response:
        assert response.status == 403
        assert "posted from another site" in text_of(await response.text())


async def test_a_form_without_a_session_is_refused_not_redirected(browser):
    status, page = await browser.post("/console/outbox/1/retry", {"csrf": "x"}, redirects=False)
    assert status == 401 and "Your session has ended" in text_of(page)


async def test_signing_out_ends_the_session(browser):
    await browser.sign_in()
    await browser.get("/console/")
    await browser.post("/console/logout", {"csrf": browser.csrf})
    _, page = await browser.get("/console/")
    assert "Admin token" in text_of(page)


async def test_without_a_token_the_console_is_off_and_says_how_to_turn_it_on(aiohttp_client, fresh_store, clock):
    client = await console_client(aiohttp_client, fresh_store, clock, ConsoleSettings())
    response = await client.get("/console/")
    assert response.status == 503
    assert "Set HANDOFF_CONSOLE__TOKEN to a long random admin token" in text_of(await response.text())


async def test_local_development_opens_the_console_without_sign_in_and_says_so_in_the_log(aiohttp_client, fresh_store, clock, caplog):
    client = await console_client(aiohttp_client, fresh_store, clock, ConsoleSettings(local_development=True))
    response = await client.get("/console")
    assert response.status == 200 and "Aging board" in text_of(await response.text())
    assert any(r.message == "console.sign_in_disabled" and r.levelname == "WARNING" for r in caplog.records)


# Found by tests/bot/test_openapi_fuzz.py: hmac.compare_digest raises TypeError on non-ASCII str, so these were 500s.
async def test_a_session_cookie_with_non_ascii_characters_is_sent_to_sign_in(browser):
    async with browser.http.get("/console/outbox", headers={"Cookie": "handoff_console=\u00e9t\u00e9"}, allow_redirects=False) as response:
        assert response.status == 303
        assert response.headers["Location"] == "/console/login?next=/console/outbox"


async def test_a_non_ascii_csrf_token_or_admin_token_is_refused(browser):
    status, page = await browser.post("/console/login", {"token": "\u00e9\U0001f4a9"})
    assert status == 401 and "That token is not the console's admin token." in text_of(page)
    await browser.sign_in()
    status, page = await browser.post("/console/outbox/1/retry", {"csrf": "\u00e9"})
    assert status == 403 and "security token is missing or out of date" in text_of(page)


async def test_retrying_an_item_number_that_cannot_exist_is_a_404(browser):
    await browser.sign_in()
    await browser.get("/console/outbox")
    # "²" passes str.isdigit() but not int(); 2**64 does not fit the 64-bit id column.
    for item in ("\u00b2", str(2**64)):
        status, page = await browser.post(f"/console/outbox/{item}/retry", {"csrf": browser.csrf})
        assert status == 404 and "is not an outbox item number" in text_of(page)
