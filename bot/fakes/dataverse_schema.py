"""The tables the Dataverse fake knows: an illustrative purchase order, its lines, and the standard tables around it."""

from __future__ import annotations

from dataclasses import dataclass, field

COMMON = frozenset({"versionnumber", "createdon", "modifiedon"})
# Currency columns: the Web API sends plain numbers, a webhook sends {"__type": "Money:…", "Value": n}.
MONEY = frozenset({"totalamount", "priceperunit", "baseamount"})


@dataclass(frozen=True)
class Table:
    """One table as the Web API shows it: entity set, key, columns, and lookups by navigation property."""

    logical: str
    id_column: str
    primary_name: str
    columns: frozenset[str]
    lookups: dict[str, tuple[str, str]] = field(default_factory=dict)  # navigation -> (`_x_value` column, entity set)
    labels: dict[str, dict[int, str]] = field(default_factory=dict)  # choice column -> value -> label

    def all_columns(self) -> frozenset[str]:
        return self.columns | COMMON | {self.id_column} | {value for value, _ in self.lookups.values()}


def _lookup(column: str, entity_set: str) -> tuple[str, tuple[str, str]]:
    return column, (f"_{column}_value", entity_set)


TABLES: dict[str, Table] = {
    "purchaseorders": Table(
        "purchaseorder", "purchaseorderid", "name",
        frozenset({"name", "ordernumber", "totalamount", "statecode", "statuscode", "new_region", "new_exceptiontype"}),
        dict([_lookup("transactioncurrencyid", "transactioncurrencies"), _lookup("vendorid", "accounts"),
              _lookup("createdby", "systemusers"), _lookup("owningbusinessunit", "businessunits")]),
        # Illustrative status reasons, as in ../shared/fixtures/dataverse/ (100000001 "Pending Approval").
        {"statecode": {0: "Active", 1: "Inactive"},
         "statuscode": {1: "Draft", 100000001: "Pending Approval", 100000002: "Approved", 100000003: "Rejected"}},
    ),
    "purchaseorderdetails": Table(
        "purchaseorderdetail", "purchaseorderdetailid", "productdescription",
        frozenset({"productdescription", "quantity", "priceperunit", "baseamount"}),
        dict([_lookup("purchaseorderid", "purchaseorders")]),
    ),
    "annotations": Table(
        "annotation", "annotationid", "subject",
        frozenset({"subject", "notetext", "isdocument", "filename", "mimetype", "objecttypecode"}),
        # A note's regarding record is polymorphic: one navigation property per table, one `_objectid_value`.
        {f"objectid_{logical}": ("_objectid_value", entity_set)
         for entity_set, logical in (("purchaseorders", "purchaseorder"), ("accounts", "account"))},
    ),
    "accounts": Table("account", "accountid", "name", frozenset({"name", "statecode"})),
    "systemusers": Table("systemuser", "systemuserid", "fullname", frozenset({"fullname", "domainname", "internalemailaddress"})),
    "transactioncurrencies": Table("transactioncurrency", "transactioncurrencyid", "currencyname",
                                   frozenset({"isocurrencycode", "currencyname", "currencysymbol"})),
    "businessunits": Table("businessunit", "businessunitid", "name", frozenset({"name"})),
    # Plug-in registration, as register-web-hook.md queries it: a webhook is a serviceendpoint with contract 8,
    # run by an sdkmessageprocessingstep whose `eventhandler` is that endpoint.
    "serviceendpoints": Table("serviceendpoint", "serviceendpointid", "name",
                              frozenset({"name", "contract", "authtype", "authvalue", "url", "description"})),
    "sdkmessages": Table("sdkmessage", "sdkmessageid", "name", frozenset({"name"})),
    "sdkmessagefilters": Table("sdkmessagefilter", "sdkmessagefilterid", "name", frozenset({"name", "primaryobjecttypecode"}),
                               dict([_lookup("sdkmessageid", "sdkmessages")])),
    "sdkmessageprocessingsteps": Table(
        "sdkmessageprocessingstep", "sdkmessageprocessingstepid", "name",
        frozenset({"name", "description", "stage", "mode", "rank", "filteringattributes", "asyncautodelete", "supporteddeployment"}),
        {**dict([_lookup("sdkmessageid", "sdkmessages"), _lookup("sdkmessagefilterid", "sdkmessagefilters")]),
         "eventhandler_serviceendpoint": ("_eventhandler_value", "serviceendpoints")},
    ),
    "sdkmessageprocessingstepimages": Table(
        "sdkmessageprocessingstepimage", "sdkmessageprocessingstepimageid", "name",
        frozenset({"name", "entityalias", "imagetype", "messagepropertyname", "attributes"}),
        dict([_lookup("sdkmessageprocessingstepid", "sdkmessageprocessingsteps")]),
    ),
}
# serviceendpoint.authvalue is IsValidForRead=False (serviceendpoint table reference): written, never read back.
UNREADABLE = frozenset({"authvalue"})


def entity_set_of(logical: str) -> str:
    return next(name for name, table in TABLES.items() if table.logical == logical)
