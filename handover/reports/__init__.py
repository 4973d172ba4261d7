"""Managers' reports: what needs attention now, and how quickly teams acknowledge handovers."""
