"""A missing or broken token file stops the detector before anything reaches the cluster."""

import os
import subprocess
import sys
import time

import pytest

from streamscout.detector import submit as jobs

pytestmark = pytest.mark.integration


def job_environ(settings):
    return jobs.job_environment(settings, {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")})


@pytest.mark.parametrize(
    "content, reason",
    [(None, "does not exist"), ("{not json", "not valid JSON"), ('{"format": 1}', "lacks field")],
)
def test_submit_refuses_with_the_reason(settings, tmp_path, content, reason):
    token_file = tmp_path / "tokens.json"
    if content is not None:
        token_file.write_text(content)
        token_file.chmod(0o600)
    s = settings.with_overrides(token_file=str(token_file), topic_chat="test-chat-token-refusal")
    with pytest.raises(jobs.SubmitError) as failure:
        jobs.submit(s, resume=False)
    message = str(failure.value)
    assert message.startswith("token check failed, not submitting")
    assert str(token_file) in message and reason.lower() in message.lower()
    assert jobs.active_job(s) is None


def test_the_job_script_itself_fails_fast(settings, tmp_path):
    s = settings.with_overrides(token_file=str(tmp_path / "absent.json"))
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "streamscout.detector.job"], env=job_environ(s), capture_output=True, text=True,
        timeout=120,
    )
    assert done.returncode == 3
    assert "token check failed" in done.stderr and "absent.json" in done.stderr
    assert time.monotonic() - started < 60
