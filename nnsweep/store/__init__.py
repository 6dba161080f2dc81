"""The results folder: the store (resume, locking, readers), its safe file writing and
checked reading, and ``runs.jsonl``'s provenance.

Importing this package imports nothing heavy; each module loads on first use.
"""
