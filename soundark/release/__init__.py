"""soundark.release stage."""
