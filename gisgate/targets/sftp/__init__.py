"""SFTP delivery (paramiko): the Data Server's GIS folder reached over SSH.

    target.py    SftpTarget: where each file goes, a batch (or a run of batches) on the connection,
                 the outcome of each batch
    stream.py    the pipelined run: files uploaded under temp names, size-checked and renamed into
                 place in their batch's order, several in flight across batches; what a failure undoes
    session.py   the one reused connection: timeouts, the outer deadline, connecting with backoff,
                 logging in, the one translation of errors; fetch_host_key for `gisgate hostkey`
    client.py    paramiko's SFTP client with pipelined, coalesced requests
    hostkeys.py  pinned host keys: fingerprints, comparing an offered key, the refusal text
"""

import sys

if "paramiko" not in sys.modules:
    # paramiko imports `invoke` (a task runner, ~0.1 s) only to run `Match exec` lines of an OpenSSH
    # client config, which gisgate never reads; it copes with `invoke` missing. Hidden while paramiko
    # is first imported (and only then), so `gisgate deliver` starts faster.
    _invoke = sys.modules.get("invoke")
    sys.modules["invoke"] = None  # type: ignore[assignment]  # makes `import invoke` fail
    try:
        import paramiko  # noqa: F401
    finally:
        if _invoke is None:
            del sys.modules["invoke"]
        else:
            sys.modules["invoke"] = _invoke

from gisgate.targets.sftp.hostkeys import HostKeyInfo  # noqa: E402
from gisgate.targets.sftp.session import fetch_host_key  # noqa: E402
from gisgate.targets.sftp.target import SftpTarget  # noqa: E402

__all__ = ["HostKeyInfo", "SftpTarget", "fetch_host_key"]
