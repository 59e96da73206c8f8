"""Personal data (PIPL): resident ID numbers and phone numbers.

They are stored in the ledger (a certificate needs the ID number), but every
way out of it — reads, audit answers, exports — masks them unless the
caller's role may see them, and they are never written to logs.
"""

from __future__ import annotations

from typing import Any

PERSONAL_FIELDS = frozenset({"id_number", "phone"})

# What every output shows in place of a volunteer's personal data once it is
# erased (``ledger forget``): the volunteer is then known by their id alone.
ERASED = "已删除 / erased"


def mask_id_number(id_number: str) -> str:
    """Keep the region code and the last four: ``320682********123X``."""
    if len(id_number) <= 10:
        return "*" * len(id_number)
    return id_number[:6] + "*" * (len(id_number) - 10) + id_number[-4:]


def mask_phone(phone: str) -> str:
    """Keep the first three and last four digits: ``138****5678``."""
    if len(phone) <= 7:
        return "*" * len(phone)
    return phone[:3] + "*" * (len(phone) - 7) + phone[-4:]


def mask_personal_data(document: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``document`` with ID and phone numbers masked, at any depth
    (the erased marker stays as it is)."""
    masked: dict[str, Any] = {}
    for name, value in document.items():
        if value == ERASED:
            masked[name] = value
        elif name == "id_number" and isinstance(value, str):
            masked[name] = mask_id_number(value)
        elif name == "phone" and isinstance(value, str):
            masked[name] = mask_phone(value)
        elif isinstance(value, dict):
            masked[name] = mask_personal_data(value)
        elif isinstance(value, list):
            masked[name] = [
                mask_personal_data(item) if isinstance(item, dict) else item
                for item in value
            ]
        else:
            masked[name] = value
    return masked
