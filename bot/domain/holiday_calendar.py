"""Public holidays: a country's calendar from the maintained ``holidays`` package (Cambodia's by
default, lunar holidays included, with their Khmer names), plus the days the configuration adds
(``deadlines.holidays``: substitute days the government announces) and less those it takes away
(``deadlines.not_holidays``: a holiday moved or cancelled).

Deadlines ask ``day in calendar`` for every day they count, so each year's days are worked out
once, on first use, and kept as a set.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Literal

import holidays as holiday_library

from bot.config import WEEKDAYS, Settings

DEFAULT_COUNTRY = "KH"


@dataclass(frozen=True)
class Holiday:
    day: date
    name: str        # in English, or what the configuration says
    name_local: str  # in the country's language when the package has it (Khmer for KH), else ""
    source: Literal["calendar", "added", "removed"]  # removed: the calendar's, counted as working


@dataclass(frozen=True)
class HolidayCalendar:
    country: str | None = DEFAULT_COUNTRY  # None: only the days added
    added: frozenset[date] = frozenset()
    removed: frozenset[date] = frozenset()
    _years: dict[int, frozenset[date]] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.country is not None:
            try:
                holiday_library.country_holidays(self.country)
            except NotImplementedError:
                raise ValueError(f"deadlines.holiday_country: {self.country!r} is not a country the "
                                 "holidays package knows (e.g. \"KH\" for Cambodia; \"\" for none)") from None

    def __contains__(self, day: object) -> bool:
        if not isinstance(day, date) or day in self.removed:
            return False
        if day in self.added:
            return True
        return self.country is not None and day in self._year(day.year)

    def between(self, after: date, upto: date) -> list[date]:
        """The holidays d with ``after < d <= upto``, in order."""
        days = {d for d in self.added if after < d <= upto}
        if self.country is not None:
            for year in range(after.year, upto.year + 1):
                days.update(d for d in self._year(year) if after < d <= upto)
        return sorted(days - self.removed)

    def _year(self, year: int) -> frozenset[date]:
        days = self._years.get(year)
        if days is None:
            days = self._years[year] = frozenset(self._country_days(year))
        return days

    def __bool__(self) -> bool:  # "are there holidays at all": deadlines count days plainly if not
        return self.country is not None or bool(self.added)

    def _country_days(self, year: int, language: str | None = None) -> dict[date, str]:
        if self.country is None:
            return {}
        return dict(holiday_library.country_holidays(self.country, years=year, language=language))

    def year(self, year: int) -> list[Holiday]:
        """The year's holidays, in order, with where each comes from (for ``check-config``)."""
        english = self._country_days(year, "en_US")
        languages = holiday_library.country_holidays(self.country).supported_languages if self.country else ()
        local_language = next((lang for lang in languages if not lang.startswith("en")), None)
        local = self._country_days(year, local_language) if local_language else {}
        out = [Holiday(d, name, local.get(d, ""), "removed" if d in self.removed else "calendar")
               for d, name in english.items()]
        out += [Holiday(d, "added by deadlines.holidays", "", "added")
                for d in self.added if d.year == year and d not in english]
        return sorted(out, key=lambda h: h.day)


def holiday_calendar(settings: Settings) -> HolidayCalendar:
    """The public holidays deadlines skip: the country's (``deadlines.holiday_country``), plus
    ``deadlines.holidays``, less ``deadlines.not_holidays``. The country's count only with
    working days (without them every day counts); the days listed count as they always did."""
    d = settings.deadlines
    return HolidayCalendar(d.holiday_country if d.working_days else None, frozenset(d.holidays),
                           frozenset(d.not_holidays))


def calendar_problem(settings: Settings) -> str | None:
    """Why the configured calendar cannot be built (one line naming the key), or None."""
    try:
        HolidayCalendar(settings.deadlines.holiday_country)
    except ValueError as exc:
        return str(exc)
    return None


def holiday_lines(settings: Settings, year: int) -> list[str]:
    """The year's holidays as ``casebot check-config`` prints them (none: every day counts)."""
    if settings.deadlines.working_days is None:
        return []
    lines = []
    for h in holiday_calendar(settings).year(year):
        name = h.name + (f" / {h.name_local}" if h.name_local else "")
        mark = " (deadlines.not_holidays: a working day)" if h.source == "removed" else ""
        lines.append(f"{h.day.isoformat()} {WEEKDAYS[h.day.weekday()]} {name}{mark}")
    return lines
