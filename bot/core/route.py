"""Deterministic routing: which rule a request matches and why, and who receives each stage."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from decimal import Decimal

from .errors import ConfigError, HandoffError
from .models import (
    Delivery,
    ErpPerson,
    ErpRecord,
    Frozen,
    Person,
    Platform,
    RoutePlan,
    Source,
    StagePlan,
    Target,
)
from .route_checks import money
from .route_config import LEVELS, ChannelSpec, Defaults, Rule, RoutingConfig, StageSpec
from .view import inert

__all__ = [
    "ChannelSpec",
    "Defaults",
    "NoRouteError",
    "RouteFacts",
    "RoutingConfig",
    "Rule",
    "StageSpec",
    "can_decide",
    "explain",
    "members",
    "ops_target",
    "person_for_erp",
    "person_for_identity",
    "plan_route",
    "platform_of",
    "targets_for_stage",
]

log = logging.getLogger(__name__)


class NoRouteError(HandoffError):
    """No rule matches a request; the message names its facts and the rule to add."""


class RouteFacts(Frozen):
    """What routing looks at, and nothing else: a request reduced to its routing dimensions."""

    source: Source
    model: str
    amount: Decimal | None = None
    currency: str | None = None
    exception_type: str | None = None
    business_unit: str | None = None
    region: str | None = None

    @classmethod
    def from_record(cls, record: ErpRecord) -> RouteFacts:
        return cls(
            source=record.ref.source,
            model=record.ref.model,
            amount=record.amount,
            currency=record.currency,
            exception_type=record.exception_type,
            business_unit=record.business_unit,
            region=record.region,
        )

    def describe(self, with_amount: bool = True) -> str:
        """The facts as `name=value` pairs, leaving out what is unknown; the ERP's values are inert in chat sentences."""
        amount = None if self.amount is None else f"{self.amount:,.2f}" + (f" {self.currency}" if self.currency else "")
        parts = [("source", self.source), ("model", self.model), ("amount", amount if with_amount else None),
                 ("exception_type", self.exception_type), ("region", self.region), ("business_unit", self.business_unit)]
        return " ".join(f"{name}={inert(value)}" for name, value in parts if value is not None)


def _among(label: str, value: str | None, allowed: tuple[str, ...]) -> tuple[bool, str]:
    listed = ", ".join(allowed)
    if value is None:
        return False, f"no {label}; the rule needs one of: {listed}"
    # ERP pick-lists and hand-typed config disagree on case ("APAC" vs "Apac"); neither is wrong.
    if value.casefold() in {a.casefold() for a in allowed}:
        return True, f"{label} {value} is one of: {listed}"
    return False, f"{label} {value} is not one of: {listed}"


def _amount(rule: Rule, amount: Decimal | None) -> tuple[bool, str]:
    bounds = [(op, bound) for op, bound in (("≥", rule.amount_at_least), ("<", rule.amount_below)) if bound is not None]
    if amount is None:
        return False, "amount unknown; the rule needs amount " + " and ".join(f"{op} {money(bound)}" for op, bound in bounds)
    shown = f"{amount:,.2f}"
    for op, bound in bounds:
        if (amount < bound) if op == "≥" else (amount >= bound):
            return False, f"amount {shown} is not {op} {money(bound)}"
    if len(bounds) == 2:
        return True, f"amount {money(bounds[0][1])} ≤ {shown} < {money(bounds[1][1])}"
    return True, f"amount {shown} {bounds[0][0]} {money(bounds[0][1])}"


def _equal(label: str, value: str, wanted: str) -> tuple[bool, str]:
    return (True, f"{label} {value}") if value == wanted else (False, f"{label} {value} is not {wanted}")


