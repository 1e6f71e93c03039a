"""The pure core: typed models, matching, tiers, the metric contract and its figures, the ports.

No I/O, no database, no vendor: everything here is a function of its arguments.
"""
