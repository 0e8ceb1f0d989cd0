"""Business hours: when a region works (time zone, working days, daily hours, holidays) and SLA arithmetic over them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import field_validator, model_validator

from .models import Frozen

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# A calendar whose every working day is a holiday would loop forever; ten years of searching is plenty.
_HORIZON_DAYS = 3660


def zone(name: str) -> ZoneInfo:
    """The IANA zone called `name`; a ValueError that says how to fix a typo."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"'{name}' is not a known IANA time zone. Fix: use a name like \"Europe/Berlin\", \"America/New_York\" or \"UTC\""
        ) from None


class BusinessCalendar(Frozen):
    """Working time in one place. Defaults: Monday to Friday, 09:00 to 17:00 UTC, no holidays."""

    time_zone: str = "UTC"
    working_days: tuple[str, ...] = DAY_NAMES[:5]
    start: time = time(9)
    end: time = time(17)
    holidays: tuple[date, ...] = ()

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        zone(name)
        return name

    @field_validator("working_days")
    @classmethod
    def _day_names(cls, days: tuple[str, ...]) -> tuple[str, ...]:
        wrong = [d for d in days if d.lower() not in DAY_NAMES]
        if wrong or not days:
            raise ValueError(f"working_days must name at least one of {', '.join(DAY_NAMES)}; got {list(days)}")
        return tuple(d.lower() for d in days)

    @model_validator(mode="after")
    def _hours_in_order(self) -> BusinessCalendar:
        if self.start >= self.end:
            raise ValueError(f"start ({self.start:%H:%M}) must be before end ({self.end:%H:%M}); overnight shifts are not supported")
        return self

    def in_zone(self, name: str | None) -> BusinessCalendar:
        """The same working pattern read in another time zone (an approver's own), or self."""
        return self if name is None or name == self.time_zone else self.model_copy(update={"time_zone": name})

    def _windows(self, since: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Working periods (UTC) ending after `since`, in order."""
        tz = ZoneInfo(self.time_zone)
        day = since.astimezone(tz).date()
        for offset in range(_HORIZON_DAYS):
            current = day + timedelta(days=offset)
            if DAY_NAMES[current.weekday()] not in self.working_days or current in self.holidays:
                continue
            # Local wall-clock hours, so a DST change moves the UTC window rather than the working day.
            opens = datetime.combine(current, self.start, tz).astimezone(timezone.utc)
            closes = datetime.combine(current, self.end, tz).astimezone(timezone.utc)
            if closes > since:
                yield max(opens, since), closes
        raise ValueError(f"the calendar in {self.time_zone} has no working time in the next {_HORIZON_DAYS} days")

    def local_date(self, at: datetime) -> date:
        return at.astimezone(ZoneInfo(self.time_zone)).date()

    def is_working(self, at: datetime) -> bool:
        return self.next_working(at) == at

    def next_working(self, at: datetime) -> datetime:
        """`at` itself during working hours, else the start of the next working period."""
        opens, _ = next(self._windows(at))
        return opens

    def add(self, start: datetime, hours: float) -> datetime:
        """The moment `hours` business hours after `start`; a sum that ends the day lands on the next morning."""
        left = timedelta(hours=hours)
        for opens, closes in self._windows(start):
            # Strictly before closing: what falls due as the office closes is acted on when it opens again.
            if opens + left < closes:
                return opens + left
            left -= closes - opens
        raise AssertionError("unreachable: _windows raises at its horizon")

    def hours_between(self, start: datetime, end: datetime) -> float:
        """Business hours from `start` to `end` (0 when `end` is not later)."""
        total = timedelta()
        if end <= start:
            return 0.0
        for opens, closes in self._windows(start):
            if opens >= end:
                break
            total += min(closes, end) - opens
        return total.total_seconds() / 3600
