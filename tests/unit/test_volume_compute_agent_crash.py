"""The compute agent's process arms its crash points from its configuration (``[debug]
crash_at``), as the services do, so a fault-injection test can kill the deployed agent
at a chosen volume step (compute_agent.volume_attach.after_secret, ...)."""

from __future__ import annotations

from pathlib import Path

import pytest

from stratus.common import crashpoints
from stratus.common.config import ConfigError

pytestmark = pytest.mark.unit


def test_main_arms_the_configured_crash_point(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from stratus.agent.compute import agent

    seen: list[str] = []

    def build(config: object) -> None:
        seen.append(crashpoints._armed)
        raise ConfigError("stop here")  # main answers 1 without starting the loop

    monkeypatch.setattr(agent, "build_agent", build)
    monkeypatch.setenv("STRATUS_CONFIG_FILE", str(tmp_path / "unused.conf"))  # restored after
    conf = tmp_path / "stratus.conf"
    conf.write_text("[debug]\ncrash_at = compute_agent.volume_attach.after_secret\n")
    try:
        assert agent.main(["--config-file", str(conf)]) == 1
        assert seen == ["compute_agent.volume_attach.after_secret"]
        conf.write_text("[DEFAULT]\n")
        assert agent.main(["--config-file", str(conf)]) == 1
        assert seen[-1] == ""  # inert by default
    finally:
        crashpoints.disarm()
