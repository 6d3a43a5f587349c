"""Evolutionary merge: genome (search space), in-memory candidates, CMA-ES search with checkpoints."""
