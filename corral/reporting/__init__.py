"""The parts of `corral report` (corral/report.py): reading a run folder, its figures, its HTML page."""
