"""Headless Twitch user authentication shared by every StreamScout service.

A person runs ``streamscout seed-tokens`` once (device-code grant); the services then load the
token file, refresh it when Twitch says it is stale and save it back, coordinating through a file
lock so no two processes spend the same refresh token. See ``docs/auth.md``.

- :mod:`streamscout.auth.store` -- ``TokenStore`` / ``TokenFile``: the file, atomic saves, the lock.
- :mod:`streamscout.auth.provider` -- ``SyncTokenProvider``: blocking, stdlib HTTP (Flink worker).
- :mod:`streamscout.auth.runtime` -- ``authenticated_twitch()``: a pyTwitchAPI client (monitor).
- :mod:`streamscout.auth.errors` -- ``TokenError`` and its subclasses, each with an ``exit_code``.
"""
