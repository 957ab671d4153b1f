"""Permission bits that apply to root: a child process without the capabilities that let root
past them (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH). Not setuid to nobody: this interpreter may
live under /root, which nobody may not enter. Elsewhere (not root) the bits apply anyway."""

from __future__ import annotations

import os
import sys

IS_ROOT = sys.platform != "win32" and os.geteuid() == 0
PR_CAPBSET_DROP, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 24, 1, 2  # linux/prctl.h, capability.h


def drop_file_capabilities() -> None:
    """subprocess's preexec_fn: PR_CAPBSET_DROP removes the two from what the exec grants root."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def preexec() -> dict[str, object]:
    """subprocess.run's keyword arguments that make permission bits apply to the child."""
    return {"preexec_fn": drop_file_capabilities} if IS_ROOT and sys.platform.startswith("linux") else {}
