"""`handoff dataverse register`: the webhook (service endpoint) and the Update steps that post to Handoff.

Sources (MicrosoftDocs/powerapps-docs): `developer/data-platform/register-web-hook.md` (webhooks are
`serviceendpoints` with contract 8; steps are `sdkmessageprocessingsteps` whose `eventhandler_serviceendpoint` is the
endpoint, with `sdkmessageid`, `sdkmessagefilterid`, `filteringattributes`, `stage`, `mode`, `asyncautodelete`; the
auth value "cannot be retrieved"), `reference/entities/serviceendpoint.md` (authtype 4 Webhook Key, 5 Http Header),
`webapi/reference/sdkmessageprocessingstepimage` (`entityalias`, `imagetype`, `messagepropertyname`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from xml.sax.saxutils import quoteattr

from handoff.bot.core.errors import ConfigError, ErpRefused
from handoff.connectors.dataverse_settings import DataverseSettings
from handoff.connectors.dataverse_webapi import WebApi

log = logging.getLogger(__name__)

ENDPOINT_NAME = "Handoff"
WEBHOOK_CONTRACT = 8
AUTH_TYPES = {"webhook_key": 4, "http_header": 5}
POST_OPERATION, ASYNCHRONOUS = 40, 1
# sdkmessageprocessingstepimage.imagetype: 0 PreImage, 1 PostImage, 2 Both [values from the table reference's
# choices as remembered; the option list was not in the excerpt read].
POST_IMAGE = 1
IMAGE_ALIAS = "PostImage"
ROLES = "System Customizer or System Administrator"


@dataclass(frozen=True)
class Endpoint:
    """Handoff's service endpoint as Dataverse has it."""

    id: str
    url: str
    authtype: int


def webhook_url(public_url: str) -> str:
    return f"{public_url.rstrip('/')}/webhooks/dataverse"


async def find_endpoint(api: WebApi) -> Endpoint | None:
    """Handoff's webhook registration, found by name among contract-8 endpoints."""
    found = await api.get("serviceendpoints", {
        "$filter": f"contract eq {WEBHOOK_CONTRACT} and name eq '{ENDPOINT_NAME}'", "$select": "serviceendpointid,url,authtype",
    })
    rows = found.get("value") or []
    return Endpoint(rows[0]["serviceendpointid"], rows[0]["url"], rows[0]["authtype"]) if rows else None


async def register(api: WebApi, settings: DataverseSettings, public_url: str, *, dry_run: bool = False) -> list[str]:
    """Create or update the endpoint and one Update step per mapped table; one line per thing done (or to do)."""
    try:
        lines, endpoint = await _endpoint(api, settings, webhook_url(public_url), dry_run)
        update = await _one(api, "sdkmessages", "sdkmessageid", "name eq 'Update'", "the Update message")
        for table, mapping in settings.tables.items():
            lines.append(await _step(api, endpoint, update, table, mapping.status_column, dry_run))
        return lines
    except ErpRefused as error:
        raise ErpRefused(
            f"Dataverse refused to register Handoff's webhook ({error}). Registering webhooks needs the {ROLES} "
            "security role: in the Power Platform admin center open Environments > (this environment) > Settings > "
            "Users + permissions > Application users, select Handoff's app, Edit security roles, add System Customizer, "
            "save, and run `handoff dataverse register` again."
        ) from error


async def _endpoint(api: WebApi, settings: DataverseSettings, url: str, dry_run: bool) -> tuple[list[str], str | None]:
    existing = await find_endpoint(api)
    authtype = AUTH_TYPES[settings.webhook_auth]
    verb = "would " if dry_run else ""
    if existing and existing.url == url and existing.authtype == authtype:
        # The key cannot be read back, so an unchanged URL and auth type count as installed.
        return [f"webhook: already registered (service endpoint {existing.id} posts to {url})"], existing.id
    values = {"name": ENDPOINT_NAME, "contract": WEBHOOK_CONTRACT, "url": url, "authtype": authtype, "authvalue": _auth_value(settings)}
    if existing:
        if not dry_run:
            await api.patch(f"serviceendpoints({existing.id})", values, if_match="*")
        log.info("dataverse.endpoint_updated", extra={"endpoint": existing.id, "dry_run": dry_run})
        return [f"webhook: {verb}update service endpoint {existing.id} to post to {url} (it posted to {existing.url})"], existing.id
    if dry_run:
        return [f"webhook: would register service endpoint \"{ENDPOINT_NAME}\" posting to {url}"], None
    await api.post("serviceendpoints", values)
    created = await find_endpoint(api)
    assert created is not None, "a service endpoint just created is found by its name"
    log.info("dataverse.endpoint_created", extra={"endpoint": created.id})
    return [f"webhook: registered service endpoint {created.id} posting to {url}"], created.id


