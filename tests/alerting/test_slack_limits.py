"""Slack's rate limits, honoured per method (and per channel for chat.postMessage)."""

from __future__ import annotations

from connectors.slack.limits import SlackLimits


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 6))
        self.now += seconds


def test_posts_wait_one_second_per_channel_and_channels_do_not_wait_for_each_other() -> None:
    clock = Clock()
    limits = SlackLimits(post_per_second=1.0, clock=clock, sleep=clock.sleep)
    waits = [limits.acquire("chat.postMessage", "C1") for _ in range(3)]
    assert waits == [0.0, 1.0, 1.0]
    assert limits.acquire("chat.postMessage", "C2") == 0.0  # another channel: no wait


def test_other_methods_keep_to_their_tier_per_minute() -> None:
    clock = Clock()
    limits = SlackLimits(clock=clock, sleep=clock.sleep)
    assert [limits.acquire("chat.update") for _ in range(50)] == [0.0] * 50  # Tier 3
    assert limits.acquire("chat.update") == 60.0  # the 51st waits for the window
    assert [limits.acquire("conversations.list") for _ in range(20)] == [0.0] * 20  # Tier 2
    assert limits.acquire("conversations.list") > 0
    assert limits.acquire("users.lookupByEmail") == 0.0  # each method has its own window


def test_a_configured_grant_replaces_the_tier_and_a_faster_post_pace_allows_bursts() -> None:
    clock = Clock()
    limits = SlackLimits(
        post_per_second=5.0, per_minute={"chat.update": 2}, clock=clock, sleep=clock.sleep
    )
    assert [limits.acquire("chat.update") for _ in range(3)] == [0.0, 0.0, 60.0]
    assert [limits.acquire("chat.postMessage", "C1") for _ in range(6)] == [0.0] * 5 + [1.0]
