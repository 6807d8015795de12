"""Evaluation: desired against observed, into findings and a verdict per cluster."""
