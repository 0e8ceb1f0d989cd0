"""manifest/openapi.yaml is a valid OpenAPI 3 document and names exactly the routes the app serves."""

from __future__ import annotations

from importlib.resources import files

import yaml
from openapi_spec_validator import validate

from handoff.bot.app import create_app
from handoff.bot.config import Settings
from handoff.bot.fakes.stack import SAMPLE_ROUTING
from handoff.bot.routing_file import load_routing


def spec() -> dict:
    # Read through the package, as an installed Handoff ships it.
    return yaml.safe_load(files("handoff.manifest").joinpath("openapi.yaml").read_text(encoding="utf-8"))


def test_the_spec_is_valid_openapi():
    validate(spec())


def served_routes() -> set[tuple[str, str]]:
    app = create_app(Settings(database=":memory:"), load_routing(SAMPLE_ROUTING))
    # A sub-application (the console) has its routes' paths prefixed already when it is mounted.
    routers = [app.router, *(r.get_info()["app"].router for r in app.router.resources() if "app" in r.get_info())]
    routes = {(route.method, route.resource.canonical) for router in routers for route in router.routes()}
    return {(method, path) for method, path in routes if method != "HEAD"}


def test_every_served_route_is_described_and_nothing_else():
    described = {(method.upper(), path) for path, item in spec()["paths"].items() for method in item if method != "parameters"}
    assert described == served_routes()
