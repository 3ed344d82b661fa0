"""Test-suite settings: lessons run in fast mode under nbval, figures draw off screen."""

import os

os.environ.setdefault("LESSONS_FAST", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
