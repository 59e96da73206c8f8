"""The projection engine: exactly-once, rebuildable, as-of, explainable.

Projections (``ledger.projections``) supply pure folds from an event to its
**entries** (``projection``); the engine pages events through them exactly
once, keeps versions and tracking rows, and replays them to check the
stored figures.

Each projection has versions. The engine keeps one row per (projection,
version) in ``projection_versions`` with its state (building, live,
retired) and the position it has processed up to (``tracking``). Catching
up reads events in large pages; for each page the entries and the new
tracking position are committed in one transaction that holds the tracking
row's lock, so a crash at any instant neither loses nor double-counts an
event, and two runners cannot both apply one page (``catch_up``). A rebuild
replays from the first event into a new version beside the live one and
switches over in one transaction once it has caught up, so reads never see
an empty or half-built projection (``rebuild``).

The dead-letter policy: an event a projection cannot process is parked —
recorded in ``projection_dead_letters`` with its position, topic and error —
and the projection goes on with the next event, so one bad event neither
stalls the projection nor vanishes. Every read reports how many events its
projection has parked, ``ledger project`` lists them and exits non-zero, and
``ledger verify`` fails while any remain (``verify``). Once the cause is
fixed, ``ledger rebuild NAME`` processes every event again into a fresh
version.

``ProjectionEngine`` (``projection_engine``) puts these together for callers.
"""

from ledger.engine.catch_up import CatchUpReport
from ledger.engine.events import (
    DEFAULT_PAGE_SIZE,
    EventReader,
    RecordedEvent,
    iter_events,
    read_events,
)
from ledger.engine.projection import (
    Contributions,
    Entry,
    ExplainedPage,
    Projection,
    define_entries_table,
    fingerprint,
)
from ledger.engine.projection_engine import FOLLOWER_LOCK, ProjectionEngine
from ledger.engine.rebuild import REBUILD_WORKERS, SwitchOverHook
from ledger.engine.tracking import (
    BUILDING,
    LIVE,
    RETIRED,
    LiveState,
    ProjectionLag,
    VersionInfo,
    dead_letters_table,
    last_change,
    list_dead_letters,
    projection_changes_noted_table,
    projection_changes_table,
    projection_versions_table,
)
from ledger.engine.verify import Difference, VerificationResult

__all__ = [
    "BUILDING",
    "DEFAULT_PAGE_SIZE",
    "FOLLOWER_LOCK",
    "LIVE",
    "REBUILD_WORKERS",
    "RETIRED",
    "CatchUpReport",
    "Contributions",
    "Difference",
    "Entry",
    "EventReader",
    "ExplainedPage",
    "LiveState",
    "Projection",
    "ProjectionEngine",
    "ProjectionLag",
    "RecordedEvent",
    "SwitchOverHook",
    "VerificationResult",
    "VersionInfo",
    "dead_letters_table",
    "define_entries_table",
    "fingerprint",
    "iter_events",
    "last_change",
    "list_dead_letters",
    "projection_changes_noted_table",
    "projection_changes_table",
    "projection_versions_table",
    "read_events",
]
