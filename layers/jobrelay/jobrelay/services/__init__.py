"""The logic behind the Lambda handlers: each service takes its ports in the constructor."""
