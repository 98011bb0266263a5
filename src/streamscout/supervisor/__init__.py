"""Process supervision for the demo and `streamscout run` (systemd's job on a server)."""
