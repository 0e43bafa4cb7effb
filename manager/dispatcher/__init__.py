"""The dispatcher: agent sessions, liveness, assignments and task status reports."""
