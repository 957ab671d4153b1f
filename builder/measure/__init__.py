"""Measuring runtimes, in three rooms that face one way (tests/test_layout.py keeps them):

- take/: taking figures. Starting a subject (the runtime under test: take/subject.py), the
  process runner and monitor, workloads, one run's figures, a folder's facts, bisect's
  environments. take imports neither judge nor show.
- judge/: judging them, as pure functions. Statistics, the sequential plan, budgets, and the
  bench, compare, bisect and tune decisions with their frozen results (BenchResult, Comparison,
  Bisection, Tuning), each with one `to_json`: the published document (builder/schemas/).
  judge imports from take only types, constants and take/metrics.py's definitions; never show.
- show/: showing them. The only home of text, Markdown and HTML for bench, compare, bisect,
  tune and doctor, rendered from the documents, with one formatter (show/format.py). show may read both.

The modules beside the rooms are the commands' orchestration: each runs things with take and
hands the figures to judge (bench.py, compare.py, bisect.py, tune.py); the CLI picks the
renderer. No room imports them. The doctor (doctor.py) sequences take/doctor_run.py,
judge/doctor_threads.py and show/doctor.py on runtime_doctor's rule book (the causes live there,
once, for builder, stems and every frozen program).
"""
