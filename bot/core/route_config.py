"""The routing config's shape and its cross-checks: who approves what, validated before Handoff routes anything."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from typing import Annotated, Literal, TypeVar

from pydantic import AfterValidator, Field, PositiveFloat, PositiveInt, ValidationInfo, field_validator, model_validator

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

CHANNEL_ID_HINT = {"slack": "Slack channel id, e.g. C0123ABCD", "teams": "Teams channel id, e.g. 19:…@thread.tacv2"}
PERSON_ID_HINT = {"slack": "Slack user id, e.g. U0123ABCD", "teams": "AAD object id, a GUID"}


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
        locate = (info.context or {}).get("locate", _dotted)
        problems = list(_problems(self, locate))
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


def _dotted(loc: Loc) -> str:
    return ".".join(str(part) for part in loc)


def _known(names: Iterable[str]) -> str:
    return ", ".join(sorted(names)) or "(none defined)"


def _problems(config: RoutingConfig, at: Locate) -> Iterator[str]:
    yield from _check_ops_channel(config, at)
    if config.defaults.calendar is not None and config.defaults.calendar not in config.calendars:
        yield (
            f"{at(('defaults', 'calendar'))}: [defaults] calendar '{config.defaults.calendar}' is not defined, so SLAs "
            f"could not be counted. Fix: add [calendars.{config.defaults.calendar}] or use one of: {_known(config.calendars)}."
        )
    yield from _check_roles(config, at)
    yield from _check_managers(config, at)
    yield from _check_rule_names(config, at)
    for i, rule in enumerate(config.rules):
        for j, stage in enumerate(rule.stages):
            yield from _check_stage(config, at, i, rule, j, stage)
    yield from _check_dm_ids(config, at)
    yield from _check_overlaps(config, at)


def _check_ops_channel(config: RoutingConfig, at: Locate) -> Iterator[str]:
    key = config.defaults.ops_channel
    channel = config.channels.get(key)
    if channel is None:
        yield (
            f"{at(('defaults', 'ops_channel'))}: [defaults] ops_channel '{key}' is not a channel, so failures and stall "
            f"alerts have nowhere to go. Fix: add [channels.{key}] or set ops_channel to one of: {_known(config.channels)}."
        )
        return
    for platform in sorted({config.defaults.platform, *(config.platform_for(rule) for rule in config.rules)}):
        if channel.address(platform) is None:
            yield (
                f"{at(('channels', key))}: [channels.{key}] has no {platform} address, but it is the ops channel and "
                f"requests are routed on {platform}. Fix: add {platform} = \"<{CHANNEL_ID_HINT[platform]}>\" to [channels.{key}]."
            )


def _check_roles(config: RoutingConfig, at: Locate) -> Iterator[str]:
    for name, role in config.roles.items():
        if not role.members:
            yield (
                f"{at(('roles', name))}: role '{name}' has no members, so nobody could decide its stages. "
                f"Fix: list at least one person key in members = [...] under [roles.{name}]."
            )
        for member in role.members:
            if member not in config.people:
                yield (
                    f"{at(('roles', name, 'members'))}: role '{name}' lists '{member}', who is not in [people]. "
                    f"Fix: add [people.{member}] or use one of: {_known(config.people)}."
                )


def _check_managers(config: RoutingConfig, at: Locate) -> Iterator[str]:
    for name, role in config.roles.items():
        if role.manager is None:
            continue
        if role.manager not in config.roles:
            yield (
                f"{at(('roles', name, 'manager'))}: role '{name}' names manager role '{role.manager}', which is not "
                f"defined. Fix: add [roles.{role.manager}] or use one of: {_known(config.roles)}."
            )
            continue
        line, current = [name], role.manager
        while current in config.roles and current not in line:
            line.append(current)
            current = config.roles[current].manager
        if current == name and name == min(line):  # a cycle, reported once, at its first role by name
            yield (
                f"{at(('roles', name, 'manager'))}: roles {' → '.join([*line, name])} manage each other in a circle, so "
                f"an escalation up that line would never end. Fix: remove manager from one of them."
            )


def _check_rule_names(config: RoutingConfig, at: Locate) -> Iterator[str]:
    first_at: dict[str, int] = {}
    for i, rule in enumerate(config.rules):
        if rule.name in first_at:
            yield (
                f"{at(('rules', i, 'name'))}: two rules are named '{rule.name}' (the other is at "
                f"{at(('rules', first_at[rule.name]))}). Fix: give each rule a unique name; requests record the rule by name."
            )
        first_at.setdefault(rule.name, i)


def _check_stage(config: RoutingConfig, at: Locate, i: int, rule: Rule, j: int, stage: StageSpec) -> Iterator[str]:
    here, platform = f"rule '{rule.name}' stage {j + 1}", config.platform_for(rule)
    role = config.roles.get(stage.role)
    if role is None:
        yield (
            f"{at(('rules', i, 'stages', j, 'role'))}: {here} names role '{stage.role}', which is not defined. "
            f"Fix: add [roles.{stage.role}] or use one of: {_known(config.roles)}."
        )
    yield from _check_chain(config, at(('rules', i, 'stages', j, 'escalate_to')), here, stage)
    if stage.deliver is Delivery.CHANNEL:
        yield from _check_stage_channel(config, at, (i, j), here, stage.channel, platform)
    if stage.mode is StageMode.QUORUM and role is not None:
        count = len(role.members)
        if stage.quorum is None:
            yield (
                f"{at(('rules', i, 'stages', j, 'mode'))}: {here} uses mode = \"quorum\" without a quorum. "
                f"Fix: add quorum = N (at most {count}, the members of role '{stage.role}')."
            )
        elif stage.quorum > count:
            yield (
                f"{at(('rules', i, 'stages', j, 'quorum'))}: {here} needs a quorum of {stage.quorum}, but role "
                f"'{stage.role}' has only {count} member(s). Fix: lower quorum to at most {count} or add members to [roles.{stage.role}]."
            )


def _check_chain(config: RoutingConfig, where: str, here: str, stage: StageSpec) -> Iterator[str]:
    seen: set[str] = set()
    for step, role in enumerate(stage.escalate_to, 1):
        if role not in config.roles:
            yield (
                f"{where}: {here} escalates to role '{role}', which is not defined. "
                f"Fix: add [roles.{role}] or use one of: {_known(config.roles)}."
            )
        elif role == stage.role:
            yield (
                f"{where}: {here} escalates to its own role '{role}' (step {step}), whose members already hold the stage. "
                f"Fix: remove '{role}' from escalate_to and name the role above it."
            )
        elif role in seen:
            yield (
                f"{where}: {here} escalates to role '{role}' twice (step {step} repeats it), so that step would tell "
                f"nobody new. Fix: list each role once in escalate_to."
            )
        seen.add(role)


def _check_stage_channel(
    config: RoutingConfig, at: Locate, ij: tuple[int, int], here: str, key: str | None, platform: Platform
) -> Iterator[str]:
    i, j = ij
    if key is None:
        yield (
            f"{at(('rules', i, 'stages', j, 'deliver'))}: {here} delivers to a channel but names none. "
            f"Fix: add channel = \"<key>\" (one of: {_known(config.channels)}) or set deliver = \"dm\"."
        )
    elif key not in config.channels:
        yield (
            f"{at(('rules', i, 'stages', j, 'channel'))}: {here} names channel '{key}', which is not defined. "
            f"Fix: add [channels.{key}] or use one of: {_known(config.channels)}."
        )
    elif config.channels[key].address(platform) is None:
        yield (
            f"{at(('rules', i, 'stages', j, 'channel'))}: {here} posts to channel '{key}' on {platform}, but "
            f"[channels.{key}] has no {platform} address. Fix: add {platform} = \"<{CHANNEL_ID_HINT[platform]}>\" "
            f"to [channels.{key}] or set the rule's platform."
        )


def _check_dm_ids(config: RoutingConfig, at: Locate) -> Iterator[str]:
    reported: set[tuple[str, str]] = set()
    for rule in config.rules:
        platform = config.platform_for(rule)
        for j, stage in enumerate(rule.stages):
            role = config.roles.get(stage.role)
            if stage.deliver is not Delivery.DM or role is None:
                continue
            for key in role.members:
                person = config.people.get(key)
                if person is None or getattr(person, platform) is not None or (key, platform) in reported:
                    continue
                reported.add((key, platform))
                yield (
                    f"{at(('people', key))}: person '{key}' has no {platform} id, but rule '{rule.name}' stage {j + 1} "
                    f"sends DMs to role '{stage.role}' on {platform}. Fix: add {platform} = \"<{PERSON_ID_HINT[platform]}>\" "
                    f"to [people.{key}]."
                )


def _check_overlaps(config: RoutingConfig, at: Locate) -> Iterator[str]:
    for j, later in enumerate(config.rules):
        for i, earlier in enumerate(config.rules[:j]):
            if earlier.level == later.level and _can_both_match(earlier, later):
                yield (
                    f"{at(('rules', j))}: rule '{later.name}' overlaps rule '{earlier.name}' at {at(('rules', i))}: "
                    f"both are {later.level} and both match {_shared(earlier, later)}, so neither wins. "
                    "Fix: make the amount tiers disjoint or narrow exception_types."
                )


def _sets_meet(a: tuple[str, ...] | None, b: tuple[str, ...] | None) -> bool:
    return a is None or b is None or bool({x.casefold() for x in a} & {x.casefold() for x in b})


def _bounds(rules: tuple[Rule, Rule]) -> tuple[Decimal | None, Decimal | None]:
    lows = [r.amount_at_least for r in rules if r.amount_at_least is not None]
    highs = [r.amount_below for r in rules if r.amount_below is not None]
    return (max(lows) if lows else None), (min(highs) if highs else None)


def _can_both_match(a: Rule, b: Rule) -> bool:
    low, high = _bounds((a, b))
    return (
        (a.source is None or b.source is None or a.source == b.source)
        and (a.model is None or b.model is None or a.model == b.model)
        and _sets_meet(a.exception_types, b.exception_types)
        and _sets_meet(a.regions, b.regions)
        and _sets_meet(a.business_units, b.business_units)
        and (low is None or high is None or low < high)
    )


def money(amount: Decimal) -> str:
    """A bound as people write it: 10,000 rather than 10000.0."""
    return f"{int(amount):,}" if amount == amount.to_integral_value() else f"{amount:,.2f}"


def _shared(a: Rule, b: Rule) -> str:
    low, high = _bounds((a, b))
    if low is not None and high is not None:
        amounts = f"amounts from {money(low)} to below {money(high)}"
    elif low is not None:
        amounts = f"amounts ≥ {money(low)}"
    elif high is not None:
        amounts = f"amounts < {money(high)}"
    else:
        amounts = "any amount"
    kinds = [set(r.exception_types) for r in (a, b) if r.exception_types is not None]
    if not kinds:
        return f"{amounts} with any exception type or none"
    return f"{amounts} with exception type {_known(set.intersection(*kinds))}"
