# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A local forward through an ssh bastion (paramiko), for databases that listen only inside their host.

``SshTunnel(settings, remote_host, remote_port)`` logs in to ``settings["host"]`` with a key file,
the server's host key checked against ``known_hosts`` (an unknown or changed key is refused, never
added), listens on 127.0.0.1 on a free port, and carries every connection made there to
``remote_host:remote_port`` as the bastion sees it (a ``direct-tcpip`` channel). ``close()`` stops
listening and ends the ssh session. Importable without Ansible; paramiko is imported when a tunnel opens.
"""

from __future__ import annotations

import select
import socket
import threading

from ansible_collections.mlops.migration.plugins.module_utils.common import Unreachable

LOCAL = "127.0.0.1"


class TunnelError(Unreachable):
    """The ssh tunnel could not be opened: the message names the bastion and the cause."""


def tunnel_options():
    """Argument spec of the ``ssh_tunnel`` suboption of a connection."""
    return dict(type="dict", options=dict(
        host=dict(type="str", required=True),
        port=dict(type="int", default=22),
        user=dict(type="str", required=True),
        key_file=dict(type="path", required=True),
        known_hosts=dict(type="path", required=True),
        timeout=dict(type="int", default=20),
    ))


class SshTunnel:
    """One local forward; ``port`` is where to connect on 127.0.0.1."""

    def __init__(self, settings, remote_host, remote_port):
        try:
            import paramiko  # pylint: disable=import-outside-toplevel
        except ImportError as exc:
            raise TunnelError("ssh_tunnel needs the paramiko package on the host that runs the module "
                              "(pip install paramiko)") from exc
        self.where = f"{settings['user']}@{settings['host']}:{settings.get('port') or 22}"
        self.remote = (remote_host, int(remote_port))
        self.client = paramiko.SSHClient()
        try:
            self.client.load_host_keys(settings["known_hosts"])
        except OSError as exc:
            raise TunnelError(f"cannot read the known_hosts file {settings['known_hosts']} for {self.where}: {exc}") from exc
        self.client.set_missing_host_key_policy(paramiko.RejectPolicy())
        try:
            self.client.connect(settings["host"], port=settings.get("port") or 22, username=settings["user"],
                                key_filename=settings["key_file"], look_for_keys=False, allow_agent=False,
                                timeout=settings.get("timeout") or 20)
        except paramiko.BadHostKeyException as exc:
            raise TunnelError(f"the ssh host key of {self.where} does not match {settings['known_hosts']}: "
                              "refused") from exc
        except paramiko.SSHException as exc:
            raise TunnelError(f"cannot open an ssh tunnel through {self.where}: {exc}") from exc
        except OSError as exc:
            raise TunnelError(f"cannot reach the ssh bastion {self.where}: {exc}") from exc
        self.transport = self.client.get_transport()
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind((LOCAL, 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed.is_set():
            try:
                conn, peer = self.listener.accept()
            except OSError:
                return
            try:
                channel = self.transport.open_channel("direct-tcpip", self.remote, peer)
            except Exception:  # pylint: disable=broad-except  # the client sees its connection closed
                conn.close()
                continue
            threading.Thread(target=_pump, args=(conn, channel, self.closed), daemon=True).start()

    def close(self):
        self.closed.set()
        try:
            self.listener.close()
        finally:
            self.client.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _pump(conn, channel, closed):
    try:
        while not closed.is_set():
            ready, _w, _x = select.select([conn, channel], [], [], 0.5)
            for source, sink in ((conn, channel), (channel, conn)):
                if source in ready:
                    data = source.recv(65536)
                    if not data:
                        return
                    sink.sendall(data)
    except OSError:
        return
    finally:
        channel.close()
        conn.close()
