"""Fixity primitives shared by release and preserve: hashing, BagIt manifests, parity, torrent parsing."""
