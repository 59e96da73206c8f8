"""``ledger import``: append an interchange file (CONTRACT §1.2).

The file is streamed line by line in bounded memory: lines are validated,
gathered into batches and recorded through the same application code as the
HTTP API (``Ledger.execute_batch``), many aggregates per transaction.
Rejected lines go to a JSON Lines report with their line number, key and
reason.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import orjson
from pydantic import ValidationError

from ledger.application.commands import parse_command
from ledger.application.ledger import Ledger, Outcome, Submission
from ledger.application.unit_of_work import AggregateCache
from ledger.store.event_store import Envelope
from ledger.store.memory import cyclic_gc_paused

DEFAULT_BATCH_SIZE = 2_000
# ``ledger import`` has one idempotency key space of its own (CONTRACT §1.2).
IMPORT_CALLER = "import"


@dataclass
class ImportSummary:
    accepted: int = 0
    duplicate: int = 0
    rejected: int = 0

    @property
    def lines(self) -> int:
        return self.accepted + self.duplicate + self.rejected

    def summary_line(self) -> str:
        return (
            f"accepted={self.accepted} duplicate={self.duplicate} "
            f"rejected={self.rejected}"
        )


@dataclass(frozen=True)
class _ParsedLine:
    number: int
    submission: Submission


@dataclass(frozen=True)
class _RejectedLine:
    number: int
    key: str | None
    code: str
    reason: str


def default_report_path(path: Path) -> Path:
    return path.with_name(path.name + ".rejected.jsonl")


def import_file(
    ledger: Ledger,
    path: Path,
    *,
    report_path: Path | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_progress: Callable[[int], None] | None = None,
) -> ImportSummary:
    """Import ``path``; ``on_progress`` is told how many bytes were read."""
    summary = ImportSummary()
    run_id = uuid.uuid4().hex[:12]
    cache = AggregateCache()
    with (
        path.open("rb") as source,
        (report_path or default_report_path(path)).open("wb") as report,
        cyclic_gc_paused(),
    ):
        batch: list[_ParsedLine] = []
        for item, size in _read_lines(source, run_id):
            if on_progress:
                on_progress(size)
            if isinstance(item, _RejectedLine):
                _report(report, item)
                summary.rejected += 1
                continue
            batch.append(item)
            if len(batch) >= batch_size:
                _record(ledger, batch, cache, summary, report)
                batch = []
        if batch:
            _record(ledger, batch, cache, summary, report)
    return summary


def _read_lines(
    source: IO[bytes], run_id: str
) -> Iterator[tuple[_ParsedLine | _RejectedLine, int]]:
    for number, raw in enumerate(source, start=1):
        if not raw.strip():
            continue  # a blank line holds no command
        try:
            command = parse_command(raw)
        except ValidationError as error:
            reason = describe_validation_error(error)
            yield (
                _RejectedLine(number, _key_of(raw), "invalid_command", reason),
                len(raw),
            )
            continue
        envelope = Envelope(
            actor_id=command.actor.id,
            actor_role=command.actor.role,
            at=command.at,
            source="import",
            correlation_id=f"import-{run_id}-{number}",
            caller=IMPORT_CALLER,
            idempotency_key=command.key,
        )
        yield _ParsedLine(number, Submission(command, envelope)), len(raw)


def _record(
    ledger: Ledger,
    batch: list[_ParsedLine],
    cache: AggregateCache,
    summary: ImportSummary,
    report: IO[bytes],
) -> None:
    results = ledger.execute_batch([line.submission for line in batch], cache)
    for line, result in zip(batch, results, strict=True):
        if result.outcome is Outcome.ACCEPTED:
            summary.accepted += 1
        elif result.outcome is Outcome.DUPLICATE:
            summary.duplicate += 1
        else:
            summary.rejected += 1
            assert result.error is not None
            _report(
                report,
                _RejectedLine(
                    line.number,
                    line.submission.envelope.idempotency_key,
                    result.error.code,
                    str(result.error),
                ),
            )


def _report(report: IO[bytes], line: _RejectedLine) -> None:
    report.write(
        orjson.dumps(
            {
                "line": line.number,
                "key": line.key,
                "code": line.code,
                "reason": line.reason,
            }
        )
        + b"\n"
    )


def _key_of(raw: bytes) -> str | None:
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    key = document.get("key") if isinstance(document, dict) else None
    return key if isinstance(key, str) else None


def describe_validation_error(error: ValidationError) -> str:
    """A short, readable reason: each wrong field and what was wrong with it."""
    parts = []
    for problem in error.errors(include_url=False):
        location = ".".join(str(part) for part in problem["loc"])
        parts.append(f"{location}: {problem['msg']}" if location else problem["msg"])
    return "; ".join(parts)
