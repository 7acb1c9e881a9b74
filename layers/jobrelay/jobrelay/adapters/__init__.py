"""The AWS side of the ports in jobrelay.ports, one small module each:

  dynamodb_jobs  DynamoJobStore          JobStore on the JobsTable (jobs, timelines, listing)
  s3_results     S3ResultStore           ResultStore on the ResultsBucket (streamed multipart uploads)
  sfn_workflow   StepFunctionsWorkflow   Workflow on the job state machine
  eventbridge    EventBridgePublisher    EventPublisher on the JobEventBus
  secrets        SecretsManagerStore     SecretStore on Secrets Manager, cached

Each takes its boto3 client in its constructor and offers `from_settings(settings)` for the default
one. Nothing is imported here: a handler pays only for the adapters it uses (cold start budget).
"""
