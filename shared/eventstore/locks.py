"""Advisory lock keys, in one place so no two uses of a key can collide.

The keys are arbitrary 64-bit numbers; the first 32 bits spell "admi" so they are unlikely
to clash with another application sharing the database.
"""

from typing import Final

_PREFIX: Final = 0x61646D69 << 32

APPEND_LOCK: Final = _PREFIX | 1
"""Transaction-scoped: serialises position assignment of appends (see store.py)."""
RELAY_LOCK: Final = _PREFIX | 2
"""Session-scoped: only one outbox relay publishes at a time."""
MIGRATIONS_LOCK: Final = _PREFIX | 3
"""Session-scoped: one process applies migrations at a time."""
PUBLIC_RELAY_LOCK: Final = _PREFIX | 4
"""Session-scoped: only one publisher of public events (for integrators) at a time."""
