"""Integrations: public events for agencies (NATS subjects and signed HTTP webhooks)."""
