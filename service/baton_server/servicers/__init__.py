"""gRPC in and out: validation, conversion, error mapping. No SQL here."""
