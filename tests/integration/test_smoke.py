from ledger.application.ledger import Ledger
from tests.factories import record_all, small_city


def test_a_small_city_is_recorded_in_one_gap_free_sequence(ledger: Ledger) -> None:
    record_all(ledger, small_city())
    assert ledger.recorder.max_notification_id() == 7
