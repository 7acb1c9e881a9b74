"""Recurring jobs: EventBridge schedule expressions (read the same way by the API, which checks
them, and by the local stack, which fires them) and the date placeholders of a schedule's params."""
