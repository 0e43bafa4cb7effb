"""Placement: pure filters and spread over a snapshot of nodes, and the loop that commits plans."""
