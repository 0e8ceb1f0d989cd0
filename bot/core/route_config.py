"""The routing config's shape and its cross-checks: who approves what, validated before Handoff routes anything."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Annotated, Literal, TypeVar

from pydantic import AfterValidator, Field, PositiveFloat, PositiveInt, ValidationInfo, field_validator, model_validator

from . import route_checks
from .calendar import BusinessCalendar, zone
from .errors import ConfigError
from .models import Delivery, EscalationChain, Frozen, Person, Platform, Source, StageMode

ExceptionType = Literal[
    "credit_hold",
    "stockout",
    "pricing_variance",
    "compliance_review",
    "address_validation_failure",
    "carrier_capacity",
]
T = TypeVar("T")


def _non_empty(values: tuple[T, ...]) -> tuple[T, ...]:
    # An empty list would make a rule match nothing while still claiming its level.
    if not values:
        raise ValueError("an empty list matches nothing. Fix: list at least one value, or leave the key out to match any")
    return values


NonEmpty = Annotated[tuple[T, ...], AfterValidator(_non_empty)]
Level = Literal["local", "regional", "global"]
LEVELS: tuple[Level, ...] = ("local", "regional", "global")  # most specific first: the precedence order

Loc = tuple[str | int, ...]
Locate = Callable[[Loc], str]



class Defaults(Frozen):
    platform: Platform = "slack"
    ops_channel: str = "ops"
    sla_hours: PositiveFloat = 8.0
    calendar: str | None = None  # a [calendars.<key>] for regions without their own; None: Mon–Fri 09–17 UTC
    reminders: tuple[PositiveFloat, ...] = (0.5, 1.0)  # fractions of a stage's SLA at which approvers are reminded


class PersonSpec(Person):
    """A person as the routing file lists them; `time_zone` keeps reminders out of their night."""

    time_zone: str | None = None  # None: the calendar of the request's region

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, name: str | None) -> str | None:
        if name is not None:
            zone(name)
        return name


class Role(Frozen):
    members: tuple[str, ...] = ()
    manager: str | None = None  # the role above: a stage without escalate_to escalates up this line


class ChannelSpec(Frozen):
    """A channel as each platform addresses it."""

    slack: str | None = None
    teams: str | None = None

    def address(self, platform: Platform) -> str | None:
        return getattr(self, platform)


class StageSpec(Frozen):
    role: str
    mode: StageMode = StageMode.FIRST
    quorum: PositiveInt | None = None
    deliver: Delivery = Delivery.CHANNEL
    channel: str | None = None
    sla_hours: PositiveFloat | None = None  # None: [defaults] sla_hours
    escalate_to: EscalationChain = ()  # "role" or ["role", "next role", ...]: one step per further SLA period


class Rule(Frozen):
    """One routing rule; None on a matching field means "any"."""

    name: str = Field(min_length=1)
    source: Source | None = None
    model: str | None = None
    amount_at_least: Decimal | None = None
    amount_below: Decimal | None = None
    exception_types: NonEmpty[ExceptionType] | None = None
    regions: NonEmpty[str] | None = None
    business_units: NonEmpty[str] | None = None
    platform: Platform | None = None
    policy_notes: tuple[str, ...] = ()
    # Its requests may be approved together from a person's pending inbox ("Approve all N"), each still checked.
    bulk_approve: bool = False
    stages: tuple[StageSpec, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _tier_is_not_empty(self) -> Rule:
        low, high = self.amount_at_least, self.amount_below
        if low is not None and high is not None and low >= high:
            raise ValueError(
                f"amount_at_least ({low}) must be below amount_below ({high}), or the rule matches no amount. "
                "Fix: swap or correct the two bounds"
            )
        return self

    @property
    def level(self) -> Level:
        """Derived, never declared, so a rule cannot claim more specificity than its filters give it."""
        if self.business_units is not None:
            return "local"
        return "regional" if self.regions is not None else "global"


class RoutingInvalid(ConfigError):
    """The routing config parsed but does not hold together; `problems` has one located line each."""

    def __init__(self, problems: list[str]) -> None:
        head = problems[0] if len(problems) == 1 else f"The routing config has {len(problems)} problems:\n" + "\n".join(problems)
        super().__init__(head)
        self.problems = problems


class RoutingConfig(Frozen):
    """People, roles, channels and rules. Building one runs every cross-check; pass `context={"locate": …}` for file:line."""

    defaults: Defaults = Defaults()
    people: dict[str, PersonSpec] = {}
    roles: dict[str, Role] = {}
    channels: dict[str, ChannelSpec] = {}
    calendars: dict[str, BusinessCalendar] = {}  # keyed by region (matched ignoring case), or any name for [defaults] calendar
    rules: tuple[Rule, ...] = Field(min_length=1)

    @field_validator("people", mode="before")
    @classmethod
    def _key_from_table_name(cls, people: object) -> object:
        if not isinstance(people, dict):
            return people
        return {key: {**entry, "key": key} if isinstance(entry, dict) else entry for key, entry in people.items()}

    @model_validator(mode="after")
    def _cross_check(self, info: ValidationInfo) -> RoutingConfig:
        locate = (info.context or {}).get("locate", dotted)
        problems = list(route_checks.problems(self, locate))
        if problems:
            # Not a ValueError on purpose: pydantic lets it through whole, so each problem keeps its own location.
            raise RoutingInvalid(problems)
        return self

    def platform_for(self, rule: Rule) -> Platform:
        return rule.platform or self.defaults.platform

    def escalation_for(self, stage: StageSpec) -> tuple[str, ...]:
        """The stage's escalate_to, else its role's manager roles, nearest first."""
        if stage.escalate_to:
            return stage.escalate_to
        chain: list[str] = []
        role = self.roles.get(stage.role)
        # A manager cycle is refused at load; the membership test only keeps an unchecked config from looping.
        while role is not None and role.manager and role.manager not in (stage.role, *chain):
            chain.append(role.manager)
            role = self.roles.get(role.manager)
        return tuple(chain)

    def calendar_for(self, region: str | None) -> BusinessCalendar:
        """The region's calendar, else [defaults] calendar, else Mon–Fri 09:00–17:00 UTC."""
        wanted = (region or "").casefold()
        found = next((c for key, c in self.calendars.items() if key.casefold() == wanted), None)
        return found or self.calendars.get(self.defaults.calendar or "", BusinessCalendar())


def dotted(loc: Loc) -> str:
    """A config location without a file behind it: rules.0.stages.1.role."""
    return ".".join(str(part) for part in loc)
