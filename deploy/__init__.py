"""Deployment helpers that run inside the containers (not part of the `maam` wheel)."""
