"""The pure evaluation engine: desired state, essence, diff, versions, evaluate, plan."""
