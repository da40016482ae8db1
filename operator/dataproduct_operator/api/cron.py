"""Cron schedules checked field by field, as the CronJob controller reads them (layer ``api``,
pure).

A schedule is five fields separated by spaces or tabs: minute, hour, day of month, month, day
of week. Each field is a comma-separated list of items; an item is ``*``, a value or a range ``a-b``
(``a <= b``), optionally followed by a step ``/n`` (``n >= 1``). Months and days of the week may
be named (JAN-DEC, SUN-SAT, any case). The CronJob controller refuses anything else only when
it schedules, long after ``kubectl apply`` said yes; here the CRD refuses it at apply time, one
CEL rule per field so the message names the field, and one for the order of the ends of every
numeric range; the models run the same checks on objects written under an older CRD.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# The whole shape: five space-separated fields of items. The per-field rules check the values.
_ITEM_SHAPE = r"(\*|[0-9]+(-[0-9]+)?|[A-Za-z]{3}(-[A-Za-z]{3})?)(/[0-9]+)?"
_FIELD_SHAPE = rf"{_ITEM_SHAPE}(,{_ITEM_SHAPE})*"
# Fields are separated by spaces or tabs, as the CronJob controller reads them.
_BLANK = r"[ \t]"
CRON = rf"^{_BLANK}*{_FIELD_SHAPE}({_BLANK}+{_FIELD_SHAPE}){{4}}{_BLANK}*$"
CRON_MESSAGE = "schedule must be a 5-field cron expression such as '0 * * * *'"
MAX_SCHEDULE_LENGTH = 128
_STEP = r"(/[1-9][0-9]{0,2})?"
_NUMERIC_RANGE = r"[0-9]+-[0-9]+"
RANGE_ORDER_MESSAGE = "schedule: a range a-b needs a <= b, e.g. 1-5 rather than 5-1"
# Ranges read from the whole schedule at once: splitting it into fields in CEL costs more than
# the API server allows a rule, and a number range means the same in every field.
RANGE_ORDER_RULE = (
    f"self.findAll(r'{_NUMERIC_RANGE}').all(r, int(r.split('-')[0]) <= int(r.split('-')[1]))"
)


@dataclass(frozen=True)
class CronField:
    """One field of a schedule: where it is, its name, its range and the regular expression
    of the values it accepts."""

    position: int  # 0-based
    name: str
    low: int
    high: int
    values: str  # a regular expression of one value in range
    names: str = ""  # what may be written instead of numbers, for the message

    @property
    def pattern(self) -> str:
        """The schedule with this field in range: the fields before it skipped, then a list of
        items (``*``, a value or a range, each with an optional step)."""
        item = rf"(\*|({self.values})(-({self.values}))?){_STEP}"
        skipped = rf"([^ \t]+{_BLANK}+){{{self.position}}}"
        return rf"(?i)^{_BLANK}*{skipped}{item}(,{item})*({_BLANK}|$)"

    @property
    def message(self) -> str:
        ordinal = ("1st", "2nd", "3rd", "4th", "5th")[self.position]
        allowed = f"{self.low}-{self.high}" + (f" or {self.names}" if self.names else "")
        return (
            f"schedule: the {self.name} field ({ordinal}) takes values {allowed}: write *, a "
            "value, a range a-b, a list a,b and an optional step /n with n >= 1"
        )

    def cel_rule(self) -> str:
        """True unless the schedule has the shape of one and this field is out of range: a
        schedule of another shape gets the shape's message alone."""
        return f"!self.matches(r'{CRON}') || self.matches(r'{self.pattern}')"

    def holds(self, schedule: str) -> bool:
        """Whether this field of ``schedule`` is in range (the CEL rule, in Python)."""
        return re.search(self.pattern, schedule) is not None


_MONTHS = "JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC"
_DAYS = "SUN|MON|TUE|WED|THU|FRI|SAT"
CRON_FIELDS = (
    CronField(0, "minute", 0, 59, r"[0-5]?[0-9]"),
    CronField(1, "hour", 0, 23, r"[01]?[0-9]|2[0-3]"),
    CronField(2, "day of month", 1, 31, r"0?[1-9]|[12][0-9]|3[01]"),
    CronField(3, "month", 1, 12, rf"0?[1-9]|1[0-2]|{_MONTHS}", "JAN-DEC"),
    CronField(4, "day of week", 0, 7, rf"0?[0-7]|{_DAYS}", "SUN-SAT"),
)


def check_schedule(schedule: str) -> str:
    """``schedule`` if it is a schedule in range; ValueError with the CRD's message otherwise."""
    if not re.fullmatch(CRON[1:-1], schedule):
        raise ValueError(CRON_MESSAGE)
    for field in CRON_FIELDS:
        if not field.holds(schedule):
            raise ValueError(field.message)
    for low, high in (r.split("-") for r in re.findall(_NUMERIC_RANGE, schedule)):
        if int(low) > int(high):
            raise ValueError(RANGE_ORDER_MESSAGE)
    return schedule
