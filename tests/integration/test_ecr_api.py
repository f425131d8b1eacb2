"""The ECR control plane (AWS JSON 1.1 on `POST /`), driven by boto3.

Every operation Berth serves is called, with each exception it documents. Every
response boto3 receives is also checked against botocore's service model for ECR
(types, required members, enums, string lengths and patterns; exception bodies
against their exception shapes) by a hook on the client, so each call below tests
the shape of Berth's answer as well as its content.

Also: pagination over 2,500 images (DescribeImages, ListImages with its
per-tag entries, DescribeRepositories), the presigned layer download URLs, and
the ECR rules on /v2 (immutable tags, lastRecordedPullTime, NAME_UNKNOWN wording).

Run: cd tests/integration && BERTH_BIN=.../berth python3 -m unittest -v test_ecr_api
(the PATH python3, which has boto3; the server accepts any credentials for now)."""

import base64
import hashlib
import json
import re
import time
import unittest
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from harness import (OCI_CONFIG, OCI_INDEX, OCI_LAYER_GZIP, OCI_MANIFEST, RegistryTestCase,
                     get_manifest, http, json_error_list, json_errors, put_manifest,
                     sha256_digest, skip_unless_berth)

ACCOUNT = "000000000000"
REGION = "us-east-1"
TARGET_PREFIX = "AmazonEC2ContainerRegistry_V20150921."
JSON_TYPE = "application/x-amz-json-1.1"


# --------------------------------------------------------------------------
# Checking responses against botocore's service model
# --------------------------------------------------------------------------

class ShapeError(AssertionError):
    pass


def validate_shape(shape, value, path="$"):
    """Checks a decoded JSON value against a botocore Shape, recursively.

    Lists are not held to their min/max: in the model those bound requests (an
    empty repository still lists zero imageIds, as on ECR)."""
    t = shape.type_name
    meta = shape.metadata
    if t == "structure":
        if not isinstance(value, dict):
            raise ShapeError("%s: expected an object for %s, got %r" % (path, shape.name, value))
        for name in shape.required_members:
            if name not in value:
                raise ShapeError("%s: required member %r of %s is missing" % (path, name, shape.name))
        for key, v in value.items():
            if key not in shape.members:
                raise ShapeError("%s: %r is not a member of %s" % (path, key, shape.name))
            validate_shape(shape.members[key], v, "%s.%s" % (path, key))
    elif t == "list":
        if not isinstance(value, list):
            raise ShapeError("%s: expected a list for %s, got %r" % (path, shape.name, value))
        for i, v in enumerate(value):
            validate_shape(shape.member, v, "%s[%d]" % (path, i))
    elif t == "map":
        if not isinstance(value, dict):
            raise ShapeError("%s: expected a map, got %r" % (path, value))
        for k, v in value.items():
            validate_shape(shape.key, k, "%s{key}" % path)
            validate_shape(shape.value, v, "%s[%r]" % (path, k))
    elif t == "string":
        if not isinstance(value, str):
            raise ShapeError("%s: expected a string for %s, got %r" % (path, shape.name, value))
        if shape.enum and value not in shape.enum:
            raise ShapeError("%s: %r is not one of %s" % (path, value, shape.enum))
        if "min" in meta and len(value) < meta["min"]:
            raise ShapeError("%s: %r is shorter than %d" % (path, value, meta["min"]))
        if "max" in meta and len(value) > meta["max"]:
            raise ShapeError("%s: longer than %d" % (path, meta["max"]))
        if "pattern" in meta and not re.fullmatch(meta["pattern"], value):
            raise ShapeError("%s: %r does not match %s" % (path, value, meta["pattern"]))
    elif t in ("integer", "long"):
        if not isinstance(value, int) or isinstance(value, bool):
            raise ShapeError("%s: expected an integer, got %r" % (path, value))
        if "min" in meta and value < meta["min"]:
            raise ShapeError("%s: %r is below %d" % (path, value, meta["min"]))
        if "max" in meta and value > meta["max"]:
            raise ShapeError("%s: %r is above %d" % (path, value, meta["max"]))
    elif t == "boolean":
        if not isinstance(value, bool):
            raise ShapeError("%s: expected a boolean, got %r" % (path, value))
    elif t == "timestamp":
        # AWS JSON 1.1: epoch seconds, a number (fractional allowed).
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise ShapeError("%s: expected epoch seconds, got %r" % (path, value))
        if not 1e9 < value < 1e11:
            raise ShapeError("%s: %r is not plausible epoch seconds" % (path, value))
    elif t in ("double", "float"):
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise ShapeError("%s: expected a number, got %r" % (path, value))
    elif t == "blob":
        if not isinstance(value, str):
            raise ShapeError("%s: expected base64 text, got %r" % (path, value))
        base64.b64decode(value, validate=True)
    else:
        raise ShapeError("%s: unexpected shape type %s" % (path, t))


class ModelChecker:
    """Hooks a boto3 ECR client: every raw response is validated against the model."""

    def __init__(self, client):
        self.model = client.meta.service_model
        self.checked = {}  # operation -> count
        self.errors_seen = set()
        client.meta.events.register("after-call.ecr", self._after_call)

    def _after_call(self, http_response, model, **kwargs):
        ctype = (http_response.headers.get("Content-Type") or "").split(";")[0].strip()
        if ctype != JSON_TYPE:
            raise ShapeError("%s: Content-Type %r, expected %s" % (model.name, ctype, JSON_TYPE))
        body = json.loads(http_response.content or b"{}")
        if http_response.status_code == 200:
            validate_shape(model.output_shape, body, "%s output" % model.name)
        else:
            etype = body.get("__type")
            if not isinstance(etype, str) or not isinstance(body.get("message"), str):
                raise ShapeError("%s: error body without __type/message: %r" % (model.name, body))
            # ServerException: 500, or 503 when a storage backend does not answer.
            expected_status = (500, 503) if etype == "ServerException" else (400,)
            if http_response.status_code not in expected_status:
                raise ShapeError("%s: %s answered with HTTP %d" % (model.name, etype,
                                                                   http_response.status_code))
            if etype in self.model.shape_names:
                members = {k: v for k, v in body.items() if k != "__type"}
                validate_shape(self.model.shape_for(etype), members, etype)
            self.errors_seen.add(etype)
        self.checked[model.name] = self.checked.get(model.name, 0) + 1


def make_client(url, validate_params=True):
    session = boto3.session.Session(aws_access_key_id="AKIDEXAMPLE",
                                    aws_secret_access_key="secret", region_name=REGION)
    client = session.client("ecr", endpoint_url=url,
                            config=Config(retries={"max_attempts": 0},
                                          parameter_validation=validate_params,
                                          max_pool_connections=16))
    return client, ModelChecker(client)


# --------------------------------------------------------------------------
# Content helpers
# --------------------------------------------------------------------------

def push_layer(client, repo, data, part_size=None, registry_id=None):
    """Pushes `data` through the layer API (in parts of `part_size`); returns its digest."""
    extra = {"registryId": registry_id} if registry_id else {}
    up = client.initiate_layer_upload(repositoryName=repo, **extra)
    part_size = part_size or max(1, len(data))
    first = 0
    while first < len(data):
        chunk = data[first:first + part_size]
        res = client.upload_layer_part(repositoryName=repo, uploadId=up["uploadId"],
                                       partFirstByte=first, partLastByte=first + len(chunk) - 1,
                                       layerPartBlob=chunk, **extra)
        assert res["lastByteReceived"] == first + len(chunk) - 1, res
        first += len(chunk)
    digest = sha256_digest(data)
    res = client.complete_layer_upload(repositoryName=repo, uploadId=up["uploadId"],
                                       layerDigests=[digest], **extra)
    assert res["layerDigest"] == digest, res
    return digest


