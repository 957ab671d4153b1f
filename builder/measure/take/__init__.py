"""Taking figures: running a runtime, watching it, the machine's facts."""
