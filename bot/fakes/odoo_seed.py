"""Seeding the fake Odoo: companies, people, vendors and purchase orders, and the demo's small realistic dataset."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .odoo_db import PURCHASE_MANAGER, SETTINGS_ADMIN_MODELS, OdooDb

if TYPE_CHECKING:
    from .odoo import FakeOdoo

DEFAULT_COMPANY = "Handoff Demo EU"


class OdooSeeding:
    """Helpers FakeOdoo offers to put records in place; each find-or-creates by name so tests stay short."""

    db: OdooDb
    api_uid: int

    def add_currency(self, name: str) -> int:
        return self.db.find("res.currency", name=name) or self.db.create("res.currency", {"name": name})

    def add_partner(self, name: str, email: str | None = None) -> int:
        return self.db.find("res.partner", name=name) or self.db.create("res.partner", {"name": name, "email": email or False})

    def add_user(self, login: str, name: str | None = None, email: str | None = None, groups: Iterable[str] = ()) -> int:
        found = self.db.find("res.users", login=login)
        if found:
            return found
        default_email = login if "@" in login else False
        uid = self.db.create("res.users", {"name": name or login.partition("@")[0].title(), "login": login, "email": email or default_email})
        self.db.groups[uid] = set(groups)
        return uid

    def add_company(
        self, name: str = DEFAULT_COMPANY, currency: str = "EUR", double_validation: str = "one_step", threshold: float = 5000.0, po_lock: str = "edit"
    ) -> int:
        """A company with its purchase settings: `double_validation` is one_step or two_step, `po_lock` edit or lock."""
        return self.db.find("res.company", name=name) or self.db.create("res.company", {
            "name": name, "currency_id": self.add_currency(currency), "po_double_validation": double_validation,
            "po_double_validation_amount": float(threshold), "po_lock": po_lock,
        })

    def set_purchase_manager(self, is_manager: bool = True) -> None:
        """Put the API user in Purchase / Administrator, or take it out: that decides button_approve above the threshold."""
        groups = self.db.groups.setdefault(self.api_uid, set())
        if is_manager:
            groups.add(PURCHASE_MANAGER)
        else:
            groups.discard(PURCHASE_MANAGER)

    def set_settings_admin(self, is_admin: bool = True) -> None:
        """Put the API user in Administration / Settings, or take it out: only that group manages automation rules."""
        if is_admin:
            self.db.denied_models.difference_update(SETTINGS_ADMIN_MODELS)
        else:
            self.db.denied_models.update(SETTINGS_ADMIN_MODELS)

    def automation_rules(self) -> list[dict[str, Any]]:
        """Every automation rule with its server actions inlined, as an Odoo admin would see them in Settings."""
        db = self.db
        rules = db.read("base.automation", sorted(db.records["base.automation"]), None, load=None)
        for rule in rules:
            rule["actions"] = db.read("ir.actions.server", rule["action_server_ids"], None, load=None)
        return rules

    def add_purchase_order(
        self,
        *,
        name: str | None = None,
        vendor: str = "Acme Supplies",
        amount: float | None = None,
        currency: str = "EUR",
        requester_login: str | None = "marc@example.com",
        lines: Iterable[tuple[str, float, float]] = (),
        state: str = "to approve",
        attachments: int = 0,
        company: str = DEFAULT_COMPANY,
        date_order: str | None = None,
        **custom: Any,
    ) -> int:
        """A purchase order with (description, quantity, unit price) lines; `custom` sets x_ fields, declaring them."""
        lines = list(lines)
        for field in custom:
            self.db.declare("purchase.order", field)
        total = amount if amount is not None else sum(qty * price for _, qty, price in lines)
        order_id = self.db.create("purchase.order", {
            "name": name or "New", "state": state, "partner_id": self.add_partner(vendor), "amount_total": round(float(total), 2),
            "currency_id": self.add_currency(currency), "user_id": self.add_user(requester_login) if requester_login else False,
            "company_id": self.add_company(company), "date_order": date_order or self.db.stamp(), "locked": False, **custom,
        })
        order = self.db.records["purchase.order"][order_id]
        order["name"] = name or f"P{order_id:05d}"
        for description, qty, price in lines:
            self.db.create("purchase.order.line", {
                "name": description, "order_id": order_id, "product_qty": float(qty), "price_unit": float(price),
                "price_subtotal": round(qty * price, 2), "display_type": False,
            })
        for number in range(1, attachments + 1):
            self.db.create("ir.attachment", {"name": f"{order['name']} quotation {number}.pdf", "res_model": "purchase.order", "res_id": order_id})
        return order_id

    def set_field(self, model: str, record_id: int, *, by: str | None = None, **values: Any) -> None:
        """Change a record as a user in Odoo would (`by`: their login), bumping its write_date: how tests make a record drift."""
        self.db.update(model, record_id, values, self.add_user(by) if by else None)


def demo_seed(fake: FakeOdoo, *, purchase_manager: bool = True) -> dict[str, int]:
    """Three vendors, three requesters, four orders waiting for approval (one without any attachment) and some history."""
    fake.add_company("Handoff Demo EU", currency="EUR", double_validation="two_step", threshold=5000)
    fake.add_company("Handoff Demo US", currency="USD", double_validation="two_step", threshold=5000)
    for login, name in (("marc@example.com", "Marc Demo"), ("priya@example.com", "Priya Patel"), ("tom@example.com", "Tom Jansen")):
        fake.add_user(login, name)
    fake.set_purchase_manager(purchase_manager)
    history = {
        "P00031": fake.add_purchase_order(name="P00031", vendor="Acme Supplies", state="purchase", lines=[("Steel bolts M8 (box of 100)", 300, 14.0)],
                                          date_order="2024-04-02 08:30:00", x_exception_type="price_variance"),
        "P00035": fake.add_purchase_order(name="P00035", vendor="Acme Supplies", state="cancel", requester_login="priya@example.com",
                                          lines=[("Safety gloves, size L", 40, 24.5)], date_order="2024-05-10 14:05:00"),
        "P00038": fake.add_purchase_order(name="P00038", vendor="Northwind Traders", state="purchase", requester_login="priya@example.com",
                                          lines=[("Office chairs, ergonomic", 12, 650.0)], attachments=1, date_order="2024-05-28 10:00:00"),
    }
    waiting = {
        "P00042": fake.add_purchase_order(name="P00042", vendor="Acme Supplies", requester_login="marc@example.com", attachments=1,
                                          lines=[("Steel bolts M8 (box of 100)", 500, 12.0), ("Hydraulic fittings kit", 100, 45.0), ("On-site installation", 1, 2000.0)],
                                          date_order="2024-06-14 09:12:00"),
        "P00043": fake.add_purchase_order(name="P00043", vendor="Northwind Traders", requester_login="priya@example.com", attachments=2,
                                          lines=[("Laptop docking station", 40, 54.0), ("27-inch monitor", 12, 90.0)], date_order="2024-06-15 11:40:00"),
        "P00044": fake.add_purchase_order(name="P00044", vendor="Globex Logistics", currency="USD", company="Handoff Demo US",
                                          requester_login="tom@example.com", lines=[("Freight forwarding, Q3 lane Rotterdam-Newark", 1, 48000.0)],
                                          date_order="2024-06-16 16:20:00"),
        "P00045": fake.add_purchase_order(name="P00045", vendor="Acme Supplies", requester_login="priya@example.com", attachments=1,
                                          lines=[("Cordless drill 18V", 10, 89.9), ("Drill bit set", 5, 120.0)], date_order="2024-06-17 08:05:00"),
    }
    return history | waiting
