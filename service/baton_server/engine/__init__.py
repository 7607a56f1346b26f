"""Dispatch, leases and waits: the service's behaviour, free of gRPC and SQL."""
