"""jobrelay: runs email-marketing vendors' asynchronous jobs as one serverless application.

Layout (handlers -> services -> ports <- adapters):
  domain/    pure rules: statuses and transitions, the job model, backoff and deadlines, errors
  operations.py  the catalogue: every operation, its vendor and its params model
  ports.py   the small interfaces the services depend on (job store, result store, workflow, ...)
  adapters/  one implementation of each port over AWS (DynamoDB, S3, Step Functions, EventBridge, Secrets Manager)
  vendors/   one module per vendor: its params, payload models, status table, client and assumptions
  services/  the logic the Lambda handlers call
  wiring.py  builds the real adapters from the environment, once per container
"""
