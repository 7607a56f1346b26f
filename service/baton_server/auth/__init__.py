"""Authentication (bearer tokens) and authorization (roles per RPC)."""
