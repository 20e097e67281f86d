"""Text utilities with exact IFEval semantics: Unicode class tables, Punkt sentence
boundaries, Treebank-style word tokens and n-gram language detection.

Each utility has a plain-Python reference (the oracle in tests) and, where the cost
matters, a numba kernel over code points that must agree with it exactly.
"""
