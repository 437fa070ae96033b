"""``moto_server`` with the local cloud's SQS thread-safety and speed patches (``patches.fix_sqs``)
atomic DynamoDB conditional writes (``patches.fix_dynamodb``), ESM FilterCriteria validated
as Lambda validates them (``patches.fix_lambda_filters``) and AWS's validation of SQS
provisioned mode on event-source mappings (``patches.fix_lambda_esm``).

The Rust integration tests (``breaker_testkit::MotoServer``) start this instead of the plain
``moto_server``, so that concurrent requests cannot lose or resurrect messages and queues of
thousands of messages stay fast; the API is moto's.

Usage: ``.venv/bin/python test/localcloud/moto_server.py -H 127.0.0.1 -p PORT``.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

from localcloud.patches import fix_dynamodb, fix_lambda_esm, fix_lambda_filters, fix_sqs  # noqa: E402
from moto.server import main  # noqa: E402

if __name__ == "__main__":
    fix_sqs()
    fix_dynamodb()
    fix_lambda_filters()
    fix_lambda_esm()
    main(sys.argv[1:])
