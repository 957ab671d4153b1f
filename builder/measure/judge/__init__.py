"""Judging figures (pure): statistics, the sequential plan, budgets, and each command's decision
and frozen result. Imports take/'s types only, never show/."""
