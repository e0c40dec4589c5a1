"""The event store: the append-only log that is the source of truth, its envelope, its
locks and the platform's migrations."""
