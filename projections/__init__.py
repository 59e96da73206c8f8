"""Projections: one module each, a pure fold plus the SQL view it maintains."""
