"""Applying a plan: the remediation job's rules, its per-cluster steps and rollout arithmetic."""
