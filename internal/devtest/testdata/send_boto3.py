"""Sends requests with SendMessageBatch through boto3, as a Python
application would (Debian's python3-boto3 speaks SQS's query protocol)."""
import json
import sys

import boto3

endpoint, queue_url = sys.argv[1], sys.argv[2]
sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1",
                   aws_access_key_id="local", aws_secret_access_key="local")
entries = [{"Id": str(i), "MessageBody": json.dumps({"id": id_, "to": "17743199144", "mmsId": 1000})}
           for i, id_ in enumerate(sys.argv[3:])]
out = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
if out.get("Failed"):
    sys.exit("failed: %r" % out["Failed"])
print(json.dumps({"boto3": boto3.__version__, "sent": len(out["Successful"])}))
