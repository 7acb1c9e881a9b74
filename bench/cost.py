"""Cost: state transitions of a 2-hour job (budget: 40 with webhooks, 120 polling only)."""

from bench.transitions import LowestJitter, count_transitions
from jobrelay.domain.backoff import BackoffPolicy

TWO_HOURS = 2 * 3600
WEBHOOK_FALLBACK_SECONDS = 900  # template.yaml's default


def run() -> list[str]:
    webhook = count_transitions(TWO_HOURS, lambda polls: {"next": "wait_webhook", "wait_seconds": WEBHOOK_FALLBACK_SECONDS})
    policy = BackoffPolicy()
    polling = count_transitions(
        TWO_HOURS, lambda polls: {"next": "wait_poll", "wait_seconds": policy.delay(polls, LowestJitter())}
    )
    return [
        f"2-hour webhook-capable job, webhook lost (worst case): {webhook} state transitions (budget 40)",
        f"2-hour poll-only job, shortest jitter (worst case): {polling} state transitions (budget 120)",
    ]


if __name__ == "__main__":
    print("\n".join(run()))
