"""runtime-builder: build, audit, benchmark and package frozen PyTorch runtimes.

builder never imports torch: it talks to a runtime only by running it.
"""

__version__ = "0.1.0"
