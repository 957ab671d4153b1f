"""Taking figures: the subject under test and how to start it, the runner, workloads, one run's
figures, a folder's facts, the doctor's runs. Imports neither judge/ nor show/."""
