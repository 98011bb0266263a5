"""Synthetic chat for one channel: bursty message counts and realistic IRC lines.

Counts and content use separate seeded generators, so how many messages a channel sends
in each tick is the same whether or not anyone has joined it (a run is reproducible from
its seed), and building lines is only paid for channels someone listens to.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from streamscout.sim.scenario import TWITCH_EMOTES, Channel

EMOTE_CACHE_SIZE = 20000
EMOTE_SPAM_SHARE = 0.3  # of the messages that are not !commands, outside bursts
COMMANDS = ("!uptime", "!song", "!socials", "!discord", "!followage", "!points", "!prime", "!game",
            "!title", "!watchtime", "!specs", "!sens")
WORDS = ("lol", "what", "no way", "chat", "is this real", "W", "L", "based", "true", "clip it",
         "LETS GO", "bro", "nice", "gg", "wait what", "ratio", "actually insane", "who asked",
         "first time here", "hello", "this song", "huh", "HUH", "sheesh", "nah", "yes", "o7",
         "he's cooking", "play the game", "scuffed", "no shot", "can't believe it", "same")
COLORS = ("#FF0000", "#0000FF", "#008000", "#B22222", "#FF7F50", "#9ACD32", "#FF4500", "#2E8B57",
          "#DAA520", "#D2691E", "#5F9EA0", "#1E90FF", "#FF69B4", "#8A2BE2", "#00FF7F", "")
SYLLABLES = ("ka", "zu", "mi", "ro", "te", "xo", "lu", "na", "vi", "do", "qu", "ba", "fe", "ri", "so", "yo")


def escape_tag(value: str) -> str:
    """IRCv3 tag value escaping."""
    return (value.replace("\\", "\\\\").replace(";", "\\:").replace(" ", "\\s")
            .replace("\r", "\\r").replace("\n", "\\n"))


def poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam < 30:
        threshold, k, p = math.exp(-lam), 0, rng.random()
        while p > threshold:
            k += 1
            p *= rng.random()
        return k
    return max(0, round(rng.gauss(lam, math.sqrt(lam))))


@dataclass(frozen=True)
class Chatter:
    login: str
    user_id: str
    head: str  # "@badge-info=...;badges=...;color=...;display-name=...;"
    mod: str
    subscriber: str
    vip: str
    source: str  # ":login!login@login.tmi.twitch.tv"
    display_name: str


def _chatter(rng: random.Random, index: int, channel_login: str) -> Chatter:
    login = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))) + (str(rng.randint(1, 9999)) if rng.random() < 0.6 else "")
    login = f"{login}_{index}" if rng.random() < 0.3 else login + str(index)
    display = login.capitalize() if rng.random() < 0.5 else login
    months = rng.choice((0, 0, 0, 1, 2, 3, 6, 9, 12, 14, 24, 38))
    badges, badge_info = [], []
    mod = rng.random() < 0.01
    vip = not mod and rng.random() < 0.01
    if mod:
        badges.append("moderator/1")
    if vip:
        badges.append("vip/1")
    if months:
        badge_info.append(f"subscriber/{months}")
        tier = 3000 if months >= 24 else 2000 if months >= 12 else 0
        badges.append(f"subscriber/{tier + min(months, 12)}")
    if rng.random() < 0.15:
        badges.append("premium/1")
    if rng.random() < 0.05:
        badges.append(rng.choice(("glhf-pledge/1", "sub-gifter/5", "bits/100", "no_audio/1")))
    head = (f"@badge-info={','.join(badge_info)};badges={','.join(badges)};color={rng.choice(COLORS)};"
            f"display-name={display};")
    return Chatter(login, str(rng.randint(10_000_000, 999_999_999)), head, "1" if mod else "0",
                   "1" if months else "0", ";vip=1" if vip else "", f":{login}!{login}@{login}.tmi.twitch.tv", display)


class ChannelChat:
    """The chat of one channel. ``counts(t, dt)`` advances the rate model one tick;
    ``lines(n, ...)`` builds n IRC lines for that tick."""

    def __init__(self, channel: Channel, seed: int) -> None:
        self.channel = channel
        self.model = channel.chat
        self.rate_rng = random.Random(f"{seed}:{channel.login}:rate")
        self.text_rng = random.Random(f"{seed}:{channel.login}:text")
        self.log_level = 0.0  # OU state of the log modulation
        self.excitation = 0.0
        size = self.model.chatters or max(40, min(20000, int(self.model.rate * 300)))
        self.chatters = [_chatter(self.text_rng, i, channel.login) for i in range(size)]
        weights = [1.0 / (rank + 1) ** 0.8 for rank in range(size)]  # a few chatters write most lines
        self.cum_weights = _cumsum(weights)
        self.emotes = self.model.emotes
        self.recent: list[tuple[Chatter, str, str]] = []  # (chatter, msg id, text) for replies
        self.messages_seen: dict[str, int] = {}
        self._emote_cache: dict[str, tuple[str, str]] = {}

    def counts(self, t: float, dt: float, burst_multiplier: float) -> int:
        """Messages in the tick [t, t+dt) of scenario time."""
        m = self.model
        if m.burstiness > 0 and m.tau > 0:
            theta = dt / m.tau
            self.log_level += -self.log_level * theta + m.burstiness * math.sqrt(2 * theta) * self.rate_rng.gauss(0, 1)
            modulation = math.exp(self.log_level - m.burstiness ** 2 / 2)
        else:
            modulation = 1.0
        lam = m.rate * (1 - m.excitation) * modulation * burst_multiplier + self.excitation
        n = poisson(self.rate_rng, lam * dt)
        if m.excitation > 0:
            self.excitation = (self.excitation * math.exp(-dt / m.excitation_decay)
                               + n * m.excitation / m.excitation_decay)
        return n

    def _text(self, hype: bool) -> str:
        # seq[int(random() * len)] rather than choice(): a third of the cost, same distribution
        random = self.text_rng.random
        r = random()
        commands = self.model.commands
        if r < commands:
            return COMMANDS[int(random() * len(COMMANDS))]
        emotes = self.emotes
        if hype or r < commands + (1 - commands) * EMOTE_SPAM_SHARE:
            emote = emotes[int(random() * len(emotes))]
            return " ".join([emote] * (1 + int(random() * (6 if hype else 4))))
        words = WORDS[int(random() * len(WORDS))]
        if random() < 0.4:
            words += " " + emotes[int(random() * len(emotes))]
        return words

    def lines(self, n: int, now_ms: int, tick_ms: int, room_id: str, hype: bool = False) -> list[str]:
        """n PRIVMSG lines (plus the odd CLEARCHAT), timestamps spread over the last tick."""
        if n <= 0:
            return []
        rng = self.text_rng
        chatters = rng.choices(self.chatters, cum_weights=self.cum_weights, k=n)
        channel = self.channel.login
        out = []
        for i, chatter in enumerate(chatters):
            ts = now_ms - (n - 1 - i) * tick_ms // n
            text = self._text(hype)
            msg_id = "%032x" % rng.getrandbits(128)
            msg_id = f"{msg_id[:8]}-{msg_id[8:12]}-4{msg_id[13:16]}-a{msg_id[17:20]}-{msg_id[20:]}"
            reply = ""
            if self.recent and rng.random() < self.model.replies:
                parent, parent_id, parent_text = rng.choice(self.recent)
                text = f"@{parent.display_name} {text}"
                reply = (f"reply-parent-display-name={parent.display_name};reply-parent-msg-body={escape_tag(parent_text)};"
                         f"reply-parent-msg-id={parent_id};reply-parent-user-id={parent.user_id};"
                         f"reply-parent-user-login={parent.login};reply-thread-parent-display-name={parent.display_name};"
                         f"reply-thread-parent-msg-id={parent_id};reply-thread-parent-user-id={parent.user_id};"
                         f"reply-thread-parent-user-login={parent.login};")
            seen = self.messages_seen.get(chatter.login, 0)
            self.messages_seen[chatter.login] = seen + 1
            emotes, emote_only = self._emote_tags(text)
            out.append(f"{chatter.head}{emote_only}emotes={emotes};first-msg={'1' if seen == 0 and rng.random() < 0.1 else '0'};"
                       f"flags=;id={msg_id};mod={chatter.mod};{reply}returning-chatter=0;room-id={room_id};"
                       f"subscriber={chatter.subscriber};tmi-sent-ts={ts};turbo=0;user-id={chatter.user_id};"
                       f"user-type={chatter.vip} {chatter.source} PRIVMSG #{channel} :{text}")
            if len(self.recent) < 50:
                self.recent.append((chatter, msg_id, text))
            else:
                self.recent[rng.randrange(50)] = (chatter, msg_id, text)
            if rng.random() < self.model.timeouts:
                out.append(f"@ban-duration={rng.choice((60, 150, 300, 600))};room-id={room_id};"
                           f"target-user-id={chatter.user_id};tmi-sent-ts={ts} :tmi.twitch.tv CLEARCHAT #{channel} :{chatter.login}")
        return out

    def _emote_tags(self, text: str) -> tuple[str, str]:
        """(emotes tag, "emote-only=1;" or ""), cached: texts repeat a lot (spam, commands)."""
        cached = self._emote_cache.get(text)
        if cached is None:
            emotes = emote_ranges(text)
            only = "emote-only=1;" if emotes and all(w in TWITCH_EMOTES for w in text.split(" ")) else ""
            cached = (emotes, only)
            if len(self._emote_cache) < EMOTE_CACHE_SIZE:
                self._emote_cache[text] = cached
        return cached

    def raid(self, now_ms: int, room_id: str, source: str, viewers: int) -> list[str]:
        raider = source or self.text_rng.choice(SYLLABLES) + "streamer"
        return [self._usernotice({
            "badge-info": "", "badges": "", "color": "#1E90FF", "display-name": raider, "emotes": "",
            "flags": "", "id": self._uuid(), "login": raider, "mod": "0", "msg-id": "raid",
            "msg-param-displayName": raider, "msg-param-login": raider,
            "msg-param-profileImageURL": f"https://static-cdn.jtvnw.net/jtv_user_pictures/{raider}-profile_image-70x70.png",
            "msg-param-viewerCount": str(viewers), "room-id": room_id, "subscriber": "0",
            "system-msg": f"{viewers} raiders from {raider} have joined!", "tmi-sent-ts": str(now_ms),
            "user-id": str(self.text_rng.randint(10_000_000, 999_999_999)), "user-type": "",
        })]

    def gift_subs(self, now_ms: int, room_id: str, count: int) -> list[str]:
        """A `submysterygift` followed by one `subgift` per recipient, as Twitch sends them."""
        rng = self.text_rng
        gifter = rng.choice(self.chatters)
        common = {"display-name": gifter.display_name, "emotes": "", "flags": "", "login": gifter.login,
                  "mod": gifter.mod, "msg-param-origin-id": str(rng.getrandbits(60)), "msg-param-sub-plan": "1000",
                  "room-id": room_id, "subscriber": gifter.subscriber, "tmi-sent-ts": str(now_ms),
                  "user-id": gifter.user_id, "user-type": ""}
        channel_name = self.channel.display_name
        lines = [self._usernotice(dict(common, **{
            "id": self._uuid(), "msg-id": "submysterygift", "msg-param-mass-gift-count": str(count),
            "msg-param-sender-count": str(count),
            "system-msg": f"{gifter.display_name} is gifting {count} Tier 1 Subs to {channel_name}'s community!"}))]
        for recipient in rng.sample(self.chatters, min(count, len(self.chatters))):
            lines.append(self._usernotice(dict(common, **{
                "id": self._uuid(), "msg-id": "subgift", "msg-param-months": "1",
                "msg-param-recipient-display-name": recipient.display_name,
                "msg-param-recipient-id": recipient.user_id, "msg-param-recipient-user-name": recipient.login,
                "system-msg": f"{gifter.display_name} gifted a Tier 1 sub to {recipient.display_name}!"})))
        return lines

    def _usernotice(self, tags: dict[str, str]) -> str:
        rendered = ";".join(f"{k}={escape_tag(v)}" for k, v in sorted(tags.items()))
        return f"@{rendered} :tmi.twitch.tv USERNOTICE #{self.channel.login}"

    def _uuid(self) -> str:
        h = "%032x" % self.text_rng.getrandbits(128)
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def emote_ranges(text: str) -> str:
    """The IRC `emotes` tag for the Twitch emotes in text: ``id:start-end,start-end/id:...``."""
    positions: dict[str, list[str]] = {}
    index = 0
    for word in text.split(" "):
        emote_id = TWITCH_EMOTES.get(word)
        if emote_id is not None:
            positions.setdefault(emote_id, []).append(f"{index}-{index + len(word) - 1}")
        index += len(word) + 1
    return "/".join(f"{eid}:{','.join(p)}" for eid, p in positions.items())


def _cumsum(values: list[float]) -> list[float]:
    total, out = 0.0, []
    for v in values:
        total += v
        out.append(total)
    return out
