"""YAML alert rules: schema, loading with positions, safe expressions, pure evaluation."""
