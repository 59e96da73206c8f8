"""The interchange format (CONTRACT §1): one command per line, validated here.

These models are the one definition of every command: the importer parses
JSON Lines into them and the HTTP API takes them as request bodies, and both
hand them to the same application code. Each also declares the records it
names (``refers_to``), which the ledger loads before handling it, and where
and for whom it acts (``acts_in``, ``acts_for``), which scoped keys are held to.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, ClassVar, Literal

import orjson
from eventsourcing.domain import Aggregate
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    StrictBool,
    StrictInt,
    StringConstraints,
    TypeAdapter,
    ValidationInfo,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError, core_schema

from ledger.domain import bounds
from ledger.domain.activities import Activity, Category
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
from ledger.domain.honours import Honours
from ledger.domain.orders import Order
from ledger.domain.teams import Team
from ledger.domain.venues import Venue
from ledger.domain.volunteers import Volunteer

# One command, as a line of an interchange file or as an HTTP body, is at
# most this long (CONTRACT §1.3): longer input is refused unread.
LONGEST_COMMAND_BYTES = 64 * 1024

Bound = bounds.TextBound | bounds.NumberBound | bounds.ListBound | bounds.TimeBound


@dataclass(frozen=True)
class Within:
    """A field checked by a bound of the domain (``ledger.domain.bounds``):
    the domain's own check runs when the command is parsed, a refusal keeps
    the domain's code as its error type, and the JSON schema (so OpenAPI)
    states the bound. A time is read by the bound itself, before pydantic
    sees it, so that a number is never taken for one."""

    bound: Bound

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        if isinstance(self.bound, bounds.TimeBound):
            return core_schema.no_info_before_validator_function(
                _coded(self.bound.read), handler(source)
            )
        return core_schema.no_info_after_validator_function(
            _coded(self.bound.check), handler(source)
        )

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        stated = handler(schema)
        bound = self.bound
        if isinstance(bound, bounds.TextBound):
            stated["maxLength"] = bound.longest
        elif isinstance(bound, bounds.NumberBound):
            stated.update(minimum=bound.least, maximum=bound.most)
        elif isinstance(bound, bounds.ListBound):
            stated["maxItems"] = bound.longest
        else:
            stated["description"] = str(bound)
        return stated


def _coded(check: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``check`` raising pydantic's error, typed with the domain error's code."""

    def checked(value: Any) -> Any:
        try:
            return check(value)
        except DomainError as error:
            raise PydanticCustomError(
                error.code, "{reason}", {"reason": str(error)}
            ) from None

    return checked


# The codes of the bounds' refusals, which name the rule a line broke.
BOUND_CODES = frozenset(
    error.code
    for error in (
        InvalidTimeError,
        TimeOutOfRangeError,
        TextTooLongError,
        ListTooLongError,
        NumberOutOfRangeError,
        CapacityOutOfRangeError,
        InvalidMinutesError,
    )
)


def refusal_code(error_types: Iterable[str]) -> str:
    """The code a malformed command is refused with: the first bound it
    breaks, or ``invalid_command``."""
    return next((t for t in error_types if t in BOUND_CODES), "invalid_command")


Id = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1), Within(bounds.ID)
]
Name = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1), Within(bounds.NAME)
]
# A reason may be blank here: the domain refuses that with its own code.
Text = Annotated[str, StringConstraints(strip_whitespace=True), Within(bounds.TEXT)]
Ids = Annotated[list[Id], Within(bounds.IDS)]
BusinessTime = Annotated[AwareDatetime, Within(bounds.BUSINESS_TIME)]
Capacity = Annotated[StrictInt, Within(bounds.CAPACITY)]
Minutes = Annotated[StrictInt, Within(bounds.SESSION_MINUTES)]


@dataclass(frozen=True)
class Claimed:
    """A value one record alone may hold, found through the claim of ``kind``
    on it, which names the stream holding it."""

    kind: str


