"""Console settings: the admin token that signs people in, or local development without sign-in."""

from __future__ import annotations

from pydantic import BaseModel, SecretStr


class ConsoleSettings(BaseModel):
    """HANDOFF_CONSOLE__TOKEN signs operators in; HANDOFF_CONSOLE__LOCAL_DEVELOPMENT=true drops sign-in (never in production)."""

    token: SecretStr | None = None
    local_development: bool = False
