"""The query side: figures read from projections, and audit queries.

Every answer names the ledger position it reflects and the chain hash there.
"""
