"""runtime_doctor: why a runtime is slow on the machine it runs on, judged by one rule book.

Why a top-level package of its own, and not a module of builder or of runtime_entry:
- `stems doctor` (runtime_entry, frozen or in a venv) judges with it, and runtime_entry never
  imports builder;
- `builder doctor` judges with it too, and builder never imports runtime_entry (whose package
  holds torch code); builder then only adds what needs builder: re-running with a fix applied;
- the freeze bundles its text into every frozen program's runtime hook (as it does the probe's),
  so a team's own program answers RUNTIME_BUILDER_DOCTOR=FILE without any code of its own, and
  there neither package exists.

So it is stdlib only, imports neither builder nor runtime_entry, and imports torch only inside
`calibrate` (called only in a runtime). tests/test_layout.py holds it to that. Its modules:
- `host`: the OS facts, one reading function per fact and per OS, each fed by a pure parser;
- `rules`: the rule book, facts -> causes (pure);
- `report`: the runtime's identity, redaction, the plain-text report (pure);
- `calibrate`: the fixed torch kernels the build's fingerprint and the doctor both time;
- `inprocess`: the doctor inside a runtime: take the facts of this process, judge, write.
"""

# The hook loads these modules from their text in this order (each needs only earlier ones).
MODULES = ("host", "rules", "report", "calibrate", "inprocess")
