"""Leaf types shared by every layer: resource ids, cluster facts, the compliance vocabulary."""
