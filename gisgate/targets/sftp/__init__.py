"""SFTP delivery (paramiko): the Data Server's GIS folder reached over SSH.

    target.py    SftpTarget: where each file goes, how a batch is uploaded under temp names and
                 renamed into place in order, what a failure leaves behind
    session.py   the one reused connection: timeouts, the outer deadline, connecting with backoff,
                 logging in, the one translation of errors; fetch_host_key for `gisgate hostkey`
    client.py    paramiko's SFTP client with pipelined, coalesced requests (about one round trip a file)
    hostkeys.py  pinned host keys: fingerprints, comparing an offered key, the refusal text
"""

from gisgate.targets.sftp.hostkeys import HostKeyInfo
from gisgate.targets.sftp.session import fetch_host_key
from gisgate.targets.sftp.target import SftpTarget

__all__ = ["HostKeyInfo", "SftpTarget", "fetch_host_key"]