SESSION = Claimed("session")  # a session id, held by its volunteer's record
ID_NUMBER = Claimed("id_number")  # an ID number (its digest), held likewise


@dataclass(frozen=True)
class Existing:
    """A record of ``kind`` that needs only to be recorded: it is not loaded."""

    kind: type[Aggregate]


@dataclass(frozen=True)
class ChosenBy:
    """A record whose kind another field of the command chooses."""

    field: str
    kinds: Mapping[str, type[Aggregate]]


# How a field names records: by the ids of aggregates of a kind (one id, or a
# list of them), by a claimed value, or by an id whose kind is chosen.
Reference = type[Aggregate] | Claimed | Existing
Referent = Reference | ChosenBy


class Actor(BaseModel):
    """Who did it, recorded as given; the role is free text."""

    model_config = ConfigDict(frozen=True)

    id: Id
    role: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)
    ]


class BaseCommand(BaseModel):
    """Fields every line has: business time with an offset, actor, optional key."""

    # Other platforms export extra fields; they are ignored, never an error.
    model_config = ConfigDict(frozen=True, extra="ignore")

    at: BusinessTime
    actor: Actor
    key: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None

    # The records the command names, by field (a field may name several).
    refers_to: ClassVar[Mapping[str, Referent | tuple[Referent, ...]]] = {}
    # The field naming where it acts: a venue, or a record held at one.
    acts_in: ClassVar[str | None] = None
    # The field naming the volunteer it acts for, or a session of theirs.
    acts_for: ClassVar[str | None] = None

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        """Declarations name the command's own fields: a misspelt one fails
        here, when the command is defined, not as a record never loaded."""
        super().__pydantic_init_subclass__(**kwargs)
        chosen_by = [
            referent.field
            for field in cls.refers_to
            for referent in cls.referents(field)
            if isinstance(referent, ChosenBy)
        ]
        declared = [*cls.refers_to, *chosen_by, cls.acts_in, cls.acts_for]
        unknown = [f for f in declared if f is not None and f not in cls.model_fields]
        if unknown:
            raise TypeError(
                f"{cls.__name__} declares {', '.join(unknown)}, not among its fields"
            )
        if cls.acts_in is not None and len(cls.referents(cls.acts_in)) != 1:
            raise TypeError(f"{cls.__name__}.{cls.acts_in} must name one record")

    @classmethod
    def referents(cls, field: str) -> tuple[Referent, ...]:
        """How ``field`` names records, as declared (none: it names none)."""
        declared = cls.refers_to.get(field, ())
        return declared if isinstance(declared, tuple) else (declared,)

    def named_by(self, field: str) -> tuple[Reference, ...]:
        """How ``field`` names records, with any kind it leaves to another
        field chosen."""
        return tuple(
            referent.kinds[getattr(self, referent.field)]
            if isinstance(referent, ChosenBy)
            else referent
            for referent in self.referents(field)
        )

    @model_validator(mode="before")
    @classmethod
    def _no_nul_characters(cls, data: Any, info: ValidationInfo) -> Any:
        """A NUL character is never meaningful and PostgreSQL cannot store it.
        A command parsed from JSON text that cannot spell one
        (``parse_command``) is not walked again."""
        if info.context is not _NUL_FREE_TEXT and _holds_nul(data):
            raise ValueError("text must not contain NUL (\\u0000) characters")
        return data


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_holds_nul(item) for item in value)
    return False


class RegisterVenue(BaseCommand):
    """Register a venue (阵地) under its parent."""

    type: Literal["register_venue"] = "register_venue"
    refers_to = {"venue_id": Venue, "parent_id": Venue}
    acts_in = "parent_id"

    venue_id: Id
    name: Name
    level: str
    parent_id: Id | None = None
    kind: Text | None = None


class RegisterTeam(BaseCommand):
    """Register a volunteer team (corps, brigade or team)."""

    type: Literal["register_team"] = "register_team"
    refers_to = {"team_id": Team, "parent_id": Team}

    team_id: Id
    name: Name
    level: str
    parent_id: Id | None = None