def _verdicts(rule: Rule, facts: RouteFacts) -> list[tuple[bool, str]]:
    """One (passed, why) per dimension the rule constrains, in a fixed order so explanations are stable."""
    out: list[tuple[bool, str]] = []
    if rule.source is not None:
        out.append(_equal("source", facts.source, rule.source))
    if rule.model is not None:
        out.append(_equal("model", facts.model, rule.model))
    if rule.exception_types is not None:
        out.append(_among("exception type", facts.exception_type, rule.exception_types))
    if rule.regions is not None:
        out.append(_among("region", facts.region, rule.regions))
    if rule.business_units is not None:
        out.append(_among("business unit", facts.business_unit, rule.business_units))
    if rule.amount_at_least is not None or rule.amount_below is not None:
        out.append(_amount(rule, facts.amount))
    return out


def _failure(rule: Rule, facts: RouteFacts) -> str | None:
    return next((why for passed, why in _verdicts(rule, facts) if not passed), None)


def _matched(config: RoutingConfig, facts: RouteFacts) -> list[Rule]:
    # Explaining a rule formats money; most rules of a tiered config fail on the amount, so that is checked bare first.
    return [rule for rule in config.rules if _within(rule, facts.amount) and _failure(rule, facts) is None]


def _within(rule: Rule, amount: Decimal | None) -> bool:
    """Whether `amount` is inside the rule's bounds; an unknown amount is left for _amount to explain."""
    if amount is None:
        return True
    return (rule.amount_at_least is None or amount >= rule.amount_at_least) and (rule.amount_below is None or amount < rule.amount_below)


def _winner(config: RoutingConfig, facts: RouteFacts, matched: list[Rule] | None = None) -> Rule | None:
    matched = _matched(config, facts) if matched is None else matched
    # Load-time overlap checks leave at most one match per level; file order only breaks ties in unchecked configs.
    return min(matched, key=lambda rule: LEVELS.index(rule.level), default=None)


def _no_route(facts: RouteFacts) -> NoRouteError:
    return NoRouteError(
        f"No routing rule matches {facts.describe()}. Fix: add a rule for {facts.describe(with_amount=False)}, "
        "or a global fallback rule (one without regions or business_units). "
        "`handoff routes explain` shows why each rule was skipped."
    )


def plan_route(config: RoutingConfig, facts: RouteFacts) -> RoutePlan:
    """The matched rule laid out as stages; raises NoRouteError when no rule matches."""
    # Matching builds every rule's explanation, so it runs once per request (`handoff bench`: 15% of a card's CPU at 256 rules).
    matched = _matched(config, facts)
    rule = _winner(config, facts, matched)
    if rule is None:
        raise _no_route(facts)
    reasons = [why for _, why in _verdicts(rule, facts)] or ["no conditions: matches every request"]
    beaten = [other for other in matched if other is not rule]
    reasons += [f"{rule.level} beats {other.level} rule '{other.name}'" for other in beaten]
    stages = tuple(_stage_plan(config, index, spec) for index, spec in enumerate(rule.stages))
    return RoutePlan(rule=rule.name, level=rule.level, stages=stages, policy_notes=rule.policy_notes, reasons=tuple(reasons))


def _stage_plan(config: RoutingConfig, index: int, spec: StageSpec) -> StagePlan:
    return StagePlan(
        index=index,
        role=spec.role,
        mode=spec.mode,
        quorum=spec.quorum or 1,
        delivery=spec.deliver,
        channel=spec.channel,
        sla_hours=spec.sla_hours or config.defaults.sla_hours,
        escalate_to=config.escalation_for(spec),
    )


def explain(config: RoutingConfig, facts: RouteFacts) -> list[str]:
    """Human lines: every rule, its level, whether it matched or the first condition that failed, then the winner."""
    winner = _winner(config, facts)
    lines = [f"Facts: {facts.describe()}"]
    for rule in config.rules:
        failure = _failure(rule, facts)
        head = f"- rule '{rule.name}' ({rule.level}): "
        if failure is not None:
            lines.append(head + f"skipped, {failure}")
        elif winner is not None and rule is not winner:
            lines.append(head + f"matches, but loses to {winner.level} rule '{winner.name}' ({winner.level} beats {rule.level})")
        else:
            lines.append(head + "matches: " + ("; ".join(why for _, why in _verdicts(rule, facts)) or "no conditions"))
    if winner is None:
        lines.append(f"No winner. {_no_route(facts)}")
    else:
        lines.append(f"Winner: rule '{winner.name}' ({winner.level}), the most specific level with a match (local > regional > global).")
    return lines


