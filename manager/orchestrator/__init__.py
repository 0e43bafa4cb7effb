"""Orchestrators: pure reconcile functions that turn service specs into tasks, and their loops."""
