"""The desired state of a cluster: policies merged and rendered into ARM bodies."""
