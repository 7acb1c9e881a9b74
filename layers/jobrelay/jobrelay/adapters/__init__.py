"""The AWS side of the ports in jobrelay.ports, one small module each:

  dynamodb_jobs           DynamoJobStore          JobStore on the JobsTable (jobs, timelines, listing)
  dynamodb_schedule_runs  DynamoScheduleRuns      ScheduleRuns on the JobsTable (a schedule's runs)
  dynamodb_slots          DynamoSlots             Slots on the JobsTable (per-account concurrency)
  s3_results              S3ResultStore           ResultStore on the ResultsBucket (streamed multipart uploads)
  s3_records              S3RecordsSource         RecordsSource on the ResultsBucket (users' records files, ranged reads)
  s3_scratch              S3Scratch               ScratchStore on the ResultsBucket (an import's working files)
  s3_uploads              S3Uploads               Uploads on the ResultsBucket (presigned PUTs of records files)
  sfn_workflow            StepFunctionsWorkflow   Workflow on the job state machine
  eventbridge             EventBridgePublisher    EventPublisher on the JobEventBus
  eventbridge_scheduler   EventBridgeScheduler    Scheduler on EventBridge Scheduler (recurring jobs)
  secrets                 SecretsManagerStore     SecretStore on Secrets Manager, cached

Each takes its boto3 client in its constructor; jobrelay.wiring builds them (with its retry and
timeout config) for the handlers. Nothing is imported here: a handler pays only for the adapters it
uses (cold start budget).
"""
