"""StreamScout: live Twitch chat in, highlight clips out."""

__version__ = "0.1.0"
