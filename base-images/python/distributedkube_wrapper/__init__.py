"""DistributedKube's Python algorithm wrapper.

Loads a user algorithm (a file defining ``start(args)`` and optionally
``init``, ``stop`` and ``exit``) and serves it to the runner over one
websocket, speaking HKube's wrapper protocol: storage ``v1`` (data inline)
or ``v3`` (job data by reference through the shared storage, local files
or S3: ``storage``, ``s3``, ``by_reference``).

Standard library only. Run it with ``python3 -m distributedkube_wrapper``
from the algorithm's code directory (see ``__main__``).
"""

__version__ = "0.1.0"
