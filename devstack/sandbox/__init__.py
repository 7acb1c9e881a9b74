"""Vendor simulators for the local stack and the tests: each serves a vendor's documented API on
127.0.0.1, with jobs that take time, webhooks that arrive and faults that can be switched on.

    from devstack.sandbox.pinpointe import PinpointeSandbox
"""
