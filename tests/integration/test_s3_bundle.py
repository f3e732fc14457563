"""s3_export and s3_import through ansible-playbook: the air-gap path between two SeaweedFS endpoints."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid

import pytest

from tests.integration.test_s3_sync import EDGE_KEYS, MIB, contents, put_multipart

pytestmark = pytest.mark.integration
# Edge keys, multipart ETags, Content-MD5 refusal, listings and round trips: on both S3 servers.
S3_IMPLEMENTATIONS = ("seaweedfs", "minio")


def location(server, bucket, prefix=None):
    found = dict(endpoint_url=server.endpoint_url, access_key=server.access_key, secret_key=server.secret_key,
                 bucket=bucket)
    return dict(found, prefix=prefix) if prefix is not None else found


def export_play(server, bucket, dest, prefix=None, **options):
    args = dict(source=location(server, bucket, prefix), dest=dest, **options)
    return [{"name": "export", "hosts": "source", "gather_facts": False,
             "tasks": [{"name": "export", "mlops.migration.s3_export": args}]}]


def import_play(server, src, bucket, prefix=None, **options):
    args = dict(target=location(server, bucket, prefix), src=src, **options)
    return [{"name": "import", "hosts": "target", "gather_facts": False,
             "tasks": [{"name": "import", "mlops.migration.s3_import": args}]}]


@pytest.fixture
def seeded(s3_pair, ssh_stack):
    bucket = f"x-{uuid.uuid4().hex[:10]}"
    client = s3_pair["source"].client()
    client.create_bucket(Bucket=bucket)
    for key, data in EDGE_KEYS.items():
        client.put_object(Bucket=bucket, Key="exp/" + key, Body=data)
    put_multipart(client, bucket, "exp/models/multi.pt", [os.urandom(5 * MIB), os.urandom(5 * MIB), b"end"])
    client.put_object(Bucket=bucket, Key="not-exported.txt", Body=b"outside the prefix")
    dest = os.path.join(ssh_stack["ssh"]["source"].root, f"bundle-{bucket}")
    return bucket, client, dest


def test_export_archive_import_round_trip(playbook, s3_pair, ssh_stack, seeded):
    bucket, client, dest = seeded
    source, target = s3_pair["source"], s3_pair["target"]

    checked = playbook(export_play(source, bucket, dest, prefix="exp/", archive="zip"), check=True)
    assert checked.task("export")["result"]["copied"] == 7 and not os.path.exists(dest)

    first = playbook(export_play(source, bucket, dest, prefix="exp/", archive="zip"))
    result = first.task("export")["result"]
    assert (result["found"], result["copied"], result["verified"], result["already_present"]) == (8, 7, 7, 1)
    assert os.path.isdir(os.path.join(dest, "objects", "marker-dir"))
    check = subprocess.run(["md5sum", "-c", "--quiet", "../MD5SUMS"], cwd=os.path.join(dest, "objects"),
                           capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout
    with open(result["archive"], "rb") as handle:
        assert hashlib.md5(handle.read()).hexdigest() == result["archive_md5"]

    again = playbook(export_play(source, bucket, dest, prefix="exp/", archive="zip"))
    assert again.task("export")["result"]["changed"] is False

    # carry the archive to the target host (same machine here) and import it
    landing = os.path.join(ssh_stack["ssh"]["target"].root, os.path.basename(result["archive"]))
    with open(result["archive"], "rb") as src_handle, open(landing, "wb") as out:
        out.write(src_handle.read())
    new_bucket = bucket + "-in"
    imported = playbook(import_play(target, landing, new_bucket, prefix="imp/", create_bucket=True))
    res = imported.task("import")["result"]
    assert (res["copied"], res["verified"], res["failed_count"]) == (8, 8, 0)
    tclient = target.client()
    assert contents(tclient, new_bucket, "imp/") == contents(client, bucket, "exp/")
    assert tclient.head_object(Bucket=new_bucket, Key="imp/marker-dir/")["ContentLength"] == 0

    rerun = playbook(import_play(target, landing, new_bucket, prefix="imp/"))
    assert (rerun.task("import")["result"]["changed"], rerun.task("import")["result"]["already_present"]) == (False, 8)


def test_corrupt_bundle_is_refused_before_any_upload(playbook, s3_pair, seeded):
    bucket, _client, dest = seeded
    playbook(export_play(s3_pair["source"], bucket, dest, prefix="exp/"))
    with open(os.path.join(dest, "objects", "plain.txt"), "ab") as handle:
        handle.write(b" tampered")
    os.unlink(os.path.join(dest, "objects", "zero-byte"))
    target_bucket = bucket + "-refused"
    s3_pair["target"].client().create_bucket(Bucket=target_bucket)
    run = playbook(import_play(s3_pair["target"], dest, target_bucket), expect_rc=2)
    msg = run.task("import")["result"]["msg"]
    assert "nothing was uploaded" in msg and "plain.txt" in msg and "zero-byte" in msg
    assert contents(s3_pair["target"].client(), target_bucket) == {}


def test_a_large_file_is_read_once_and_a_tampered_one_leaves_nothing_visible(playbook, s3_pair, seeded):
    bucket, client, dest = seeded
    put_multipart(client, bucket, "exp/models/large.pt", [os.urandom(10 * MIB), os.urandom(10 * MIB)])  # over 16 MiB
    playbook(export_play(s3_pair["source"], bucket, dest, prefix="exp/"))
    large = os.path.join(dest, "objects", "models", "large.pt")
    with open(large, "r+b") as handle:  # one byte changed in place: the size still matches the manifest
        handle.seek(15 * MIB)
        byte = handle.read(1)
        handle.seek(15 * MIB)
        handle.write(bytes([byte[0] ^ 0xFF]))
    target, target_bucket = s3_pair["target"].client(), bucket + "-once"
    target.create_bucket(Bucket=target_bucket)
    run = playbook(import_play(s3_pair["target"], dest, target_bucket), expect_rc=2)
    msg = run.task("import")["result"]["msg"]
    assert "models/large.pt was not imported, so nothing was" in msg and "content gives ETag" in msg, msg
    assert contents(target, target_bucket) == {}
    assert target.list_multipart_uploads(Bucket=target_bucket).get("Uploads", []) == []

    with open(large, "r+b") as handle:  # put the byte back: the import goes through, the large file read once
        handle.seek(15 * MIB)
        handle.write(byte)
    done = playbook(import_play(s3_pair["target"], dest, target_bucket)).task("import")["result"]
    assert (done["read_once"], done["copied"], done["failed_count"]) == (1, 9, 0)
    assert contents(target, target_bucket) == contents(client, bucket, "exp/")


def test_corrupt_archive_is_refused(playbook, s3_pair, seeded, tmp_path):
    bad = tmp_path / "bundle.tar.gz"
    bad.write_bytes(b"\x1f\x8b\x08\x00 this is not a gzip stream")
    run = playbook(import_play(s3_pair["target"], str(bad), "whatever-bucket"), expect_rc=2)
    assert run.task("import")["result"]["msg"].startswith(f"cannot read the bundle archive {bad}")


def test_missing_bucket_is_named(playbook, s3_pair, seeded):
    _bucket, _client, dest = seeded
    run = playbook(export_play(s3_pair["source"], "no-such-bucket-x", dest), expect_rc=2)
    assert run.task("export")["result"]["msg"] == \
        f"bucket no-such-bucket-x does not exist at {s3_pair['source'].endpoint_url}"
    assert not os.path.exists(dest)


def test_killed_export_resumes(playbook, s3_pair, seeded, tmp_path):
    bucket, client, dest = seeded
    for i in range(10):
        put_multipart(client, bucket, f"big/m{i}.pt", [os.urandom(5 * MIB), os.urandom(MIB)])
    info = s3_pair["source"].describe()
    script = tmp_path / "export.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {os.path.join(os.getcwd(), ".build", "collections")!r})
        from ansible_collections.mlops.migration.plugins.module_utils.s3.connection import Endpoint, Location
        from ansible_collections.mlops.migration.plugins.module_utils.s3.bundle import export_bucket
        e = Endpoint({info["endpoint_url"]!r}, {info["access_key"]!r}, {info["secret_key"]!r})
        export_bucket(Location(e.client(), e, {bucket!r}, "big/"), {dest!r}, parallel=1)
    """))
    proc = subprocess.Popen([sys.executable, str(script)])  # pylint: disable=consider-using-with
    objects = os.path.join(dest, "objects")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len([f for f in os.listdir(objects) if f.endswith(".pt")]
                                              if os.path.isdir(objects) else []) < 3:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len([f for f in os.listdir(objects) if f.endswith(".pt")])
    assert 3 <= done < 10

    resumed = playbook(export_play(s3_pair["source"], bucket, dest, prefix="big/"))
    result = resumed.task("export")["result"]
    assert (result["copied"], result["already_present"]) == (10 - done, done)
    assert sorted(f for f in os.listdir(objects)) == [f"m{i}.pt" for i in range(10)]


