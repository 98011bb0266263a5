"""Helix through pyTwitchAPI and raw HTTP: paging, clips, errors, rate limits, faults."""

from __future__ import annotations

import asyncio
import datetime as dt
import time

import aiohttp
import pytest
from sim_helpers import app_client, user_client
from twitchAPI.helper import first
from twitchAPI.type import TwitchAPIException, TwitchBackendException, TwitchResourceNotFound

pytestmark = pytest.mark.unit

XQC, QUIET, FADING = "71092938", "51234567", "81234567"


def test_paging_through_250_live_streams(sim):
    s = sim("many")

    async def main():
        twitch = await app_client(s)
        return [stream async for stream in twitch.get_streams(first=100, stream_type="live")]

    streams = asyncio.run(main())
    assert len(streams) >= 250
    assert len({st.user_id for st in streams}) == len(streams)
    viewers = [st.viewer_count for st in streams]
    assert viewers == sorted(viewers, reverse=True)
    assert all(st.type == "live" and st.started_at is not None for st in streams)


def test_users_by_login_and_id_and_the_token_owner(sim):
    s = sim("demo")

    async def main():
        twitch = await user_client(s)
        by_login = [u async for u in twitch.get_users(logins=["xqcow_sim", "QuietCorner"])]
        by_id = [u async for u in twitch.get_users(user_ids=[FADING])]
        me = await first(twitch.get_users())
        return by_login, by_id, me

    by_login, by_id, me = asyncio.run(main())
    assert sorted(u.login for u in by_login) == ["quietcorner", "xqcow_sim"]
    assert by_id[0].login == "fadingout"
    assert (me.login, me.id) == (s.info["bot_login"], s.info["bot_user_id"])


def test_clip_appears_only_after_the_processing_delay(sim):
    s = sim("demo", clip_delay=2.0)

    async def main():
        twitch = await user_client(s)
        created = await twitch.create_clip(XQC)
        before = [c async for c in twitch.get_clips(clip_id=[created.id])]
        await asyncio.sleep(2.2)
        after = [c async for c in twitch.get_clips(clip_id=[created.id])]
        return created, before, after

    created, before, after = asyncio.run(main())
    assert before == []
    clip = after[0]
    assert created.edit_url == f"https://clips.twitch.tv/{created.id}/edit"
    assert clip.embed_url == f"https://clips.twitch.tv/embed?clip={created.id}"
    assert clip.url == f"https://clips.twitch.tv/{created.id}"
    assert (clip.broadcaster_id, clip.broadcaster_name, clip.creator_name) == (XQC, "xQcOW_sim", s.info["bot_login"])
    assert clip.duration == 30.0 and clip.thumbnail_url.endswith(".jpg") and clip.title
    truth = s.ground_truth()
    assert truth["clip_requests"][0]["outcome"] == "created"
    assert truth["clips"][0]["ready_ms"] - truth["clips"][0]["created_ms"] == 2000


def test_no_clipping_channel_answers_403_and_offline_404(sim):
    s = sim({"channels": [{"login": "quiet", "id": QUIET, "clipping": False},
                          {"login": "gone", "id": FADING, "live": False}]})

    async def main():
        twitch = await user_client(s)
        with pytest.raises(TwitchAPIException):
            await twitch.create_clip(QUIET)
        with pytest.raises(TwitchResourceNotFound):
            await twitch.create_clip(FADING)

    asyncio.run(main())
    outcomes = [(r["broadcaster_id"], r["status"], r["outcome"]) for r in s.ground_truth()["clip_requests"]]
    assert outcomes == [(QUIET, 403, "clipping_disabled"), (FADING, 404, "offline")]


async def raw(session: aiohttp.ClientSession, method: str, url: str, **kwargs):
    async with session.request(method, url, **kwargs) as response:
        return response.status, await response.json(content_type=None), response.headers


def test_bad_input_gets_twitch_error_json(sim):
    s = sim("demo")
    token = s.issue_user_token(["clips:edit"])["access_token"]
    auth = {"Client-Id": s.info["client_id"], "Authorization": f"Bearer {token}"}
    helix = s.info["helix_url"]

    async def main():
        async with aiohttp.ClientSession() as session:
            return [
                await raw(session, "GET", helix + "nosuchthing", headers=auth),
                await raw(session, "POST", helix + f"clips?broadcaster_id={XQC}", headers=auth, data=b"{not json"),
                await raw(session, "GET", helix + "streams", headers={**auth, "Authorization": "Bearer wrong"}),
                await raw(session, "GET", helix + "streams", headers={"Client-Id": "other", "Authorization": f"Bearer {token}"}),
                await raw(session, "GET", helix + "streams?first=500", headers=auth),
                await raw(session, "GET", helix + "streams?after=%%%", headers=auth),
                await raw(session, "POST", helix + "clips", headers=auth),
                await raw(session, "POST", s.base_url + "/sim/faults", data=b"[1,2"),
                await raw(session, "POST", s.base_url + "/sim/faults", json={"type": "status", "rate": 7}),
            ]

    answers = asyncio.run(main())
    assert [a[0] for a in answers] == [404, 400, 401, 401, 400, 400, 400, 400, 400]
    for status, body, _ in answers:
        assert set(body) == {"error", "status", "message"} and body["status"] == status and body["message"]
    assert answers[2][1]["error"] == "Unauthorized"
    assert answers[8][1]["message"].startswith("fault.rate:")


