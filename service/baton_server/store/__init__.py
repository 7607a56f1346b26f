"""Repositories: typed reads and guarded writes over the named SQL blocks.

Every function takes the caller's transaction (:class:`~baton_server.connector.Tx`)
so that the engine decides what commits together.
"""
