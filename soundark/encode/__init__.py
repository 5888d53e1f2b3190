"""soundark.encode stage."""
