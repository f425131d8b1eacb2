"""An interrupted `berth copy` of a 1 GiB layer resumes where it stopped: the test
kills the client mid-upload with SIGKILL, runs it again, and checks from the
server's metrics that the bytes already accepted were not sent again."""

import hashlib
import json
import os
import signal
import subprocess
import tarfile
import unittest

from client_helpers import EXIT_OK, berth, berth_env, describe, upload_state_offset
from harness import (Clients, RegistryTestCase, berth_bin, skopeo_raw, skip_unless_berth,
                     wait_for)

GIB = 1 << 30
OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"


def write_blob(blobs, data):
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobs, digest), "wb") as f:
        f.write(data)
    return "sha256:" + digest, len(data)


def big_layout(root, size):
    """An OCI layout whose single layer is an uncompressed tar holding `size` bytes of
    pseudo-random data, written and hashed in a stream (never in memory)."""
    blobs = os.path.join(root, "blobs", "sha256")
    os.makedirs(blobs)
    tmp = os.path.join(root, "layer.tmp")
    h = hashlib.sha256()
    with open(tmp, "wb") as f:
        info = tarfile.TarInfo("big.bin")
        info.size = size
        info.mode = 0o644
        header = info.tobuf(format=tarfile.PAX_FORMAT)
        f.write(header)
        h.update(header)
        chunk = os.urandom(1 << 20)
        written = 0
        i = 0
        while written < size:
            # Vary every MiB so the layer does not compress or dedupe to nothing.
            piece = i.to_bytes(8, "little") + chunk[8:]
            piece = piece[:size - written]
            f.write(piece)
            h.update(piece)
            written += len(piece)
            i += 1
        pad = (512 - size % 512) % 512 + 1024  # tar padding + two zero blocks
        f.write(b"\0" * pad)
        h.update(b"\0" * pad)
        layer_size = f.tell()
    layer_digest = "sha256:" + h.hexdigest()
    os.rename(tmp, os.path.join(blobs, h.hexdigest()))
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
                         "config": {}}).encode()
    cdigest, csize = write_blob(blobs, config)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": cdigest, "size": csize},
        "layers": [{"mediaType": OCI_LAYER_TAR, "digest": layer_digest,
                    "size": layer_size}]}).encode()
    mdigest, msize = write_blob(blobs, manifest)
    with open(os.path.join(root, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": mdigest,
            "size": msize, "annotations": {"org.opencontainers.image.ref.name": "big"}}]}, f)
    with open(os.path.join(root, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion":"1.0.0"}')
    return mdigest, layer_size


@skip_unless_berth
class ResumeTest(RegistryTestCase):
    def test_interrupted_1gib_layer_copy_resumes_without_resending(self):
        reg = self.start_registry(create_on_push=True)
        tmp = self.make_tmpdir()
        clients = Clients(tmp)
        env = berth_env(clients)
        layout = os.path.join(tmp, "big")
        digest, layer_size = big_layout(layout, GIB)
        ref = "oci:%s:big" % layout
        dst = "docker://%s/resume:v1" % reg.host
        chunk = 16 << 20

        def received():
            return sum(reg.metric_values("berth_http_received_bytes_total").values())

        state_dir = os.path.join(env["XDG_CACHE_HOME"], "berth", "uploads")

        before = received()
        proc = subprocess.Popen([berth_bin(), "copy", "--chunk-size", "16", "--limit-rate", "100",
                                 ref, dst], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            wait_for(lambda: upload_state_offset(state_dir) >= 256 << 20, timeout=120,
                     message="256 MiB uploaded")
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        first = received() - before
        self.assertGreaterEqual(first, 256 << 20)
        self.assertLess(first, layer_size, "the first run must not have finished")

        res = berth(env, "copy", "--chunk-size", "16", ref, dst)
        self.assertEqual(res.returncode, EXIT_OK, describe(res))
        self.assertEqual(res.stdout.strip(), digest)
        second = received() - before - first
        # The second run sends only what the registry did not have (at most one chunk
        # more, plus config and manifest), never the whole layer again.
        self.assertLess(second, layer_size - first + chunk + (64 << 10),
                        "first run %d bytes, second %d, layer %d" % (first, second, layer_size))
        self.assertEqual(os.listdir(state_dir), [])
        raw, got = skopeo_raw(clients, "%s/resume:v1" % reg.host)
        self.assertEqual(got, digest)
        print("resume: layer %d bytes, first run sent %d, second %d"
              % (layer_size, first, second))


if __name__ == "__main__":
    unittest.main()
