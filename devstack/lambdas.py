"""The template's Lambda functions, run in this process whenever moto's Lambda is invoked.

moto would run a function in Docker; there is none here. `InProcessLambdas.serving_moto()`
replaces `moto.awslambda.models.LambdaFunction._invoke_lambda(self, event) -> (payload_json,
errored, logs)` (moto 5.2.5, pinned in requirements/dev.txt: a private method, the one place every
Invoke goes through, from the Lambda API and from Step Functions alike). moto hands it the
request body already parsed from JSON.

Each function gets a warm "container": its handler module, loaded once from the CodeUri folder,
and private copies of every module that comes from its code or its layers. Lambda runs each
function in its own process, so module-level state (caches of settings and clients) must not leak
from one function to another here either. Environment variables are process-wide, so invocations
take turns: during one, os.environ is what Lambda would give that function (the template's
variables plus the runtime's own) and sys.path/sys.modules are its container's.

Not emulated: the function's Timeout is not enforced (the context reports the time left), and a
handler that synchronously invokes another function would wait for itself forever.
"""

import importlib.util
import io
import json
import os
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any, TextIO

from moto.awslambda.models import LambdaFunction

from devstack.intrinsics import TemplateError
from devstack.template import Function

# Lambda returns at most this much of the log in x-amz-log-result; moto puts the logs it gets in
# that header, and a longer one breaks HTTP clients' header limits.
_LOG_TAIL_CHARS = 4096


@dataclass(frozen=True)
class Invocation:
    payload: str  # JSON: the handler's result, or Lambda's error document
    errored: bool
    logs: str
    log_stream_name: str


@dataclass
class LambdaContext:
    """The context object Lambda's Python runtime passes to a handler."""

    function_name: str
    function_version: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str
    log_group_name: str
    log_stream_name: str
    deadline: float  # time.monotonic() when the function's Timeout runs out
    identity: None = None
    client_context: None = None

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


@dataclass
class _Container:
    handler: Any
    modules: dict[str, ModuleType] = field(default_factory=dict)


class _ThreadTee:
    """Stands in for sys.stdout/sys.stderr: everything still reaches the console, and what an
    invoking thread writes is also kept for that invocation's logs."""

    def __init__(self, stream: TextIO, captures: threading.local):
        self._stream = stream
        self._captures = captures

    def write(self, text: str) -> int:
        self._stream.write(text)
        if (buffer := getattr(self._captures, "buffer", None)) is not None:
            buffer.write(text)
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


# The credentials the functions sign with: fakes moto accepts, and the ones the local stack checks
# presigned URLs against (devstack/presigned.py), since the functions make those URLs.
FAKE_ACCESS_KEY_ID = "local"
FAKE_SECRET_ACCESS_KEY = "local"


