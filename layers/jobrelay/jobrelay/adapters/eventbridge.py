"""Job notices on EventBridge (template.yaml's JobEventBus)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic_core import to_json

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_events.type_defs import PutEventsRequestEntryTypeDef


class EventPublishFailed(RuntimeError):
    """EventBridge accepted the request but not the event (PutEvents reports failures per entry,
    with HTTP 200, so they must be checked)."""


class EventBridgePublisher:
    def __init__(self, bus_name: str, client: EventBridgeClient, source: str = "jobrelay"):
        self._bus_name = bus_name
        self._client = client
        self._source = source

    def publish(self, detail_type: str, detail: dict[str, Any]) -> None:
        entry: PutEventsRequestEntryTypeDef = {
            "EventBusName": self._bus_name,
            "Source": self._source,
            "DetailType": detail_type,
            "Detail": to_json(detail).decode(),
        }
        answer = self._client.put_events(Entries=[entry])
        if answer.get("FailedEntryCount", 0):
            failure = answer["Entries"][0]
            raise EventPublishFailed(
                f"EventBridge refused the {detail_type!r} event on {self._bus_name}: "
                f"{failure.get('ErrorCode')}: {failure.get('ErrorMessage')}"
            )
