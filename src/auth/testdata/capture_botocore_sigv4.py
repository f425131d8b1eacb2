#!/usr/bin/env python3
"""Captures SigV4-signed requests from real botocore for sigv4_test.cc's fixtures.

Run with the python3 that has boto3/botocore (no network is used):
    python3 src/auth/testdata/capture_botocore_sigv4.py
It prints, for each case, the request exactly as botocore hands it to urllib3
(method, URL, headers, body). urllib3 then adds "Host: <host[:port]>", which is
why the fixtures list a Host header botocore itself did not set. The clock is
frozen at 2024-05-06T07:08:09Z so the output is reproducible (apart from
amz-sdk-invocation-id and User-Agent, which are not signed).

Captured with botocore 1.43.11 (the version on the build machine).
"""
import datetime
import json
import sys
from unittest import mock

import boto3
import botocore
import botocore.auth
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest, AWSResponse
from botocore.credentials import Credentials

FIXED = datetime.datetime(2024, 5, 6, 7, 8, 9)
KEY = 'AKIAIOSFODNN7EXAMPLE'
SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY'


def dump(name, method, url, headers, body):
    print(json.dumps({'case': name, 'method': method, 'url': url,
                      'headers': [[k, v.decode() if isinstance(v, bytes) else v]
                                  for k, v in headers.items()],
                      'body': body.decode() if isinstance(body, bytes) else body}, indent=1))


class _Raw:
    def stream(self, **kw):
        yield b'{}'


def client_calls():
    """The real client path: boto3 ECR client, JSON 1.1 protocol, as the aws CLI uses it."""
    for endpoint, op, kwargs in [
        ('http://localhost:5000', 'create_repository', {'repositoryName': 'team/app'}),
        ('http://127.0.0.1:8443', 'get_authorization_token', {}),
    ]:
        captured = []

        def before_send(request, **kw):
            captured.append(request)
            return AWSResponse(request.url, 200, {'Content-Type': 'application/x-amz-json-1.1'},
                               _Raw())

        session = boto3.session.Session(aws_access_key_id=KEY, aws_secret_access_key=SECRET,
                                        region_name='us-west-2')
        client = session.client('ecr', endpoint_url=endpoint)
        client.meta.events.register('before-send', before_send)
        getattr(client, op)(**kwargs)
        r = captured[0]
        dump(op, r.method, r.url, r.headers, r.body)


def raw_signer_calls():
    """SigV4Auth directly, to pin path/query/header canonicalization and the Date header."""
    creds = Credentials(KEY, SECRET)
    r = AWSRequest(method='GET',
                   url='http://localhost:5000/v2/team/a%20b/./x//tags/list?n=10&last=a%2Fb&empty',
                   headers={'X-Custom': '  a   b  ', 'Host': 'localhost:5000'})
    SigV4Auth(creds, 'ecr', 'us-west-2').add_auth(r)
    dump('raw_get_path_query', r.method, r.url, r.headers, r.body)

    r = AWSRequest(method='POST', url='http://localhost:5000/',
                   headers={'Date': 'placeholder', 'Host': 'localhost:5000',
                            'Content-Type': 'application/x-amz-json-1.1'},
                   data=b'{}')
    SigV4Auth(creds, 'ecr', 'us-west-2').add_auth(r)
    dump('raw_post_date_header', r.method, r.url, r.headers, r.body)


if __name__ == '__main__':
    print('botocore', botocore.__version__, file=sys.stderr)
    with mock.patch('botocore.auth.get_current_datetime', return_value=FIXED):
        client_calls()
        raw_signer_calls()
