"""Merging models with mergekit: compatibility from configs (compat), recipes as mergekit YAML (recipe, form),
running a merge into the workspace and registering it (run)."""