def members(config: RoutingConfig, role: str) -> list[Person]:
    """The people in a role; [] for a role a newer config no longer has (requests outlive config edits)."""
    spec = config.roles.get(role)
    if spec is None:
        log.warning("routing.role_missing", extra={"role": role})
        return []
    return [config.people[key] for key in spec.members if key in config.people]


def can_decide(config: RoutingConfig, stage: StagePlan, person: Person) -> bool:
    """Whether this person belongs to the role that decides this stage."""
    return any(member.key == person.key for member in members(config, stage.role))


def person_for_identity(config: RoutingConfig, platform: Platform, user_id: str) -> Person | None:
    """The person behind a verified chat identity, or None if the config doesn't know them."""
    if not user_id:
        return None
    # AAD object ids are GUIDs, which compare case-insensitively; Slack ids are upper-case already.
    wanted = user_id.casefold()
    return next((p for p in config.people.values() if getattr(p, platform) and getattr(p, platform).casefold() == wanted), None)


def person_for_erp(config: RoutingConfig, erp_person: ErpPerson | None) -> Person | None:
    """The configured person an ERP user is: by ERP login first, then by email, ignoring case."""
    if erp_person is None:
        return None
    for ours, theirs in (("erp_login", erp_person.login), ("email", erp_person.email)):
        if theirs:
            found = next((p for p in config.people.values() if (getattr(p, ours) or "").casefold() == theirs.casefold()), None)
            if found is not None:
                return found
    return None


def platform_of(config: RoutingConfig, plan: RoutePlan) -> Platform:
    """The platform a plan's cards go to: its rule's, else the default (also when the rule was since removed)."""
    rule = next((r for r in config.rules if r.name == plan.rule), None)
    return config.platform_for(rule) if rule is not None else config.defaults.platform


def targets_for_stage(
    config: RoutingConfig, plan: RoutePlan, stage: StagePlan, exclude: set[str], delegates: Mapping[str, str] | None = None
) -> list[Target]:
    """Where a stage's cards go; [] when nobody outside `exclude` (the requester) could decide it.

    A DM stage also reaches the active delegate (`delegates`: delegator key -> delegate key) of each member.
    """
    platform = platform_of(config, plan)
    eligible = [p for p in members(config, stage.role) if p.key not in exclude]
    if not eligible:
        return []
    if stage.delivery is Delivery.CHANNEL:
        spec = config.channels.get(stage.channel or "")
        address = spec.address(platform) if spec else None
        return [Target(platform=platform, kind="channel", address=address)] if address else []
    stand_ins = [config.people[d] for p in eligible if (d := (delegates or {}).get(p.key)) in config.people]
    reached = {p.key: p for p in eligible + stand_ins if p.key not in exclude}
    return [
        Target(platform=platform, kind="dm", address=getattr(p, platform), person=p.key)
        for p in reached.values()
        if getattr(p, platform)
    ]


def ops_target(config: RoutingConfig, platform: Platform) -> Target:
    """The operations channel on a platform (falling back to the default platform's) for failures and stalls."""
    key = config.defaults.ops_channel
    spec = config.channels.get(key, ChannelSpec())
    for candidate in (platform, config.defaults.platform):
        address = spec.address(candidate)
        if address:
            return Target(platform=candidate, kind="channel", address=address)
    raise ConfigError(
        f"The ops channel '{key}' has no {platform} address, so a failure alert cannot be sent. "
        f"Fix: add {platform} = \"<channel id>\" to [channels.{key}] in the routing config."
    )
