"""soundark.preserve stage."""
