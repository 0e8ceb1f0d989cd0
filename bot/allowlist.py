"""An optional IP allow-list for ERP webhooks: only the ERP's own addresses may post to /webhooks/*."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Awaitable, Callable, Sequence

from aiohttp import web

from handoff.bot.core.errors import ConfigError

log = logging.getLogger(__name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def networks(cidrs: Sequence[str]) -> tuple[Network, ...]:
    """Parse HANDOFF_WEBHOOK_ALLOW_FROM at start, so a typo fails the service instead of locking the ERP out later."""
    parsed = []
    for cidr in cidrs:
        try:
            parsed.append(ipaddress.ip_network(cidr.strip(), strict=False))
        except ValueError:
            raise ConfigError(
                f"HANDOFF_WEBHOOK_ALLOW_FROM has {cidr!r}, which is not an IP network. "
                'Give a JSON list of CIDRs, e.g. ["203.0.113.0/24", "2001:db8::/32"], or leave it unset to allow any address.'
            ) from None
    return tuple(parsed)


def webhook_allow_list(allowed: Sequence[Network]) -> Callable:
    """Middleware answering 403 to webhook posts from outside `allowed`; other paths and an empty list pass."""

    @web.middleware
    async def middleware(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        if allowed and request.path.startswith("/webhooks/"):
            # request.remote is the socket peer; behind a proxy, configure aiohttp's forwarded-header handling first.
            try:
                address = ipaddress.ip_address(request.remote or "")
            except ValueError:
                address = None
            if address is None or not any(address in network for network in allowed):
                log.warning("webhook.refused", extra={"path": request.path, "reason": "address not allowed", "remote": request.remote})
                return web.json_response(
                    {"error": f"Webhooks are not accepted from {request.remote}. Add its network to HANDOFF_WEBHOOK_ALLOW_FROM."},
                    status=403,
                )
        return await handler(request)

    return middleware
