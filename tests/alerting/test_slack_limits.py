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
    waits = [round(limits.acquire("chat.postMessage", "C1"), 6) for _ in range(7)]
    assert waits == [0.0] * 5 + [0.2, 0.2]  # a burst of one second's worth, then the pace


class LateClock(Clock):
    """Every sleep ends ``late`` seconds after it was due (a loaded machine)."""

    def __init__(self, late: float) -> None:
        super().__init__()
        self.late = late

    def sleep(self, seconds: float) -> None:
        super().sleep(seconds)
        self.now += self.late


def test_late_wake_ups_never_slow_the_pace_of_a_backlog() -> None:
    clock = LateClock(late=0.03)
    limits = SlackLimits(post_per_second=20.0, clock=clock, sleep=clock.sleep)
    for _ in range(20 + 600):  # the burst, then 30 s of backlog at 20 a second
        limits.acquire("chat.postMessage", "C1")
    # Each sleep ended 30 ms late, yet the last post went out at its reserved moment
    # (600 / 20 = 30 s) plus one lateness, not 600 of them (48 s): the lateness of
    # each wake-up is refilled tokens for the next post, never added to its wait.
    assert 30.0 <= clock.now <= 30.0 + 0.03 + 1e-9
    assert len(clock.slept) <= 600


def test_tokens_refill_continuously_up_to_one_burst() -> None:
    clock = Clock()
    limits = SlackLimits(post_per_second=4.0, clock=clock, sleep=clock.sleep)

    def posts(count: int) -> list[float]:
        return [round(limits.acquire("chat.postMessage", "C1"), 6) for _ in range(count)]

    assert posts(5) == [0.0] * 4 + [0.25]
    clock.now += 0.5  # two tokens back
    assert posts(3) == [0.0, 0.0, 0.25]
    clock.now += 60.0  # idle for a minute: never more than one burst at once
    assert posts(5) == [0.0] * 4 + [0.25]