def test_imported_objects_are_recognised_by_s3_sync(playbook, s3_pair, ssh_stack, seeded):
    """After export and import, s3_sync sees every object (multipart ones too) as already there."""
    bucket, _client, dest = seeded
    playbook(export_play(s3_pair["source"], bucket, dest, prefix="exp/"))
    playbook(import_play(s3_pair["target"], dest, bucket + "-again", prefix="exp/", create_bucket=True))
    conn = {side: location(s, bucket if side == "source" else bucket + "-again", "exp/")
            for side, s in s3_pair.items()}
    compare = [{"name": "compare", "hosts": "source", "gather_facts": False, "tasks": [
        {"name": "compare", "mlops.migration.s3_sync": conn}]}]
    result = playbook(compare, check=True).task("compare")["result"]
    assert (result["found"], result["copied"], result["already_present"]) == (8, 0, 8)


@pytest.fixture
def tiny_disk(tmp_path):
    """A 1 MiB tmpfs to export into; mounting needs root and CAP_SYS_ADMIN."""
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)],
                             capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill up here ({mounted.stderr.strip()}); "
                    "the disk-full message is built in s3_bundle.download")
    yield str(mount_point)
    subprocess.run(["umount", str(mount_point)], check=False)


def test_disk_full_on_export_is_clear_and_marks_nothing_done(playbook, s3_pair, seeded, tiny_disk):
    bucket, client, _dest = seeded
    for i in range(3):
        client.put_object(Bucket=bucket, Key=f"full/part{i}.bin", Body=os.urandom(700 * 1024))
    dest = os.path.join(tiny_disk, "bundle")
    run = playbook(export_play(s3_pair["source"], bucket, dest, prefix="full/", parallel=1), expect_rc=2)
    msg = run.task("export")["result"]["msg"]
    assert "disk full" in msg or "No space left" in msg, msg
    leftovers = [name for base, _dirs, files in os.walk(dest) for name in files if name.endswith(".part")]
    assert leftovers == []
    manifest = os.path.join(dest, "MD5SUMS")
    if os.path.exists(manifest):  # whatever is listed was downloaded completely and checked
        with open(manifest, encoding="utf-8") as handle:
            for line in handle:
                md5_hex, name = line.rstrip("\n").split("  ", 1)
                with open(os.path.join(dest, "objects", name), "rb") as data:
                    assert hashlib.md5(data.read()).hexdigest() == md5_hex


