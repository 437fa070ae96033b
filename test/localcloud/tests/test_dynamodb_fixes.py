"""The DynamoDB patch (``patches.fix_dynamodb``) through ``moto_server.py``: conditional writes are
atomic, as DynamoDB's are, so of several writers that read the same revision exactly one wins.
The circuit record's single flight (``breaker_aws::dynamodb``) rests on this."""
import threading

import boto3


def client(endpoint):
    return boto3.client("dynamodb", region_name="us-east-1", endpoint_url=endpoint,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def test_conditional_writes_of_one_revision_have_exactly_one_winner(patched_moto):
    endpoint = patched_moto
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
