"""Fault injection against the real gateway process, broker and database."""
