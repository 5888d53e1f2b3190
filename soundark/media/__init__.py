"""The only home of PyAV and mutagen: probe, tags, transcode, synth."""
