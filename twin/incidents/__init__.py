"""Incidents: categories, lifecycle, storage with an append-only timeline, CAP."""
