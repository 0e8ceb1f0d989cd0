"""Install and check Handoff against real services: Odoo automation rules, Dataverse webhooks, `handoff doctor`."""
