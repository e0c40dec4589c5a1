"""The integrations service's tables: its numbered SQL migrations, applied after the platform's."""
