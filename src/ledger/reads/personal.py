"""Personal data on its way out of the ledger: the one way every reader of
stored payloads (audit events, rosters) shows it.

A stored payload's sealed personal fields are opened with the vault (None
for a person whose data was erased), then masked unless the caller's role
may see them (``ledger.domain.privacy``). A plaintext payload of an earlier
release is masked the same way. Without a vault nothing is opened: the
sealed field is shown as stored, ciphertext only.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from ledger.domain.privacy import ERASED, mask_personal_data
from ledger.store.personal_data import PersonalDataVault


def personal_view(
    vault: PersonalDataVault | None,
    topic: str,
    stream_id: UUID | str,
    payload: dict[str, Any],
    *,
    reveal: bool,
) -> dict[str, Any]:
    """``payload`` (as stored, taken over) as a caller may see it: personal
    fields opened (the marker ``ERASED`` in place of each once erased) and,
    unless ``reveal``, masked."""
    if vault is not None:
        payload = vault.open_payload(topic, stream_id, payload, erased=ERASED)
    return payload if reveal else mask_personal_data(payload)
