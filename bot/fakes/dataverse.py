"""A local Dataverse Web API (`/api/data/v9.2/...`) with ETags, 412s, service protection 429s and bearer tokens.

Wire behaviour follows MicrosoftDocs/powerapps-docs: `webapi/perform-conditional-operations-using-web-api.md`
(`@odata.etag` W/"<versionnumber>", If-Match -> 204 or 412, `If-Match: *`, If-None-Match -> 304), `webapi/query/count-rows.md`
(`$count=true` -> `@odata.count`), `api-limits.md` (429 + Retry-After seconds, 0x80072322),
troubleshooting `web-api-client-errors.md` (`{"error": {"code", "message"}}`, 0x8006088a unknown segment).
"""

from __future__ import annotations

import json
import re
import uuid
from collections import deque
from collections.abc import Iterable

from aiohttp import web

from handoff.bot.core.ports import Clock

from .dataverse_delta import ChangeLog, ChangeTrackingMixin, tracks_changes
from .dataverse_index import LookupIndex
from .dataverse_schema import TABLES, UNREADABLE, Table
from .dataverse_seed import SeedMixin
from .entra import FakeEntra
from .odata import QueryError, matches, parse_expand, parse_filter, parse_orderby, parse_select
from .ratelimit import Limit, SlidingWindow

API = "/api/data/v9.2"
FORMATTED = "OData.Community.Display.V1.FormattedValue"
# api-limits.md, "How service protection API limits are enforced": per user, in a 300 s sliding window (per web server;
# the fake is one server). The execution-time and concurrency limits are not modelled.
SERVICE_PROTECTION = Limit(6000, 300)
_SEGMENT = re.compile(r"^([a-z_]+)(?:\(([0-9a-fA-F-]{36})\))?$")


def odata_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status, headers=headers)