class InProcessLambdas:
    def __init__(self, functions: Sequence[Function], *, endpoint_url: str, region: str, metrics_file: Path | None = None):
        """`metrics_file`: where the EMF lines the functions print (their metrics, as CloudWatch would
        get them) are appended, one JSON document a line (devstack.metrics sums them up)."""
        self._metrics_file = metrics_file
        self._functions = {function.name: function for function in functions}
        self._lock = threading.Lock()
        self._metrics_lock = threading.Lock()
        self._containers: dict[str, _Container] = {}
        self._captures = threading.local()
        # The variables a Lambda runtime sets, pointed at moto. Anything AWS_* from the developer's
        # shell (a profile, real keys) is left out: the functions must only ever reach moto.
        self._runtime_environment = {
            "AWS_ENDPOINT_URL": endpoint_url,
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "AWS_ACCESS_KEY_ID": FAKE_ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": FAKE_SECRET_ACCESS_KEY,
            "POWERTOOLS_TRACE_DISABLED": "true",
        }
        self._base_environment = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
        self._private_roots = tuple(
            {str(folder) + os.sep for function in functions for folder in (function.code_dir, *function.layer_dirs)}
        )

    @contextmanager
    def serving_moto(self) -> Iterator["InProcessLambdas"]:
        """Within the block, moto's Lambda runs the template's functions here, and the console
        output of each invocation is also kept as its logs."""
        original_invoke = LambdaFunction._invoke_lambda
        original_streams = sys.stdout, sys.stderr
        lambdas = self

        def invoke_lambda(self: LambdaFunction, event: Any = None) -> tuple[str, bool, str]:
            # moto turns an empty request body into the text "{}"; Lambda would pass an empty object.
            invocation = lambdas.invoke(self.function_name, {} if event in (None, "{}") else event)
            # As moto's own save_logs, but in the stream the handler's context named.
            logs, group, stream = self.logs_backend, self.logs_group_name, invocation.log_stream_name
            logs.ensure_log_group(group)
            logs.create_log_stream(group, stream)
            now_ms = int(time.time() * 1000)
            logs.put_log_events(group, stream, [{"timestamp": now_ms, "message": line} for line in invocation.logs.splitlines()])
            return invocation.payload, invocation.errored, invocation.logs[-_LOG_TAIL_CHARS:]

        LambdaFunction._invoke_lambda = invoke_lambda  # type: ignore[method-assign]
        sys.stdout = _ThreadTee(sys.stdout, self._captures)
        sys.stderr = _ThreadTee(sys.stderr, self._captures)
        try:
            yield self
        finally:
            LambdaFunction._invoke_lambda = original_invoke  # type: ignore[method-assign]
            sys.stdout, sys.stderr = original_streams

    def load_all(self) -> None:
        """Import every handler once, as a cold start would, so a broken handler fails the start."""
        with self._lock:
            for function in self._functions.values():
                self._container(function)

    def invoke(self, function_name: str, event: Any) -> Invocation:
        request_id = str(uuid.uuid4())
        log_stream_name = f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"
        if (function := self._functions.get(function_name)) is None:
            document = _error_document(
                f"{function_name} is not a function of the template", "Runtime.InvalidEntrypoint", request_id
            )
            return Invocation(document, True, document + "\n", log_stream_name)
        logs = io.StringIO()
        with self._lock:  # the function's time starts once it has the process to itself
            container = self._container(function)
            started = time.monotonic()
            context = LambdaContext(
                function_name=function.name,
                function_version="$LATEST",
                invoked_function_arn=function.arn,
                memory_limit_in_mb=function.memory_size,
                aws_request_id=request_id,
                log_group_name=f"/aws/lambda/{function.name}",
                log_stream_name=log_stream_name,
                deadline=started + function.timeout,
            )
            self._captures.buffer = logs
            try:
                with self._inside(function, container.modules):
                    payload, errored = _run(container.handler, event, context)
            finally:
                self._captures.buffer = None
        duration_ms = (time.monotonic() - started) * 1000
        self._keep_metrics(logs.getvalue())
        framed = (
            f"START RequestId: {request_id} Version: $LATEST\n{logs.getvalue()}"
            f"END RequestId: {request_id}\nREPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\n"
        )
        return Invocation(payload, errored, framed, log_stream_name)

    def _keep_metrics(self, logs: str) -> None:
        if self._metrics_file is None or '"_aws"' not in logs:
            return
        from devstack.metrics import emf_documents

        documents = emf_documents(logs.splitlines())
        with self._metrics_lock, self._metrics_file.open("a", encoding="utf-8") as kept:
            kept.writelines(json.dumps(document, separators=(",", ":")) + "\n" for document in documents)

    # --- containers -----------------------------------------------------------------------------

    def _container(self, function: Function) -> _Container:
        """The function's warm container, loading its handler on first use. Call with the lock held."""
        if function.name not in self._containers:
            modules: dict[str, ModuleType] = {}
            with self._inside(function, modules):
                handler = _load_handler(function)
            self._containers[function.name] = _Container(handler, modules)
        return self._containers[function.name]

    @contextmanager
    def _inside(self, function: Function, modules: dict[str, ModuleType]) -> Iterator[None]:
        """os.environ, sys.path and sys.modules as `function`'s container sees them; on the way out,
        `modules` is updated with what the function imported from its code and layers."""
        hidden = self._take_private_modules()
        sys.modules.update(modules)
        path_entries = [str(function.code_dir), *(str(folder) for folder in function.layer_dirs)]
        sys.path[:0] = path_entries
        saved_environment = dict(os.environ)
        _switch_environment(
            {
                **self._base_environment,
                **function.environment,
                **self._runtime_environment,
                "AWS_LAMBDA_FUNCTION_NAME": function.name,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_size),
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function.name}",
                "AWS_EXECUTION_ENV": f"AWS_Lambda_{function.runtime}",
                "LAMBDA_TASK_ROOT": str(function.code_dir),
                "_HANDLER": function.handler,
            }
        )
        try:
            yield
        finally:
            _switch_environment(saved_environment)
            for entry in path_entries:
                sys.path.remove(entry)
            modules.clear()
            modules.update(self._take_private_modules())
            sys.modules.update(hidden)

    def _take_private_modules(self) -> dict[str, ModuleType]:
        """Remove from sys.modules, and return, every module loaded from a function's code or layer."""
        taken = {name: module for name, module in list(sys.modules.items()) if self._is_private(module)}
        for name in taken:
            del sys.modules[name]
        return taken

    def _is_private(self, module: ModuleType) -> bool:
        location = getattr(module, "__file__", None)
        if location is None:  # a namespace package: where its folders are
            location = next(iter(getattr(module, "__path__", None) or []), None)
        return location is not None and (str(location) + os.sep).startswith(self._private_roots)


