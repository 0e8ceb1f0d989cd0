"""The routing config's cross-checks: each problem located (file:line where known) and followed by its fix."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import TYPE_CHECKING

from .models import Delivery, Platform, StageMode

if TYPE_CHECKING:
    from .route_config import Locate, Rule, RoutingConfig, StageSpec

CHANNEL_ID_HINT = {"slack": "Slack channel id, e.g. C0123ABCD", "teams": "Teams channel id, e.g. 19:…@thread.tacv2"}
PERSON_ID_HINT = {"slack": "Slack user id, e.g. U0123ABCD", "teams": "AAD object id, a GUID"}

def _known(names: Iterable[str]) -> str:
    return ", ".join(sorted(names)) or "(none defined)"


def problems(config: RoutingConfig, at: Locate) -> Iterator[str]:
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
