"""ax-agent: B2B Account Experience agent.

The core (``agent.core.models``, ``agent.core.matching``, ``agent.core.metrics`` …) is pure: typed
values in, typed values out. Connectors in ``connectors/`` adapt vendors to the small
protocols in ``agent.core.ports``; ``agent.sync.cycle`` wires them together.
"""

__version__ = "0.1.0"
