"""Dataverse settings: the org, the app registration, the webhook secret, and which tables mean "an approval request"."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator

# The table and every value below describe an illustrative `purchaseorder` table that matches
# ../shared/fixtures/dataverse/: Dataverse itself has no standard purchase order table (Field Service
# ships `msdyn_purchaseorder`, others build a custom one), so each install maps its own table here.


class Lookup(BaseModel):
    """A lookup column, read through `$expand` on its single-valued navigation property.

    `column` is the lookup's logical name (filters use `_<column>_value`); `navigation` is the navigation
    property, which for custom lookups is the schema name and differs in case (`new_VendorId`).
    """

    column: str
    navigation: str | None = None
    name_column: str

    @property
    def nav(self) -> str:
        return self.navigation or self.column

    @property
    def value_column(self) -> str:
        return f"_{self.column}_value"


class PersonLookup(Lookup):
    """A lookup to systemuser: `domainname` is the sign-in name (UPN) that routing config matches as the ERP login."""

    name_column: str = "fullname"
    login_column: str = "domainname"
    email_column: str = "internalemailaddress"


class LinesMapping(BaseModel):
    """The child table holding order lines, read with `$filter=_<parent_column>_value eq <id>`.

    Column names follow `salesorderdetail`, the closest standard line table.
    """

    entity_set: str = "purchaseorderdetails"
    parent_column: str = "purchaseorderid"
    description_column: str = "productdescription"
    quantity_column: str = "quantity"
    unit_price_column: str = "priceperunit"
    subtotal_column: str = "baseamount"


class TableMapping(BaseModel):
    """How one table's columns become an approval packet. Defaults describe the illustrative `purchaseorder`."""

    entity_set: str = "purchaseorders"
    id_column: str = "purchaseorderid"
    reference_column: str = "ordernumber"
    amount_column: str = "totalamount"
    currency_lookup: Lookup = Lookup(column="transactioncurrencyid", name_column="isocurrencycode")
    vendor_lookup: Lookup = Lookup(column="vendorid", name_column="name")
    requester_lookup: PersonLookup | None = PersonLookup(column="createdby")
    business_unit_lookup: Lookup | None = Lookup(column="owningbusinessunit", name_column="name")
    region_column: str | None = None
    exception_column: str | None = None
    status_column: str = "statuscode"
    # Illustrative status reason values: each org defines its own in the table's statuscode choices.
    awaiting_values: list[int] = Field(default_factory=lambda: [100000001])  # "Pending Approval"
    approved_value: int = 100000002
    rejected_value: int = 100000003
    lines: LinesMapping | None = LinesMapping()
    modified_column: str = "modifiedon"
    # Which of the vendor's rows count as open, as an OData $filter clause; statecode 0 is "Active".
    open_filter: str = "statecode eq 0"


class DataverseSettings(BaseModel):
    """One Dataverse environment, reached as an application user with client credentials."""

    url: str  # the org URL, e.g. https://contoso.crm.dynamics.com
    tenant_id: str
    client_id: str
    client_secret: SecretStr
    # Sovereign clouds sign in elsewhere (login.microsoftonline.us, login.partner.microsoftonline.cn).
    authority_host: str = "https://login.microsoftonline.com"
    scope: str | None = None
    webhook_key: SecretStr
    webhook_auth: Literal["webhook_key", "http_header"] = "webhook_key"
    webhook_header: str = "x-handoff-key"
    tables: dict[str, TableMapping] = Field(default_factory=lambda: {"purchaseorder": TableMapping()})
    # A CA bundle for the token endpoint: a private PKI, a TLS-inspecting proxy, or the local fake's certificate.
    ca_bundle: str | None = None

    @field_validator("url", "authority_host")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @property
    def resource_scope(self) -> str:
        """The token scope: the org URL's `.default`, unless configured."""
        return self.scope or f"{self.url}/.default"

    @property
    def authority(self) -> str:
        return f"{self.authority_host}/{self.tenant_id}"
