"""The application layer: the only writer of the ledger.

Commands (``commands``) are parsed once for import, HTTP and OpenAPI; the
handlers (``handlers``) load aggregates through a unit of work and let them
decide; ``ledger.Ledger`` appends what they decided under one envelope, in one
transaction; ``importer`` feeds interchange files through the same path.
"""
