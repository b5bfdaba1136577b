"""The dashboard's pages, one module per panel (each with its ``routes`` table)."""
