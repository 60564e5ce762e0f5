"""Shared pytest set-up: run small, headless and quiet."""
import os

os.environ.setdefault("SKSHA_TEST", "1")   # sksha.core.in_test() -> True: examples shrink to the `ci` profile
os.environ.setdefault("MPLBACKEND", "Agg")  # figures render without a screen
