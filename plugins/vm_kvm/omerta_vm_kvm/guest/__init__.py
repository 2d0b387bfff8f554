"""Data files of the test guest (its init script); no code."""
