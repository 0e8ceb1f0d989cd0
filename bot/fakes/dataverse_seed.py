"""Data helpers for the Dataverse fake: seed purchase orders, change them behind Handoff's back, and post webhooks."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from decimal import Decimal

from .dataverse_schema import MONEY, TABLES, Table, entity_set_of

CONTRACTS = "http://schemas.microsoft.com/xrm/2011/Contracts"
PENDING_APPROVAL = 100000001  # illustrative, as in ../shared/fixtures/dataverse/


class SeedMixin:
    """Helpers mixed into FakeDataverse; they write rows the same way the Web API does (new versionnumber each time)."""

    rows: dict[str, dict[str, dict]]
    _write: Callable[[str, str, dict], dict]
    organization_id = "4ef5b371-e89e-e711-8122-000d3aa2331c"

    def seed_plugin_registration(self) -> None:
        """The Create and Update messages and their filters for the purchase order table, as every org has them."""
        for message in ("Create", "Update"):
            message_id = self._ensure("sdkmessages", "name", message)
            self._write("sdkmessagefilters", str(uuid.uuid4()), {
                "name": f"{message} purchaseorder", "primaryobjecttypecode": "purchaseorder", "_sdkmessageid_value": message_id,
            })

    def webhook_registrations(self) -> list[dict]:
        """Each service endpoint with its steps and their images, as the Plug-in Registration tool lists them."""
        steps = self.rows["sdkmessageprocessingsteps"].values()
        images = self.rows["sdkmessageprocessingstepimages"].values()
        return [
            {**endpoint, "steps": [
                {**step, "images": [i for i in images if i.get("_sdkmessageprocessingstepid_value") == step["sdkmessageprocessingstepid"]]}
                for step in steps if step.get("_eventhandler_value") == endpoint["serviceendpointid"]
            ]}
            for endpoint in self.rows["serviceendpoints"].values()
        ]

    def add_purchase_order(
        self,
        reference: str,
        vendor: str,
        amount: Decimal | str | float,
        *,
        currency: str = "EUR",
        requester: tuple[str, str] = ("Priya Patel", "priya@contoso.com"),
        lines: list[tuple[str, Decimal | str | float, Decimal | str | float]] | None = None,
        attachments: int = 1,
        status: int = PENDING_APPROVAL,
        business_unit: str = "Sales",
        region: str | None = None,
    ) -> str:
        """A purchase order awaiting approval, with its vendor, requester, currency, lines and attached files."""
        record_id = str(uuid.uuid4())
        self._write("purchaseorders", record_id, {
            "name": f"{reference} {vendor}",
            "ordernumber": reference,
            "totalamount": float(amount),
            "statecode": 0,
            "statuscode": status,
            "new_region": region,
            "_vendorid_value": self._ensure("accounts", "name", vendor, statecode=0),
            "_transactioncurrencyid_value": self._ensure("transactioncurrencies", "isocurrencycode", currency, currencyname=currency,
                                                         currencysymbol={"EUR": "€", "USD": "$"}.get(currency, currency)),
            "_createdby_value": self._ensure("systemusers", "domainname", requester[1], fullname=requester[0],
                                             internalemailaddress=requester[1]),
            "_owningbusinessunit_value": self._ensure("businessunits", "name", business_unit),
        })
        for description, quantity, price in lines if lines is not None else [("Goods as quoted", 1, amount)]:
            self._write("purchaseorderdetails", str(uuid.uuid4()), {
                "productdescription": description, "quantity": float(quantity), "priceperunit": float(price),
                "baseamount": float(Decimal(str(quantity)) * Decimal(str(price))), "_purchaseorderid_value": record_id,
            })
        for number in range(1, attachments + 1):
            self._write("annotations", str(uuid.uuid4()), {
                "subject": f"Quotation {number}", "isdocument": True, "filename": f"quotation-{number}.pdf",
                "mimetype": "application/pdf", "_objectid_value": record_id, "objecttypecode": "purchaseorder",
            })
        return record_id

    def update(self, entity: str, record_id: str, **values: object) -> None:
        """Change a row as a Dataverse user would: the ETag moves on, so a write with the old one gets 412."""
        entity_set = entity_set_of(entity)
        if record_id not in self.rows[entity_set]:
            raise KeyError(f"no {entity} {record_id} in the fake")
        self._write(entity_set, record_id, values)

    def row(self, entity: str, record_id: str) -> dict:
        return dict(self.rows[entity_set_of(entity)][record_id])

    def notes(self, record_id: str) -> list[dict]:
        """Notes without a file on a record, oldest first."""
        return [dict(n) for n in self.rows["annotations"].values() if n.get("_objectid_value") == record_id and not n.get("isdocument")]

    def webhook_body(self, entity: str, record_id: str, message: str = "Update", operation_id: str | None = None) -> bytes:
        """The RemoteExecutionContext an async PostOperation step with a post image posts, like the shared fixture."""
        entity_set = entity_set_of(entity)
        table, row = TABLES[entity_set], self.rows[entity_set][record_id]
        user = row.get("_createdby_value") or str(uuid.uuid4())
        post_image = {key: _typed(table, key, value) for key, value in row.items() if not key.startswith("_")}
        post_image.update({key[1:-6]: _typed(table, key, value) for key, value in row.items() if key.startswith("_") and value})
        changed = {key: post_image.get(key) for key in (table.id_column, "statuscode", "modifiedon")}
        formatted = {c: table.labels[c][row[c]] for c in table.labels if row.get(c) in table.labels[c]}
        context = {
            "BusinessUnitId": row.get("_owningbusinessunit_value"), "CorrelationId": str(uuid.uuid4()), "Depth": 1,
            "InitiatingUserId": user,
            "InputParameters": [{"key": "Target", "value": {"__type": f"Entity:{CONTRACTS}",
                                                             **_entity(table.logical, record_id, changed, {}, None)}}],
            "IsExecutingOffline": False, "IsInTransaction": False, "IsOfflinePlayback": False, "IsolationMode": 1,
            "MessageName": message, "Mode": 1, "OperationCreatedOn": _date(row["modifiedon"]).replace(")/", "+0000)/"),
            "OperationId": operation_id or str(uuid.uuid4()), "OrganizationId": self.organization_id, "OrganizationName": "contoso",
            "OutputParameters": [],
            "OwningExtension": {"Id": str(uuid.uuid4()), "KeyAttributes": [], "LogicalName": "sdkmessageprocessingstep",
                                "Name": None, "RowVersion": None},
            "ParentContext": None,
            "PostEntityImages": [{"key": "PostImage",
                                  "value": _entity(table.logical, record_id, post_image, formatted, str(row["versionnumber"]))}],
            "PreEntityImages": [], "PrimaryEntityId": record_id, "PrimaryEntityName": table.logical, "RequestId": None,
            "SecondaryEntityName": "none", "SharedVariables": [], "Stage": 40, "UserId": user,
        }
        return json.dumps(context).encode()

    def demo_seed(self) -> list[str]:
        """Purchase orders for `handoff demo`: one routine, one large with several lines, one with nothing attached."""
        return [
            self.add_purchase_order("PO-000123", "Acme Supplies", "12500.00",
                                    lines=[("Steel brackets", 500, "15.00"), ("Mounting kits", 100, "50.00")], attachments=1),
            self.add_purchase_order("PO-000124", "Northwind Traders", "840.00", lines=[("Office chairs", 4, "210.00")], attachments=1),
            self.add_purchase_order("PO-000125", "Fabrikam Logistics", "48000.00", currency="USD", attachments=0,
                                    requester=("Ken Ito", "ken@contoso.com"), business_unit="Operations"),
        ]

    def _ensure(self, entity_set: str, key: str, value: str, **values: object) -> str:
        found = next((rid for rid, row in self.rows[entity_set].items() if row.get(key) == value), None)
        if found is not None:
            return found
        record_id = str(uuid.uuid4())
        self._write(entity_set, record_id, {key: value, **values})
        return record_id


def _typed(table: Table, column: str, value: object) -> object:
    """A column value as a webhook serialises it: choices, money and lookups carry `__type`, dates are /Date(ms)/."""
    if value is None:
        return None
    if column in table.labels:
        return {"__type": f"OptionSetValue:{CONTRACTS}", "Value": value}
    if column in MONEY:
        return {"__type": f"Money:{CONTRACTS}", "Value": value}
    if column in ("createdon", "modifiedon"):
        return _date(str(value))
    if column.startswith("_") and column.endswith("_value"):
        target_set = next(target for lookup_column, target in table.lookups.values() if lookup_column == column)
        return {"__type": f"EntityReference:{CONTRACTS}", "Id": value, "KeyAttributes": [],
                "LogicalName": TABLES[target_set].logical, "Name": None, "RowVersion": None}
    return value


def _entity(logical: str, record_id: str, attributes: dict, formatted: dict, row_version: str | None) -> dict:
    return {
        "Attributes": [{"key": key, "value": value} for key, value in attributes.items()],
        "EntityState": None,
        "FormattedValues": [{"key": key, "value": value} for key, value in formatted.items()],
        "Id": record_id, "KeyAttributes": [], "LogicalName": logical, "RelatedEntities": [], "RowVersion": row_version,
    }


def _date(iso: str) -> str:
    moment = datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    return f"/Date({int(moment.timestamp() * 1000)})/"
