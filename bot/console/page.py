"""The console's page frame and small HTML helpers; every dynamic value goes through `h()`."""

from __future__ import annotations

from collections.abc import Iterable
from html import escape

from aiohttp import web

NAV = (("/console/", "Aging board"), ("/console/insights", "Process intelligence"), ("/console/outbox", "Outbox"),
       ("/console/routing", "Routing"))

_CSS = """
body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{background:#1d2330;color:#fff;padding:.6rem 1.2rem;display:flex;gap:1.2rem;align-items:center}
header a{color:#cfd6e4;text-decoration:none}header a.on{color:#fff;font-weight:600}
header form{margin-left:auto}main{padding:1rem 1.2rem;max-width:1200px}
table{border-collapse:collapse;background:#fff;margin:.5rem 0 1.2rem}
th,td{border:1px solid #d9dde5;padding:.35rem .55rem;text-align:left;vertical-align:top}
th{background:#eef1f5}.stalled{color:#a11;font-weight:600}.ok{color:#176c2d;font-weight:600}
.bad{color:#a11;font-weight:600}code,.hash{font:12px ui-monospace,monospace;word-break:break-all}
.card{background:#fff;border:1px solid #d9dde5;border-radius:6px;padding:.8rem;max-width:560px}
.card h3{margin:.1rem 0 .5rem}.card .ctx{color:#5b6475;font-size:13px}.fields{display:grid;grid-template-columns:1fr 1fr;gap:.3rem}
.notice{background:#fff5d6;border:1px solid #e8cf7a;padding:.4rem .6rem;margin:.4rem 0}
button{font:inherit;padding:.25rem .7rem;border-radius:4px;border:1px solid #8a93a5;background:#fff;cursor:pointer}
button[disabled]{opacity:.6;cursor:not-allowed}textarea{width:100%;max-width:760px;font:13px ui-monospace,monospace}
ol.timeline{list-style:none;padding:0}ol.timeline li{border-left:3px solid #8a93a5;padding:.2rem .7rem;margin:.3rem 0;background:#fff}
ol.timeline .ev{font-weight:600}details{margin:.2rem 0}.flash{background:#e3f4e8;border:1px solid #8fc9a0;padding:.4rem .6rem}
.error{background:#fbe5e5;border:1px solid #e3a0a0;padding:.4rem .6rem}
"""


def h(value: object) -> str:
    return escape(str(value), quote=True)


def table(headers: Iterable[str], rows: Iterable[Iterable[str]], **attrs: str) -> str:
    """Cells are HTML already (escape data with h() before passing it)."""
    extra = "".join(f' {k}="{h(v)}"' for k, v in attrs.items())
    head = "".join(f"<th>{h(x)}</th>" for x in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table{extra}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def csrf_field(token: str) -> str:
    return f'<input type="hidden" name="csrf" value="{h(token)}">'


def render(title: str, body: str, *, path: str = "", csrf: str | None = None, status: int = 200) -> web.Response:
    """A whole page: navigation, a sign-out button when signed in by token, and `body`."""
    links = "".join(f'<a href="{href}"{" class=on" if href == path else ""}>{h(label)}</a>' for href, label in NAV)
    signout = f'<form method="post" action="/console/logout">{csrf_field(csrf)}<button>Sign out</button></form>' if csrf else ""
    text = (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{h(title)} · Handoff</title>"
        f"<meta name=viewport content='width=device-width'><style>{_CSS}</style></head>"
        f"<body><header><strong>Handoff</strong>{links}{signout}</header><main><h1>{h(title)}</h1>{body}</main></body></html>"
    )
    return web.Response(text=text, content_type="text/html", status=status,
                        headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY",
                                 "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'"})


def hours(seconds: float) -> str:
    """A duration as people say it: minutes under an hour, hours under two days, else days."""
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"