class RegisterVolunteer(BaseCommand):
    """Register a volunteer with their personal data and teams."""

    type: Literal["register_volunteer"] = "register_volunteer"
    refers_to = {
        "volunteer_id": Volunteer,
        "team_ids": Team,
        "id_number": ID_NUMBER,
    }
    acts_for = "volunteer_id"

    volunteer_id: Id
    name: Name
    id_number: str
    phone: (
        Annotated[str, StringConstraints(strip_whitespace=True, max_length=20)] | None
    ) = None
    team_ids: Ids = Field(default_factory=list)


class PublishActivity(BaseCommand):
    """Publish an activity to the calendar (每月有发布)."""

    type: Literal["publish_activity"] = "publish_activity"
    refers_to = {"activity_id": Activity, "venue_id": Venue}
    acts_in = "venue_id"

    activity_id: Id
    venue_id: Id
    category: Category
    title: Name
    starts_at: BusinessTime
    ends_at: BusinessTime
    capacity: Capacity


class SignUp(BaseCommand):
    """Sign a volunteer up for an activity (报名)."""

    type: Literal["sign_up"] = "sign_up"
    refers_to = {"activity_id": Activity, "volunteer_id": Volunteer}
    acts_in = "activity_id"
    acts_for = "volunteer_id"

    activity_id: Id
    volunteer_id: Id


class CancelSignUp(BaseCommand):
    """Cancel a volunteer's sign-up."""

    type: Literal["cancel_sign_up"] = "cancel_sign_up"
    refers_to = {"activity_id": Activity, "volunteer_id": Volunteer}
    acts_in = "activity_id"
    acts_for = "volunteer_id"

    activity_id: Id
    volunteer_id: Id


class CheckIn(BaseCommand):
    """Check a volunteer in to an activity, opening a session (签到)."""

    type: Literal["check_in"] = "check_in"
    refers_to = {
        "session_id": SESSION,
        "volunteer_id": Volunteer,
        "activity_id": Activity,
    }
    acts_in = "activity_id"
    acts_for = "volunteer_id"

    session_id: Id
    volunteer_id: Id
    activity_id: Id


class CheckOut(BaseCommand):
    """Check a session out (签退)."""

    type: Literal["check_out"] = "check_out"
    refers_to = {"session_id": SESSION}
    acts_in = "session_id"
    acts_for = "session_id"

    session_id: Id


class RecordMakeupHours(BaseCommand):
    """Record make-up hours for service not checked in (补录)."""

    type: Literal["record_makeup_hours"] = "record_makeup_hours"
    refers_to = {
        "session_id": SESSION,
        "volunteer_id": Volunteer,
        "activity_id": Activity,
    }
    acts_in = "activity_id"
    acts_for = "volunteer_id"

    session_id: Id
    volunteer_id: Id
    activity_id: Id
    minutes: Minutes
    reason: Text


class ApproveSession(BaseCommand):
    """Approve a pending session: it starts to count."""

    type: Literal["approve_session"] = "approve_session"
    refers_to = {"session_id": SESSION}
    acts_in = "session_id"
    acts_for = "session_id"

    session_id: Id


class RejectSession(BaseCommand):
    """Reject a pending (or never checked-out) session."""

    type: Literal["reject_session"] = "reject_session"
    refers_to = {"session_id": SESSION}
    acts_in = "session_id"
    acts_for = "session_id"

    session_id: Id
    reason: Text


class RequestCorrection(BaseCommand):
    """A volunteer asks for an approved session's minutes to be corrected."""

    type: Literal["request_correction"] = "request_correction"
    refers_to = {"session_id": SESSION}
    acts_in = "session_id"
    acts_for = "session_id"

    session_id: Id
    minutes: Minutes
    reason: Text


class DeclineCorrection(BaseCommand):
    """The organiser declines a correction request."""

    type: Literal["decline_correction"] = "decline_correction"
    refers_to = {"session_id": SESSION}
    acts_in = "session_id"
    acts_for = "session_id"

    session_id: Id
    reason: Text


