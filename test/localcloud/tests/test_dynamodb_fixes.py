"""The DynamoDB patch (``patches.fix_dynamodb``) through ``moto_server.py``: conditional writes are
atomic, as DynamoDB's are, so of several writers that read the same revision exactly one wins.
The circuit record's single flight (``breaker_aws::dynamodb``) rests on this."""
import os
import socket
import subprocess
import sys
import threading
import time

import boto3
import pytest
import requests

LAUNCHER = os.path.join(os.path.dirname(__file__), "..", "moto_server.py")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def endpoint():
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, LAUNCHER, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while True:
        try:
            requests.get(f"{url}/moto-api/data.json", timeout=1)
            break
        except requests.ConnectionError:
            assert proc.poll() is None and time.time() < deadline, "moto_server.py did not start"
            time.sleep(0.1)
    yield url
    proc.kill()


def client(endpoint):
    return boto3.client("dynamodb", region_name="us-east-1", endpoint_url=endpoint,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def test_conditional_writes_of_one_revision_have_exactly_one_winner(endpoint):
    ddb = client(endpoint)
    ddb.create_table(TableName="circuits", BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "circuit", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "circuit", "KeyType": "HASH"}])
    ddb.put_item(TableName="circuits", Item={"circuit": {"S": "c"}, "revision": {"N": "0"}})
    wins = []
    lock = threading.Lock()

    def writer(n):
        mine = client(endpoint)
        for _ in range(40):
            item = mine.get_item(TableName="circuits", Key={"circuit": {"S": "c"}}, ConsistentRead=True)["Item"]
            revision = int(item["revision"]["N"])
            try:
                mine.put_item(
                    TableName="circuits",
                    Item={"circuit": {"S": "c"}, "revision": {"N": str(revision + 1)}, "by": {"S": str(n)}},
                    ConditionExpression="#r = :r",
                    ExpressionAttributeNames={"#r": "revision"},
                    ExpressionAttributeValues={":r": {"N": str(revision)}},
                )
            except mine.exceptions.ConditionalCheckFailedException:
                continue
            with lock:
                wins.append(revision)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    final = int(ddb.get_item(TableName="circuits", Key={"circuit": {"S": "c"}}, ConsistentRead=True)["Item"]["revision"]["N"])
    assert sorted(wins) == list(range(final)), "every revision was won exactly once"
    assert final == len(wins) > 8
