"""Group commit: commands that arrive together share one append transaction.

A server answers many callers at once, each in a thread of its own. Alone,
each would take the ledger's append lock and wait for its own durable
commit; here the first caller that finds no commit under way leads: it takes
every command waiting (its own included), has ``Ledger.execute_batch`` decide
them one by one against fresh state — each seeing what those before it in
the group decided — and commit the accepted ones in one transaction, then
hands every caller its own answer. Callers arriving meanwhile wait for the
next group, which the first of them leads. An idle server thus commits a
lone command at once; a busy one commits more per transaction the more
arrive while a commit is under way.

Each command keeps its own outcome (a refused one writes nothing and does
not touch the others), its own positions and its caller's idempotency key
(two commands of one group under one caller's key: the second is the
first's duplicate, or refused if its content differs). A group that cannot
be committed still answers every caller: when the ledger is busy or its
database out of reach, each gets that error (HTTP 503); when another writer
changed an aggregate first (or anything else went wrong), each command is
recorded again on its own, so that only a command that fails alone fails.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Sequence
from typing import Protocol

from ledger.application.ledger import CommandResult, Ledger, Submission
from ledger.store.event_store import DatabaseUnavailableError, LedgerBusyError

# The most commands decided and appended in one transaction: enough to carry
# every request a server holds at once, few enough to keep a group's
# transaction short.
MAX_GROUP = 256


class RecordsCommands(Protocol):
    """What records one command for a caller: the ledger itself, or a group
    commit over it."""

    def execute(self, submission: Submission) -> CommandResult: ...


class _Waiting:
    """One caller's command, waiting for its answer or for its turn to lead."""

    def __init__(self, submission: Submission) -> None:
        self.submission = submission
        self.result: CommandResult | None = None
        self.error: BaseException | None = None
        self.leads = False
        self.woken = threading.Event()

    @property
    def answered(self) -> bool:
        return self.result is not None or self.error is not None

    def answer(self, result: CommandResult) -> None:
        self.result = result
        self.woken.set()

    def fail(self, error: BaseException) -> None:
        # A copy each: callers raise it in their own threads, and a raise
        # writes its traceback into the exception.
        self.error = copy.copy(error)
        self.woken.set()

    def lead(self) -> None:
        self.leads = True
        self.woken.set()


class GroupCommit:
    """Records the commands of concurrent callers of one process in shared
    append transactions (see the module docstring). Each process groups its
    own callers; processes still take the ledger's append lock in turn, so
    positions stay gap-free and in commit order."""

    def __init__(self, ledger: Ledger, max_group: int = MAX_GROUP) -> None:
        self.ledger = ledger
        self.max_group = max_group
        self._lock = threading.Lock()
        self._queue: list[_Waiting] = []
        self._committing = False

    @property
    def committing(self) -> bool:
        """Whether a group is being decided and committed now."""
        return self._committing

    @property
    def waiting(self) -> int:
        """How many commands wait for the next group."""
        return len(self._queue)

    def execute(self, submission: Submission) -> CommandResult:
        """Record ``submission`` with whatever else arrives meanwhile; its
        own answer, or the error that kept its group (and it) from being
        recorded."""
        waiting = _Waiting(submission)
        with self._lock:
            self._queue.append(waiting)
            if not self._committing:
                self._committing = waiting.leads = True
        while not waiting.leads and not waiting.answered:
            waiting.woken.wait()
            waiting.woken.clear()
        if not waiting.answered:
            self._lead()
        if waiting.error is not None:
            raise waiting.error
        assert waiting.result is not None
        return waiting.result

    def _lead(self) -> None:
        """Commit the commands waiting now, then hand the lead to the first
        of those that arrived meanwhile (or let it go)."""
        with self._lock:
            group = self._queue[: self.max_group]
            del self._queue[: self.max_group]
        try:
            self._commit(group)
        except BaseException as error:
            for waiting in group:
                if not waiting.answered:
                    waiting.fail(error)
            raise
        finally:
            with self._lock:
                if self._queue:
                    self._queue[0].lead()
                else:
                    self._committing = False

    def _commit(self, group: Sequence[_Waiting]) -> None:
        try:
            results = self.ledger.execute_batch(
                [waiting.submission for waiting in group], retry_conflicts=False
            )
        except (LedgerBusyError, DatabaseUnavailableError) as error:
            # Recording them one by one would only wait as long again each.
            for waiting in group:
                waiting.fail(error)
            return
        except Exception as error:
            if len(group) == 1:
                group[0].fail(error)
                return
            # Nothing was written: each is recorded on fresh state on its own,
            # and only a command that cannot be recorded alone fails.
            for waiting in group:
                try:
                    waiting.answer(self.ledger.execute(waiting.submission))
                except Exception as alone:
                    waiting.fail(alone)
            return
        for waiting, result in zip(group, results, strict=True):
            waiting.answer(result)
