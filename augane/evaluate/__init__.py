"""DISFA evaluation (AU-consistency F1 tables, plots, report) and reconstruction of users' media."""
