"""The embedded default: demo face model, synthetic AU-labelled world and stand-in detectors."""
