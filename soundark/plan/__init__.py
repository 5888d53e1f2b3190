"""soundark.plan stage."""
