"""One module per constraint family; each module registers its ids on import."""
