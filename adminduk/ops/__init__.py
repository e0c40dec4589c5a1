"""Tools for the people who run adminduk: read the log, replay it, rebuild read models.

The commands are ``adminduk events`` (:mod:`adminduk.ops.events_cli`) and ``adminduk
projections`` (:mod:`adminduk.ops.projections_cli`); docs/OPERATIONS.md explains them.
"""