def test_create_clip_needs_a_user_token_with_clips_edit(sim):
    s = sim("demo")
    chat_only = s.issue_user_token(["chat:read"])["access_token"]

    async def main():
        twitch = await app_client(s)
        async with aiohttp.ClientSession() as session:
            return [
                await raw(session, "POST", s.info["helix_url"] + f"clips?broadcaster_id={XQC}",
                          headers={"Client-Id": s.info["client_id"], "Authorization": f"Bearer {token}"})
                for token in (chat_only, twitch.get_app_token())
            ]

    (scope_status, scope_body, _), (app_status, app_body, _) = asyncio.run(main())
    assert (scope_status, scope_body["message"]) == (401, "Missing scope: clips:edit")
    assert (app_status, app_body["message"]) == (401, "Missing User OAUTH Token")


def test_rate_limit_headers_and_429(sim):
    s = sim("demo", rate_limit=3)
    token = s.issue_user_token(["clips:edit"])["access_token"]
    auth = {"Client-Id": s.info["client_id"], "Authorization": f"Bearer {token}"}

    async def main():
        async with aiohttp.ClientSession() as session:
            return [await raw(session, "GET", s.info["helix_url"] + "streams", headers=auth) for _ in range(4)]

    answers = asyncio.run(main())
    assert [a[0] for a in answers] == [200, 200, 200, 429]
    assert [a[2]["Ratelimit-Remaining"] for a in answers] == ["2", "1", "0", "0"]
    assert all(a[2]["Ratelimit-Limit"] == "3" for a in answers)
    assert int(answers[3][2]["Ratelimit-Reset"]) >= int(time.time())


def test_next_n_create_clip_calls_answer_503_then_succeed(sim):
    s = sim("demo", clip_delay=0)
    s.inject_fault(type="status", path="/helix/clips", method="POST", status=503, count=2)

    async def main():
        twitch = await user_client(s)
        with pytest.raises(TwitchBackendException):  # pyTwitchAPI retries a 503 once, then gives up
            await twitch.create_clip(XQC)
        return await twitch.create_clip(XQC)

    created = asyncio.run(main())
    outcomes = [r["outcome"] for r in s.ground_truth()["clip_requests"]]
    assert outcomes == ["fault:status", "fault:status", "created"]
    assert created.id


def test_garbage_slow_and_never_ready_faults(sim):
    s = sim({"channels": [{"login": "a", "id": "1"}],
             "faults": [{"type": "clip_never_ready", "count": 1}]}, clip_delay=0)
    token = s.issue_user_token(["clips:edit"])["access_token"]
    auth = {"Client-Id": s.info["client_id"], "Authorization": f"Bearer {token}"}
    s.inject_fault(type="garbage", path="/helix/streams", count=1)
    s.inject_fault(type="slow", path="/helix/users", delay=0.3, count=1)

    async def main():
        async with aiohttp.ClientSession() as session:
            async with session.get(s.info["helix_url"] + "streams", headers=auth) as response:
                garbage = (response.status, await response.text())
            started = time.monotonic()
            await raw(session, "GET", s.info["helix_url"] + "users?id=1", headers=auth)
            slow = time.monotonic() - started
            ids = []
            for _ in range(2):
                _, body, _ = await raw(session, "POST", s.info["helix_url"] + "clips?broadcaster_id=1", headers=auth)
                ids.append(body["data"][0]["id"])
            await asyncio.sleep(0.05)
            _, clips, _ = await raw(session, "GET", s.info["helix_url"] + f"clips?id={ids[0]}&id={ids[1]}", headers=auth)
            return garbage, slow, ids, clips

    garbage, slow, ids, clips = asyncio.run(main())
    assert garbage[0] == 200 and not garbage[1].startswith("{")
    assert slow >= 0.3
    assert [c["id"] for c in clips["data"]] == [ids[1]]  # the first never finishes processing


def test_faults_scheduled_in_the_scenario_respect_time_and_rate(sim):
    s = sim({"channels": [{"login": "a", "id": "1"}],
             "faults": [{"type": "status", "status": 500, "path": "/helix/streams", "at": 0, "duration": 3600, "rate": 0.5}]},
            seed=5)
    token = s.issue_user_token([])["access_token"]
    auth = {"Client-Id": s.info["client_id"], "Authorization": f"Bearer {token}"}

    async def main():
        async with aiohttp.ClientSession() as session:
            return [(await raw(session, "GET", s.info["helix_url"] + "streams", headers=auth))[0] for _ in range(60)]

    statuses = asyncio.run(main())
    assert set(statuses) == {200, 500}
    assert 15 <= statuses.count(500) <= 45


def test_hang_fault_holds_the_request_until_the_client_gives_up(sim):
    s = sim("demo")
    token = s.issue_user_token([])["access_token"]
    auth = {"Client-Id": s.info["client_id"], "Authorization": f"Bearer {token}"}
    s.inject_fault(type="hang", path="/helix/streams", count=1)

    async def main():
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=0.5)) as session:
            with pytest.raises(asyncio.TimeoutError):
                await raw(session, "GET", s.info["helix_url"] + "streams", headers=auth)
            return await raw(session, "GET", s.info["helix_url"] + "streams", headers=auth)

    status, body, _ = asyncio.run(main())
    assert status == 200 and body["data"]


def test_get_clips_by_broadcaster_with_time_window(sim):
    s = sim("demo", clip_delay=0)

    async def main():
        twitch = await user_client(s)
        created = [await twitch.create_clip(XQC) for _ in range(3)]
        await asyncio.sleep(0.05)
        all_clips = [c async for c in twitch.get_clips(broadcaster_id=XQC, first=2)]  # pages of 2
        future = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)
        none = [c async for c in twitch.get_clips(broadcaster_id=XQC, started_at=future)]
        return created, all_clips, none

    created, all_clips, none = asyncio.run(main())
    assert sorted(c.id for c in all_clips) == sorted(c.id for c in created)
    assert none == []
