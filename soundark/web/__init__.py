"""soundark.web stage."""
