"""The domain: aggregates, their past-tense events and the rules they keep.

It imports only the standard library and ``eventsourcing``'s domain model.
"""
