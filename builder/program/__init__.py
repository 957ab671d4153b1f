"""The program a runtime runs: the profile's [program] entry, the probe's hook, its runtime.json.

Below both the freeze (stages/) and the measurements (measure/): a frozen program and a venv's
stand-in for it are made from the same entry and hook.
"""
