"""Everything SQL: the schema, the engine, dialect helpers, the bank's rows and its files.

This layer knows nothing of strategies, tasks or results; every other layer reads and writes
the database through it.
"""
