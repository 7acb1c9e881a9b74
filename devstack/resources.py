"""Creates the template's resources in moto, under the names naming.py gave them.

One function per resource type, called in the order of `CREATORS` (layers before the functions
that use them, the log group before the state machine that logs to it, ...). Each applies the
properties that change what moto does or reports: keys and indexes, TTL, encryption, versioning,
environments, definitions. The rest (bucket lifecycle rules, tags, IAM policies) is left out:
moto would store it and never act on it.
"""

import io
import json
import zipfile
from collections.abc import Callable
from typing import Any

from devstack.template import Function, Resource, StackTemplate, StateMachine

Clients = Callable[[str], Any]  # service name -> boto3 client pointed at moto
Creator = Callable[[Clients, Resource, StackTemplate], None]


def create_resources(template: StackTemplate, clients: Clients) -> None:
    for resource_type, create in CREATORS.items():
        for resource in template.of_type(resource_type):
            create(clients, resource, template)


def _placeholder_zip() -> bytes:
    """What moto stores as a function's or layer's code: the code itself runs in-process (lambdas.py)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README.txt", "jobrelay local stack: this code runs in the devstack process.\n")
    return buffer.getvalue()


_PLACEHOLDER_ZIP = _placeholder_zip()


def _picked(properties: dict[str, Any], *names: str) -> dict[str, Any]:
    return {name: properties[name] for name in names if name in properties}


def _create_layer(clients: Clients, resource: Resource, template: StackTemplate) -> None:
    layer = next(layer for layer in template.layers if layer.logical_id == resource.logical_id)
    created = clients("lambda").publish_layer_version(
        LayerName=layer.name,
        Content={"ZipFile": _PLACEHOLDER_ZIP},
        **_picked(resource.properties, "Description", "CompatibleRuntimes", "CompatibleArchitectures"),
    )
    if created["LayerVersionArn"] != layer.arn:
        raise RuntimeError(f"{resource.logical_id}: moto published {created['LayerVersionArn']}, expected {layer.arn}")


def _create_log_group(clients: Clients, resource: Resource, template: StackTemplate) -> None:
    logs = clients("logs")
    logs.create_log_group(logGroupName=resource.ref)
    if "RetentionInDays" in resource.properties:
        logs.put_retention_policy(logGroupName=resource.ref, retentionInDays=int(resource.properties["RetentionInDays"]))


def _create_table(clients: Clients, resource: Resource, template: StackTemplate) -> None:
    properties, dynamodb = resource.properties, clients("dynamodb")
    arguments = _picked(
        properties,
        "AttributeDefinitions",
        "KeySchema",
        "GlobalSecondaryIndexes",
        "LocalSecondaryIndexes",
        "ProvisionedThroughput",
        "TableClass",
        "DeletionProtectionEnabled",
    )
    if "SSESpecification" in properties:
        sse = properties["SSESpecification"]
        arguments["SSESpecification"] = {
            "Enabled": sse.get("SSEEnabled", False),
            **_picked(sse, "SSEType", "KMSMasterKeyId"),
        }
    if "StreamSpecification" in properties:
        arguments["StreamSpecification"] = {"StreamEnabled": True, **properties["StreamSpecification"]}
    dynamodb.create_table(TableName=resource.ref, BillingMode=properties.get("BillingMode", "PROVISIONED"), **arguments)
    if "TimeToLiveSpecification" in properties:
        dynamodb.update_time_to_live(TableName=resource.ref, TimeToLiveSpecification=properties["TimeToLiveSpecification"])
    if "PointInTimeRecoverySpecification" in properties:
        dynamodb.update_continuous_backups(
            TableName=resource.ref,
            PointInTimeRecoverySpecification=_picked(
                properties["PointInTimeRecoverySpecification"], "PointInTimeRecoveryEnabled"
            ),
        )


def _create_bucket(clients: Clients, resource: Resource, template: StackTemplate) -> None:
    properties, s3, bucket = resource.properties, clients("s3"), resource.ref
    region = template.naming.region
    location = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    s3.create_bucket(Bucket=bucket, **location)
    if "BucketEncryption" in properties:
        rules = [
            {  # CloudFormation's ServerSideEncryptionByDefault is the API's ApplyServerSideEncryptionByDefault
                "ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"],
                **_picked(rule, "BucketKeyEnabled"),
            }
            for rule in properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        ]
        s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": rules})
    if "PublicAccessBlockConfiguration" in properties:
        s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=properties["PublicAccessBlockConfiguration"])
    if "OwnershipControls" in properties:
        s3.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls=properties["OwnershipControls"])
    if "VersioningConfiguration" in properties:
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration=properties["VersioningConfiguration"])


def _create_bucket_policy(clients: Clients, resource: Resource, template: StackTemplate) -> None:
    # moto 5.2.5 evaluates only StringEquals conditions and skips any other operator as if it held
    # (moto/iam/policy_conditions.py), so a conditional Deny such as "deny when aws:SecureTransport
    # is false" would deny every request, and the local endpoints are plain HTTP anyway. Statements
    # with a Condition are left out; the others apply.
    document = resource.properties["PolicyDocument"]
    statements = document["Statement"] if isinstance(document["Statement"], list) else [document["Statement"]]
    if kept := [statement for statement in statements if "Condition" not in statement]:
        policy = json.dumps({**document, "Statement": kept})
        clients("s3").put_bucket_policy(Bucket=resource.properties["Bucket"], Policy=policy)


def _create_event_bus(clients: Clients, resource: Resource, template: StackTemplate) -> None:
    if resource.ref != "default":  # every account has its default bus already
        clients("events").create_event_bus(Name=resource.ref)


def _create_topic(clients: Clients, resource: Resource, template: StackTemplate) -> None:
    properties, sns = resource.properties, clients("sns")
    attributes = _picked(properties, "DisplayName", "KmsMasterKeyId", "FifoTopic", "ContentBasedDeduplication")
    topic_arn = sns.create_topic(
        Name=resource.attributes["TopicName"], Attributes={name: str(value) for name, value in attributes.items()}
    )["TopicArn"]
    for subscription in properties.get("Subscription", []):
        sns.subscribe(TopicArn=topic_arn, Protocol=subscription["Protocol"], Endpoint=subscription["Endpoint"])


def _create_alarm(clients: Clients, resource: Resource, template: StackTemplate) -> None:
    # An alarm's properties are PutMetricAlarm's parameters, name for name.
    arguments = {name: value for name, value in resource.properties.items() if name != "AlarmName"}
    # A number from a template parameter (a Ref) resolves to a string, as in CloudFormation.
    for name, kind in (("Threshold", float), ("Period", int), ("EvaluationPeriods", int), ("DatapointsToAlarm", int)):
        if isinstance(arguments.get(name), str):
            arguments[name] = kind(arguments[name])
    clients("cloudwatch").put_metric_alarm(AlarmName=resource.ref, **arguments)


def _create_dashboard(clients: Clients, resource: Resource, template: StackTemplate) -> None:
    clients("cloudwatch").put_dashboard(DashboardName=resource.ref, DashboardBody=resource.properties["DashboardBody"])


def _create_secret(clients: Clients, resource: Resource, template: StackTemplate) -> None:
    properties, secrets = resource.properties, clients("secretsmanager")
    arguments = _picked(properties, "Description", "KmsKeyId", "SecretString")
    if "GenerateSecretString" in properties:
        arguments["SecretString"] = _generated_secret(secrets, properties["GenerateSecretString"])
    name = resource.ref.rsplit(":", 1)[1]  # Ref is the partial ARN, which ends with the name
    secrets.create_secret(Name=name, **arguments)


def _generated_secret(secrets: Any, spec: dict[str, Any]) -> str:
    """A secret value made as CloudFormation's GenerateSecretString makes it."""
    options = _picked(
        spec,
        "PasswordLength",
        "ExcludeCharacters",
        "ExcludeLowercase",
        "ExcludeNumbers",
        "ExcludePunctuation",
        "ExcludeUppercase",
        "IncludeSpace",
        "RequireEachIncludedType",
    )
    password = secrets.get_random_password(**options)["RandomPassword"]
    if "SecretStringTemplate" not in spec:
        return password
    document = json.loads(spec["SecretStringTemplate"])
    document[spec["GenerateStringKey"]] = password
    return json.dumps(document)


