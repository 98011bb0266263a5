"""The clip API and the page people watch clips on (``streamscout api``)."""