def image_manifest(config, layers, annotations=None, subject=None, artifact_type=None):
    """An OCI image manifest (compact JSON text). config/layers: (digest, size) pairs."""
    m = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
         "config": {"mediaType": OCI_CONFIG, "digest": config[0], "size": config[1]},
         "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": d, "size": s} for d, s in layers]}
    if annotations:
        m["annotations"] = annotations
    if subject:
        m["subject"] = {"mediaType": OCI_MANIFEST, "digest": subject[0], "size": subject[1]}
    if artifact_type:
        m["artifactType"] = artifact_type
    return json.dumps(m, separators=(",", ":"))


def index_manifest(children):
    """An OCI index of (digest, size) children."""
    return json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": d, "size": s,
         "platform": {"architecture": "arch%d" % i, "os": "linux"}}
        for i, (d, s) in enumerate(children)]}, separators=(",", ":"))


def digest_of(text):
    return sha256_digest(text.encode() if isinstance(text, str) else text)


def error_code(exc):
    return exc.exception.response["Error"]["Code"]


@skip_unless_berth
class EcrApiTest(RegistryTestCase):
    """One registry for the class; each test uses repositories of its own."""

    @classmethod
    def setUpClass(cls):
        cls.reg = cls.start_class_registry(create_on_push=True)
        cls.ecr, cls.checker = make_client(cls.reg.url)
        # Without client-side validation, to reach the server's own checks.
        cls.raw, cls.raw_checker = make_client(cls.reg.url, validate_params=False)

    # -- helpers ------------------------------------------------------------
    def new_repo(self, prefix="t", **kw):
        name = "%s/%s" % (prefix, uuid.uuid4().hex[:12])
        self.ecr.create_repository(repositoryName=name, **kw)
        return name

    def ensure_layer(self, repo, data):
        """Pushes `data` through the layer API unless the repository holds it already."""
        try:
            return push_layer(self.ecr, repo, data), len(data)
        except self.ecr.exceptions.LayerAlreadyExistsException:
            return sha256_digest(data), len(data)

    def base_image(self, repo, tag="v1", layers=(b"layer one",), annotations=None):
        """Pushes config + layers via the layer API and the manifest with PutImage."""
        cfg = self.ensure_layer(repo, b'{"architecture":"amd64","os":"linux"}')
        lay = [self.ensure_layer(repo, data) for data in layers]
        text = image_manifest(cfg, lay, annotations)
        kw = {"imageTag": tag} if tag else {}
        res = self.ecr.put_image(repositoryName=repo, imageManifest=text, **kw)
        return {"manifest": text, "digest": res["image"]["imageId"]["imageDigest"],
                "config": cfg, "layers": lay}

    def call_raw(self, target, body, content_type=JSON_TYPE):
        headers = {"X-Amz-Target": target} if target else {}
        if content_type:
            headers["Content-Type"] = content_type
        st, h, data = http("POST", self.reg.url + "/", headers=headers, body=body)
        return st, h, (json.loads(data) if data else {})

    def test_request_smuggling_framing_is_refused_with_an_ecr_error(self):
        # Transfer-Encoding other than chunked (here with Content-Length too) is refused
        # before the call is decoded, still in the ECR error format botocore reads.
        headers = {"X-Amz-Target": TARGET_PREFIX + "DescribeRepositories",
                   "Content-Type": JSON_TYPE, "Transfer-Encoding": "gzip"}
        st, h, data = http("POST", self.reg.url + "/", headers=headers, body=b"{}")
        self.assertEqual(st, 400, data)
        err = json.loads(data)
        self.assertEqual(err["__type"], "SerializationException", data)
        self.assertIn("Transfer-Encoding", err["message"])
        self.assertTrue(h.get("x-amzn-RequestId"))

    # -- GetAuthorizationToken -------------------------------------------------
    def test_get_authorization_token(self):
        before = time.time()
        data = self.ecr.get_authorization_token()["authorizationData"]
        self.assertEqual(len(data), 1)
        token = base64.b64decode(data[0]["authorizationToken"]).decode()
        self.assertEqual(token, "AWS:unauthenticated")
        self.assertEqual(data[0]["proxyEndpoint"], self.reg.url)
        expires = data[0]["expiresAt"].timestamp()
        self.assertAlmostEqual(expires - before, 12 * 3600, delta=60)
        many = self.ecr.get_authorization_token(registryIds=["111111111111", "222222222222"])
        self.assertEqual(len(many["authorizationData"]), 2)
        with self.assertRaises(self.raw.exceptions.InvalidParameterException):
            self.raw.get_authorization_token(registryIds=["12"])

    # -- repositories ------------------------------------------------------------
    def test_create_repository_with_every_field(self):
        name = "create/" + uuid.uuid4().hex[:8]
        res = self.ecr.create_repository(
            repositoryName=name, imageTagMutability="IMMUTABLE_WITH_EXCLUSION",
            imageTagMutabilityExclusionFilters=[{"filterType": "WILDCARD", "filter": "latest"},
                                                {"filterType": "WILDCARD", "filter": "dev-*"}],
            imageScanningConfiguration={"scanOnPush": True},
            encryptionConfiguration={"encryptionType": "KMS", "kmsKey": "arn:aws:kms:key/1"},
            tags=[{"Key": "team", "Value": "a"}, {"Key": "env", "Value": ""}])
        r = res["repository"]
        self.assertEqual(r["repositoryName"], name)
        self.assertEqual(r["registryId"], ACCOUNT)
        self.assertEqual(r["repositoryArn"], "arn:aws:ecr:%s:%s:repository/%s" % (REGION, ACCOUNT, name))
        self.assertEqual(r["repositoryUri"], "%s/%s" % (self.reg.host, name))
        self.assertAlmostEqual(r["createdAt"].timestamp(), time.time(), delta=60)
        self.assertEqual(r["imageTagMutability"], "IMMUTABLE_WITH_EXCLUSION")
        self.assertEqual(r["imageTagMutabilityExclusionFilters"],
                         [{"filterType": "WILDCARD", "filter": "latest"},
                          {"filterType": "WILDCARD", "filter": "dev-*"}])
        self.assertEqual(r["imageScanningConfiguration"], {"scanOnPush": True})
        self.assertEqual(r["encryptionConfiguration"],
                         {"encryptionType": "KMS", "kmsKey": "arn:aws:kms:key/1"})
        # Defaults.
        plain = self.ecr.create_repository(repositoryName=name + "-plain")["repository"]
        self.assertEqual(plain["imageTagMutability"], "MUTABLE")
        self.assertNotIn("imageTagMutabilityExclusionFilters", plain)
        self.assertEqual(plain["encryptionConfiguration"], {"encryptionType": "AES256"})
        self.assertEqual(plain["imageScanningConfiguration"], {"scanOnPush": False})
        # And it is visible on /v2 at once.
        st, _, body = http("GET", "%s/v2/%s/tags/list" % (self.reg.url, name))
        self.assertEqual(st, 200, body)
        self.assertEqual(json.loads(body)["tags"], [])

    def test_create_repository_errors(self):
        name = self.new_repo()
        with self.assertRaises(self.ecr.exceptions.RepositoryAlreadyExistsException) as cm:
            self.ecr.create_repository(repositoryName=name)
        self.assertIn(name, str(cm.exception))
        for bad in ("UPPER/case", "a", "x//y", "-lead"):
            with self.assertRaises(self.raw.exceptions.InvalidParameterException, msg=bad) as cm:
                self.raw.create_repository(repositoryName=bad)
            self.assertIn("repositoryName", str(cm.exception))
        with self.assertRaises(self.raw.exceptions.InvalidParameterException) as cm:
            self.raw.create_repository(repositoryName="x/" + uuid.uuid4().hex[:6],
                                       imageTagMutability="SOMETIMES")
        self.assertIn("imageTagMutability", str(cm.exception))
        with self.assertRaises(self.raw.exceptions.InvalidParameterException) as cm:
            self.raw.create_repository(repositoryName="x/" + uuid.uuid4().hex[:6],
                                       imageTagMutability="IMMUTABLE_WITH_EXCLUSION")
        self.assertIn("imageTagMutabilityExclusionFilters", str(cm.exception))
        with self.assertRaises(self.raw.exceptions.InvalidParameterException):
            self.raw.create_repository(
                repositoryName="x/" + uuid.uuid4().hex[:6], imageTagMutability="MUTABLE",
                imageTagMutabilityExclusionFilters=[{"filterType": "WILDCARD", "filter": "a"}])
        with self.assertRaises(self.raw.exceptions.InvalidParameterException) as cm:
            self.raw.create_repository(repositoryName="x/" + uuid.uuid4().hex[:6],
                                       encryptionConfiguration={"encryptionType": "AES256",
                                                                "kmsKey": "k"})
        self.assertIn("kmsKey", str(cm.exception))
        with self.assertRaises(self.ecr.exceptions.InvalidTagParameterException):
            self.ecr.create_repository(repositoryName="x/" + uuid.uuid4().hex[:6],
                                       tags=[{"Key": "aws:reserved", "Value": "x"}])
        with self.assertRaises(self.ecr.exceptions.TooManyTagsException):
            self.ecr.create_repository(repositoryName="x/" + uuid.uuid4().hex[:6],
                                       tags=[{"Key": "k%d" % i, "Value": ""} for i in range(51)])

    def test_describe_repositories_by_name_and_by_page(self):
        # A registry (account) of its own, so the listing is exactly what this test made.
        account = "2%011d" % (int(time.time() * 1000) % 10**11)
        names = sorted("page/r%02d" % i for i in range(23))
        for n in names:
            self.ecr.create_repository(repositoryName=n + "-" + account, registryId=account)
        names = [n + "-" + account for n in names]
        seen, pages, token = [], 0, None
        while True:
            kw = {"nextToken": token} if token else {}
            res = self.ecr.describe_repositories(registryId=account, maxResults=10, **kw)
            self.assertLessEqual(len(res["repositories"]), 10)
            seen += [r["repositoryName"] for r in res["repositories"]]
            for r in res["repositories"]:
                self.assertEqual(r["registryId"], account)
            pages += 1
            token = res.get("nextToken")
            if not token:
                break
        self.assertEqual(seen, names)
        self.assertEqual(pages, 3)
        # The paginator agrees.
        pag = self.ecr.get_paginator("describe_repositories")
        got = [r["repositoryName"] for p in pag.paginate(registryId=account,
                                                         PaginationConfig={"PageSize": 4})
               for r in p["repositories"]]
        self.assertEqual(got, names)
        # By name.
        res = self.ecr.describe_repositories(registryId=account, repositoryNames=names[5:7])
        self.assertEqual([r["repositoryName"] for r in res["repositories"]], names[5:7])
        with self.assertRaises(self.ecr.exceptions.RepositoryNotFoundException) as cm:
            self.ecr.describe_repositories(registryId=account, repositoryNames=[names[0], "no/such"])
        self.assertIn("no/such", str(cm.exception))
        self.assertIn(account, str(cm.exception))
        # Other accounts' repositories are not listed, nor reachable.
        mine = [r["repositoryName"] for p in self.ecr.get_paginator("describe_repositories").paginate()
                for r in p["repositories"]]
        self.assertFalse(set(mine) & set(names))
        with self.assertRaises(self.ecr.exceptions.RepositoryNotFoundException):
            self.ecr.describe_images(repositoryName=names[0])
        with self.assertRaises(self.raw.exceptions.InvalidParameterException):
            self.raw.describe_repositories(registryId=account, maxResults=0)
        with self.assertRaises(self.raw.exceptions.InvalidParameterException):
            self.raw.describe_repositories(registryId=account, maxResults=1001)
        with self.assertRaises(self.raw.exceptions.InvalidParameterException):
            self.raw.describe_repositories(registryId="12ab")
        with self.assertRaises(self.raw.exceptions.InvalidParameterException) as cm:
            self.raw.describe_repositories(registryId=account, nextToken="garbage")
        self.assertIn("nextToken", str(cm.exception))

    def test_delete_repository(self):
        empty = self.new_repo()
        res = self.ecr.delete_repository(repositoryName=empty)
        self.assertEqual(res["repository"]["repositoryName"], empty)
        with self.assertRaises(self.ecr.exceptions.RepositoryNotFoundException):
            self.ecr.delete_repository(repositoryName=empty)
        full = self.new_repo()
        self.base_image(full)
        with self.assertRaises(self.ecr.exceptions.RepositoryNotEmptyException) as cm:
            self.ecr.delete_repository(repositoryName=full)
        self.assertIn(full, str(cm.exception))
        self.ecr.delete_repository(repositoryName=full, force=True)
        st, _, body = http("GET", "%s/v2/%s/tags/list" % (self.reg.url, full))
        self.assertEqual(st, 404, body)
        self.assertEqual(json_errors(body), ["NAME_UNKNOWN"])

    # -- layers -------------------------------------------------------------------
    def test_layer_upload_in_parts_and_download_url(self):
        repo = self.new_repo()
        data = bytes(range(256)) * 4096 + b"tail"  # 1 MiB + 4 bytes, in 3 parts
        digest = push_layer(self.ecr, repo, data, part_size=400 * 1024)
        # Visible on /v2 too.
        st, h, body = http("GET", "%s/v2/%s/blobs/%s" % (self.reg.url, repo, digest))
        self.assertEqual(st, 200)
        self.assertEqual(body, data)
        # BatchCheckLayerAvailability: available, missing, invalid.
        missing = sha256_digest(b"never pushed")
        res = self.ecr.batch_check_layer_availability(repositoryName=repo,
                                                      layerDigests=[digest, missing, "sha256:xyz"])
        self.assertEqual(res["layers"], [{"layerDigest": digest, "layerAvailability": "AVAILABLE",
                                          "layerSize": len(data)}])
        codes = {f["layerDigest"]: f["failureCode"] for f in res["failures"]}
        self.assertEqual(codes, {missing: "MissingLayerDigest", "sha256:xyz": "InvalidLayerDigest"})
        # GetDownloadUrlForLayer: a URL Berth serves itself, signed and expiring.
        res = self.ecr.get_download_url_for_layer(repositoryName=repo, layerDigest=digest)
        self.assertEqual(res["layerDigest"], digest)
        url = res["downloadUrl"]
        self.assertTrue(url.startswith(self.reg.url + "/ecr-download/"), url)
        with urllib.request.urlopen(url) as f:
            self.assertEqual(f.read(), data)
        with self.assertRaises(urllib.error.HTTPError) as cm:
            urllib.request.urlopen(url[:-2] + ("AA" if not url.endswith("AA") else "BB"))
        self.assertEqual(cm.exception.code, 403)
        with self.assertRaises(self.ecr.exceptions.LayersNotFoundException):
            self.ecr.get_download_url_for_layer(repositoryName=repo, layerDigest=missing)
        with self.assertRaises(self.ecr.exceptions.RepositoryNotFoundException):
            self.ecr.get_download_url_for_layer(repositoryName="no/such", layerDigest=digest)
        with self.assertRaises(self.raw.exceptions.InvalidParameterException):
            self.raw.get_download_url_for_layer(repositoryName=repo, layerDigest="md5:abc")

    def test_download_url_token_is_redacted_in_the_access_log(self):
        # The token is a bearer credential: whoever reads the log could fetch the layer.
        repo = self.new_repo()
        digest = push_layer(self.ecr, repo, b"a layer behind a secret url")
        url = self.ecr.get_download_url_for_layer(repositoryName=repo, layerDigest=digest)["downloadUrl"]
        token = url.split("/ecr-download/", 1)[1]
        with urllib.request.urlopen(url) as f:
            f.read()
        deadline = time.monotonic() + 10  # the line is written once the response is sent
        while "/ecr-download/<redacted>" not in self.reg.log_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        log = self.reg.log_text()
        self.assertIn("/ecr-download/<redacted>", log)
        self.assertNotIn(token, log)
        self.assertNotIn(token.split(".")[-1], log)

    def test_layer_upload_errors(self):
        repo = self.new_repo()
        up = self.ecr.initiate_layer_upload(repositoryName=repo)
        self.assertRegex(up["uploadId"], r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
        self.assertGreater(up["partSize"], 0)
        uid = up["uploadId"]
        # Completing an upload that received nothing.
        with self.assertRaises(self.ecr.exceptions.EmptyUploadException):
            self.ecr.complete_layer_upload(repositoryName=repo, uploadId=uid,
                                           layerDigests=[sha256_digest(b"")])
        self.ecr.upload_layer_part(repositoryName=repo, uploadId=uid, partFirstByte=0,
                                   partLastByte=4, layerPartBlob=b"hello")
        # A part that does not continue the upload.
        with self.assertRaises(self.ecr.exceptions.InvalidLayerPartException) as cm:
            self.ecr.upload_layer_part(repositoryName=repo, uploadId=uid, partFirstByte=10,
                                       partLastByte=14, layerPartBlob=b"world")
        err = cm.exception.response
        self.assertEqual(err.get("lastValidByteReceived"), 4)
        self.assertEqual(err.get("uploadId"), uid)
        self.assertEqual(err.get("repositoryName"), repo)
        # A part whose range disagrees with its bytes.
        with self.assertRaises(self.ecr.exceptions.InvalidLayerPartException):
            self.ecr.upload_layer_part(repositoryName=repo, uploadId=uid, partFirstByte=5,
                                       partLastByte=100, layerPartBlob=b"world")
        with self.assertRaises(self.ecr.exceptions.UploadNotFoundException):
            self.ecr.upload_layer_part(repositoryName=repo, uploadId=str(uuid.uuid4()),
                                       partFirstByte=0, partLastByte=0, layerPartBlob=b"x")
        with self.assertRaises(self.ecr.exceptions.UploadNotFoundException):
            self.ecr.complete_layer_upload(repositoryName=repo, uploadId=str(uuid.uuid4()),
                                           layerDigests=[sha256_digest(b"x")])
        with self.assertRaises(self.raw.exceptions.InvalidParameterException):
            self.raw.upload_layer_part(repositoryName=repo, uploadId=uid, partFirstByte=5,
                                       partLastByte=9)
        # The wrong digest: the upload stays, so the right one completes it.
        with self.assertRaises(self.ecr.exceptions.InvalidLayerException):
            self.ecr.complete_layer_upload(repositoryName=repo, uploadId=uid,
                                           layerDigests=[sha256_digest(b"other")])
        res = self.ecr.complete_layer_upload(repositoryName=repo, uploadId=uid,
                                             layerDigests=[sha256_digest(b"hello")])
        self.assertEqual(res["layerDigest"], sha256_digest(b"hello"))
        self.assertEqual(res["uploadId"], uid)
        self.assertEqual(res["registryId"], ACCOUNT)
        # The same layer again.
        with self.assertRaises(self.ecr.exceptions.LayerAlreadyExistsException):
            push_layer(self.ecr, repo, b"hello")
        with self.assertRaises(self.ecr.exceptions.RepositoryNotFoundException):
            self.ecr.initiate_layer_upload(repositoryName="no/such")
        with self.assertRaises(self.ecr.exceptions.RepositoryNotFoundException):
            self.ecr.batch_check_layer_availability(repositoryName="no/such", layerDigests=["x"])

    # -- PutImage -------------------------------------------------------------------
    def test_put_image_and_its_exceptions(self):
        repo = self.new_repo()
        img = self.base_image(repo, tag="v1")
        self.assertEqual(img["digest"], digest_of(img["manifest"]))
        # Same manifest, same tag.
        with self.assertRaises(self.ecr.exceptions.ImageAlreadyExistsException):
            self.ecr.put_image(repositoryName=repo, imageManifest=img["manifest"], imageTag="v1")
        # A new tag on it is a retag; with the expected digest.
        res = self.ecr.put_image(repositoryName=repo, imageManifest=img["manifest"],
                                 imageTag="v2", imageDigest=img["digest"],
                                 imageManifestMediaType=OCI_MANIFEST)
        self.assertEqual(res["image"], {"registryId": ACCOUNT, "repositoryName": repo,
                                        "imageId": {"imageDigest": img["digest"], "imageTag": "v2"},
                                        "imageManifest": img["manifest"],
                                        "imageManifestMediaType": OCI_MANIFEST})
        with self.assertRaises(self.ecr.exceptions.ImageDigestDoesNotMatchException):
            self.ecr.put_image(repositoryName=repo, imageManifest=img["manifest"], imageTag="v3",
                               imageDigest=sha256_digest(b"something else"))
        # Layers that are not in the repository.
        ghost = image_manifest(img["config"], [(sha256_digest(b"ghost layer"), 11)])
        with self.assertRaises(self.ecr.exceptions.LayersNotFoundException) as cm:
            self.ecr.put_image(repositoryName=repo, imageManifest=ghost, imageTag="ghost")
        self.assertIn(sha256_digest(b"ghost layer"), str(cm.exception))
        # A list whose child is not in the repository.
        missing_child = (sha256_digest(b"not a manifest here"), 100)
        with self.assertRaises(self.ecr.exceptions.ReferencedImagesNotFoundException) as cm:
            self.ecr.put_image(repositoryName=repo, imageTag="list",
                               imageManifest=index_manifest([(img["digest"], len(img["manifest"])),
                                                             missing_child]))
        self.assertIn(missing_child[0], str(cm.exception))
        # Not a manifest; a bad tag; a missing repository.
        with self.assertRaises(self.ecr.exceptions.InvalidParameterException):
            self.ecr.put_image(repositoryName=repo, imageManifest='{"schemaVersion":1}')
        with self.assertRaises(self.ecr.exceptions.InvalidParameterException) as cm:
            self.ecr.put_image(repositoryName=repo, imageManifest=img["manifest"],
                               imageTag="not a tag!")
        self.assertIn("imageTag", str(cm.exception))
        with self.assertRaises(self.ecr.exceptions.RepositoryNotFoundException):
            self.ecr.put_image(repositoryName="no/such", imageManifest=img["manifest"])
        # A manifest without mediaType needs imageManifestMediaType.
        bare = json.loads(img["manifest"])
        del bare["mediaType"]
        bare["annotations"] = {"bare": "yes"}
        bare_text = json.dumps(bare)
        with self.assertRaises(self.ecr.exceptions.InvalidParameterException):
            self.ecr.put_image(repositoryName=repo, imageManifest=bare_text, imageTag="bare")
        res = self.ecr.put_image(repositoryName=repo, imageManifest=bare_text, imageTag="bare",
                                 imageManifestMediaType=OCI_MANIFEST)
        self.assertEqual(res["image"]["imageManifestMediaType"], OCI_MANIFEST)
        # The image is served on /v2 byte for byte.
        st, h, body = get_manifest(self.reg.url, repo, "v2")
        self.assertEqual(st, 200)
        self.assertEqual(body, img["manifest"].encode())
        self.assertEqual(h.get("Docker-Content-Digest"), img["digest"])

    def test_immutable_tags_on_put_image_and_v2(self):
        repo = self.new_repo(imageTagMutability="IMMUTABLE")
        one = self.base_image(repo, tag="v1")
        two = self.base_image(repo, tag=None, layers=(b"layer two",))
        with self.assertRaises(self.ecr.exceptions.ImageTagAlreadyExistsException) as cm:
            self.ecr.put_image(repositoryName=repo, imageManifest=two["manifest"], imageTag="v1")
        self.assertIn("v1", str(cm.exception))
        # /v2: TAG_INVALID, and the tag has not moved.
        st, _, body = put_manifest(self.reg.url, repo, "v1", two["manifest"].encode(), OCI_MANIFEST)
        self.assertEqual(st, 400, body)
        self.assertEqual(json_errors(body), ["TAG_INVALID"])
        self.assertIn("immutable", json_error_list(body)[0]["message"])
        st, h, _ = get_manifest(self.reg.url, repo, "v1", method="HEAD")
        self.assertEqual(h.get("Docker-Content-Digest"), one["digest"])
        # The same manifest under the same tag is not a move.
        st, _, body = put_manifest(self.reg.url, repo, "v1", one["manifest"].encode(), OCI_MANIFEST)
        self.assertEqual(st, 201, body)

    def test_put_image_tag_mutability(self):
        repo = self.new_repo()
        one = self.base_image(repo, tag="latest")
        two = self.base_image(repo, tag=None, layers=(b"layer two",))
        res = self.ecr.put_image_tag_mutability(
            repositoryName=repo, imageTagMutability="IMMUTABLE_WITH_EXCLUSION",
            imageTagMutabilityExclusionFilters=[{"filterType": "WILDCARD", "filter": "lat*"}])
        self.assertEqual(res, {**res, "registryId": ACCOUNT, "repositoryName": repo,
                               "imageTagMutability": "IMMUTABLE_WITH_EXCLUSION",
                               "imageTagMutabilityExclusionFilters": [
                                   {"filterType": "WILDCARD", "filter": "lat*"}]})
        desc = self.ecr.describe_repositories(repositoryNames=[repo])["repositories"][0]
        self.assertEqual(desc["imageTagMutability"], "IMMUTABLE_WITH_EXCLUSION")
        # "latest" matches the exclusion: it still moves; "v1" does not.
        self.ecr.put_image(repositoryName=repo, imageManifest=two["manifest"], imageTag="latest")
        self.ecr.put_image(repositoryName=repo, imageManifest=one["manifest"], imageTag="v1")
        with self.assertRaises(self.ecr.exceptions.ImageTagAlreadyExistsException):
            self.ecr.put_image(repositoryName=repo, imageManifest=two["manifest"], imageTag="v1")
        st, _, body = put_manifest(self.reg.url, repo, "latest", one["manifest"].encode(),
                                   OCI_MANIFEST)
        self.assertEqual(st, 201, body)
        # MUTABLE_WITH_EXCLUSION: only matching tags are frozen.
        self.ecr.put_image_tag_mutability(
            repositoryName=repo, imageTagMutability="MUTABLE_WITH_EXCLUSION",
            imageTagMutabilityExclusionFilters=[{"filterType": "WILDCARD", "filter": "release-*"}])
        self.ecr.put_image(repositoryName=repo, imageManifest=two["manifest"], imageTag="v1")
        self.ecr.put_image(repositoryName=repo, imageManifest=two["manifest"], imageTag="release-1")
        st, _, body = put_manifest(self.reg.url, repo, "release-1", one["manifest"].encode(),
                                   OCI_MANIFEST)
        self.assertEqual(st, 400, body)
        self.assertEqual(json_errors(body), ["TAG_INVALID"])
        res = self.ecr.put_image_tag_mutability(repositoryName=repo, imageTagMutability="MUTABLE")
        self.assertNotIn("imageTagMutabilityExclusionFilters", res)
        for kw in ({"imageTagMutability": "IMMUTABLE_WITH_EXCLUSION"},
                   {"imageTagMutability": "IMMUTABLE", "imageTagMutabilityExclusionFilters": [
                       {"filterType": "WILDCARD", "filter": "x"}]},
                   {"imageTagMutability": "MUTABLE_WITH_EXCLUSION",
                    "imageTagMutabilityExclusionFilters": [{"filterType": "WILDCARD",
                                                            "filter": "bad filter"}]}):
            with self.assertRaises(self.raw.exceptions.InvalidParameterException, msg=kw):
                self.raw.put_image_tag_mutability(repositoryName=repo, **kw)
        with self.assertRaises(self.ecr.exceptions.RepositoryNotFoundException):
            self.ecr.put_image_tag_mutability(repositoryName="no/such", imageTagMutability="MUTABLE")

    # -- DescribeImages / ListImages ----------------------------------------------------
    def test_describe_images_fields(self):
        repo = self.new_repo()
        a = self.base_image(repo, tag="a", layers=(b"x" * 1000, b"y" * 200))
        self.ecr.put_image(repositoryName=repo, imageManifest=a["manifest"], imageTag="a2")
        b = self.base_image(repo, tag=None, layers=(b"z" * 5000,))
        lst_text = index_manifest([(a["digest"], len(a["manifest"])),
                                   (b["digest"], len(b["manifest"]))])
        lst = self.ecr.put_image(repositoryName=repo, imageManifest=lst_text,
                                 imageTag="multi")["image"]["imageId"]["imageDigest"]
        sig_text = image_manifest(a["config"], [a["layers"][0]], subject=(a["digest"], len(a["manifest"])),
                                  artifact_type="application/vnd.example.sig")
        sig = self.ecr.put_image(repositoryName=repo, imageManifest=sig_text)["image"]["imageId"][
            "imageDigest"]
        details = {d["imageDigest"]: d
                   for d in self.ecr.describe_images(repositoryName=repo)["imageDetails"]}
        self.assertEqual(set(details), {a["digest"], b["digest"], lst, sig})
        da = details[a["digest"]]
        self.assertEqual(da["registryId"], ACCOUNT)
        self.assertEqual(da["repositoryName"], repo)
        self.assertEqual(da["imageTags"], ["a", "a2"])
        self.assertEqual(da["imageSizeInBytes"], 1200)  # the layers, as their descriptors say
        self.assertEqual(da["imageManifestMediaType"], OCI_MANIFEST)
        self.assertEqual(da["artifactMediaType"], OCI_CONFIG)
        self.assertAlmostEqual(da["imagePushedAt"].timestamp(), time.time(), delta=120)
        self.assertNotIn("lastRecordedPullTime", da)
        self.assertNotIn("imageTags", details[b["digest"]])
        self.assertEqual(details[lst]["imageSizeInBytes"], 5000)  # the largest child
        self.assertEqual(details[lst]["imageManifestMediaType"], OCI_INDEX)
        self.assertEqual(details[sig]["subjectManifestDigest"], a["digest"])
        self.assertEqual(details[sig]["artifactMediaType"], "application/vnd.example.sig")
        # A pull over /v2 is recorded (in batches; Describe shows it at once).
        st, _, _ = get_manifest(self.reg.url, repo, "a")
        self.assertEqual(st, 200)
        st, _, _ = get_manifest(self.reg.url, repo, b["digest"], method="HEAD")  # HEAD is no pull
        pulled = self.ecr.describe_images(repositoryName=repo,
                                          imageIds=[{"imageTag": "a"}, {"imageDigest": b["digest"]}])
        by = {d["imageDigest"]: d for d in pulled["imageDetails"]}
        self.assertAlmostEqual(by[a["digest"]]["lastRecordedPullTime"].timestamp(), time.time(),
                               delta=60)
        self.assertNotIn("lastRecordedPullTime", by[b["digest"]])
        # Filters.
        tagged = self.ecr.describe_images(repositoryName=repo, filter={"tagStatus": "TAGGED"})
        self.assertEqual({d["imageDigest"] for d in tagged["imageDetails"]}, {a["digest"], lst})
        untagged = self.ecr.describe_images(repositoryName=repo, filter={"tagStatus": "UNTAGGED"})
        self.assertEqual({d["imageDigest"] for d in untagged["imageDetails"]}, {b["digest"], sig})
        # imageIds that do not exist.
        with self.assertRaises(self.ecr.exceptions.ImageNotFoundException):
            self.ecr.describe_images(repositoryName=repo, imageIds=[{"imageTag": "nope"}])
        with self.assertRaises(self.ecr.exceptions.ImageNotFoundException):
            self.ecr.describe_images(repositoryName=repo,
                                     imageIds=[{"imageDigest": sha256_digest(b"nothing")}])
        with self.assertRaises(self.ecr.exceptions.ImageNotFoundException):
            self.ecr.describe_images(repositoryName=repo,
                                     imageIds=[{"imageDigest": b["digest"], "imageTag": "a"}])
        with self.assertRaises(self.ecr.exceptions.InvalidParameterException):
            self.ecr.describe_images(repositoryName=repo, imageIds=[{"imageDigest": "sha256:zz"}])
        with self.assertRaises(self.ecr.exceptions.InvalidParameterException):
            self.ecr.describe_images(repositoryName=repo, imageIds=[{"imageTag": "a"}],
                                     maxResults=5)
        with self.assertRaises(self.ecr.exceptions.RepositoryNotFoundException):
            self.ecr.describe_images(repositoryName="no/such")

    def test_list_images_has_one_entry_per_tag(self):
        repo = self.new_repo()
        a = self.base_image(repo, tag="a")
        for t in ("b", "c"):
            self.ecr.put_image(repositoryName=repo, imageManifest=a["manifest"], imageTag=t)
        u = self.base_image(repo, tag=None, layers=(b"untagged layer",))
        ids = self.ecr.list_images(repositoryName=repo)["imageIds"]
        self.assertEqual(sorted((i["imageDigest"], i.get("imageTag")) for i in ids),
                         sorted([(a["digest"], "a"), (a["digest"], "b"), (a["digest"], "c"),
                                 (u["digest"], None)]))
        # Pages may end inside an image's tags.
        seen, token = [], None
        while True:
            kw = {"nextToken": token} if token else {}
            res = self.ecr.list_images(repositoryName=repo, maxResults=2, **kw)
            self.assertLessEqual(len(res["imageIds"]), 2)
            seen += [(i["imageDigest"], i.get("imageTag")) for i in res["imageIds"]]
            token = res.get("nextToken")
            if not token:
                break
        self.assertEqual(sorted(seen), sorted((i["imageDigest"], i.get("imageTag")) for i in ids))
        self.assertEqual(len(seen), 4)
        res = self.ecr.list_images(repositoryName=repo, filter={"tagStatus": "UNTAGGED"})
        self.assertEqual(res["imageIds"], [{"imageDigest": u["digest"]}])
        res = self.ecr.list_images(repositoryName=repo, filter={"tagStatus": "TAGGED"})
        self.assertEqual(len(res["imageIds"]), 3)
        with self.assertRaises(self.raw.exceptions.InvalidParameterException):
            self.raw.list_images(repositoryName=repo, filter={"tagStatus": "SOME"})
        with self.assertRaises(self.ecr.exceptions.RepositoryNotFoundException):
            self.ecr.list_images(repositoryName="no/such")

    # -- BatchGetImage / BatchDeleteImage ---------------------------------------------
    def test_batch_get_image(self):
        repo = self.new_repo()
        a = self.base_image(repo, tag="a")
        b = self.base_image(repo, tag="b", layers=(b"bee",))
        missing = sha256_digest(b"missing")
        res = self.ecr.batch_get_image(repositoryName=repo, imageIds=[
            {"imageTag": "a"},
            {"imageDigest": b["digest"]},
            {"imageDigest": a["digest"], "imageTag": "a"},
            {"imageTag": "nope"},
            {"imageDigest": missing},
            {"imageDigest": "sha256:1234"},
            {"imageTag": "bad tag"},
            {"imageDigest": b["digest"], "imageTag": "a"},
            {},
        ])
        images = res["images"]
        self.assertEqual(len(images), 3)
        self.assertEqual(images[0], {"registryId": ACCOUNT, "repositoryName": repo,
                                     "imageId": {"imageDigest": a["digest"], "imageTag": "a"},
                                     "imageManifest": a["manifest"],
                                     "imageManifestMediaType": OCI_MANIFEST})
        self.assertEqual(images[1]["imageId"], {"imageDigest": b["digest"]})
        self.assertEqual(images[1]["imageManifest"], b["manifest"])
        codes = [(f["imageId"], f["failureCode"]) for f in res["failures"]]
        self.assertEqual(codes, [
            ({"imageTag": "nope"}, "ImageNotFound"),
            ({"imageDigest": missing}, "ImageNotFound"),
            ({"imageDigest": "sha256:1234"}, "InvalidImageDigest"),
            ({"imageTag": "bad tag"}, "InvalidImageTag"),
            ({"imageDigest": b["digest"], "imageTag": "a"}, "ImageTagDoesNotMatchDigest"),
            ({}, "MissingDigestAndTag"),
        ])
        for f in res["failures"]:
            self.assertTrue(f["failureReason"])
        # acceptedMediaTypes.
        ok = self.ecr.batch_get_image(repositoryName=repo, imageIds=[{"imageTag": "a"}],
                                      acceptedMediaTypes=[OCI_MANIFEST])
        self.assertEqual(len(ok["images"]), 1)
        no = self.ecr.batch_get_image(repositoryName=repo, imageIds=[{"imageTag": "a"}],
                                      acceptedMediaTypes=[
                                          "application/vnd.docker.distribution.manifest.v1+json"])
        self.assertEqual(no["images"], [])
        self.assertEqual(no["failures"][0]["failureCode"], "ImageNotFound")
        with self.assertRaises(self.ecr.exceptions.RepositoryNotFoundException):
            self.ecr.batch_get_image(repositoryName="no/such", imageIds=[{"imageTag": "a"}])
        with self.assertRaises(self.raw.exceptions.InvalidParameterException):
            self.raw.batch_get_image(repositoryName=repo, imageIds=[])
        with self.assertRaises(self.raw.exceptions.InvalidParameterException):
            self.raw.batch_get_image(repositoryName=repo,
                                     imageIds=[{"imageTag": "a"}] * 101)

    def test_batch_delete_image(self):
        repo = self.new_repo()
        a = self.base_image(repo, tag="a")
        self.ecr.put_image(repositoryName=repo, imageManifest=a["manifest"], imageTag="a2")
        b = self.base_image(repo, tag="b", layers=(b"bee",))
        self.ecr.put_image(repositoryName=repo, imageManifest=b["manifest"], imageTag="b2")
        child = self.base_image(repo, tag="child", layers=(b"child layer",))
        lst = self.ecr.put_image(repositoryName=repo, imageTag="list", imageManifest=index_manifest(
            [(child["digest"], len(child["manifest"]))]))["image"]["imageId"]["imageDigest"]
        # Untagging one of two tags keeps the image; the last tag takes it.
        res = self.ecr.batch_delete_image(repositoryName=repo, imageIds=[{"imageTag": "a"}])
        self.assertEqual(res["imageIds"], [{"imageDigest": a["digest"], "imageTag": "a"}])
        self.assertEqual(res["failures"], [])
        self.assertEqual(len(self.ecr.describe_images(
            repositoryName=repo, imageIds=[{"imageDigest": a["digest"]}])["imageDetails"]), 1)
        self.ecr.batch_delete_image(repositoryName=repo, imageIds=[{"imageTag": "a2"}])
        with self.assertRaises(self.ecr.exceptions.ImageNotFoundException):
            self.ecr.describe_images(repositoryName=repo, imageIds=[{"imageDigest": a["digest"]}])
        # By digest: the image and all its tags.
        res = self.ecr.batch_delete_image(repositoryName=repo, imageIds=[{"imageDigest": b["digest"]}])
        self.assertEqual(sorted(i["imageTag"] for i in res["imageIds"]), ["b", "b2"])
        st, _, _ = get_manifest(self.reg.url, repo, "b2", method="HEAD")
        self.assertEqual(st, 404)
        # A child of a list: by digest it is refused; its tag can go (the list keeps it).
        res = self.ecr.batch_delete_image(repositoryName=repo,
                                          imageIds=[{"imageDigest": child["digest"]}])
        self.assertEqual(res["imageIds"], [])
        self.assertEqual(res["failures"][0]["failureCode"], "ImageReferencedByManifestList")
        self.assertIn(lst, res["failures"][0]["failureReason"])
        res = self.ecr.batch_delete_image(repositoryName=repo, imageIds=[{"imageTag": "child"}])
        self.assertEqual(res["imageIds"], [{"imageDigest": child["digest"], "imageTag": "child"}])
        st, _, _ = get_manifest(self.reg.url, repo, child["digest"], method="HEAD")
        self.assertEqual(st, 200)
        # Failures, each in its place.
        res = self.ecr.batch_delete_image(repositoryName=repo, imageIds=[
            {"imageTag": "nope"}, {"imageDigest": sha256_digest(b"nothing")},
            {"imageDigest": "sha256:12"}, {"imageTag": "a b"}, {},
            {"imageDigest": child["digest"], "imageTag": "list"}])
        self.assertEqual([f["failureCode"] for f in res["failures"]],
                         ["ImageNotFound", "ImageNotFound", "InvalidImageDigest", "InvalidImageTag",
                          "MissingDigestAndTag", "ImageTagDoesNotMatchDigest"])
        # Once the list is gone, so can the child.
        res = self.ecr.batch_delete_image(repositoryName=repo, imageIds=[
            {"imageDigest": lst}, {"imageDigest": child["digest"]}])
        self.assertEqual(res["failures"], [])
        self.assertEqual(self.ecr.describe_images(repositoryName=repo)["imageDetails"], [])
        with self.assertRaises(self.ecr.exceptions.RepositoryNotFoundException):
            self.ecr.batch_delete_image(repositoryName="no/such", imageIds=[{"imageTag": "a"}])

    # -- policies and resource tags ------------------------------------------------
    def test_repository_policy(self):
        repo = self.new_repo()
        with self.assertRaises(self.ecr.exceptions.RepositoryPolicyNotFoundException):
            self.ecr.get_repository_policy(repositoryName=repo)
        with self.assertRaises(self.ecr.exceptions.RepositoryPolicyNotFoundException):
            self.ecr.delete_repository_policy(repositoryName=repo)
        policy = json.dumps({"Version": "2012-10-17", "Statement": [
            {"Sid": "pull", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111111111111:root"},
             "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]}]}, indent=2)
        res = self.ecr.set_repository_policy(repositoryName=repo, policyText=policy, force=True)
        self.assertEqual(res, {**res, "registryId": ACCOUNT, "repositoryName": repo,
                               "policyText": policy})
        self.assertEqual(self.ecr.get_repository_policy(repositoryName=repo)["policyText"], policy)
        for bad in ("not json", "[]", '{"Version":"2012-10-17"}'):
            with self.assertRaises(self.ecr.exceptions.InvalidParameterException, msg=bad):
                self.ecr.set_repository_policy(repositoryName=repo, policyText=bad)
        res = self.ecr.delete_repository_policy(repositoryName=repo)
        self.assertEqual(res["policyText"], policy)
        with self.assertRaises(self.ecr.exceptions.RepositoryPolicyNotFoundException):
            self.ecr.get_repository_policy(repositoryName=repo)
        for call in (lambda: self.ecr.set_repository_policy(repositoryName="no/such", policyText=policy),
                     lambda: self.ecr.get_repository_policy(repositoryName="no/such"),
                     lambda: self.ecr.delete_repository_policy(repositoryName="no/such")):
            with self.assertRaises(self.ecr.exceptions.RepositoryNotFoundException):
                call()

    def test_resource_tags(self):
        repo = self.new_repo(tags=[{"Key": "team", "Value": "a"}])
        arn = "arn:aws:ecr:%s:%s:repository/%s" % (REGION, ACCOUNT, repo)
        self.assertEqual(self.ecr.list_tags_for_resource(resourceArn=arn)["tags"],
                         [{"Key": "team", "Value": "a"}])
        self.ecr.tag_resource(resourceArn=arn, tags=[{"Key": "team", "Value": "b"},
                                                     {"Key": "env", "Value": "prod"}])
        self.assertEqual(self.ecr.list_tags_for_resource(resourceArn=arn)["tags"],
                         [{"Key": "env", "Value": "prod"}, {"Key": "team", "Value": "b"}])
        self.ecr.untag_resource(resourceArn=arn, tagKeys=["team", "absent"])
        self.assertEqual(self.ecr.list_tags_for_resource(resourceArn=arn)["tags"],
                         [{"Key": "env", "Value": "prod"}])
        with self.assertRaises(self.ecr.exceptions.TooManyTagsException):
            self.ecr.tag_resource(resourceArn=arn,
                                  tags=[{"Key": "k%d" % i, "Value": ""} for i in range(50)])
        self.assertEqual(len(self.ecr.list_tags_for_resource(resourceArn=arn)["tags"]), 1)
        with self.assertRaises(self.ecr.exceptions.InvalidTagParameterException):
            self.ecr.tag_resource(resourceArn=arn, tags=[{"Key": "aws:x", "Value": "y"}])
        with self.assertRaises(self.raw.exceptions.InvalidTagParameterException):
            self.raw.untag_resource(resourceArn=arn, tagKeys=[""])
        gone = "arn:aws:ecr:%s:%s:repository/no/such" % (REGION, ACCOUNT)
        for call in (lambda: self.ecr.tag_resource(resourceArn=gone, tags=[{"Key": "a", "Value": "b"}]),
                     lambda: self.ecr.untag_resource(resourceArn=gone, tagKeys=["a"]),
                     lambda: self.ecr.list_tags_for_resource(resourceArn=gone)):
            with self.assertRaises(self.ecr.exceptions.RepositoryNotFoundException):
                call()
        for bad in ("arn:aws:s3:::bucket", "repository/" + repo,
                    "arn:aws:ecr:eu-west-9:%s:repository/%s" % (ACCOUNT, repo)):
            with self.assertRaises(self.ecr.exceptions.InvalidParameterException, msg=bad) as cm:
                self.ecr.list_tags_for_resource(resourceArn=bad)
            self.assertIn("resourceArn", str(cm.exception))

    # -- the protocol itself ---------------------------------------------------------
    def test_protocol_errors(self):
        st, h, body = self.call_raw(TARGET_PREFIX + "NoSuchOperation", b"{}")
        self.assertEqual(st, 400)
        self.assertEqual(body["__type"], "UnknownOperationException")
        self.assertEqual(h.get("Content-Type"), JSON_TYPE)
        st, _, body = self.call_raw(None, b"{}")
        self.assertEqual((st, body["__type"]), (400, "UnknownOperationException"))
        for bad in (b"{", b"[]", b'"x"', b"{\"repositoryName\":}"):
            st, _, body = self.call_raw(TARGET_PREFIX + "DescribeRepositories", bad)
            self.assertEqual((st, body["__type"]), (400, "SerializationException"), bad)
            self.assertTrue(body["message"])
        st, _, body = self.call_raw(TARGET_PREFIX + "DescribeRepositories", b"{}", "text/plain")
        self.assertEqual((st, body["__type"]), (400, "SerializationException"))
        st, _, body = self.call_raw(TARGET_PREFIX + "DescribeImages", b"{}")
        self.assertEqual((st, body["__type"]), (400, "InvalidParameterException"))
        self.assertIn("repositoryName", body["message"])
        st, _, body = self.call_raw(TARGET_PREFIX + "ListImages",
                                    b'{"repositoryName":"a/b","maxResults":"many"}')
        self.assertEqual(body["__type"], "InvalidParameterException")
        self.assertIn("maxResults", body["message"])
        # Empty input is {}; every answer carries a request id.
        st, h, body = self.call_raw(TARGET_PREFIX + "DescribeRepositories", b"")
        self.assertEqual(st, 200)
        self.assertIn("repositories", body)
        self.assertTrue(h.get("x-amzn-RequestId"))
        # boto3 reports an unknown code by name.
        with self.assertRaises(ClientError) as cm:
            self.ecr._make_api_call("DescribeRegistry", {})
        self.assertEqual(error_code(cm), "UnknownOperationException")
        # /v2 keeps working on the same listener.
        st, h, _ = http("GET", self.reg.url + "/v2/")
        self.assertEqual(st, 200)

    def test_v2_missing_repository_uses_ecr_wording(self):
        st, _, body = http("GET", "%s/v2/no/such-repo/tags/list" % self.reg.url)
        self.assertEqual(st, 404)
        err = json_error_list(body)[0]
        self.assertEqual(err["code"], "NAME_UNKNOWN")
        self.assertEqual(err["message"], "The repository with name 'no/such-repo' does not exist "
                                         "in the registry with id '%s'" % ACCOUNT)

    def test_zz_every_operation_and_exception_was_checked(self):
        # Runs last (unittest sorts by name): the class as a whole reached every
        # operation and every documented exception, each answer checked against the model.
        ops = set(self.checker.checked) | set(self.raw_checker.checked)
        if len(ops) < 10:
            self.skipTest("only meaningful when the whole class runs")
        served = {"GetAuthorizationToken", "CreateRepository", "DescribeRepositories",
                  "DeleteRepository", "PutImageTagMutability", "DescribeImages", "ListImages",
                  "BatchGetImage", "PutImage", "BatchDeleteImage", "BatchCheckLayerAvailability",
                  "InitiateLayerUpload", "UploadLayerPart", "CompleteLayerUpload",
                  "GetDownloadUrlForLayer", "SetRepositoryPolicy", "GetRepositoryPolicy",
                  "DeleteRepositoryPolicy", "TagResource", "UntagResource", "ListTagsForResource"}
        self.assertEqual(served - ops, set())
        errors = self.checker.errors_seen | self.raw_checker.errors_seen
        documented = {"RepositoryNotFoundException", "RepositoryAlreadyExistsException",
                      "InvalidParameterException", "InvalidTagParameterException",
                      "TooManyTagsException", "RepositoryNotEmptyException",
                      "ImageNotFoundException", "ImageAlreadyExistsException",
                      "ImageTagAlreadyExistsException", "ImageDigestDoesNotMatchException",
                      "LayersNotFoundException", "ReferencedImagesNotFoundException",
                      "RepositoryPolicyNotFoundException", "InvalidLayerPartException",
                      "UploadNotFoundException", "InvalidLayerException",
                      "LayerAlreadyExistsException", "EmptyUploadException",
                      "UnknownOperationException"}
        self.assertEqual(documented - errors, set())

    def test_responses_matched_the_model(self):
        # A sanity check of the checker itself: it rejects what the model forbids.
        model = self.ecr.meta.service_model
        out = model.operation_model("DescribeRepositories").output_shape
        validate_shape(out, {"repositories": []})
        for bad in ({"repositories": [{"imageTagMutability": "SOMETIMES"}]},
                    {"repositories": [{"createdAt": "yesterday"}]},
                    {"repositories": [{"registryId": "12"}]},
                    {"unknown": 1}):
            with self.assertRaises(ShapeError, msg=bad):
                validate_shape(out, bad)
        with self.assertRaises(ShapeError):
            validate_shape(model.shape_for("Tag"), {"Key": "k"})  # Value is required


@skip_unless_berth
class EcrPaginationTest(RegistryTestCase):
    """2,500 images in one repository: every listing pages through all of them."""

    COUNT = 2500

    @classmethod
    def setUpClass(cls):
        cls.reg = cls.start_class_registry(create_on_push=False)
        cls.ecr, cls.checker = make_client(cls.reg.url)
        cls.repo = "bulk/images"
        cls.ecr.create_repository(repositoryName=cls.repo)
        # One config and one layer, pushed once; 2,500 small distinct manifests.
        config = b'{"architecture":"amd64","os":"linux"}'
        cfg = (push_layer(cls.ecr, cls.repo, config), len(config))
        layer = (push_layer(cls.ecr, cls.repo, b"the shared layer"), 16)
        cls.expected_entries = set()  # (digest, tag or None)
        cls.untagged = set()
        cls.digests = set()

        def put(i):
            text = image_manifest(cfg, [layer], annotations={"n": str(i)})
            tags = [] if i % 3 == 0 else ["t%04d" % i] if i % 3 == 1 else ["t%04d" % i, "u%04d" % i]
            kw = {"imageTag": tags[0]} if tags else {}
            res = cls.ecr.put_image(repositoryName=cls.repo, imageManifest=text, **kw)
            digest = res["image"]["imageId"]["imageDigest"]
            for t in tags[1:]:
                cls.ecr.put_image(repositoryName=cls.repo, imageManifest=text, imageTag=t)
            return digest, tags

        start = time.time()
        with ThreadPoolExecutor(max_workers=8) as pool:
            for digest, tags in pool.map(put, range(cls.COUNT)):
                cls.digests.add(digest)
                if tags:
                    cls.expected_entries.update((digest, t) for t in tags)
                else:
                    cls.untagged.add(digest)
                    cls.expected_entries.add((digest, None))
        cls.push_seconds = time.time() - start

    def test_pushed(self):
        self.assertEqual(len(self.digests), self.COUNT)
        self.assertEqual(len(self.untagged), 834)
        self.assertLess(self.push_seconds, 300)

    def test_describe_images_pages(self):
        for page_size, want_pages in ((1000, 3), (100, 25)):
            seen, pages, token = [], 0, None
            while True:
                kw = {"nextToken": token} if token else {}
                res = self.ecr.describe_images(repositoryName=self.repo, maxResults=page_size, **kw)
                self.assertLessEqual(len(res["imageDetails"]), page_size)
                seen += [d["imageDigest"] for d in res["imageDetails"]]
                pages += 1
                token = res.get("nextToken")
                if not token:
                    break
            self.assertEqual(pages, want_pages, page_size)
            self.assertEqual(len(seen), self.COUNT)
            self.assertEqual(set(seen), self.digests)
        # Default page size (100) through boto3's paginator, filtered.
        pag = self.ecr.get_paginator("describe_images")
        untagged = [d for p in pag.paginate(repositoryName=self.repo,
                                            filter={"tagStatus": "UNTAGGED"})
                    for d in p["imageDetails"]]
        self.assertEqual({d["imageDigest"] for d in untagged}, self.untagged)
        for d in untagged:
            self.assertEqual(d["imageSizeInBytes"], 16)
            self.assertNotIn("imageTags", d)

    def test_list_images_pages(self):
        total = len(self.expected_entries)
        self.assertEqual(total, 834 + 833 + 2 * 833)
        for page_size in (1000, 7):
            seen, token = [], None
            while True:
                kw = {"nextToken": token} if token else {}
                res = self.ecr.list_images(repositoryName=self.repo, maxResults=page_size, **kw)
                self.assertLessEqual(len(res["imageIds"]), page_size)
                if res.get("nextToken"):
                    self.assertEqual(len(res["imageIds"]), page_size)
                seen += [(i["imageDigest"], i.get("imageTag")) for i in res["imageIds"]]
                token = res.get("nextToken")
                if not token:
                    break
            self.assertEqual(len(seen), total, page_size)
            self.assertEqual(set(seen), self.expected_entries)
        pag = self.ecr.get_paginator("list_images")
        tagged = [i for p in pag.paginate(repositoryName=self.repo, filter={"tagStatus": "TAGGED"})
                  for i in p["imageIds"]]
        self.assertEqual(len(tagged), 833 * 3)
        self.assertTrue(all("imageTag" in i for i in tagged))

    def test_tokens_belong_to_their_listing(self):
        res = self.ecr.list_images(repositoryName=self.repo, maxResults=10)
        token = res["nextToken"]
        with self.assertRaises(self.ecr.exceptions.InvalidParameterException):
            self.ecr.describe_images(repositoryName=self.repo, nextToken=token)
        with self.assertRaises(self.ecr.exceptions.InvalidParameterException):
            self.ecr.list_images(repositoryName=self.repo, nextToken=token,
                                 filter={"tagStatus": "TAGGED"})


if __name__ == "__main__":
    unittest.main()
