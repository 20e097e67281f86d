"""Evaluation: verify responses on IFEval / IFBench / any rows, report and compare runs."""