class FakeDataverse(SeedMixin, ChangeTrackingMixin):
    """An environment's Web API that accepts tokens FakeEntra issued for its own URL."""

    def __init__(self, entra: FakeEntra, clock: Clock, application_users: set[str] | None = None) -> None:
        self.entra = entra
        self.clock = clock
        self.application_users = application_users  # None: every client FakeEntra knows is an application user
        self.rows: dict[str, dict[str, dict]] = {name: {} for name in TABLES}
        self.version = 4815162  # versionnumber is a rowversion: one counter across the database
        self.service_protection = SlidingWindow(SERVICE_PROTECTION, clock)
        self.rate_limited_count = 0  # service protection 429s answered (not those injected by fail_next)
        self.down = False
        self.requests: list[tuple[str, str, dict[str, str]]] = []  # (method, path_qs, headers) as received
        self._failures: deque[tuple[int, float | None]] = deque()
        self.denied_tables: set[str] = set()  # entity sets the application user's security role has no privilege on
        self.change_log = ChangeLog()
        self._lookups = LookupIndex()
        self.seed_plugin_registration()
        self.app = web.Application()
        self.app.router.add_route("*", API + "/{segment}", self._handle)

    def limit_requests(self, calls: int, per_seconds: float = 300) -> None:
        """Service protection other than Dataverse's default of 6000 requests per user per 300 s."""
        self.service_protection = SlidingWindow(Limit(calls, per_seconds), self.clock)

    def fail_next(self, count: int = 1, status: int = 503, retry_after: float | None = None) -> None:
        """Answer the next `count` requests with `status` (and Retry-After), before any other check."""
        self._failures.extend([(status, retry_after)] * count)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((request.method, request.path_qs, dict(request.headers)))
        caller = self._injected() or self._authorize(request)
        if isinstance(caller, web.Response):
            return caller
        refusal = self._throttle(caller)
        if refusal is not None:
            return refusal
        if request.match_info["segment"] == "WhoAmI" and request.method == "GET":
            return self._who_am_i(request, caller)
        match = _SEGMENT.match(request.match_info["segment"])
        if match and match.group(1) in self.denied_tables:
            return _missing_privilege(caller, request.method, TABLES[match.group(1)])
        if not match or match.group(1) not in TABLES:
            return odata_error(404, "0x8006088a", f"Resource not found for the segment '{request.match_info['segment']}'.")
        entity_set, record_id = match.group(1), (match.group(2) or "").lower() or None
        try:
            if request.method == "GET":
                return self._get_one(request, entity_set, record_id) if record_id else self._get_many(request, entity_set)
            if request.method == "PATCH" and record_id:
                return await self._patch(request, entity_set, record_id)
            if request.method == "POST" and not record_id:
                return await self._post(request, entity_set)
        except QueryError as error:
            # [UNVERIFIED] the status of 0x80072491 (table not tracked): the docs give its code and message only.
            return odata_error(400, error.code, str(error))
        return odata_error(405, "0x0", f"The fake Dataverse does not support {request.method} on this resource.")

    def _who_am_i(self, request: web.Request, client_id: str) -> web.Response:
        """WhoAmI (webapi/reference/whoami): the caller's user, business unit and organization ids."""
        user = str(uuid.uuid5(uuid.NAMESPACE_URL, f"application-user:{client_id}"))
        return web.json_response({
            "@odata.context": f"{request.scheme}://{request.host}{API}/$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse",
            "BusinessUnitId": str(uuid.uuid5(uuid.NAMESPACE_URL, "root-business-unit")), "UserId": user,
            "OrganizationId": self.organization_id,
        })

    def _injected(self) -> web.Response | None:
        if self.down:
            return odata_error(503, "0x80040216", "Service Unavailable")
        if not self._failures:
            return None
        status, retry_after = self._failures.popleft()
        headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else None
        if status == 429:
            return odata_error(429, "0x80072322", "Number of requests exceeded the limit of 6000 over time window of 300 seconds.", headers)
        return odata_error(status, "0x80040216", "An unexpected error occurred.", headers)

    def _authorize(self, request: web.Request) -> web.Response | str:
        """The calling application's id, or the 401/403 Dataverse would answer."""
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        issued = self.entra.introspect(token) if scheme.lower() == "bearer" else None
        audience = f"{request.scheme}://{request.host}"
        if issued is None or issued.audience.rstrip("/") != audience or issued.expires_at <= self.clock.now():
            # RFC 6750: the challenge names where to get a token; Dataverse adds its resource.
            return web.Response(status=401, headers={"WWW-Authenticate": f'Bearer resource_id="{audience}"'})
        if self.application_users is not None and issued.client_id not in self.application_users:
            return odata_error(403, "0x80072560", "The user is not a member of the organization.")
        return issued.client_id

    def _throttle(self, client_id: str) -> web.Response | None:
        limit = self.service_protection
        wait = limit.retry_after(client_id)
        if wait is None:
            return None
        self.rate_limited_count += 1
        return odata_error(429, "0x80072322", f"Number of requests exceeded the limit of {limit.limit.calls} over time "
                           f"window of {limit.limit.per_seconds:g} seconds.", {"Retry-After": str(wait)})

    def _get_one(self, request: web.Request, entity_set: str, record_id: str) -> web.Response:
        table = TABLES[entity_set]
        row = self.rows[entity_set].get(record_id)
        if row is None:
            return _not_found(table, record_id)
        if request.headers.get("If-None-Match") == _etag(row):  # a conditional retrieval of an unchanged row
            return web.Response(status=304, headers={"OData-Version": "4.0"})
        select = _checked(table, parse_select(request.query.get("$select")))
        body = self._shape(table, row, select, parse_expand(request.query.get("$expand")), _formatted(request))
        shown = f"({','.join(select)})" if select else ""
        context = f"{request.scheme}://{request.host}{API}/$metadata#{entity_set}{shown}/$entity"
        return web.json_response({"@odata.context": context, **body}, headers=_preference_applied(request))

    def _get_many(self, request: web.Request, entity_set: str) -> web.Response:
        table = TABLES[entity_set]
        if tracks_changes(request):
            select = _checked(table, parse_select(request.query.get("$select")))
            return web.json_response(self._changes(request, entity_set, select, _max_page_size(request) or 5000),
                                     headers=_preference_applied(request))
        clauses = parse_filter(request.query.get("$filter"))
        _checked(table, [column for column, _, _ in clauses])
        rows = [row for row in self._candidates(entity_set, clauses) if matches(row, clauses)]
        order = parse_orderby(request.query.get("$orderby"))
        if order:
            _checked(table, [order[0]])
            rows.sort(key=lambda row: (row.get(order[0]) is None, row.get(order[0])), reverse=order[1])
        if request.query.get("$top", "").isdigit():
            rows = rows[:int(request.query["$top"])]
        select = _checked(table, parse_select(request.query.get("$select")))
        expand = parse_expand(request.query.get("$expand"))
        body: dict = {"@odata.context": f"{request.scheme}://{request.host}{API}/$metadata#{entity_set}"}
        if request.query.get("$count") == "true":
            body["@odata.count"] = min(len(rows), 5000)  # count-rows.md: counts stop at 5,000
        # The real $skiptoken is an opaque paging cookie; the fake's is the offset of the next page.
        skiptoken = request.query.get("$skiptoken", "0")
        if not skiptoken.isdigit():
            raise QueryError(f"The $skiptoken '{skiptoken[:40]}' did not come from an @odata.nextLink of this fake.")
        start = int(skiptoken)
        page = _max_page_size(request) or 5000
        body["value"] = [self._shape(table, row, select, expand, _formatted(request)) for row in rows[start:start + page]]
        if start + page < len(rows):
            body["@odata.nextLink"] = str(request.url.update_query({"$skiptoken": str(start + page)}))
        return web.json_response(body, headers=_preference_applied(request))

    def _candidates(self, entity_set: str, clauses: list[tuple[str, str, object]]) -> Iterable[dict]:
        """The rows a filter can match: through the lookup index when it asks for one lookup value, else all."""
        lookup = next(((column, value) for column, op, value in clauses if op == "eq" and column.endswith("_value")), None)
        if lookup is None:
            return self.rows[entity_set].values()
        return self._lookups.rows(self.rows[entity_set], entity_set, *lookup)

    async def _patch(self, request: web.Request, entity_set: str, record_id: str) -> web.Response:
        table = TABLES[entity_set]
        values = await self._payload(request, table)
        if isinstance(values, web.Response):
            return values
        row = self.rows[entity_set].get(record_id)
        if_match = request.headers.get("If-Match")
        if row is None and if_match is not None:  # If-Match blocks the create half of an upsert
            return _not_found(table, record_id)
        if row is not None and if_match not in (None, "*") and if_match != _etag(row):
            return odata_error(412, "0x80060882", "The version of the existing record doesn't match the RowVersion property provided.")
        self._write(entity_set, record_id, values)
        return self._no_content(request, entity_set, record_id)

    async def _post(self, request: web.Request, entity_set: str) -> web.Response:
        table = TABLES[entity_set]
        values = await self._payload(request, table)
        if isinstance(values, web.Response):
            return values
        record_id = str(values.pop(table.id_column, None) or uuid.uuid4())
        self._write(entity_set, record_id, values)
        return self._no_content(request, entity_set, record_id)

    async def _payload(self, request: web.Request, table: Table) -> dict | web.Response:
        try:
            body = json.loads(await request.read())
        except ValueError:
            return odata_error(400, "0x0", "The request body is not valid JSON.")
        if not isinstance(body, dict):
            return odata_error(400, "0x0", "The request body must be a JSON object.")
        values = {}
        for key, value in body.items():
            if key.endswith("@odata.bind"):
                values.update(self._bind(table, key.removesuffix("@odata.bind"), value))
            else:
                values[key] = value
        _checked(table, [k for k in values if k != "objecttypecode"])
        return values

    def _bind(self, table: Table, nav: str, value: object) -> dict:
        if nav not in table.lookups:
            raise QueryError(f"'{nav}' is not a navigation property of {table.logical}, so '{nav}@odata.bind' cannot be set.")
        column, target_set = table.lookups[nav]
        match = re.fullmatch(rf"/?{target_set}\(([0-9a-fA-F-]{{36}})\)", str(value))
        if not match or match.group(1).lower() not in self.rows[target_set]:
            raise QueryError(f"The {nav} reference '{value}' does not point to an existing {TABLES[target_set].logical}.")
        bound = {column: match.group(1).lower()}
        if column == "_objectid_value":
            bound["objecttypecode"] = TABLES[target_set].logical
        return bound

    def _write(self, entity_set: str, record_id: str, values: dict) -> dict:
        """Create or update a row; every write gets a new versionnumber, hence a new ETag."""
        self.version += 1
        now = self.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")
        table = TABLES[entity_set]
        self._lookups.changed(entity_set, values if record_id in self.rows[entity_set] else None)
        row = self.rows[entity_set].setdefault(record_id, {table.id_column: record_id, "createdon": now})
        row.update(values, versionnumber=self.version, modifiedon=now)
        return row

    def _shape(self, table: Table, row: dict, select: list[str] | None, expand: dict, formatted: bool) -> dict:
        columns = select if select is not None else sorted(table.all_columns())
        body: dict = {"@odata.etag": _etag(row)}
        for column in columns:
            if column in UNREADABLE:
                continue
            body[column] = row.get(column)
            label = table.labels.get(column, {}).get(row.get(column)) if formatted else None
            if label is not None:
                body[f"{column}@{FORMATTED}"] = label
        for nav, nav_select in expand.items():
            if nav not in table.lookups:
                raise QueryError(f"Could not find a property named '{nav}' on type 'Microsoft.Dynamics.CRM.{table.logical}'.")
            column, target_set = table.lookups[nav]
            target = self.rows[target_set].get(row.get(column) or "")
            target_table = TABLES[target_set]
            nav_columns = [target_table.id_column, *(_checked(target_table, nav_select) or [])] if nav_select else None
            body[nav] = self._shape(target_table, target, nav_columns, {}, formatted) if target else None
        if formatted:
            for column, target_set in table.lookups.values():
                target = self.rows[target_set].get(row.get(column) or "")
                if column in body and target:
                    body[f"{column}@{FORMATTED}"] = target.get(TABLES[target_set].primary_name)
        return body

    def _no_content(self, request: web.Request, entity_set: str, record_id: str) -> web.Response:
        # create-entity-web-api.md: 204 No Content, and the new or updated row's URI in OData-EntityId.
        uri = f"{request.scheme}://{request.host}{API}/{entity_set}({record_id})"
        return web.Response(status=204, headers={"OData-Version": "4.0", "OData-EntityId": uri})


