import io
import json
import logging

import pytest

from streamscout.common.logging import configure_logging

pytestmark = pytest.mark.unit


def test_lines_are_json_with_extra_fields():
    out = io.StringIO()
    configure_logging("INFO", service="monitor", stream=out)
    logging.getLogger("streamscout.test").info("joined", extra={"broadcaster_id": 42})
    logging.getLogger("streamscout.test").debug("hidden")
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    line = json.loads(lines[0])
    assert line["message"] == "joined" and line["broadcaster_id"] == 42
    assert line["level"] == "INFO" and line["logger"] == "streamscout.test" and line["service"] == "monitor"
    assert line["ts"].endswith("+00:00")
