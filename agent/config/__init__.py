"""Configuration: the settings root, the service settings and logging set-up."""
