"""CRM tasks made by rules (``task:``): planned, recorded, created, and read back."""
