"""Why a command line or request body is not well formed, in the reader's
language, naming the field.

pydantic words its errors in English (``Input should have timezone info``);
the common kinds — a missing or extra field, a wrong type, text too long or
not matching its pattern, a number out of range, a time without an offset —
have a template of their own here, translated by the catalogs
(``ledger.domain.messages``), and so are the command models' own checks. A
refusal raised by a bound of the domain already carries its reason in the
reader's language; any other kind keeps pydantic's English.
"""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from ledger.domain.messages import translate

_WHOLE_NUMBER = "should be a whole number"
_TIME = "should be a time such as 2024-03-01T09:00:00+08:00"
_OBJECT = "should be an object"
_NUMBER = "should be a number"

TEMPLATES: dict[str, str] = {
    "missing": "is required",
    "extra_forbidden": "is not a field of this command; remove it",
    "string_type": "should be text",
    "int_type": _WHOLE_NUMBER,
    "int_parsing": _WHOLE_NUMBER,
    "int_from_float": _WHOLE_NUMBER,
    "float_type": _NUMBER,
    "float_parsing": _NUMBER,
    "bool_type": "should be true or false",
    "bool_parsing": "should be true or false",
    "list_type": "should be a list",
    "dict_type": _OBJECT,
    "model_type": _OBJECT,
    "model_attributes_type": _OBJECT,
    "string_too_short": "should have at least {min_length} characters",
    "string_too_long": "should have at most {max_length} characters",
    "too_short": "should have at least {min_length} items",
    "too_long": "should have at most {max_length} items",
    "string_pattern_mismatch": "should match the pattern {pattern}",
    "greater_than": "should be greater than {gt}",
    "greater_than_equal": "should be at least {ge}",
    "less_than": "should be less than {lt}",
    "less_than_equal": "should be at most {le}",
    "literal_error": "should be one of {expected}",
    "enum": "should be one of {expected}",
    "timezone_aware": "should have a UTC offset, like +08:00",
    "datetime_type": _TIME,
    "datetime_parsing": _TIME,
    "datetime_from_date_parsing": _TIME,
    "json_invalid": "is not valid JSON: {error}",
    "union_tag_invalid": "names the unknown command type {tag}; use one of "
    "{expected_tags}",
    "union_tag_not_found": "lacks the field {discriminator}",
}


def describe_problem(problem: ErrorDetails) -> str:
    """What is wrong with one field, in the current language. A command
    model's own check (``value_error``) raises its English text, which is
    its message id."""
    if problem["type"] == "value_error":
        return translate(str((problem.get("ctx") or {})["error"]))
    template = TEMPLATES.get(problem["type"])
    if template is None:
        return problem["msg"]
    return translate(template, dict(problem.get("ctx") or {}))


def field_of(problem: ErrorDetails) -> str:
    return ".".join(str(part) for part in problem["loc"])


def describe_problems(problems: Iterable[ErrorDetails]) -> str:
    """A short reason: each wrong field, named, and what was wrong with it."""
    parts = []
    for problem in problems:
        field, message = field_of(problem), describe_problem(problem)
        parts.append(f"{field}: {message}" if field else message)
    return "; ".join(parts)


def describe_validation_error(error: ValidationError) -> str:
    return describe_problems(error.errors(include_url=False))