def _role(clients: Clients, owner_name: str, service: str) -> str:
    """An execution role for a function or state machine: moto insists the role exists."""
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
    }
    role_name = f"{owner_name[:59]}-role"  # IAM role names stop at 64 characters
    return clients("iam").create_role(RoleName=role_name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]


def _create_function(clients: Clients, resource: Resource, template: StackTemplate) -> None:
    function: Function = next(f for f in template.functions if f.logical_id == resource.logical_id)
    properties = resource.properties
    clients("lambda").create_function(
        FunctionName=function.name,
        Runtime=function.runtime,
        Role=_role(clients, function.name, "lambda.amazonaws.com"),
        Handler=function.handler,
        Code={"ZipFile": _PLACEHOLDER_ZIP},
        Timeout=function.timeout,
        MemorySize=function.memory_size,
        Environment={"Variables": function.environment},
        Layers=properties.get("Layers", []),
        TracingConfig={"Mode": "Active" if properties.get("Tracing") == "Active" else "PassThrough"},
        **_picked(properties, "Description", "Architectures"),
    )


def _create_state_machine(clients: Clients, resource: Resource, template: StackTemplate) -> None:
    machine: StateMachine = next(m for m in template.state_machines if m.logical_id == resource.logical_id)
    arguments: dict[str, Any] = {}
    if logging := machine.properties.get("Logging"):
        arguments["loggingConfiguration"] = {
            "level": logging.get("Level", "OFF"),
            "includeExecutionData": logging.get("IncludeExecutionData", False),
            "destinations": [
                {"cloudWatchLogsLogGroup": {"logGroupArn": destination["CloudWatchLogsLogGroup"]["LogGroupArn"]}}
                for destination in logging.get("Destinations", [])
            ],
        }
    if tracing := machine.properties.get("Tracing"):
        arguments["tracingConfiguration"] = {"enabled": bool(tracing.get("Enabled"))}
    created = clients("stepfunctions").create_state_machine(
        name=machine.name,
        definition=machine.definition,
        roleArn=_role(clients, machine.name, "states.amazonaws.com"),
        type=machine.type,
        **arguments,
    )
    if created["stateMachineArn"] != machine.arn:
        raise RuntimeError(f"{resource.logical_id}: moto created {created['stateMachineArn']}, expected {machine.arn}")


