"""Messages in the reader's language: Chinese (zh_CN) first, English (en).

Every message the ledger shows a person is an English template with named
parameters (``"activity '{activity_id}' is full"``); the template is the
gettext message id, and the catalogs in ``locale/`` (``.po`` sources, ``.mo``
compiled from them, docs/i18n.md) give its text in each language. The
language is a context variable, set once per CLI run (from ``LANGUAGE``,
``LC_ALL``, ``LC_MESSAGES``, ``LANG``) or per HTTP request (from
``Accept-Language``), so a domain error raised anywhere renders in the
language of whoever reads it. Only the standard library's ``gettext`` runs
here, which keeps the domain free of dependencies and the CLI quick to start.
"""

from __future__ import annotations

import gettext
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache, partial
from pathlib import Path
from typing import Any

CHINESE = "zh_CN"
ENGLISH = "en"
LANGUAGES = (CHINESE, ENGLISH)
DOMAIN = "ledger"
LOCALE_DIRECTORY = Path(__file__).with_name("locale")

# A program using the library directly reads English, the language of the
# message ids; the CLI and the HTTP API set the reader's language.
_current: ContextVar[str] = ContextVar("ledger_language", default=ENGLISH)


class Message:
    """A template with its parameters, rendered in the current language each
    time it is shown; also a parameter of another message (a status, a
    level, the subject of a rule)."""

    __slots__ = ("params", "template")

    def __init__(self, template: str, /, **params: object) -> None:
        self.template, self.params = template, params

    def __str__(self) -> str:
        return translate(self.template, self.params)

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)


class TranslatedError(Exception):
    """An error whose message is a ``Message``: raised with an English
    template and its parameters, shown in the reader's language. The domain's
    errors are ones; so are the store's, the reads' and the composition
    root's that the CLI and the HTTP API print."""

    def __init__(self, template: str, /, **params: object) -> None:
        super().__init__(template)
        self.message = Message(template, **params)

    def __str__(self) -> str:
        """The message in the reader's language."""
        return str(self.message)

    def __reduce__(self) -> tuple[Any, tuple[()]]:
        """Pickled with its parameters, which ``args`` does not hold."""
        message = self.message
        return partial(type(self), message.template, **message.params), ()


@cache
def _catalog(language: str) -> gettext.NullTranslations:
    return gettext.translation(DOMAIN, LOCALE_DIRECTORY, languages=[language])


def current_language() -> str:
    return _current.get()


@contextmanager
def use_language(language: str) -> Iterator[None]:
    """Render messages in ``language`` (one of ``LANGUAGES``) inside the block."""
    token = _current.set(language)
    try:
        yield
    finally:
        _current.reset(token)


def translate(template: str, params: Mapping[str, object] | None = None) -> str:
    """``template`` in the current language, its ``{names}`` filled in from
    ``params`` (a ``Message`` among them renders in that language too)."""
    text = _catalog(_current.get()).gettext(template)
    return text.format(**params) if params else text


def _language_of_tag(tag: str) -> str | None:
    """``zh_CN`` for any Chinese tag (``zh-CN``, ``zh_CN.UTF-8``, ``zh``),
    ``en`` for any English one, None for anything else."""
    primary = tag.strip().replace("-", "_").split("_")[0].split(".")[0].lower()
    return {"zh": CHINESE, "en": ENGLISH}.get(primary)


def language_from_environment(environment: Mapping[str, str]) -> str:
    """The CLI's language, read as gettext reads the locale: the first of
    ``LANGUAGE`` (a colon-separated list), ``LC_ALL``, ``LC_MESSAGES`` and
    ``LANG`` that is set decides. English when it names English, Chinese
    otherwise — also when nothing is set or it is ``C``/``POSIX``."""
    for name in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        value = environment.get(name, "")
        if not value:
            continue
        for tag in value.split(":"):
            language = _language_of_tag(tag)
            if language is not None:
                return language
        if name != "LANGUAGE":
            return CHINESE
    return CHINESE


def language_from_accept_language(header: str | None) -> str:
    """The HTTP answer's language from ``Accept-Language`` (RFC 9110 §12.5.4):
    the Chinese or English range of highest weight. Without the header, or
    when it names neither, English: the API's callers are mostly programs
    that read ``code``, and its answers were English before."""
    best: tuple[float, str] | None = None
    for item in (header or "").split(","):
        tag, _, parameters = item.partition(";")
        language = _language_of_tag(tag) if tag.strip() != "*" else None
        if language is None:
            continue
        weight = 1.0
        name, _, value = parameters.strip().partition("=")
        if name.strip() == "q":
            try:
                weight = float(value)
            except ValueError:
                continue
        if weight > 0 and (best is None or weight > best[0]):
            best = (weight, language)
    return best[1] if best else ENGLISH
