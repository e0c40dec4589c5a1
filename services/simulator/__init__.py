"""WhatsApp simulator: a stand-in for the WhatsApp Cloud API for development and tests.

It serves the Cloud API endpoints the services call (send messages, media lookup and
download, media upload), sends real signed webhooks to the intake service, and serves a
chat page where a person plays the citizen. See :mod:`services.simulator.app`.
"""