class CorrectSession(BaseCommand):
    """Replace an approved session's minutes."""

    type: Literal["correct_session"] = "correct_session"
    refers_to = {"session_id": SESSION}
    acts_in = "session_id"
    acts_for = "session_id"

    session_id: Id
    minutes: Minutes
    reason: Text


class VoidSession(BaseCommand):
    """Void an approved session, optionally for fraud."""

    type: Literal["void_session"] = "void_session"
    refers_to = {"session_id": SESSION}
    acts_in = "session_id"
    acts_for = "session_id"

    session_id: Id
    reason: Text
    fraud: StrictBool = False


class PostOrder(BaseCommand):
    """A resident posts an order or micro-wish (百姓点单)."""

    type: Literal["post_order"] = "post_order"
    refers_to = {"order_id": Order, "venue_id": Venue}
    acts_in = "venue_id"

    order_id: Id
    kind: Literal["wish", "service"]
    venue_id: Id
    category: Category
    description: Text


class DispatchOrder(BaseCommand):
    """Dispatch an order to a venue or team (中心派单); again to reassign."""

    type: Literal["dispatch_order"] = "dispatch_order"
    refers_to = {"order_id": Order, "venue_id": Venue, "team_id": Team}
    acts_in = "order_id"

    order_id: Id
    venue_id: Id | None = None
    team_id: Id | None = None

    @model_validator(mode="after")
    def _one_target(self) -> DispatchOrder:
        if (self.venue_id is None) == (self.team_id is None):
            raise ValueError("dispatch_order needs exactly one of venue_id or team_id")
        return self


class AcceptOrder(BaseCommand):
    """Volunteers or a team accept an order (志愿接单)."""

    type: Literal["accept_order"] = "accept_order"
    refers_to = {"order_id": Order, "volunteer_ids": Volunteer, "team_id": Team}
    acts_in = "order_id"

    order_id: Id
    volunteer_ids: Ids | None = None
    team_id: Id | None = None

    @model_validator(mode="after")
    def _one_acceptor(self) -> AcceptOrder:
        has_volunteers = bool(self.volunteer_ids)
        if has_volunteers == (self.team_id is not None):
            raise ValueError(
                "accept_order needs either one or more volunteer_ids or a team_id"
            )
        return self


class FulfilOrder(BaseCommand):
    """Mark an accepted order fulfilled (圆梦销单)."""

    type: Literal["fulfil_order"] = "fulfil_order"
    refers_to = {"order_id": Order}
    acts_in = "order_id"

    order_id: Id


class WithdrawOrder(BaseCommand):
    """The resident withdraws an order."""

    type: Literal["withdraw_order"] = "withdraw_order"
    refers_to = {"order_id": Order}
    acts_in = "order_id"

    order_id: Id
    reason: Text


class RejectOrder(BaseCommand):
    """Reject an order at vetting."""

    type: Literal["reject_order"] = "reject_order"
    refers_to = {"order_id": Order}
    acts_in = "order_id"

    order_id: Id
    reason: Text


class ExpireOrder(BaseCommand):
    """An open order expires."""

    type: Literal["expire_order"] = "expire_order"
    refers_to = {"order_id": Order}
    acts_in = "order_id"

    order_id: Id


class Rate(BaseCommand):
    """Rate a fulfilled order or an activity, 1–5 stars (群众评单)."""

    type: Literal["rate"] = "rate"
    refers_to = {
        "subject_id": ChosenBy("subject", {"order": Order, "activity": Activity})
    }
    acts_in = "subject_id"
    acts_for = "rater_id"

    subject: Literal["order", "activity"]
    subject_id: Id
    rater_id: Id
    stars: StrictInt
    comment: Text | None = None


