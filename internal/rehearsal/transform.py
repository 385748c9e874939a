"""The SAM transform as `sam deploy` runs it (aws-sam-translator, pinned in
the Makefile), without the SAM CLI: reads template.yaml (argv[1]), points
each function's CodeUri at s3://<bucket>/<LogicalId>.zip (what `sam package`
writes; argv[2] is the bucket) and prints the CloudFormation template as
JSON. Managed policies come from a stub loader: the template names none."""
import json
import os
import sys

import samtranslator
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse


class Loader:
    def load(self):
        return {}


def main():
    path, bucket = sys.argv[1], sys.argv[2]
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    with open(path) as f:
        tpl = yaml_parse(f.read())
    for name, res in tpl.get("Resources", {}).items():
        if res.get("Type") == "AWS::Serverless::Function":
            res.setdefault("Properties", {})["CodeUri"] = "s3://%s/%s.zip" % (bucket, name)
    out = transform(tpl, {}, Loader())
    out.setdefault("Metadata", {})["TranslatorVersion"] = samtranslator.__version__
    json.dump(out, sys.stdout, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
