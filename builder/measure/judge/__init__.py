"""Judging figures (pure): statistics, the sequential plan, budgets, each command's decision and
frozen result, and the doctor's judgement on the rule book. Imports take/'s types only, never show/."""
