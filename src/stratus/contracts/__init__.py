"""Typed documents that cross a process boundary; imports only the standard library."""