def _load_handler(function: Function) -> Any:
    # Every function has an app.py: a unique module name per function keeps them apart.
    module_name = f"devstack_function_{function.logical_id}_{Path(function.handler_file).stem}"
    spec = importlib.util.spec_from_file_location(module_name, function.handler_file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as error:
        raise TemplateError(f"{function.logical_id}: importing {function.handler_file} failed: {error!r}") from error
    handler = getattr(module, function.handler_attribute, None)
    if not callable(handler):
        raise TemplateError(
            f"{function.logical_id}: Handler {function.handler!r}: {function.handler_file} has no function "
            f"{function.handler_attribute!r}"
        )
    return handler


def _run(handler: Any, event: Any, context: LambdaContext) -> tuple[str, bool]:
    """The handler's answer as Lambda returns it: (payload JSON, errored)."""
    try:
        result = handler(event, context)
    except Exception as error:
        # Lambda's error document; Step Functions' Retry and Catch match on errorType, the class name.
        handler_frames = error.__traceback__.tb_next if error.__traceback__ else None  # without this frame
        print(f"[ERROR] {type(error).__name__}: {error}", file=sys.stderr)
        traceback.print_exception(type(error), error, handler_frames)
        stack = traceback.format_list(traceback.extract_tb(handler_frames))
        return _error_document(str(error), type(error).__name__, context.aws_request_id, stack), True
    try:
        return json.dumps(result), False
    except (TypeError, ValueError) as error:
        return _error_document(f"Unable to marshal response: {error}", "Runtime.MarshalError", context.aws_request_id), True


def _error_document(message: str, error_type: str, request_id: str, stack: list[str] | None = None) -> str:
    return json.dumps({"errorMessage": message, "errorType": error_type, "requestId": request_id, "stackTrace": stack or []})


def _switch_environment(target: Mapping[str, str]) -> None:
    """Make os.environ equal to `target`, touching only the variables that differ: other threads
    (moto's Step Functions workers read MOTO_PORT) never see a half-empty environment."""
    for name in [name for name in os.environ if name not in target]:
        del os.environ[name]
    for name, value in target.items():
        if os.environ.get(name) != value:
            os.environ[name] = value
