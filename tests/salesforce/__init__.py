"""Salesforce tests: a fake org served over HTTP, shaped like the documented REST API."""
