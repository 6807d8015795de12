"""Planning: the ARM writes that would make a cluster compliant, and the per-cluster pipeline."""
