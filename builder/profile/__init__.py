"""Profiles: what goes into a runtime, per target. One schema table (schema.py), resolved
dataclasses (model.py), and the reader (load.py)."""

from builder.profile.load import load_all, load_profile, merge, parse_toml, profile_names, validate
from builder.profile.model import BenchBudget, FreezeSettings, Indexes, Packages, Profile, RuntimeSettings

__all__ = [
    "BenchBudget",
    "FreezeSettings",
    "Indexes",
    "Packages",
    "Profile",
    "RuntimeSettings",
    "load_all",
    "load_profile",
    "merge",
    "parse_toml",
    "profile_names",
    "validate",
]
