"""The rolling-update supervisor: replaces tasks of an outdated spec, slot by slot, by the update policy."""
