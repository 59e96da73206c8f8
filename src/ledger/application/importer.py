"""``ledger import``: append an interchange file (CONTRACT §1.2).

The file is streamed line by line in bounded memory: lines are validated,
gathered into batches and recorded through the same application code as the
HTTP API (``Ledger.execute_batch``), many aggregates per transaction.
Rejected lines go to a JSON Lines report with their line number, key and
reason.

Every line is judged on its own, however malformed: a line over 64 KiB is
rejected unread (``line_too_long``), one that is not UTF-8 as such
(``invalid_encoding``), one that is not a JSON object or breaks a bound by
the rule it breaks. A UTF-8 byte order mark at the start of the file is
skipped, and the summary notes it.
"""

from __future__ import annotations

import codecs
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import orjson
from pydantic import ValidationError

from ledger.application.commands import (
    LONGEST_COMMAND_BYTES,
    parse_command,
    refusal_code,
)
from ledger.application.ledger import Ledger, Outcome, Submission
from ledger.application.refusals import describe_validation_error
from ledger.application.unit_of_work import AggregateCache
from ledger.domain.messages import translate
from ledger.store.event_store import Envelope
from ledger.store.memory import cyclic_gc_paused

DEFAULT_BATCH_SIZE = 2_000
# ``ledger import`` has one idempotency key space of its own (CONTRACT §1.2).
IMPORT_CALLER = "import"
# How much of an over-long line is read at a time, to pass over it.
_SKIP_CHUNK_BYTES = 1024 * 1024
BOM_NOTE = (
    "the file starts with a UTF-8 byte order mark (BOM); it was skipped and "
    "line 1 read without it"
)


@dataclass
class ImportSummary:
    accepted: int = 0
    duplicate: int = 0
    rejected: int = 0
    # The events the accepted lines wrote, and how long the import took.
    events: int = 0
    seconds: float = 0.0
    # What the operator should know about the file as a whole.
    notes: list[str] = field(default_factory=list)

    @property
    def lines(self) -> int:
        return self.accepted + self.duplicate + self.rejected

    def summary_line(self) -> str:
        return (
            f"accepted={self.accepted} duplicate={self.duplicate} "
            f"rejected={self.rejected}"
        )

    def rate_line(self) -> str:
        """How fast the file went in: lines judged and events written per
        second."""
        seconds = max(self.seconds, 1e-9)
        return (
            f"{self.lines:,} lines, {self.events:,} events in {self.seconds:.1f} s: "
            f"{self.lines / seconds:,.0f} lines/s, {self.events / seconds:,.0f} "
            "events/s"
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
    started = time.perf_counter()
    summary = ImportSummary()
    run_id = uuid.uuid4().hex[:12]
    cache = AggregateCache()
    with (
        path.open("rb") as source,
        (report_path or default_report_path(path)).open("wb") as report,
        cyclic_gc_paused(),
    ):
        if source.read(len(codecs.BOM_UTF8)) == codecs.BOM_UTF8:
            summary.notes.append(BOM_NOTE)
        else:
            source.seek(0)
        batch: list[_ParsedLine] = []
        for item, size in _judge_lines(source, run_id):
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
    summary.seconds = time.perf_counter() - started
    return summary


def _read_lines(source: IO[bytes]) -> Iterator[tuple[int, bytes | None, int]]:
    """Each line's number, text (None for one over the limit, passed over in
    pieces, never held whole) and size in bytes."""
    number = 0
    while line := source.readline(LONGEST_COMMAND_BYTES + 1):
        number += 1
        if len(line) <= LONGEST_COMMAND_BYTES or line.endswith(b"\n"):
            yield number, line, len(line)
            continue
        size = len(line)
        while line and not line.endswith(b"\n"):
            line = source.readline(_SKIP_CHUNK_BYTES)
            size += len(line)
        yield number, None, size


def _judge_lines(
    source: IO[bytes], run_id: str
) -> Iterator[tuple[_ParsedLine | _RejectedLine, int]]:
    for number, raw, size in _read_lines(source):
        if raw is None:
            reason = translate(
                "the line is longer than {longest:,} bytes (64 KiB); it was not read",
                {"longest": LONGEST_COMMAND_BYTES},
            )
            yield _RejectedLine(number, None, "line_too_long", reason), size
            continue
        if not raw.strip():
            continue  # a blank line holds no command
        if raw.startswith(codecs.BOM_UTF8):
            reason = translate(
                "the line starts with a UTF-8 byte order mark (BOM), which only "
                "the start of a file may carry; remove it"
            )
            yield _RejectedLine(number, None, "byte_order_mark", reason), size
            continue
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as error:
            reason = translate(
                "the line is not UTF-8: byte {byte:#04x} at byte offset {offset} "
                "cannot be decoded; save the file as UTF-8",
                {"byte": raw[error.start], "offset": error.start},
            )
            yield _RejectedLine(number, None, "invalid_encoding", reason), size
            continue
        try:
            command = parse_command(raw)
        except ValidationError as error:
            code = refusal_code(problem["type"] for problem in error.errors())
            reason = describe_validation_error(error)
            yield _RejectedLine(number, _key_of(raw), code, reason), size
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
        yield _ParsedLine(number, Submission(command, envelope)), size


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
            assert result.first_position is not None
            assert result.last_position is not None
            summary.events += result.last_position - result.first_position + 1
        elif result.outcome in (Outcome.DUPLICATE, Outcome.UNCHANGED):
            # Acknowledged, nothing written (CONTRACT §1.2's three counts).
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
