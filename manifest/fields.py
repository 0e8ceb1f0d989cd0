"""Setting types both app manifests share."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field


def _https(url: str) -> str:
    # Slack and Teams call only https endpoints, and Teams' developer links must be https too.
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise ValueError(f"must be an https:// URL with a host, not {url!r}")
    return url.rstrip("/")


HttpsUrl = Annotated[str, Field(max_length=2048), AfterValidator(_https)]
