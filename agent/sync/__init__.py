"""The cycle: sync, ingest, compute once, plan and write back, alert; and the wiring of
connectors from settings."""
