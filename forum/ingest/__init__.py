"""The paid-message pipeline: one settled payment flows one way, in batches, through one verdict.

Stages, each importing only the ones below it:

    listener  -> ledger  -> reconcile (batch) -> verdict -> publish -> realtime

- `listener`: holds the node's lease, streams settled invoices, and hands every invoice that
  has arrived (a batch) to `ledger.ledger_record_invoices` in one transaction with the cursor.
- `ledger`: the append-only rows and their cheap classification; it returns what it recorded.
- `reconcile`: claims pending ledger rows in settle order under the sequencer lock, decodes
  and verifies them outside the transaction, judges each with `verdict.decide` against
  prefetched `BatchLookups`, and writes the batch with bulk inserts and one update per
  counter table. It returns an `Outcome`.
- `verdict`: the one decision (duplicate or top-up, content, gate, price) for a message at a
  settle time. The hold reviewer (`hold`), room renting and the reconciler all call it.
- `publish`: the rows and realtime payloads of a published thread or reply (one builder each).

The one-way rule: a stage returns what it did (an `Outcome`); the caller (the listener loop, a
Celery task in `forum.tasks`, the sweep, the hold reviewer) queues the next step after commit.
Nothing in this package imports `forum.tasks`.

The ordering contract: every verdict depends only on rows with a lower settle index. Batches
are claimed in settle order by one sequencer at a time (a PostgreSQL advisory lock; a process
lock on SQLite, where the database allows one writer anyway), so any number of workers give
the verdicts of one worker reading the ledger in order. See docs/forum-core.md.
"""
