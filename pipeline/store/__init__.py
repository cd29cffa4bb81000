"""The store: the only package that speaks SQL (SQLAlchemy Core), on SQLite or PostgreSQL.

``open_store(config)`` connects, migrates to the latest schema and returns a ``Store`` whose
attributes are the aggregates, one module each: ``papers`` (papers and dumps), ``subscribers``
(subscribers, suppressions and bounce scores), ``ledger`` (deliveries and sent papers),
``feedback`` and ``tokens``, ``leases`` and ``signups`` (sign-up events), ``vectors`` (sentence
vectors of papers and texts), and ``pauses`` (the circuit breaker's pause of delivery). They
share one engine and one transaction helper (``engine.py``); a failure never leaves half a
dump or half a delivery.
"""

from pipeline.store.engine import engine_for, utcnow
from pipeline.store.facade import Store, open_store
from pipeline.store.subscribers import email_hash

__all__ = ["Store", "email_hash", "engine_for", "open_store", "utcnow"]
