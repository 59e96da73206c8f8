"""The message catalogs are complete and shipped as compiled: every error
code has a title, every message template the code raises, prints (the CLI's
``fail``) or answers (a problem's detail) and every word it fills in has a
text in zh_CN and en, and each .mo holds what its .po says."""

from __future__ import annotations

import ast
import io
import pickle
from collections.abc import Iterator
from pathlib import Path
from string import Formatter
from typing import TypeVar

import pytest
import typer.main
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po
from typer._click import Context as ClickContext
from typer.core import TyperGroup

import ledger
import ledger.api.http.access
import ledger.bootstrap
import ledger.reads.audit
import ledger.services.certificates
import ledger.services.exports
import ledger.services.honours
import ledger.store.backup
import ledger.store.integrity
import ledger.store.schema
from ledger.api.cli.language import REFUSED_VALUES, WORDED
from ledger.application.importer import BOM_NOTE
from ledger.application.ledger import IdempotencyKeyReusedError
from ledger.application.refusals import TEMPLATES
from ledger.domain import bounds
from ledger.domain.errors import CapacityReachedError, DomainError
from ledger.domain.messages import (
    LANGUAGES,
    LOCALE_DIRECTORY,
    TranslatedError,
    use_language,
)
from ledger.domain.orders import OrderStatus
from ledger.domain.teams import TeamLevel
from ledger.domain.venues import VenueLevel
from ledger.domain.volunteers import SessionStatus
from ledger.store.event_store import BUSY_MESSAGE

SOURCE = Path(ledger.__file__).parent


E = TypeVar("E", bound=Exception)


def _subclasses(cls: type[E]) -> Iterator[type[E]]:
    for subclass in cls.__subclasses__():
        yield subclass
        yield from _subclasses(subclass)


ERRORS = [DomainError, *_subclasses(DomainError)]
# Every error told in the reader's language: the domain's, and those of the
# store, the reads, the services and the API that the CLI and HTTP print.
TRANSLATED_ERRORS = [TranslatedError, *_subclasses(TranslatedError)]


def _templates_in_source() -> set[str]:
    """The literal first argument of every ``XxxError(...)`` told in the
    reader's language, of every ``Message(...)``/``translate(...)``, of the
    CLI's ``fail(...)``, ``say(...)`` and ``note(...)`` and of the command
    models' ``ValueError``, and the
    literal title and detail of every HTTP problem."""
    assert {"NoLedgerError", "LedgerBusyError", "KeyMaterialError"} <= {
        cls.__name__ for cls in TRANSLATED_ERRORS
    }
    message_at = {cls.__name__: (0,) for cls in TRANSLATED_ERRORS}
    message_at |= {"Message": (0,), "translate": (0,), "fail": (0,), "forbid": (0,)}
    message_at |= {"say": (0,), "note": (0,)}  # the CLI's result and progress lines
    message_at |= {"problem_response": (2, 3), "ProblemError": (2, 3)}
    found = set()
    for path in [*SOURCE.rglob("*.py"), *(SOURCE / "api").rglob("*.py")]:
        # The command models' own checks raise ValueError with a message id.
        models = {"ValueError": (0,)} if path.name == "commands.py" else {}
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", getattr(node.func, "attr", None))
            at = {**message_at, **models}.get(name or "", ())
            arguments = [node.args[i] for i in at if i < len(node.args)]
            found |= {a.value for a in arguments if isinstance(a, ast.Constant)}
    return found


def _words_filled_in() -> set[str]:
    """The words messages take as ``Message(value)``: statuses, levels, the
    kinds of record and the bounds' names."""
    words = {s.value for s in (*SessionStatus, *OrderStatus, *VenueLevel, *TeamLevel)}
    words |= {"venue", "volunteer", "activity", "order", "no parent", "total"}
    words |= {"corrected", "the subject of a correction request"}
    words |= {
        bound.what
        for bound in vars(bounds).values()
        if isinstance(bound, bounds.TextBound | bounds.ListBound | bounds.NumberBound)
    }
    return words


def _catalog(language: str) -> dict[str, str]:
    path = LOCALE_DIRECTORY / language / "LC_MESSAGES" / "ledger.po"
    with path.open("rb") as source:
        catalog = read_po(source)
    return {str(m.id): str(m.string) for m in catalog if m.id}


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_error_code_has_a_title_in_each_language(language: str) -> None:
    catalog = _catalog(language)
    assert IdempotencyKeyReusedError in ERRORS
    missing = [cls.code for cls in ERRORS if not catalog.get(cls.title)]
    assert missing == []


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_message_and_word_the_code_uses_has_a_text(language: str) -> None:
    catalog = _catalog(language)
    needed = _templates_in_source() | _words_filled_in() | set(TEMPLATES.values())
    needed |= {BUSY_MESSAGE, BOM_NOTE}
    needed |= {template for _, template in (*WORDED, *REFUSED_VALUES)}
    assert len(needed) > 100
    assert sorted(m for m in needed if not catalog.get(m)) == []


def _help_texts() -> Iterator[str]:
    """The help of every verb, option and argument ``ledger`` has."""
    from ledger.api.cli.app import app

    verbs = [typer.main.get_command(app)]
    while verbs:
        verb = verbs.pop()
        if isinstance(verb, TyperGroup):
            ctx = ClickContext(verb)
            verbs.extend(verb.get_command(ctx, n) for n in verb.list_commands(ctx))
        texts = [verb.help, *(getattr(p, "help", None) for p in verb.params)]
        yield from (text for text in texts if text)


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_help_text_of_the_command_line_has_a_text(language: str) -> None:
    catalog = _catalog(language)
    texts = set(_help_texts())
    assert len(texts) > 80
    assert sorted(m for m in texts if not catalog.get(m)) == []


def test_the_chinese_text_of_a_template_keeps_its_parameters() -> None:
    chinese = _catalog("zh_CN")
    for template, text in chinese.items():
        names = {name for _, name, _, _ in _formatter_fields(template)}
        assert {name for _, name, _, _ in _formatter_fields(text)} == names, template


def _formatter_fields(text: str) -> list[tuple[str, str, str | None, str | None]]:
    return [
        (literal, name, spec, conversion)
        for literal, name, spec, conversion in Formatter().parse(text)
        if name is not None
    ]


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_shipped_mo_is_compiled_from_its_po(language: str) -> None:
    folder = LOCALE_DIRECTORY / language / "LC_MESSAGES"
    with (folder / "ledger.po").open("rb") as source:
        compiled = io.BytesIO()
        write_mo(compiled, read_po(source))
    with (folder / "ledger.mo").open("rb") as shipped:
        shipped_messages = {(m.id, m.string) for m in read_mo(shipped) if m.id}
    compiled.seek(0)
    assert shipped_messages == {(m.id, m.string) for m in read_mo(compiled) if m.id}


def test_a_domain_error_keeps_its_parameters_when_pickled() -> None:
    error = CapacityReachedError(
        "activity '{activity_id}' is full: all {capacity} places are taken",
        activity_id="A1",
        capacity=30,
    )
    copied = pickle.loads(pickle.dumps(error))
    assert type(copied) is CapacityReachedError
    with use_language("zh_CN"):
        assert str(copied) == "活动“A1”名额已满：30 个名额均已报满"
