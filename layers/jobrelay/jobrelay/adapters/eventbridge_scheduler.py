"""The Scheduler port on EventBridge Scheduler: template.yaml's ScheduleGroup, every schedule in it
pointed at the schedules function, the job it submits in the target's Input (its one definition).

UpdateSchedule replaces a schedule's whole definition (a field left out goes back to its default),
so an update reads the schedule and writes it back with the changes: whatever else it holds (a
flexible window, a retry policy or dead-letter queue set with the console, an end date) is kept.
Scheduler has no conditional update: of two updates at once, the last one written wins.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from jobrelay.domain.errors import InvalidRequest, ScheduleExists
from jobrelay.domain.schedule import ScheduleSpec

if TYPE_CHECKING:
    from mypy_boto3_scheduler import EventBridgeSchedulerClient
    from mypy_boto3_scheduler.type_defs import GetScheduleOutputTypeDef

logger = logging.getLogger(__name__)


class EventBridgeScheduler:
    def __init__(self, group: str, target_arn: str, role_arn: str, client: EventBridgeSchedulerClient):
        self._group = group
        self._target_arn = target_arn
        self._role_arn = role_arn
        self._client = client

    def _request(self, spec: ScheduleSpec, current: GetScheduleOutputTypeDef | None = None) -> dict[str, Any]:
        """The CreateSchedule/UpdateSchedule request for `spec`. The target is pointed (back) at the
        schedules function through SchedulerRole, the only role this function may pass; what else
        `current` (an existing schedule) holds in its target and time window stays."""
        window = current.get("FlexibleTimeWindow") if current else None
        target = current.get("Target") if current else None
        request: dict[str, Any] = {
            "Name": spec.name,
            "GroupName": self._group,
            "ScheduleExpression": spec.expression,
            "ScheduleExpressionTimezone": spec.timezone,
            "State": "ENABLED" if spec.enabled else "DISABLED",
            "FlexibleTimeWindow": window or {"Mode": "OFF"},
            # Retries and redeliveries are safe: the target submits one job per scheduled time.
            "Target": {
                **(target or {}),
                "Arn": self._target_arn,
                "RoleArn": self._role_arn,
                "Input": json.dumps(spec.target_input),
            },
        }
        if spec.description:
            request["Description"] = spec.description
        return request

    def create(self, spec: ScheduleSpec) -> None:
        request = self._request(spec)
        try:
            self._client.create_schedule(**request)
        except ClientError as exc:
            match _error_code(exc):
                case "ConflictException":
                    raise ScheduleExists(f"a schedule named {spec.name!r} already exists") from None
                case "ValidationException":
                    raise InvalidRequest(f"EventBridge Scheduler refused the schedule: {_message(exc)}") from None
            raise

    def get(self, name: str) -> ScheduleSpec | None:
        try:
            answer = self._client.get_schedule(Name=name, GroupName=self._group)
        except ClientError as exc:
            if _error_code(exc) in ("ResourceNotFoundException", "ValidationException"):
                return None  # ValidationException: a name Scheduler could not hold, so it has none
            raise
        return _spec(answer)

    def update(self, spec: ScheduleSpec) -> bool:
        try:
            current = self._client.get_schedule(Name=spec.name, GroupName=self._group)
        except ClientError as exc:
            if _error_code(exc) in ("ResourceNotFoundException", "ValidationException"):
                return False
            raise
        request = self._request(spec, current)  # its target's retry policy and the rest stay
        for kept in ("EndDate", "KmsKeyArn", "ActionAfterCompletion"):
            if current.get(kept):
                request[kept] = current[kept]
        # A start date that has passed has done its work (the schedule has started), and Scheduler
        # refuses one more than 5 minutes old when a schedule is created (perhaps on update too):
        # only a future one is written back.
        start = current.get("StartDate")
        if isinstance(start, datetime) and start > datetime.now(UTC) + timedelta(minutes=1):
            request["StartDate"] = start
        try:
            self._client.update_schedule(**request)
        except ClientError as exc:
            match _error_code(exc):
                case "ResourceNotFoundException":  # deleted since it was read
                    return False
                case "ValidationException":
                    raise InvalidRequest(f"EventBridge Scheduler refused the change: {_message(exc)}") from None
            raise
        return True

    def list(self) -> list[ScheduleSpec]:
        # ListSchedules gives summaries without the target's Input: each schedule is read in full.
        names = [
            summary["Name"]
            for page in self._client.get_paginator("list_schedules").paginate(GroupName=self._group)
            for summary in page["Schedules"]
        ]
        specs = [spec for name in sorted(names) if (spec := self.get(name)) is not None]  # None: deleted meanwhile
        return specs

    def delete(self, name: str) -> bool:
        try:
            self._client.delete_schedule(Name=name, GroupName=self._group)
        except ClientError as exc:
            if _error_code(exc) in ("ResourceNotFoundException", "ValidationException"):
                return False
            raise
        return True


def _spec(answer: GetScheduleOutputTypeDef) -> ScheduleSpec:
    raw_input = answer.get("Target", {}).get("Input")
    try:
        target_input = json.loads(raw_input) if raw_input else {}
    except ValueError:
        logger.warning("schedule %s has a target Input that is not JSON", answer.get("Name"))
        target_input = {}
    return ScheduleSpec(
        name=answer["Name"],
        expression=answer["ScheduleExpression"],
        timezone=answer.get("ScheduleExpressionTimezone") or "UTC",
        enabled=answer.get("State", "ENABLED") == "ENABLED",
        target_input=target_input if isinstance(target_input, dict) else {},
        description=answer.get("Description") or None,
        created_at=answer.get("CreationDate"),
        updated_at=answer.get("LastModificationDate"),
    )


def _error_code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


def _message(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Message", "") or "no reason given"
