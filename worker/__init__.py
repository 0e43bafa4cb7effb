"""The worker agent: a session with a manager, task controllers, and the executor that runs tasks."""
