"""Object-store clients side by side: the measurements behind datamanifest/io's choices.

Usage: python bench/object_clients.py [--size-mib 64] [--repeat 3] [--only s3,az,gs,fork]

Starts the loopback emulators the test suite uses (moto's S3 server, Azurite, the GCS
emulator; :mod:`datamanifest.testing.servers`), puts one random object of SIZE MiB in each,
and measures, best of N:

* a streamed GET of the whole object: boto3 (``iter_chunks``), gcsfs/adlfs (fsspec, 8 MiB
  reads) and obstore (``get().stream()``);
* 256 ranged reads of 64 KiB spread over the object: boto3 one after the other, obstore's
  ``get_ranges`` (concurrent);
* what each client can express: a conditional PUT (``If-None-Match: *`` and ``If-Match``
  an ETag, the append commit point and lock), a conditional DELETE (the lock's release),
  a listing with version ids (tree manifests of versioned buckets);
* obstore in a process forked after the parent used it (fetch forks its workers).

The figures are quoted in ``design/2026-12-03-package-map.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from datamanifest.testing import servers  # noqa: E402

RANGES = 256
RANGE = 64 * 1024


def timed(fn, repeat: int) -> tuple[float, float]:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times), statistics.median(times)


#: seconds one case may take before it is reported as hung and left behind (--limit)
LIMIT = 120.0


def limited(fn):
    """``fn()``'s result, or the text ``hung: no answer within LIMIT s`` when it does not
    return in time (it runs on a daemon thread, left behind: a hung client cannot be
    interrupted, and the process ends with os._exit)."""
    out: list = []
    t = threading.Thread(target=lambda: out.append(_catch(fn)), daemon=True)
    t.start()
    t.join(LIMIT)
    if t.is_alive():
        return f"hung: no answer within {LIMIT:.0f} s (left behind)"
    result = out[0]
    if isinstance(result, BaseException):
        return f"failed: {type(result).__name__}: {str(result).splitlines()[0][:70]}"
    return result


def _catch(fn):
    try:
        return fn()
    except Exception as e:  # noqa: BLE001 - reported as the case's result
        return e


def show(label: str, value, size: int | None = None) -> None:
    if isinstance(value, tuple):
        rate = f"  ({size / 1e6 / value[0]:.0f} MB/s)" if size else ""
        value = f"best {value[0]:.3f} s, median {value[1]:.3f} s{rate}"
    print(f"{label:48} {value}", flush=True)


def drain_obstore(store, key: str, size: int) -> None:
    import obstore

    n = 0
    for chunk in obstore.get(store, key).stream(min_chunk_size=1 << 20):
        n += len(chunk)
    assert n == size, n


def drain_file(f, size: int) -> None:
    n = 0
    while chunk := f.read(8 << 20):
        n += len(chunk)
    f.close()
    assert n == size, n


def conditional(store, label: str) -> None:
    """What a conditional PUT does on this store (obstore's PutMode)."""
    import obstore

    first = obstore.put(store, "root.json", b"1", mode="create")
    try:
        obstore.put(store, "root.json", b"2", mode="create")
        show(f"{label}: obstore PUT If-None-Match: *", "NOT honoured")
    except Exception as e:  # noqa: BLE001 - the error class is the answer
        show(f"{label}: obstore PUT If-None-Match: *", f"refused ({type(e).__name__})")
    try:
        obstore.put(store, "root.json", b"3", mode={"e_tag": first["e_tag"]})
        try:
            obstore.put(store, "root.json", b"4", mode={"e_tag": first["e_tag"]})
            show(f"{label}: obstore PUT If-Match", "NOT honoured")
        except Exception as e:  # noqa: BLE001
            show(f"{label}: obstore PUT If-Match", f"refused when stale ({type(e).__name__})")
    except Exception as e:  # noqa: BLE001
        show(f"{label}: obstore PUT If-Match", f"fails: {type(e).__name__}: {str(e)[:80]}")


def s3(size: int, data: bytes, repeat: int, only: set[str]) -> None:
    import boto3
    import obstore
    from obstore.store import S3Store

    with servers.moto() as env:
        os.environ.update(env)
        client = boto3.client("s3")
        client.create_bucket(Bucket="bench")
        client.put_object(Bucket="bench", Key="big.bin", Body=data)
        store = S3Store("bench", endpoint=env["AWS_ENDPOINT_URL"], region="us-east-1",
                        client_options={"allow_http": True})

        def boto_get() -> None:
            n = 0
            for chunk in client.get_object(Bucket="bench", Key="big.bin")["Body"].iter_chunks(
                    1 << 20):
                n += len(chunk)
            assert n == size

        spread = [(i * (size // RANGES), RANGE) for i in range(RANGES)]

        def boto_ranges() -> None:
            for off, n in spread:
                client.get_object(Bucket="bench", Key="big.bin",
                                  Range=f"bytes={off}-{off + n - 1}")["Body"].read()

        def obs_ranges() -> None:
            obstore.get_ranges(store, "big.bin", starts=[o for o, _ in spread],
                               ends=[o + n for o, n in spread])

        if "s3" in only:
            show("s3: streamed GET, boto3", timed(boto_get, repeat), size)
            show("s3: streamed GET, obstore", timed(lambda: drain_obstore(store, "big.bin",
                                                                         size), repeat), size)
            show(f"s3: {RANGES} x 64 KiB ranges, boto3 sequential", timed(boto_ranges, repeat))
            show(f"s3: {RANGES} x 64 KiB ranges, obstore", timed(obs_ranges, repeat))
            conditional(store, "s3")
            show("s3: obstore conditional DELETE", "not expressible (delete(store, paths))")
            show("s3: obstore listing with version ids",
                 "not expressible (ListObjectsV2 only; ObjectMeta.version is None)")
        if "fork" in only:
            obstore.head(store, "big.bin")  # the parent has used obstore
            for label, fresh in (("the parent's store", False), ("a new store", True)):
                pid = os.fork()
                if pid == 0:
                    signal.alarm(15)
                    s = S3Store("bench", endpoint=env["AWS_ENDPOINT_URL"], region="us-east-1",
                                client_options={"allow_http": True}) if fresh else store
                    try:
                        obstore.head(s, "big.bin")
                        os._exit(0)
                    except Exception:  # noqa: BLE001
                        os._exit(4)
                _, status = os.waitpid(pid, 0)
                code = os.waitstatus_to_exitcode(status)
                show(f"fork: obstore in a forked child, {label}",
                     "ok" if code == 0 else "hangs (killed after 15 s)"
                     if code == -signal.SIGALRM else f"fails ({code})")


def az(size: int, data: bytes, repeat: int) -> None:
    import fsspec
    from azure.storage.blob import BlobServiceClient
    from obstore.store import AzureStore

    with servers.azurite() as (env, port):
        if env is None:
            show("az", "Azurite is not installed: skipped")
            return
        os.environ.update(env)
        svc = BlobServiceClient.from_connection_string(env["AZURE_STORAGE_CONNECTION_STRING"])
        svc.get_blob_client("data", "big.bin").upload_blob(data, overwrite=True)
        fs, path = fsspec.core.url_to_fs("az://data/big.bin")
        show("az: streamed GET, adlfs", timed(lambda: drain_file(
            fs.open(path, "rb", block_size=8 << 20, cache_type="none"), size), repeat), size)
        store = AzureStore("data", account_name=servers.AZURITE_ACCOUNT,
                           access_key=servers.AZURITE_KEY,
                           endpoint=f"http://127.0.0.1:{port}/{servers.AZURITE_ACCOUNT}",
                           client_options={"allow_http": True})
        show("az: streamed GET, obstore", limited(lambda: timed(
            lambda: drain_obstore(store, "big.bin", size), repeat)), size)
        r = limited(lambda: conditional(store, "az"))
        if isinstance(r, str):
            show("az: obstore conditional requests", r)


def gs(size: int, data: bytes, repeat: int) -> None:
    import obstore
    from gcsfs.core import GCSFileSystem
    from obstore.store import GCSStore

    with servers.gcs() as env:
        fs = GCSFileSystem(endpoint_url=env["STORAGE_EMULATOR_HOST"], token="anon",
                           skip_instance_cache=True)
        with fs.open("data/big.bin", "wb") as f:
            f.write(data)
        show("gs: streamed GET, gcsfs", limited(lambda: timed(lambda: drain_file(
            fs.open("data/big.bin", "rb", block_size=8 << 20, cache_type="none"), size),
            repeat)), size)
        key = {"gcs_base_url": env["STORAGE_EMULATOR_HOST"], "disable_oauth": True,
               "client_email": "", "private_key": "", "private_key_id": ""}
        store = GCSStore("data", service_account_key=json.dumps(key),
                         client_options={"allow_http": True})
        got = limited(lambda: obstore.head(store, "big.bin"))
        show("gs: obstore against the emulator", got if isinstance(got, str) and
             got.startswith("hung") else "reaches it" if not isinstance(got, str)
             else f"does not reach it ({got})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size-mib", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", default="s3,az,gs,fork")
    ap.add_argument("--limit", type=float, default=LIMIT,
                    help="seconds one case may take before it is reported as hung")
    args = ap.parse_args()
    globals()["LIMIT"] = args.limit
    only = set(args.only.split(","))
    size = args.size_mib << 20
    data = os.urandom(size)
    print(f"one object of {args.size_mib} MiB, best of {args.repeat}", flush=True)
    if only & {"s3", "fork"}:
        s3(size, data, args.repeat, only)
    if "az" in only:
        az(size, data, args.repeat)
    if "gs" in only:
        gs(size, data, args.repeat)


if __name__ == "__main__":
    main()
    sys.stdout.flush()
    os._exit(0)  # a hung client's thread (see limited) must not keep the process alive
