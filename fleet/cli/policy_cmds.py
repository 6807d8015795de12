"""``fleet validate`` and ``fleet schema``: check policy files and publish the policy schema."""

from __future__ import annotations
