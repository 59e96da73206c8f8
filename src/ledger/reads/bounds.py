"""What a read may be asked, as plain numbers: apart from the reads
themselves, so that the command line can show them in its help without
loading the database layer (``ledger --help`` stays quick)."""

from __future__ import annotations

# Positions are 64-bit; times lie in these years (the ledger records none
# outside 2000-2099, CONTRACT §1.3: a wider span only asks for more than
# there is, and keeps every time convertible to UTC).
LAST_POSITION = 2**63 - 1
READ_YEARS = (1900, 2999)

# Events a venue explanation lists at most per answer (a city's are millions).
EXPLAINED_EVENTS = 1_000
MOST_EXPLAINED_EVENTS = 10_000

# Events an audit answer holds at most per page.
MAX_PAGE = 1000
