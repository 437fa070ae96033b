"""Smithy RPC v2 CBOR for CloudWatch, which moto 5.2.5 does not speak.

The Rust SDK (aws-sdk-cloudwatch 1.x) calls CloudWatch with the ``rpc-v2-cbor`` protocol:
``POST /service/GraniteServiceVersion20100801/operation/<Operation>`` with a CBOR body. This WSGI
middleware decodes such a request, performs the operation against moto through boto3 (query
protocol), and answers in CBOR (timestamps as epoch seconds, errors as ``__type``/``message``).
Every other request goes to moto untouched.
"""

from __future__ import annotations

import threading
from datetime import timezone
from typing import Callable

import boto3
import cbor2
from botocore.config import Config
from botocore.exceptions import ClientError, ParamValidationError
from botocore import xform_name

PREFIX = "/service/GraniteServiceVersion20100801/operation/"


class CborBridge:
    def __init__(self, app: Callable, endpoint: str, region: str):
        self.app = app
        self.endpoint = endpoint
        self.region = region
        self._local = threading.local()

    def _client(self):
        client = getattr(self._local, "client", None)
        if client is None:
            client = boto3.client(
                "cloudwatch", endpoint_url=self.endpoint, region_name=self.region,
                aws_access_key_id="testing", aws_secret_access_key="testing",
                config=Config(retries={"max_attempts": 1}),
            )
            self._local.client = client
        return client

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if not (path.startswith(PREFIX) and environ.get("HTTP_SMITHY_PROTOCOL") == "rpc-v2-cbor"):
            return self.app(environ, start_response)
        operation = path[len(PREFIX):]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        status, doc = self.call(operation, raw)
        body = cbor2.dumps(doc, datetime_as_timestamp=True, timezone=timezone.utc)
        start_response(status, [
            ("Content-Type", "application/cbor"),
            ("smithy-protocol", "rpc-v2-cbor"),
            ("Content-Length", str(len(body))),
        ])
        return [body]

    def call(self, operation: str, raw: bytes) -> tuple[str, dict]:
        try:
            params = cbor2.loads(raw) if raw else {}
            if not isinstance(params, dict):
                raise ValueError("the request body is not a CBOR map")
            method = getattr(self._client(), xform_name(operation), None)
            if method is None:
                return "404 Not Found", {"__type": "UnknownOperationException", "message": operation}
            result = method(**params)
            result.pop("ResponseMetadata", None)
            return "200 OK", result
        except ClientError as err:
            e = err.response.get("Error", {})
            status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 400)
            return f"{status} Error", {"__type": e.get("Code", "InternalFailure"), "message": e.get("Message", "")}
        except (ParamValidationError, ValueError, cbor2.CBORDecodeError) as err:
            return "400 Bad Request", {"__type": "ValidationError", "message": str(err)}