class RecordHonours(BaseCommand):
    """Record an award by hand (an extension of the contract). Honours runs
    decide by the same rule (``awards_due``) but append their awards in bulk."""

    type: Literal["record_honours"] = "record_honours"
    # Honours are decided from the projections: the volunteer's record needs
    # only to exist.
    refers_to = {"volunteer_id": (Honours, Existing(Volunteer))}
    acts_for = "volunteer_id"

    volunteer_id: Id
    rules: Annotated[str, StringConstraints(min_length=3, max_length=60)]
    # None for cumulative rules; never empty, which the awards read as None.
    cycle: Annotated[str, StringConstraints(min_length=1, max_length=20)] | None = None
    stars: StrictInt
    benefits: list[
        Annotated[
            str,
            StringConstraints(strip_whitespace=True, min_length=1),
            Within(bounds.TEXT),
        ]
    ] = Field(default_factory=list)
    points: Annotated[StrictInt, Within(bounds.POINTS)] = 0
    as_of: date
    position: Annotated[StrictInt, Within(bounds.POSITION)]


class ForgetVolunteer(BaseCommand):
    """Erase a volunteer's personal data for ever (PIPL): an admin's command.
    Their service record stays; a second erasure changes nothing."""

    type: Literal["forget_volunteer"] = "forget_volunteer"
    refers_to = {"volunteer_id": Volunteer}
    acts_for = "volunteer_id"

    volunteer_id: Id
    # Why, without naming the person: the reason is kept for ever.
    reason: Text


Command = Annotated[
    RegisterVenue
    | RegisterTeam
    | RegisterVolunteer
    | PublishActivity
    | SignUp
    | CancelSignUp
    | CheckIn
    | CheckOut
    | RecordMakeupHours
    | ApproveSession
    | RejectSession
    | RequestCorrection
    | DeclineCorrection
    | CorrectSession
    | VoidSession
    | PostOrder
    | DispatchOrder
    | AcceptOrder
    | FulfilOrder
    | WithdrawOrder
    | RejectOrder
    | ExpireOrder
    | Rate
    | RecordHonours
    | ForgetVolunteer,
    Field(discriminator="type"),
]

COMMAND_ADAPTER: TypeAdapter[Command] = TypeAdapter(Command)

COMMAND_TYPES: dict[str, type[BaseCommand]] = {
    model.model_fields["type"].default: model for model in BaseCommand.__subclasses__()
}


# The validation context of a command whose JSON text holds no NUL.
_NUL_FREE_TEXT = "NUL-free JSON text"


def parse_command(line: str | bytes) -> Command:
    """Validate one JSON line; raises ``pydantic.ValidationError``.

    JSON text can only hold a NUL as a raw byte or as the escape ``\\u0000``:
    text holding neither holds none in any string, so the command's own
    check need not walk what it parsed (it still does for text that might)."""
    text = line.encode() if isinstance(line, str) else line
    may_hold_nul = b"\x00" in text or b"\\u0000" in text
    context = None if may_hold_nul else _NUL_FREE_TEXT
    return COMMAND_ADAPTER.validate_json(line, context=context)


def canonical_command(command: BaseCommand) -> bytes:
    """The canonical JSON of the validated command (sorted keys, without its
    idempotency key): what an idempotency key is bound to, through its keyed
    fingerprint (``IdNumberDigest.fingerprint``), so that a retry is
    recognised by its content, whatever its spacing, field order or ignored
    extra fields."""
    document = command.model_dump(mode="json", exclude={"key"})
    try:
        return orjson.dumps(document, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        # orjson refuses integers beyond 64 bits, which a command may hold
        # until the domain refuses it: the standard library's encoder then
        # (a choice made by the content alone, so always the same for it).
        return json.dumps(
            document, sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()


def unkeyed_fingerprint(command: BaseCommand) -> str:
    """A fingerprint as recorded before fingerprints were keyed (plain
    SHA-256 of the canonical JSON, schema revision 0005): a retry of a
    command accepted then is still recognised by its content."""
    return hashlib.sha256(canonical_command(command)).hexdigest()
