"""Plumbing shared by every vendor adapter: one copy of each concern."""
