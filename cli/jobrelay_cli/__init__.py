"""`jobrelay`: the command line client of jobrelay's HTTP API (README.md, The API).

It talks to the API over HTTP only and never imports the `jobrelay` layer package, so it installs
and runs on its own. Module by module:

- main.py, schedules.py: the Typer app and its commands, kept thin;
- session.py: the global options and the API client they lead to;
- endpoint.py, signing.py, client.py: where the API is, SigV4 for deployed stacks, requests with
  retries and the API's errors;
- schemas.py, params.py: operations' params schemas, and key=value arguments read against them;
- watching.py, files.py, output.py: following a job, uploads and verified downloads, tables and JSON.
"""
