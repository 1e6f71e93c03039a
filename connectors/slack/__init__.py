"""Slack: Block Kit alerts, the outbox notifier, the close-loop interactivity endpoint."""
