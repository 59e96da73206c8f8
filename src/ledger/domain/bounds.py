"""The bounds of every value the ledger records (CONTRACT §1.3).

Each bound is one object, the only statement of its rule: aggregates check
it wherever they take the value, and the command models
(``ledger.application.commands``) check it with the same object when a line
or a request body is parsed, so input outside it is refused with the rule
named (``time_out_of_range``, ``text_too_long`` …) and nothing outside it is
ever recorded. That is what lets every projection fold whatever the domain
accepted: a start in the year 9999 at −14:00 once passed, overflowed the
projections' date arithmetic and failed ``verify`` for ever.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from ledger.domain.errors import (
    CapacityOutOfRangeError,
    DomainError,
    InvalidMinutesError,
    InvalidTimeError,
    ListTooLongError,
    NumberOutOfRangeError,
    TextTooLongError,
    TimeOutOfRangeError,
)
from ledger.domain.messages import Message

Item = TypeVar("Item")


@dataclass(frozen=True)
class TextBound:
    """Text of at most ``longest`` characters."""

    what: str
    longest: int

    def check(self, text: str) -> str:
        if len(text) > self.longest:
            raise TextTooLongError(
                "{what} may be at most {longest} characters, not {length:,}; "
                "shorten it",
                what=Message(self.what),
                longest=self.longest,
                length=len(text),
            )
        return text


@dataclass(frozen=True)
class NumberBound:
    """A whole number from ``least`` to ``most``; ``error`` names the rule."""

    what: str
    least: int
    most: int
    error: type[DomainError] = NumberOutOfRangeError

    def check(self, number: int) -> int:
        if not self.least <= number <= self.most:
            raise self.error(
                "{what} must be from {least:,} to {most:,}, not {number:,}",
                what=Message(self.what),
                least=self.least,
                most=self.most,
                number=number,
            )
        return number


@dataclass(frozen=True)
class ListBound:
    """A list of at most ``longest`` items."""

    what: str
    longest: int

    def check(self, items: Sequence[Item]) -> Sequence[Item]:
        if len(items) > self.longest:
            raise ListTooLongError(
                "{what} may hold at most {longest} items, not {length:,}; split it "
                "into several commands",
                what=Message(self.what),
                longest=self.longest,
                length=len(items),
            )
        return items


@dataclass(frozen=True)
class TimeBound:
    """A business time: ISO 8601 text with a UTC offset from ``westmost`` to
    ``eastmost`` (the offsets in use on Earth), in the years ``earliest`` to
    ``latest`` as written."""

    earliest: int
    latest: int
    westmost: timedelta
    eastmost: timedelta

    def __str__(self) -> str:
        return (
            f"ISO 8601 text with a UTC offset from {_offset_text(self.westmost)} "
            f"to {_offset_text(self.eastmost)}, in the years {self.earliest}–"
            f"{self.latest}"
        )

    def read(self, value: object) -> datetime:
        """The moment ``value`` states: a datetime, or ISO 8601 text read as
        the domain reads recorded times back. A number is not a time."""
        if isinstance(value, str):
            text = value
            try:
                value = datetime.fromisoformat(text)
            except ValueError:
                raise InvalidTimeError(
                    "'{text}' is not an ISO 8601 time; write it like "
                    "2024-03-01T09:00:00+08:00",
                    text=text[:40],
                ) from None
        if not isinstance(value, datetime):
            raise InvalidTimeError(
                "a time is ISO 8601 text with an offset, like "
                "2024-03-01T09:00:00+08:00, not {value}",
                value=f"{value!r:.40}",
            )
        return self.check(value)

    def check(self, moment: datetime) -> datetime:
        offset = moment.utcoffset()
        if offset is None:
            raise InvalidTimeError(
                "{moment} has no UTC offset; add one, like +08:00",
                moment=moment.isoformat(),
            )
        if not self.westmost <= offset <= self.eastmost:
            raise TimeOutOfRangeError(
                "{moment} has the UTC offset {offset}; offsets run from {westmost} "
                "to {eastmost}",
                moment=moment.isoformat(),
                offset=_offset_text(offset),
                westmost=_offset_text(self.westmost),
                eastmost=_offset_text(self.eastmost),
            )
        if not self.earliest <= moment.year <= self.latest:
            raise TimeOutOfRangeError(
                "{moment} is not in the years {earliest} to {latest} the ledger "
                "records",
                moment=moment.isoformat(),
                earliest=self.earliest,
                latest=self.latest,
            )
        return moment


def _offset_text(offset: timedelta) -> str:
    sign = "-" if offset < timedelta(0) else "+"
    minutes = abs(offset) // timedelta(minutes=1)
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


BUSINESS_TIME = TimeBound(2000, 2099, timedelta(hours=-12), timedelta(hours=14))
ID = TextBound("an id", 64)
NAME = TextBound("a name or title", 100)
# Reasons, descriptions, comments and kinds: free text a person writes.
TEXT = TextBound("a reason, description, comment or kind", 500)
IDS = ListBound("a list of ids", 200)
CAPACITY = NumberBound("an activity's capacity", 1, 10_000, CapacityOutOfRangeError)
# A session lasts at most 24 hours, and a make-up or corrected one likewise.
SESSION_MINUTES = NumberBound("a session's minutes", 1, 24 * 60, InvalidMinutesError)
# Honours recorded by hand (an extension): what an honours run can decide.
POINTS = NumberBound("honours points", 0, 1_000_000_000)
POSITION = NumberBound("a ledger position", 0, 2**63 - 1)
