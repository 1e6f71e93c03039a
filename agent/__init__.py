"""ax-agent: B2B Account Experience agent.

The core (``agent.models``, ``agent.matching``, ``agent.metrics`` …) is pure: typed
values in, typed values out. Connectors in ``connectors/`` adapt vendors to the small
protocols in ``agent.ports``; ``agent.cycle`` wires them together.
"""

__version__ = "0.1.0"
