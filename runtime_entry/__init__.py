"""runtime_entry: the program that gets frozen into `stems`.

It never imports builder, and nothing here imports torch at module level: thread
settings must reach the environment before torch (and its OpenMP) is loaded.
"""

__version__ = "0.1.0"
