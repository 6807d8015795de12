"""Tests of the report model, the renderers and ``fleet report``."""
