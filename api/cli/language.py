"""The command line's own words in the reader's language: its help and its
usage errors (docs/i18n.md).

The help texts — each option's and argument's ``help``, each verb's
docstring — are English message ids, like every template of the ledger.
``localise`` puts their text in the reader's language into the command tree
typer builds for a run, before the run reads its arguments; typer's words
around them (the panels' titles, ``[default: …]``, the help option) follow
when help is shown. typer's vendored click words its usage errors in English
without gettext, so ``usage_refusal`` recognises each kind — a missing
option or argument, an unknown option or verb, a value refused — and tells
it as one translated line that names the option as it was given.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from typer._click import Context as ClickContext
from typer._click.core import Command, Parameter
from typer._click.exceptions import (
    BadOptionUsage,
    BadParameter,
    MissingParameter,
    NoSuchOption,
    UsageError,
)
from typer.core import TyperGroup

from ledger.domain.messages import Message, translate


def localise(command: Command) -> None:
    """Every help text of ``command`` and the verbs under it, in the current
    language. A help text with no entry in the catalogs stays as written (a
    test holds that there is none)."""
    for each in _commands(command):
        if each.help:
            each.help = _help(each.help)
        if each.short_help:
            each.short_help = _help(each.short_help)
        for parameter in each.params:
            help_text = getattr(parameter, "help", None)
            if help_text:
                parameter.help = _help(help_text)  # type: ignore[attr-defined]
        _localise_help_option(each)


# Chinese punctuation that ends a phrase: a line of help may break after it.
_PHRASE_END = re.compile(r"([，。；：、）])(?=[^\s，。；：、）])")


def _help(text: str) -> str:
    """A help text in the current language, breakable after each Chinese
    phrase: rich wraps help only at spaces, and cuts a longer run short
    with an ellipsis, which a Chinese sentence without spaces always is."""
    return _PHRASE_END.sub(r"\1 ", translate(text))


def _commands(command: Command) -> Iterator[Command]:
    yield command
    if isinstance(command, TyperGroup):
        for verb in command.commands.values():
            yield from _commands(verb)


def _localise_help_option(command: Command) -> None:
    """The help text of ``command``'s ``--help``."""
    option = command.get_help_option(ClickContext(command))
    if option is not None:
        option.help = _help("Show this message and exit.")


def may_show_help(arguments: list[str]) -> bool:
    """Whether a run given ``arguments`` may show a help page: when it asks
    for one, or names one word at most (``ledger``, ``ledger query``: typer
    shows the help of a group given nothing to do), the value of ``--db``
    aside."""
    before = ["", *arguments[:-1]]
    words = [a for a, b in zip(arguments, before, strict=True) if b != "--db"]
    return "--help" in words or sum(not w.startswith("-") for w in words) <= 1


def localise_typer_words() -> None:
    """typer's own words in its help pages, in the current language: the
    panels' titles and the notes after an option's help. They live in
    ``typer.rich_utils``, which a run that shows no help does not load."""
    from typer import rich_utils

    rich_utils.ARGUMENTS_PANEL_TITLE = translate("Arguments")
    rich_utils.OPTIONS_PANEL_TITLE = translate("Options")
    rich_utils.COMMANDS_PANEL_TITLE = translate("Commands")
    rich_utils.DEFAULT_STRING = translate("[default: {value}]", {"value": "{}"})
    rich_utils.REQUIRED_LONG_STRING = translate("[required]")


# typer's English for the usage errors that carry nothing but their text,
# and the template each is told with (its groups as parameters).
WORDED: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"No such command '(?P<name>.+)'\. Did you mean (?P<known>.+)\?$"),
        "there is no command {name}; did you mean {known}?",
    ),
    (re.compile(r"No such command '(?P<name>.+)'\.$"), "there is no command {name}"),
    (
        re.compile(r"Got unexpected extra argument\(s\) \((?P<extra>.*)\)$"),
        "unexpected extra arguments: {extra}",
    ),
    (re.compile(r"Missing command\.$"), "a command is missing"),
)
# The reasons typer gives for a value it refuses without pydantic's help.
REFUSED_VALUES: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"(Value error, )?(?P<value>'.*') is not one of (?P<known>.+)\.$"),
        "{value} is not one of {known}",
    ),
    (
        re.compile(r"(file|directory|path) '(?P<path>.*)' does not exist\.$", re.I),
        "{path} does not exist",
    ),
    (
        re.compile(r"(file|directory|path) '(?P<path>.*)' is a directory\.$", re.I),
        "{path} is a folder, not a file",
    ),
    (
        re.compile(r"(file|directory|path) '(?P<path>.*)' is not readable\.$", re.I),
        "{path} cannot be read",
    ),
)


def usage_refusal(error: UsageError) -> Message:
    """What was wrong with the command line, in the reader's language, with
    a pointer to the help of the verb it was given to."""
    problem = _problem(error)
    if error.ctx is None:
        return problem
    return Message(
        "{problem} (`{command} --help` shows how)",
        problem=problem,
        command=error.ctx.command_path,
    )


def _problem(error: UsageError) -> Message:
    if isinstance(error, MissingParameter) and error.param is not None:
        if error.param.param_type_name == "argument":
            return Message("the argument {name} is missing", name=_name(error.param))
        return Message("the option {name} is missing", name=_name(error.param))
    if isinstance(error, NoSuchOption):
        if error.possibilities:
            return Message(
                "there is no option {name}; did you mean {known}?",
                name=error.option_name,
                known=", ".join(sorted(error.possibilities)),
            )
        return Message("there is no option {name}", name=error.option_name)
    if isinstance(error, BadOptionUsage):
        if error.message.endswith("does not take a value."):
            return Message("the option {name} takes no value", name=error.option_name)
        return Message("the option {name} needs a value", name=error.option_name)
    if isinstance(error, BadParameter) and error.param is not None:
        return Message(
            "{name}: {reason}", name=_name(error.param), reason=_refused_value(error)
        )
    return _worded(error.message, WORDED)


def _name(parameter: Parameter) -> str:
    """An option by the names it goes by, an argument in capitals."""
    if parameter.param_type_name == "argument":
        return (parameter.name or "").upper()
    return " / ".join(parameter.opts)


def _refused_value(error: BadParameter) -> Message | str:
    """Why a value was refused: pydantic's reason (typer checks values with
    it) as the command models' refusals tell it, or typer's own."""
    from pydantic import ValidationError

    from ledger.application.refusals import describe_problem

    cause = error.__cause__
    if isinstance(cause, ValidationError):
        (problem, *_) = cause.errors(include_url=False)
        if problem["type"] != "value_error":
            return describe_problem(problem)
        return _worded(str((problem.get("ctx") or {})["error"]), REFUSED_VALUES)
    return _worded(error.message, REFUSED_VALUES)


def _worded(text: str, known: tuple[tuple[re.Pattern[str], str], ...]) -> Message:
    """``text``, one of typer's English sentences, as the template that
    says it in the reader's language; a sentence not known is shown as it is,
    behind a translated word saying that it is typer's."""
    for pattern, template in known:
        found = pattern.match(text)
        if found:
            return Message(template, **found.groupdict())
    return Message("the command line is not understood: {reason}", reason=text)
