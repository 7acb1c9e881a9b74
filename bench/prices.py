"""The public AWS list prices the cost model uses: us-east-1, on-demand, no free tier, as published
on the AWS pricing pages on PRICES_DATE. Each is the price of the resource as template.yaml deploys
it (Standard workflows, arm64 functions, on-demand DynamoDB tables, S3 Standard, an HTTP API). Check
them again on the pages named below before quoting a figure; the model reads them from here only.
"""

from dataclasses import dataclass

PRICES_DATE = "2025-06-01"
REGION = "us-east-1"


@dataclass(frozen=True)
class Price:
    dollars: float
    per: float  # units the price is for
    unit: str
    source: str  # the pricing page

    def of(self, quantity: float) -> float:
        return self.dollars * quantity / self.per


# https://aws.amazon.com/step-functions/pricing/ (Standard workflows; the first 4,000 a month are free)
STATE_TRANSITION = Price(0.025, 1_000, "state transition", "aws.amazon.com/step-functions/pricing")

# https://aws.amazon.com/lambda/pricing/ : template.yaml deploys arm64 (Globals.Function.Architectures).
LAMBDA_GB_SECOND = {
    "arm64": Price(0.0000133334, 1, "GB-second", "aws.amazon.com/lambda/pricing"),
    "x86_64": Price(0.0000166667, 1, "GB-second", "aws.amazon.com/lambda/pricing"),
}
LAMBDA_REQUEST = Price(0.20, 1_000_000, "request", "aws.amazon.com/lambda/pricing")

# https://aws.amazon.com/dynamodb/pricing/on-demand/ : halved on 2024-11-01 (were $1.25 and $0.25).
DYNAMODB_WRITE = Price(0.625, 1_000_000, "write request unit", "aws.amazon.com/dynamodb/pricing/on-demand")
DYNAMODB_READ = Price(0.125, 1_000_000, "read request unit", "aws.amazon.com/dynamodb/pricing/on-demand")

# https://aws.amazon.com/s3/pricing/ (S3 Standard; DELETE and CANCEL requests are free)
S3_PUT = Price(0.005, 1_000, "PUT, COPY, POST or LIST request", "aws.amazon.com/s3/pricing")
S3_GET = Price(0.0004, 1_000, "GET, HEAD or other request", "aws.amazon.com/s3/pricing")
S3_STORAGE = Price(0.023, 1, "GB-month (first 50 TB)", "aws.amazon.com/s3/pricing")
TRANSFER_OUT = Price(0.09, 1, "GB out to the internet (after the first 100 GB a month)", "aws.amazon.com/ec2/pricing/on-demand")

# https://aws.amazon.com/eventbridge/pricing/ (custom events; each 64 KB of an entry is one event)
EVENTBRIDGE_EVENT = Price(1.00, 1_000_000, "custom event", "aws.amazon.com/eventbridge/pricing")

# https://aws.amazon.com/secrets-manager/pricing/ (API calls; each secret is also $0.40 a month)
SECRETS_CALL = Price(0.05, 10_000, "API call", "aws.amazon.com/secrets-manager/pricing")

# https://aws.amazon.com/cloudwatch/pricing/ (Logs, Standard class: ingestion; storage is $0.03/GB-month)
LOGS_INGESTED = Price(0.50, 1024**3, "byte of logs ingested", "aws.amazon.com/cloudwatch/pricing")

# https://aws.amazon.com/api-gateway/pricing/ (HTTP APIs, the first 300 million a month; 512 KB a request)
HTTP_API_REQUEST = Price(1.00, 1_000_000, "HTTP API request", "aws.amazon.com/api-gateway/pricing")


def dated() -> str:
    """How every priced figure is labelled."""
    return f"public list prices as published on {PRICES_DATE}, {REGION}"
