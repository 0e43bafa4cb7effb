"""The manager: store, control API, orchestrators, scheduler and dispatcher."""