def _missing_privilege(client_id: str, method: str, table: Table) -> web.Response:
    # The shape of Dataverse's security check failure; [UNVERIFIED] exact wording beyond the code and privilege name.
    verb = {"GET": "Read", "POST": "Create", "PATCH": "Write"}.get(method, "Read")
    return odata_error(403, "0x80040220", f"Principal user (Id={client_id}, type=8) is missing prv{verb}{table.logical} privilege.")


def _etag(row: dict) -> str:
    return f'W/"{row["versionnumber"]}"'


def _checked(table: Table, columns: list[str] | None) -> list[str] | None:
    for column in columns or []:
        if column not in table.all_columns():
            raise QueryError(f"Could not find a property named '{column}' on type 'Microsoft.Dynamics.CRM.{table.logical}'.")
    return columns


def _not_found(table: Table, record_id: str) -> web.Response:
    return odata_error(404, "0x80040217", f"{table.logical} With Id = {record_id} Does Not Exist")


def _formatted(request: web.Request) -> bool:
    prefer = request.headers.get("Prefer", "")
    return "odata.include-annotations" in prefer and (FORMATTED in prefer or '"*"' in prefer)


def _max_page_size(request: web.Request) -> int | None:
    match = re.search(r"odata\.maxpagesize=(\d+)", request.headers.get("Prefer", ""))
    return int(match.group(1)) if match else None


def _preference_applied(request: web.Request) -> dict[str, str]:
    prefer = request.headers.get("Prefer")
    return {"OData-Version": "4.0", **({"Preference-Applied": prefer} if prefer else {})}