def _create_role(clients: Clients, resource: Resource, template: StackTemplate) -> None:
    # moto keeps roles and policies but never checks them: created so that ARNs and GetRole answer.
    properties, iam = resource.properties, clients("iam")
    iam.create_role(
        RoleName=resource.ref,
        AssumeRolePolicyDocument=json.dumps(properties["AssumeRolePolicyDocument"]),
        **_picked(properties, "Description", "Path", "MaxSessionDuration"),
    )
    for policy in properties.get("Policies", []):
        iam.put_role_policy(
            RoleName=resource.ref, PolicyName=policy["PolicyName"], PolicyDocument=json.dumps(policy["PolicyDocument"])
        )


def _create_schedule_group(clients: Clients, resource: Resource, template: StackTemplate) -> None:
    clients("scheduler").create_schedule_group(Name=resource.ref)


def _create_schedule(clients: Clients, resource: Resource, template: StackTemplate) -> None:
    # Created in moto (disabled ones too) so that the scheduler lists it as AWS would; the local
    # timer (schedules.py) fires it, since moto never does.
    properties = resource.properties
    clients("scheduler").create_schedule(
        Name=resource.ref,
        **_picked(
            properties,
            "GroupName",
            "Description",
            "ScheduleExpression",
            "ScheduleExpressionTimezone",
            "FlexibleTimeWindow",
            "Target",
            "State",
            "StartDate",
            "EndDate",
            "KmsKeyArn",
        ),
    )


def _served_locally(clients: Clients, resource: Resource, template: StackTemplate) -> None:
    """Nothing to create in moto: the HTTP API is the front door (front_door.py), and rules are
    fired by the local timer (schedules.py) because moto would never fire them."""


CREATORS: dict[str, Creator] = {
    "AWS::IAM::Role": _create_role,
    "AWS::Serverless::LayerVersion": _create_layer,
    "AWS::Logs::LogGroup": _create_log_group,
    "AWS::DynamoDB::Table": _create_table,
    "AWS::S3::Bucket": _create_bucket,
    "AWS::S3::BucketPolicy": _create_bucket_policy,
    "AWS::Events::EventBus": _create_event_bus,
    "AWS::SNS::Topic": _create_topic,
    "AWS::CloudWatch::Alarm": _create_alarm,
    "AWS::CloudWatch::Dashboard": _create_dashboard,
    "AWS::SecretsManager::Secret": _create_secret,
    "AWS::Serverless::Function": _create_function,
    "AWS::Serverless::StateMachine": _create_state_machine,
    "AWS::Serverless::HttpApi": _served_locally,
    "AWS::Scheduler::ScheduleGroup": _create_schedule_group,
    "AWS::Scheduler::Schedule": _create_schedule,
    "AWS::Events::Rule": _served_locally,
}
