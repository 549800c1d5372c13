"""DistributedKube's Python algorithm wrapper.

Loads a user algorithm (a file defining ``start(args)`` and optionally
``init``, ``stop`` and ``exit``) and serves it to the runner over one
websocket, speaking HKube's wrapper protocol (storage ``v1``, inline data).

Standard library only. Run it with ``python3 -m distributedkube_wrapper``
from the algorithm's code directory (see ``__main__``).
"""

__version__ = "0.1.0"