def rewrite_info(bundle, change, line="rehash"):
    """Edit export.json; its line in MD5SUMS is rehashed (as someone covering their tracks would), kept or dropped."""
    path = os.path.join(bundle, "export.json")
    with open(path, encoding="utf-8") as handle:
        info = json.load(handle)
    change(info)
    text = json.dumps(info)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    manifest = os.path.join(bundle, "MD5SUMS")
    if line == "keep":
        return
    with open(manifest, encoding="utf-8") as handle:
        lines = [entry for entry in handle if not entry.rstrip("\n").endswith("  ../export.json")]
    if line == "rehash":
        lines.append(f"{hashlib.md5(text.encode()).hexdigest()}  ../export.json\n")
    with open(manifest, "w", encoding="utf-8") as handle:
        handle.writelines(lines)


@pytest.mark.parametrize("tamper,complaint", [
    (lambda info: info["markers"].append("../../escaped/"), "'../../escaped/', which cannot be imported"),
    (lambda info: info["etags"].update({"plain.txt": '"0123456789abcdef0123456789abcdef"\r\nx-amz-acl: public'}),
     "which is not an S3 ETag"),
    (lambda info: info.update(prefix="edited/"), "export.json does not match its md5 in MD5SUMS"),
    ("uncovered", "does not cover export.json"),
])
def test_an_edited_export_json_is_refused_before_any_upload(playbook, s3_pair, seeded, tamper, complaint):
    bucket, _client, dest = seeded
    playbook(export_play(s3_pair["source"], bucket, dest, prefix="exp/"))
    with open(os.path.join(dest, "MD5SUMS"), encoding="utf-8") as handle:
        assert "  ../export.json\n" in handle.read()
    checked = subprocess.run(["md5sum", "-c", "--quiet", "../MD5SUMS"], cwd=os.path.join(dest, "objects"),
                             capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr  # md5sum alone checks export.json too
    if tamper == "uncovered":
        rewrite_info(dest, lambda info: None, line="drop")
    else:
        rewrite_info(dest, tamper, line="keep" if "md5 in MD5SUMS" in complaint else "rehash")
    target_bucket = bucket + "-tampered"
    s3_pair["target"].client().create_bucket(Bucket=target_bucket)
    run = playbook(import_play(s3_pair["target"], dest, target_bucket), expect_rc=2)
    msg = run.task("import")["result"]["msg"]
    assert complaint in msg and "nothing was uploaded" in msg
    assert contents(s3_pair["target"].client(), target_bucket) == {}


def test_keys_no_file_system_can_hold_fail_one_by_one_and_the_rest_exports(playbook, s3_pair, ssh_stack):
    bucket = f"fs-{uuid.uuid4().hex[:10]}"
    client = s3_pair["source"].client()
    client.create_bucket(Bucket=bucket)
    fine = {"ok/a.txt": b"a", "ok/b.txt": b"b", "clash": b"a file"}
    for key, data in fine.items():
        client.put_object(Bucket=bucket, Key=key, Body=data)
    awkward = {}  # each server refuses some of these itself (SeaweedFS: clash/, MinIO: content-dir/)
    for key, data, complaint in (("clash/", b"", "is a file"),
                                 ("long/" + "x" * 252, b"too long with .part", "file names hold at most 250"),
                                 ("content-dir/", b"bytes under a marker's name", "ends in '/' but holds")):
        try:
            client.put_object(Bucket=bucket, Key=key, Body=data)
        except Exception:  # pylint: disable=broad-except
            continue
        if client.head_object(Bucket=bucket, Key=key)["ContentLength"] == len(data):
            awkward[key] = complaint
        else:  # kept as something else (SeaweedFS makes content-dir/ an empty directory): an ordinary marker
            fine[key] = b""
    assert awkward, "the server took none of the awkward keys"
    dest = os.path.join(ssh_stack["ssh"]["source"].root, f"bundle-{bucket}")
    run = playbook(export_play(s3_pair["source"], bucket, dest), expect_rc=2)
    result = run.task("export")["result"]
    failed = {f["key"]: f["reason"] for f in result["failures"]}
    assert result["found"] == len(fine) + len(awkward) and set(failed) == set(awkward)
    assert all(complaint in failed[key] for key, complaint in awkward.items()), failed
    with open(os.path.join(dest, "MD5SUMS"), encoding="utf-8") as handle:
        listed = {line.split("  ", 1)[1].rstrip("\n") for line in handle}
    assert listed == {k for k in fine if not k.endswith("/")} | {"../export.json"}  # the rest, and the manifest


def rehash_md5(bundle, rel):
    """Put a file's new md5 in MD5SUMS, as someone who edited it and covered their tracks would."""
    with open(os.path.join(bundle, "objects", rel), "rb") as handle:
        digest = hashlib.md5(handle.read()).hexdigest()
    manifest = os.path.join(bundle, "MD5SUMS")
    with open(manifest, encoding="utf-8") as handle:
        lines = [f"{digest}  {rel}\n" if line.rstrip("\n").endswith(f"  {rel}") else line for line in handle]
    with open(manifest, "w", encoding="utf-8") as handle:
        handle.writelines(lines)


def reseal(bundle):
    """Recompute SHA256SUMS over the bundle as it is now (sha256sum itself), as a forger without the key could."""
    names = sorted(os.path.relpath(os.path.join(d, n), bundle) for d, _s, ns in os.walk(bundle) for n in ns
                   if not n.startswith("SHA256SUMS"))
    sums = subprocess.run(["sha256sum", "--", *names], cwd=bundle, capture_output=True, text=True, check=True).stdout
    with open(os.path.join(bundle, "SHA256SUMS"), "w", encoding="utf-8") as handle:
        handle.write(sums)


KEY = {"algorithm": "hmac-sha256", "key": "the-air-gap-secret"}


def test_a_signed_bundle_edited_anywhere_is_refused_before_any_write(playbook, s3_pair, seeded):
    bucket, _client, dest = seeded
    exported = playbook(export_play(s3_pair["source"], bucket, dest, prefix="exp/", sign=KEY))
    assert exported.task("export")["result"]["changed"]
    checked = subprocess.run(["sha256sum", "-c", "--quiet", "SHA256SUMS"], cwd=dest, capture_output=True, text=True,
                             check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr  # sha256sum alone checks the seal
    with open(os.path.join(dest, "SHA256SUMS"), encoding="utf-8") as handle:
        sealed = handle.read()
    assert "  MD5SUMS\n" in sealed and "  export.json\n" in sealed and "  objects/plain.txt\n" in sealed
    assert json.load(open(os.path.join(dest, "SHA256SUMS.sig"), encoding="utf-8"))["algorithm"] == "hmac-sha256"
    again = playbook(export_play(s3_pair["source"], bucket, dest, prefix="exp/", sign=KEY))
    assert again.task("export")["result"]["changed"] is False

    target = s3_pair["target"].client()
    target_bucket = bucket + "-signed"
    target.create_bucket(Bucket=target_bucket)
    wrong = playbook(import_play(s3_pair["target"], dest, target_bucket, verify=dict(KEY, key="another")), expect_rc=2)
    assert "signature" in wrong.task("import")["result"]["msg"] and "refused before any write" in \
        wrong.task("import")["result"]["msg"]

    # a file edited and its md5 recomputed: the md5 manifest agrees, the seal does not
    with open(os.path.join(dest, "objects", "plain.txt"), "ab") as handle:
        handle.write(b" edited")
    rehash_md5(dest, "plain.txt")
    edited = playbook(import_play(s3_pair["target"], dest, target_bucket), expect_rc=2).task("import")["result"]["msg"]
    assert "does not match its SHA256SUMS" in edited and "objects/plain.txt" in edited, edited
    # ... and the seal recomputed too: only the signature tells
    reseal(dest)
    unsigned = playbook(import_play(s3_pair["target"], dest, target_bucket))  # no key: a consistent bundle passes
    assert unsigned.task("import")["result"]["failed_count"] == 0 and unsigned.task("import")["result"]["copied"] > 0
    target_bucket2 = bucket + "-signed2"
    target.create_bucket(Bucket=target_bucket2)
    forged = playbook(import_play(s3_pair["target"], dest, target_bucket2, verify=KEY), expect_rc=2)
    msg = forged.task("import")["result"]["msg"]
    assert "does not match its manifest: it was altered after signing" in msg and "refused before any write" in msg
    assert contents(target, target_bucket2) == {}

    # the signature removed: a check with the key requires one
    os.unlink(os.path.join(dest, "SHA256SUMS.sig"))
    stripped = playbook(import_play(s3_pair["target"], dest, target_bucket2, verify=KEY), expect_rc=2)
    assert "is not signed, and a signature is required" in stripped.task("import")["result"]["msg"]
    assert contents(target, target_bucket2) == {}

    # signed again as exported (the edit is the source's now): accepted with the key
    playbook(export_play(s3_pair["source"], bucket, dest, prefix="exp/", sign=KEY))
    accepted = playbook(import_play(s3_pair["target"], dest, target_bucket2, verify=KEY)).task("import")["result"]
    assert accepted["failed_count"] == 0 and contents(target, target_bucket2) == contents(s3_pair["source"].client(), bucket, "exp/")