async def _step(api: WebApi, endpoint: str | None, update: str, table: str, status_column: str, dry_run: bool) -> str:
    message_filter = await _one(api, "sdkmessagefilters", "sdkmessagefilterid",
                                f"_sdkmessageid_value eq {update} and primaryobjecttypecode eq '{table}'", f"Update on {table}")
    steps = (await api.get("sdkmessageprocessingsteps", {
        "$filter": f"_eventhandler_value eq {endpoint} and _sdkmessagefilterid_value eq {message_filter}",
        "$select": "sdkmessageprocessingstepid,filteringattributes",
    })).get("value", []) if endpoint else []
    verb = "would " if dry_run else ""
    if steps and steps[0]["filteringattributes"] == status_column:
        return f"{table}: already registered (step {steps[0]['sdkmessageprocessingstepid']} on Update of {status_column})"
    if steps:
        step_id = steps[0]["sdkmessageprocessingstepid"]
        if not dry_run:
            await api.patch(f"sdkmessageprocessingsteps({step_id})", {"filteringattributes": status_column}, if_match="*")
        return f"{table}: {verb}update step {step_id} to fire on {status_column} (it fired on {steps[0]['filteringattributes'] or 'any column'})"
    if dry_run:
        return f"{table}: would register an asynchronous Update step on {status_column} with a post image"
    name = f"Handoff: Update of {table}"
    await api.post("sdkmessageprocessingsteps", {
        "name": name, "stage": POST_OPERATION, "mode": ASYNCHRONOUS, "rank": 1, "filteringattributes": status_column,
        # Server only (0): webhooks never run offline; keep the system jobs so failed deliveries can be looked into.
        "supporteddeployment": 0, "asyncautodelete": False,
        "sdkmessageid@odata.bind": f"/sdkmessages({update})", "sdkmessagefilterid@odata.bind": f"/sdkmessagefilters({message_filter})",
        "eventhandler_serviceendpoint@odata.bind": f"/serviceendpoints({endpoint})",
    })
    step_id = await _one(api, "sdkmessageprocessingsteps", "sdkmessageprocessingstepid",
                         f"_eventhandler_value eq {endpoint} and _sdkmessagefilterid_value eq {message_filter}", name)
    # The post image carries the record's columns after the update, since an Update's Target holds only what changed.
    await api.post("sdkmessageprocessingstepimages", {
        "name": IMAGE_ALIAS, "entityalias": IMAGE_ALIAS, "imagetype": POST_IMAGE, "messagepropertyname": "Target",
        "sdkmessageprocessingstepid@odata.bind": f"/sdkmessageprocessingsteps({step_id})",
    })
    log.info("dataverse.step_created", extra={"table": table, "step": step_id})
    return f"{table}: registered step {step_id} (asynchronous, post-operation, on Update of {status_column}, with a post image)"


async def _one(api: WebApi, entity_set: str, id_column: str, condition: str, what: str) -> str:
    rows = (await api.get(entity_set, {"$filter": condition, "$select": id_column})).get("value") or []
    if not rows:
        raise ConfigError(f"Dataverse has no {what} ({entity_set} where {condition}). Check the table names in HANDOFF_DATAVERSE__TABLES.")
    return rows[0][id_column]


def _auth_value(settings: DataverseSettings) -> str:
    key = settings.webhook_key.get_secret_value()
    if settings.webhook_auth == "webhook_key":
        return key
    # HttpHeader keeps its pairs as <settings><setting name value/></settings>, as the Plug-in Registration tool
    # stores them [UNVERIFIED: format not in the docs read; WebhookKey is the default and is verified].
    return f"<settings><setting name={quoteattr(settings.webhook_header)} value={quoteattr(key)} /></settings>"
