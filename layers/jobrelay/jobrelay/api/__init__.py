"""The HTTP API (API Gateway HTTP API, served by functions/api):

routes    the routes: parse the request, call the services, shape the answer
models    the request and answer bodies (pydantic), which the OpenAPI document is built from
errors    error answers: every failure as a JSON body with a code, a message and details
resolver  Powertools' resolver, made strict and generous where HTTP APIs need it
"""
