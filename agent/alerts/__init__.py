"""Alerts: the notify decision, the outbox and state repositories, delivery."""
