"""Datasets: loaders for the row formats, the multi-constraint builder and the curriculum."""

from ifrl.data.loaders import load_ifbench, load_ifeval, load_responses, load_rows, write_rows

__all__ = ["load_rows", "load_ifeval", "load_ifbench", "load_responses", "write_rows"]
