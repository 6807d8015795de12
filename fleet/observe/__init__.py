"""The observed state of a cluster: ARM JSON, its essence, and whether it is well-formed."""
