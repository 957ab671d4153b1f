"""Taking figures: the subject under test and how to start it, the runner, workloads, one run's
figures, a folder's facts. Imports neither judge/ nor show/."""
