"""Selection: which policies target a cluster (targets, exclusions, exemptions)."""
