"""Settings from the environment (HANDOFF_*), with secrets kept as SecretStr; the routing rules live in TOML."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from handoff.bot.channels.slack import SlackSettings
from handoff.bot.console.settings import ConsoleSettings
from handoff.bot.channels.teams import TeamsSettings
from handoff.connectors.dataverse import DataverseSettings
from handoff.bot.core.errors import ConfigError
from handoff.connectors.odoo import OdooSettings
from handoff.state.pg import is_postgres


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HANDOFF_", env_nested_delimiter="__", extra="ignore")

    # A SQLite file, or a postgresql:// URL when several replicas share one database.
    database: Path | str = Path("handoff.db")
    routing: Path = Path("routing.toml")
    host: str = "127.0.0.1"
    port: int = 3978
    public_url: str = "http://localhost:3978"
    # Largest webhook or chat request accepted; Dataverse trims its own payloads at 256 KB.
    max_body_bytes: int = 512 * 1024
    # How often each ERP is polled for changes its webhooks missed (HANDOFF_RECONCILE_EVERY_S).
    reconcile_every_s: float = 300
    # CIDRs allowed to post ERP webhooks, as a JSON list; empty allows any address (the key still applies).
    webhook_allow_from: list[str] = []
    # How long a claimed outbox item waits before another attempt when its worker died mid-delivery.
    outbox_lease_s: float = 120
    # The same for an inbox event a PostgreSQL replica took and died holding (HANDOFF_INBOX_LEASE_S).
    inbox_lease_s: float = 120
    slack: SlackSettings | None = None
    # HANDOFF_CONSOLE__TOKEN signs operators in to /console; without it the console answers 503.
    console: ConsoleSettings = ConsoleSettings()
    teams: TeamsSettings | None = None
    odoo: OdooSettings | None = None
    dataverse: DataverseSettings | None = None

    @field_validator("database", mode="before")
    @classmethod
    def _path_unless_url(cls, value: object) -> object:
        # A Path would fold the URL's "//" into "/", so only file locations become paths.
        return value if isinstance(value, str) and is_postgres(value) else Path(value)


def load_settings() -> Settings:
    """Settings from the environment, or a ConfigError naming each variable that is wrong or missing."""
    try:
        return Settings()
    except ValidationError as error:
        problems = "; ".join(f"HANDOFF_{'__'.join(str(p).upper() for p in e['loc'])}: {e['msg']}" for e in error.errors())
        raise ConfigError(f"The settings are incomplete: {problems}. See README › Configuration.") from None
