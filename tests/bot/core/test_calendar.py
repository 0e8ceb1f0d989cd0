"""Business-hours arithmetic: weekends, holidays, DST changes, and calendars from the routing file."""

from __future__ import annotations

from datetime import date, datetime, time, timezone
from pathlib import Path

import pytest
from pydantic import ValidationError

from handoff.bot.core.calendar import BusinessCalendar
from handoff.bot.core.errors import ConfigError
from handoff.bot.routing_file import load_routing

SAMPLE = Path(__file__).resolve().parents[3] / "bot" / "samples" / "routing.toml"


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=timezone.utc)


def test_defaults_are_monday_to_friday_nine_to_five_utc():
    calendar = BusinessCalendar()
    friday_four_pm = utc(2026, 11, 27, 16)
    # One hour left on Friday, the other seven on Monday morning.
    assert calendar.add(friday_four_pm, 8) == utc(2026, 11, 30, 16)
    assert calendar.hours_between(friday_four_pm, utc(2026, 11, 30, 16)) == 8
    assert not calendar.is_working(utc(2026, 11, 28, 12))
    assert calendar.next_working(utc(2026, 11, 28, 12)) == utc(2026, 11, 30, 9)


def test_a_holiday_is_skipped_like_a_weekend():
    calendar = BusinessCalendar(holidays=(date(2026, 12, 25),))
    thursday_three_pm = utc(2026, 12, 24, 15)
    # Thursday 15–17, Friday is Christmas, weekend, Monday 09–13.
    assert calendar.add(thursday_three_pm, 6) == utc(2026, 12, 28, 13)
    assert calendar.hours_between(thursday_three_pm, utc(2026, 12, 28, 13)) == 6


def test_working_hours_follow_local_wall_clock_across_a_dst_change():
    berlin = BusinessCalendar(time_zone="Europe/Berlin")
    friday_four_pm_local = utc(2026, 3, 27, 15)  # 16:00 CET (UTC+1)
    # Clocks go forward on Sunday 29 March: Monday 10:00 CEST is 08:00 UTC, 65 real hours later, not 66.
    assert berlin.add(friday_four_pm_local, 2) == utc(2026, 3, 30, 8)
    assert berlin.hours_between(friday_four_pm_local, utc(2026, 3, 30, 8)) == 2
    assert berlin.next_working(utc(2026, 3, 30, 6, 30)) == utc(2026, 3, 30, 7)


def test_an_approvers_own_zone_decides_what_counts_as_night():
    calendar = BusinessCalendar(time_zone="Europe/Berlin")
    three_am_in_singapore = utc(2026, 11, 24, 19)  # 20:00 in Berlin: after hours there too
    singapore = calendar.in_zone("Asia/Singapore")
    assert not singapore.is_working(three_am_in_singapore)
    assert singapore.next_working(three_am_in_singapore) == utc(2026, 11, 25, 1)  # 09:00 in Singapore


def test_a_wrong_zone_or_inverted_hours_is_refused_with_the_fix():
    with pytest.raises(ValidationError, match="not a known IANA time zone"):
        BusinessCalendar(time_zone="Europe/Atlantis")
    with pytest.raises(ValidationError, match="must be before end"):
        BusinessCalendar(start=time(18), end=time(9))
    with pytest.raises(ValidationError, match="working_days must name"):
        BusinessCalendar(working_days=("monday",))


def test_routing_file_calendars_by_region_with_a_default(tmp_path):
    text = SAMPLE.read_text().replace(
        "[defaults]\n", "[calendars.eu]\ntime_zone = \"Europe/Berlin\"\nholidays = [2026-12-25]\nstart = 08:30:00\n\n"
        "[defaults]\ncalendar = \"eu\"\n", 1,
    ).replace("reminders = [0.5, 1.0]", "reminders = [0.25, 0.75]", 1)
    path = tmp_path / "routing.toml"
    path.write_text(text)
    routing = load_routing(path)
    assert routing.calendar_for("apac").time_zone == "Asia/Singapore", "the sample's APAC calendar, matched ignoring case"
    assert routing.calendar_for("LATAM").time_zone == "Europe/Berlin"
    assert routing.calendar_for(None).holidays == (date(2026, 12, 25),)
    assert routing.calendar_for(None).start == time(8, 30)
    assert routing.defaults.reminders == (0.25, 0.75)
    assert routing.people["gus"].time_zone == "Asia/Singapore"


def test_routing_file_names_the_line_of_a_bad_calendar(tmp_path):
    text = SAMPLE.read_text().replace("[defaults]\n", "[calendars.eu]\ntime_zone = \"Mars/Olympus\"\n\n[defaults]\ncalendar = \"us\"\n", 1)
    path = tmp_path / "routing.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as raised:
        load_routing(path)
    line = text.splitlines().index('time_zone = "Mars/Olympus"') + 1
    assert f"{path}:{line}:" in str(raised.value) and "not a known IANA time zone" in str(raised.value)


def test_an_undefined_default_calendar_is_refused(tmp_path):
    path = tmp_path / "routing.toml"
    path.write_text(SAMPLE.read_text().replace("[defaults]\n", "[defaults]\ncalendar = \"us\"\n", 1))
    with pytest.raises(ConfigError, match=r"calendar 'us' is not defined.*Fix: add \[calendars.us\]"):
        load_routing(path)
