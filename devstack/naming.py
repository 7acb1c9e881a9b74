"""Physical names and attributes of the resources the local stack runs, known before anything exists.

Knowing them up front is what lets the template resolve offline (the tests check the real
template without starting anything) and lets resources refer to each other in any order. Names are
deterministic and readable: the resource's own name property if the template sets one, else
"<StackName>-<LogicalId>" (lower-cased where AWS requires it, as for buckets).

`ATTRIBUTES` lists every resource type the local stack supports; resources.py creates each of them.
"""

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Naming:
    stack_name: str
    region: str
    account_id: str
    partition: str = "aws"

    def default_name(self, logical_id: str) -> str:
        return f"{self.stack_name}-{logical_id}"

    def arn(self, service: str, resource: str, *, regional: bool = True, in_account: bool = True) -> str:
        region = self.region if regional else ""
        account = self.account_id if in_account else ""
        return f"arn:{self.partition}:{service}:{region}:{account}:{resource}"


# What `Ref` returns is stored under the key None; Fn::GetAtt attributes under their names.
Attributes = dict[str | None, str]


def _table(name: str, n: Naming) -> Attributes:
    return {None: name, "Arn": n.arn("dynamodb", f"table/{name}")}


def _bucket(name: str, n: Naming) -> Attributes:
    return {
        None: name,
        "Arn": n.arn("s3", name, regional=False, in_account=False),
        "DomainName": f"{name}.s3.amazonaws.com",
        "RegionalDomainName": f"{name}.s3.{n.region}.amazonaws.com",
    }


def _bucket_policy(name: str, n: Naming) -> Attributes:
    return {None: name}


def _event_bus(name: str, n: Naming) -> Attributes:
    return {None: name, "Name": name, "Arn": n.arn("events", f"event-bus/{name}")}


def _log_group(name: str, n: Naming) -> Attributes:
    return {None: name, "Arn": n.arn("logs", f"log-group:{name}:*")}


def _topic(name: str, n: Naming) -> Attributes:
    arn = n.arn("sns", name)
    return {None: arn, "TopicArn": arn, "TopicName": name}


def _alarm(name: str, n: Naming) -> Attributes:
    return {None: name, "Arn": n.arn("cloudwatch", f"alarm:{name}")}


def _dashboard(name: str, n: Naming) -> Attributes:
    return {None: name}


def _secret(name: str, n: Naming) -> Attributes:
    # AWS appends a random suffix to a secret's ARN, unknown until it exists. The partial ARN
    # (without the suffix) is accepted as a SecretId by AWS and by moto, so Ref gives that.
    arn = n.arn("secretsmanager", f"secret:{name}")
    return {None: arn, "Id": arn}


def _layer(name: str, n: Naming) -> Attributes:
    # The first version published in a fresh moto is version 1; resources.py checks it.
    return {None: n.arn("lambda", f"layer:{name}:1")}


def _function(name: str, n: Naming) -> Attributes:
    return {None: name, "Arn": n.arn("lambda", f"function:{name}")}


def _state_machine(name: str, n: Naming) -> Attributes:
    arn = n.arn("states", f"stateMachine:{name}")
    return {None: arn, "Arn": arn, "Name": name}


def _http_api(name: str, n: Naming) -> Attributes:
    api_id = name.lower()
    return {None: api_id, "ApiId": api_id, "ApiEndpoint": f"https://{api_id}.execute-api.{n.region}.amazonaws.com"}


def _schedule(name: str, n: Naming) -> Attributes:
    return {None: name, "Arn": n.arn("scheduler", f"schedule/default/{name}")}


def _schedule_group(name: str, n: Naming) -> Attributes:
    return {None: name, "Arn": n.arn("scheduler", f"schedule-group/{name}")}


def _iam_role(name: str, n: Naming) -> Attributes:
    # IAM is global: no region in the ARN. RoleId is AWS's own opaque id, unknown before creation.
    return {None: name, "Arn": n.arn("iam", f"role/{name}", regional=False)}


def _rule(name: str, n: Naming) -> Attributes:
    return {None: name, "Arn": n.arn("events", f"rule/{name}")}


@dataclass(frozen=True)
class TypeNaming:
    name_property: str | None  # the property that names the resource, if the type has one
    attributes: Callable[[str, Naming], Attributes]
    lower_case: bool = False


ATTRIBUTES: dict[str, TypeNaming] = {
    "AWS::DynamoDB::Table": TypeNaming("TableName", _table),
    "AWS::S3::Bucket": TypeNaming("BucketName", _bucket, lower_case=True),
    "AWS::S3::BucketPolicy": TypeNaming(None, _bucket_policy),
    "AWS::Events::EventBus": TypeNaming("Name", _event_bus),
    "AWS::Logs::LogGroup": TypeNaming("LogGroupName", _log_group),
    "AWS::SNS::Topic": TypeNaming("TopicName", _topic),
    "AWS::CloudWatch::Alarm": TypeNaming("AlarmName", _alarm),
    "AWS::CloudWatch::Dashboard": TypeNaming("DashboardName", _dashboard),
    "AWS::SecretsManager::Secret": TypeNaming("Name", _secret),
    "AWS::Serverless::LayerVersion": TypeNaming("LayerName", _layer),
    "AWS::Serverless::Function": TypeNaming("FunctionName", _function),
    "AWS::Serverless::StateMachine": TypeNaming("Name", _state_machine),
    "AWS::Serverless::HttpApi": TypeNaming(None, _http_api, lower_case=True),
    "AWS::Scheduler::Schedule": TypeNaming("Name", _schedule),
    "AWS::Scheduler::ScheduleGroup": TypeNaming("Name", _schedule_group),
    "AWS::IAM::Role": TypeNaming("RoleName", _iam_role),
    "AWS::Events::Rule": TypeNaming("Name", _rule),
}
