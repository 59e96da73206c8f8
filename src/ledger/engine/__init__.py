"""The projection engine: catch-up, rebuild with switch-over, and verify.

Projections (``ledger.projections``) supply pure folds; the engine pages
events through them exactly once, keeps versions and tracking rows, and
replays them to check the stored figures.
"""
