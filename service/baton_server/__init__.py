"""Baton's server: a grpc.aio application over Postgres.

Layers, with arrows pointing one way:
``servicers`` (gRPC in/out, validation) -> ``engine`` (dispatch, leases, waits)
-> ``store`` (repositories returning frozen dataclasses) -> ``connector``
(pool, transactions, LISTEN/NOTIFY).
"""

__version__ = "0.1.0"
