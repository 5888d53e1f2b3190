"""Seed and fetch releases over BitTorrent (BEP 3, BEP 9 magnets, BEP 52) through libtorrent.

The only libtorrent user in the preserve stage. Everything that contacts hosts other than the
peers one names is off unless the archive's settings turn it on: DHT (and its public bootstrap
nodes), LSD, UPnP, NAT-PMP, the IP notifier, the WebTorrent STUN server and PEX. A session that
listens only on loopback also sends only from loopback (shared/DEPENDENCIES.md, "Network safety").
The trackers (BEP 3 ``announce``, BEP 12 ``announce-list``), web seeds (BEP 19 ``url-list``,
BEP 17 ``httpseeds``) and DHT ``nodes`` that a .torrent or magnet names are stripped before
libtorrent sees them, unless ``enable_trackers`` / ``enable_web_seeds`` / ``enable_dht`` allow them:
libtorrent contacts them by itself as soon as a torrent is added.

Untrusted metainfo is parsed by :mod:`soundark.fixity.torrent` before libtorrent sees it; a
magnet's metadata is fetched into a throw-away sandbox folder (libtorrent creates BEP 47
symlinks as soon as metadata arrives, even in upload mode) and only a torrent that passes the
same checks is added with the real target folder. A fetch resumes: libtorrent checks what is
already on disk and keeps good pieces, and resume data saved on interruption
(``<to>/.soundark-fetch/<infohash>.resume``) makes that quick. A seeder holds any number of releases in one session,
checks them one at a time, saves each one's resume data once checked
(``<save path>/.soundark-seed/``, trusted at the next start only as
:mod:`soundark.preserve.resume` says) and, while seeding, looks only at the releases whose
state changed.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import libtorrent as lt

from soundark.config import Settings
from soundark.errors import BadInput, EnvironmentProblem, SoundarkError
from soundark.fixity.releases import find_torrent, torrent_name
from soundark.fixity.torrent import TorrentInfo, bdecode, parse_magnet, parse_torrent, read_torrent
from soundark.model import NO_PROGRESS, Progress
from soundark.preserve.resume import fs_clock, is_fresh, resume_path, write_resume
from soundark.units import split_host_port

RESUME_DIR = ".soundark-fetch"
# libtorrent's pool of open files (2.x maps each one it holds open): bounds the descriptors
# and mappings of a session whatever the number of releases (libtorrent's default is 40).
SEED_OPEN_FILES = 64
_LOOPBACK = ("127.0.0.1", "::1", "localhost")

# pex_flags for the peers one names. libtorrent's default for connect_peer() is encryption | utp |
# holepunch, and pex_utp marks the peer as speaking uTP. libtorrent tries uTP first with any peer
# so marked and, when that fails, clears the mark and dials TCP. Passing pex_utp again on every
# retry re-marked the peer each time, so the fetch loop kept timing out on uTP and never reached a
# TCP-only client (aria2: it connected, then 0 bytes). Now the first dial may still try uTP (a
# libtorrent default), but the fallback to TCP, which every client speaks, holds. Encryption stays
# offered, and the peer may answer in plaintext.
_PEX_ENCRYPTION = 0x01
NAMED_PEER_FLAGS = _PEX_ENCRYPTION


def connect_peer(handle: lt.torrent_handle, peer: tuple[str, int]) -> None:
    """Dial a peer one named (``--peer``, a magnet's ``x.pe``); see NAMED_PEER_FLAGS."""
    handle.connect_peer(peer, 0, NAMED_PEER_FLAGS)


@dataclass(frozen=True)
class SwarmConfig:
    """Network settings of one session (from :class:`soundark.config.Settings`)."""

    listen_interfaces: str = "127.0.0.1:6881"
    enable_dht: bool = False
    enable_lsd: bool = False
    enable_upnp: bool = False
    enable_natpmp: bool = False
    upload_rate_limit: int = 0
    download_rate_limit: int = 0
    connections_limit: int = 200
    enable_trackers: bool = False
    enable_web_seeds: bool = False

    @classmethod
    def from_settings(cls, s: Settings) -> SwarmConfig:
        return cls(s.listen_interfaces, s.enable_dht, s.enable_lsd, s.enable_upnp, s.enable_natpmp,
                   s.upload_rate_limit, s.download_rate_limit, s.connections_limit,
                   s.enable_trackers, s.enable_web_seeds)

    def contact_keys(self) -> frozenset[bytes]:
        """Top-level .torrent keys naming hosts libtorrent would contact that are not allowed."""
        keys: set[bytes] = set()
        if not self.enable_trackers:
            keys |= {b"announce", b"announce-list"}
        if not self.enable_web_seeds:
            keys |= {b"url-list", b"httpseeds"}
        if not self.enable_dht:
            keys.add(b"nodes")
        return frozenset(keys)

    def strip_contacts(self, atp: lt.add_torrent_params) -> None:
        """Magnets' ``tr=``/``ws=`` and resume data's saved trackers and seeds likewise."""
        if not self.enable_trackers:
            atp.trackers = []
        if not self.enable_web_seeds:
            atp.url_seeds = []

    @property
    def loopback_only(self) -> bool:
        hosts = [split_host_port(i)[0] for i in self.listen_interfaces.split(",") if i.strip()]
        return bool(hosts) and all(h in _LOOPBACK for h in hosts)

    def session_pack(self) -> dict:
        pack = {
            "listen_interfaces": self.listen_interfaces,
            "enable_dht": self.enable_dht,
            "enable_lsd": self.enable_lsd,
            "enable_upnp": self.enable_upnp,
            "enable_natpmp": self.enable_natpmp,
            "enable_ip_notifier": False,
            "webtorrent_stun_server": "",
            "allow_multiple_connections_per_ip": True,
            "listen_system_port_fallback": False,
            "upload_rate_limit": self.upload_rate_limit,
            "download_rate_limit": self.download_rate_limit,
            "connections_limit": self.connections_limit,
            "file_pool_size": SEED_OPEN_FILES,
            "active_checking": 1,  # one release's files read at a time: no seeking between releases
            "alert_mask": lt.alert.category_t.status_notification | lt.alert.category_t.error_notification
                          | lt.alert.category_t.storage_notification,
        }
        if not self.enable_dht:
            pack["dht_bootstrap_nodes"] = ""
        if self.loopback_only:
            pack["outgoing_interfaces"] = "127.0.0.1"
        return pack

    def torrent_flags(self) -> int:
        flags = 0
        if not self.enable_dht:
            flags |= lt.torrent_flags.disable_dht | lt.torrent_flags.disable_pex
        if not self.enable_lsd:
            flags |= lt.torrent_flags.disable_lsd
        return flags


def open_session(cfg: SwarmConfig) -> lt.session:
    try:
        ses = lt.session(cfg.session_pack())
    except RuntimeError as e:
        raise EnvironmentProblem(cfg.listen_interfaces, f"cannot start a BitTorrent session: {e}") from e
    if not ses.is_listening():
        raise EnvironmentProblem(cfg.listen_interfaces, "cannot listen (port in use?)")
    if cfg.loopback_only and (cfg.upload_rate_limit or cfg.download_rate_limit):
        # libtorrent exempts local peers from rate limits; on loopback every peer is local
        local = ses.get_peer_class(ses.local_peer_class_id)
        local.update(upload_limit=cfg.upload_rate_limit, download_limit=cfg.download_rate_limit)
        ses.set_peer_class(ses.local_peer_class_id, local)
    return ses


def _torrent_params(torrent: Path, save_path: Path, cfg: SwarmConfig) -> lt.add_torrent_params:
    return _checked_params(torrent, save_path, cfg)[0]


def _checked_params(torrent: Path, save_path: Path, cfg: SwarmConfig) -> tuple[lt.add_torrent_params, TorrentInfo]:
    info = read_torrent(torrent)  # refuse hostile metainfo before libtorrent parses it
    atp = lt.add_torrent_params()
    try:
        atp.ti = lt.torrent_info(without_contacts(torrent.read_bytes(), cfg, torrent))
    except OSError as e:
        raise BadInput(torrent, f"cannot read: {e.strerror or e}") from e
    except RuntimeError as e:
        raise BadInput(torrent, f"libtorrent cannot read it: {e}") from e
    atp.save_path = str(save_path)
    atp.flags = (atp.flags | cfg.torrent_flags()) & ~lt.torrent_flags.auto_managed & ~lt.torrent_flags.paused
    return atp, info


def without_contacts(data: bytes, cfg: SwarmConfig, subject: object) -> bytes:
    """The metainfo without the keys :meth:`SwarmConfig.contact_keys` forbids.

    The ``info`` dictionary is copied byte for byte (the infohash cannot change); the
    other kept keys (``piece layers``, ``comment``...) are re-encoded in canonical order.
    """
    meta, span = bdecode(data, subject)
    drop = cfg.contact_keys()
    if not isinstance(meta, dict) or span is None or not drop & meta.keys():
        return data
    parts = [b"d"]
    for key in sorted(k for k in meta if k not in drop):
        value = data[span[0]:span[1]] if key == b"info" else lt.bencode(meta[key])
        parts += [str(len(key)).encode(), b":", key, value]
    return b"".join(parts + [b"e"])


# ---------------------------------------------------------------- seeding

# Many releases in one session (issue 16): every torrent is added auto-managed, so libtorrent
# checks one at a time (one release's files read in order, the best a disk does) while the rest
# wait their turn, then each is taken out of the queue as it finishes checking, so that no
# queue limit (active_seeds, seed ratio and seed time limits) ever pauses a seed. The active
# slots are raised to the number of releases while they check; the alert queue grows with them
# (a few alerts per release arrive at once). Memory and file handles do not grow with the
# releases' bytes: see SEED_OPEN_FILES and docs/performance.md, "Capacity model".
_SLOTS_MIN = 1000
_ALERTS_PER_TORRENT = 8
_CHECKING = (lt.torrent_status.checking_files, lt.torrent_status.checking_resume_data)


@dataclass
class SeedReport:
    listen_port: int
    torrents: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    interrupted: bool = False  # stopped by Ctrl-C / SIGTERM rather than --duration
    refused: list[dict] = field(default_factory=list)  # releases not seeded, each with its reason

    @property
    def uploaded(self) -> int:
        return sum(t["uploaded"] for t in self.torrents)

    @property
    def peers_served(self) -> int:
        """Distinct peers (by address) that received data, over the whole run."""
        return len({p for t in self.torrents for p in t.get("served", ())})

    def count(self, key: str) -> int:
        return sum(1 for t in self.torrents if t.get(key))

    def as_dict(self) -> dict:
        torrents = [{k: v for k, v in t.items() if k != "served"} for t in self.torrents]
        return {"listen_port": self.listen_port, "torrents": torrents, "seconds": round(self.seconds, 3),
                "uploaded": self.uploaded, "peers_served": self.peers_served,
                "interrupted": self.interrupted, "seeding": self.count("seeding"),
                "resumed": self.count("resumed"), "checked": self.count("checked"), "refused": self.refused}


@dataclass
class _Seeded:
    """One release in the session and what its start took."""

    torrent: Path
    save_path: Path
    handle: lt.torrent_handle
    infohash: str
    resumed: bool              # added with resume data judged fresh (soundark.preserve.resume)
    stamp: int | None          # file-system time before its check began; None: no resume dir
    checked: bool = False      # libtorrent read every piece (it entered checking_files)
    error: SoundarkError | None = None


class Seeder:
    """Serves bags while open: ``with Seeder(cfg) as s: s.add(torrent, save_path); s.wait_ready()``."""

    def __init__(self, cfg: SwarmConfig) -> None:
        self.cfg = cfg
        self.ses = open_session(cfg)
        self.items: list[_Seeded] = []
        self.refused: list[_Seeded] = []
        self.served: dict[str, set[str]] = {}  # torrent -> addresses of peers that got data
        self._slots = 0
        self._clocks: dict[Path, int | None] = {}

    def __enter__(self) -> Seeder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def port(self) -> int:
        return self.ses.listen_port()

    def add(self, torrent: Path, save_path: Path) -> lt.torrent_handle:
        atp, info = _checked_params(torrent, save_path, self.cfg)
        resume = resume_path(save_path, info.infohash_v1)
        resumed = resume.is_file() and is_fresh(resume, info, save_path)
        if resumed:
            try:
                saved = lt.read_resume_data(resume.read_bytes())
                saved.ti, saved.save_path, saved.flags = atp.ti, atp.save_path, atp.flags
                self.cfg.strip_contacts(saved)
                atp = saved
            except RuntimeError:
                resumed = False  # damaged resume data: libtorrent checks the files instead
        if save_path not in self._clocks:
            self._clocks[save_path] = fs_clock(save_path)
        atp.flags |= lt.torrent_flags.auto_managed
        self._fit_slots(len(self.items) + 1)
        handle = self.ses.add_torrent(atp)
        self.items.append(_Seeded(torrent, save_path, handle, info.infohash_v1, resumed,
                                  None if resumed else self._clocks[save_path]))
        return handle

    def _fit_slots(self, n: int) -> None:
        if n <= self._slots:
            return
        self._slots = max(_SLOTS_MIN, 2 * n)
        self.ses.apply_settings({"active_seeds": self._slots, "active_limit": self._slots,
                                 "alert_queue_size": _ALERTS_PER_TORRENT * self._slots})

    def connect(self, host: str, port: int) -> None:
        for it in self.items:
            connect_peer(it.handle, (host, port))

    def wait_ready(self, timeout: float | None = None, progress: Progress = NO_PROGRESS) -> None:
        """Until every release has been checked (or its resume data accepted).

        A release not complete and intact is taken out and kept in ``refused``; when none is
        left to seed, the first refusal is raised. Cancelling stops the wait: the releases
        still checking are refused, the others seed (their resume data is already saved).
        """
        pending = {it.handle: it for it in self.items}
        saving: dict[lt.torrent_handle, _Seeded] = {}
        progress.start(len(pending), f"checking {len(pending)} release(s)", "releases")
        deadline = None if timeout is None else time.monotonic() + timeout
        last_poll, stopped = 0.0, None
        while pending or saving:
            done = self._startup_alerts(pending, saving)
            if time.monotonic() - last_poll > 1.0:  # alerts can be dropped: look at each now and then
                last_poll = time.monotonic()
                done |= {h for h in pending if h.status().state not in _CHECKING}
            for h in done & pending.keys():
                self._settle(pending.pop(h), saving)
                progress.advance(1)
            if stopped is None and (progress.cancelled() or (deadline is not None and time.monotonic() > deadline)):
                stopped = time.monotonic()
                for it in pending.values():  # the checks done keep their resume data (saved below)
                    it.error = BadInput(it.torrent, "stopped before its check finished")
                    self._drop(it)
                pending = {}
            if stopped is not None and time.monotonic() - stopped > 5:
                break  # resume data that has not come by now is not worth a longer wait to stop
            time.sleep(0.02)
        if not self.items and self.refused:
            raise self.refused[0].error

    def _startup_alerts(self, pending: dict, saving: dict) -> set:
        """Handles whose check ended; notes full checks; writes the resume data that arrived."""
        done = set()
        for a in self.ses.pop_alerts():
            if isinstance(a, lt.state_changed_alert) and a.state == lt.torrent_status.checking_files:
                it = pending.get(a.handle)
                if it is not None:
                    it.checked = True
            elif isinstance(a, (lt.torrent_checked_alert, lt.torrent_error_alert, lt.file_error_alert)):
                done.add(a.handle)
            elif isinstance(a, (lt.save_resume_data_alert, lt.save_resume_data_failed_alert)):
                it = saving.pop(a.handle, None)
                if it is not None and it.stamp is not None and isinstance(a, lt.save_resume_data_alert):
                    write_resume(resume_path(it.save_path, it.infohash), lt.write_resume_data_buf(a.params),
                                 it.stamp)
        return done

    def _settle(self, it: _Seeded, saving: dict) -> None:
        st = it.handle.status()
        if st.errc.value():
            it.error = EnvironmentProblem(it.torrent, f"cannot seed: {st.errc.message()}")
        elif not st.is_seeding:
            it.error = BadInput(it.torrent, f"only {st.progress:.1%} of the data is present and intact: "
                                            "run `soundark verify` / `soundark repair` first")
        if it.error is not None:
            self._drop(it)
            return
        if not it.resumed:  # no resume data: libtorrent read every piece, even if the
            it.checked = True  # state_changed alert was missed (a fast check, CI saw it)
        it.handle.unset_flags(lt.torrent_flags.auto_managed)  # out of the queue: nothing pauses it
        it.handle.resume()
        if not it.resumed and it.stamp is not None:
            it.handle.save_resume_data()
            saving[it.handle] = it

    def _drop(self, it: _Seeded) -> None:
        self.ses.remove_torrent(it.handle)
        self.items.remove(it)
        self.refused.append(it)

    def tick(self) -> None:
        """Note the peers of the releases that uploaded since the last tick (not all 1,000)."""
        for a in self.ses.pop_alerts():
            if isinstance(a, lt.state_update_alert):
                for st in a.status:
                    if st.total_upload:
                        self._note(st.handle, st.name)
        self.ses.post_torrent_updates()

    def _note(self, handle: lt.torrent_handle, key: str) -> None:
        served = self.served.setdefault(key, set())
        served.update(p.ip[0] for p in handle.get_peer_info() if p.total_upload)

    def note_peers(self) -> None:
        """Remember every peer that has received data (peers come and go; the summary counts all)."""
        for it in self.items:
            self._note(it.handle, str(it.torrent))

    def report(self) -> SeedReport:
        out = SeedReport(self.port)
        self.note_peers()
        for it in self.items:
            st = it.handle.status()
            served = sorted(self.served.get(str(it.torrent), set()) | self.served.get(st.name, set()))
            out.torrents.append({"torrent": str(it.torrent), "name": st.name, "seeding": st.is_seeding,
                                 "infohash_v1": str(it.handle.info_hashes().v1), "peers": st.num_peers,
                                 "peers_served": len(served), "served": served,
                                 "uploaded": st.total_upload, "resumed": it.resumed and not it.checked,
                                 "checked": it.checked})
        out.refused = [{"torrent": str(it.torrent), "reason": str(it.error)} for it in self.refused]
        return out

    def close(self) -> None:
        for it in self.items:
            self.ses.remove_torrent(it.handle)
        self.items = []


def seed(torrents: list[tuple[Path, Path]], cfg: SwarmConfig, *, duration: float | None = None,
         peers: tuple[tuple[str, int], ...] = (), progress: Progress = NO_PROGRESS,
         on_ready: Callable[[SeedReport], None] | None = None) -> SeedReport:
    """Seed (torrent, save_path) pairs until ``duration`` seconds pass or progress is cancelled."""
    with Seeder(cfg) as seeder:
        for torrent, save_path in torrents:
            seeder.add(torrent, save_path)
        seeder.wait_ready(progress=progress)
        for host, port in peers:
            seeder.connect(host, port)
        start = time.monotonic()
        interrupted = False
        try:  # Ctrl-C is how seeding normally ends: from here on, still say what was served
            if on_ready:
                on_ready(seeder.report())
            progress.start(None, f"seeding on port {seeder.port}", "s")
            while not progress.cancelled() and (duration is None or time.monotonic() - start < duration):
                time.sleep(0.5)
                seeder.tick()
                progress.advance(0, nbytes=0)
        except KeyboardInterrupt:
            interrupted = True
        report = seeder.report()
        report.seconds = time.monotonic() - start
        report.interrupted = interrupted or progress.cancelled()
        return report


# ---------------------------------------------------------------- fetching


@dataclass
class FetchReport:
    name: str
    infohash_v1: str
    folder: str
    complete: bool
    bytes_total: int
    bytes_already_had: int
    bytes_downloaded: int
    torrent: str | None = None
    reason: str = ""

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass(frozen=True)
class FetchRequest:
    source: str                              # .torrent path or magnet link
    to: Path                                 # target folder; the bag lands in to/<name>/
    peers: tuple[tuple[str, int], ...] = ()  # peers to connect to directly
    stall_timeout: float = 120.0             # give up after this long without progress


def fetch(req: FetchRequest, cfg: SwarmConfig, progress: Progress = NO_PROGRESS) -> FetchReport:
    """Download a release into ``req.to``; resumes from what is there; stops when complete."""
    to = Path(req.to)
    to.mkdir(parents=True, exist_ok=True)
    ses = open_session(cfg)
    if req.source.startswith("magnet:"):
        # the magnet's metadata is fetched and checked first, in a sandbox; only a checked
        # .torrent is then added with the real target folder
        torrent, peers = _magnet_metadata(ses, req, to, cfg)
        req = FetchRequest(str(torrent), to, tuple(peers), req.stall_timeout)
    handle, atp_torrent, peers = _add_fetch(ses, req, cfg)
    try:
        _await_metadata(ses, handle, req, peers)
        handle.unset_flags(lt.torrent_flags.upload_mode)
        return _download(ses, handle, req, peers, progress, str(atp_torrent))
    finally:
        _save_resume(ses, handle, to)
        ses.remove_torrent(handle)


def _magnet_metadata(ses: lt.session, req: FetchRequest, to: Path, cfg: SwarmConfig) -> tuple[Path, list]:
    """Fetch a magnet's metadata (BEP 9) into a sandbox folder; check it; write ``<to>/<name>.torrent``.

    libtorrent initialises a torrent's storage as soon as the metadata arrives, even in upload
    mode: a BEP 47 symlink entry became a symlink on disk before soundark could refuse it. So
    the metadata phase runs with a throw-away save path under ``<to>/.soundark-fetch/``, which
    is removed (without following links) whatever the metadata holds.
    """
    magnet = parse_magnet(req.source)
    peers = list(req.peers) + list(magnet.peers)
    sandbox_root = to / RESUME_DIR
    sandbox_root.mkdir(exist_ok=True)
    sandbox = Path(tempfile.mkdtemp(prefix="metadata-", dir=sandbox_root))
    atp = lt.parse_magnet_uri(req.source)
    cfg.strip_contacts(atp)
    atp.save_path = str(sandbox)
    atp.flags = ((atp.flags | lt.torrent_flags.upload_mode | cfg.torrent_flags())
                 & ~lt.torrent_flags.auto_managed & ~lt.torrent_flags.paused)
    handle = ses.add_torrent(atp)
    try:
        _await_metadata(ses, handle, req, peers)
        meta = lt.bencode({"info": lt.bdecode(handle.torrent_file().info_section())})
    finally:
        _remove_and_wait(ses, handle)
        shutil.rmtree(sandbox, ignore_errors=True)  # rmtree never follows a symlink
    info = parse_torrent(meta, f"metadata of {req.source[:80]}")
    torrent_path = to / torrent_name(info.name)
    torrent_path.write_bytes(meta)  # beside the bag: `soundark verify` finds it there
    return torrent_path, peers


def _remove_and_wait(ses: lt.session, handle: lt.torrent_handle, timeout: float = 5.0) -> None:
    ses.remove_torrent(handle)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(isinstance(a, lt.torrent_removed_alert) for a in ses.pop_alerts()):
            return
        time.sleep(0.02)


def _add_fetch(ses: lt.session, req: FetchRequest, cfg: SwarmConfig):
    peers = list(req.peers)
    torrent = Path(req.source)
    atp = _torrent_params(torrent, req.to, cfg)
    resume = _resume_file(req.to, atp)
    if resume is not None and resume.is_file():
        try:
            saved = lt.read_resume_data(resume.read_bytes())
            saved.ti = atp.ti  # the checked metainfo, never the one saved with the resume data
            atp = saved
        except RuntimeError:
            pass  # stale or damaged resume data: libtorrent re-checks the files instead
    atp.save_path = str(req.to)
    cfg.strip_contacts(atp)
    atp.flags = (atp.flags | cfg.torrent_flags()) & ~lt.torrent_flags.auto_managed & ~lt.torrent_flags.paused
    return ses.add_torrent(atp), torrent, peers


def _resume_file(to: Path, atp: lt.add_torrent_params) -> Path | None:
    ih = atp.ti.info_hashes().v1 if atp.ti is not None else atp.info_hashes.v1
    text = str(ih)
    return None if set(text) == {"0"} else Path(to) / RESUME_DIR / f"{text}.resume"


def _await_metadata(ses: lt.session, handle: lt.torrent_handle, req: FetchRequest, peers: list) -> None:
    deadline = time.monotonic() + req.stall_timeout
    for peer in peers:
        connect_peer(handle, peer)
    while not handle.status().has_metadata:
        if time.monotonic() > deadline:
            raise EnvironmentProblem(req.source[:80], f"no metadata from any peer in {req.stall_timeout:.0f} s")
        time.sleep(0.05)
        ses.pop_alerts()


def _download(ses, handle, req: FetchRequest, peers: list, progress: Progress, torrent: str) -> FetchReport:
    while handle.status().state in (lt.torrent_status.checking_files, lt.torrent_status.checking_resume_data):
        time.sleep(0.05)
    st = handle.status()
    report = FetchReport(st.name, str(handle.info_hashes().v1), str(Path(req.to) / st.name), False,
                         st.total_wanted, st.total_wanted_done, 0, torrent)
    progress.start(st.total_wanted, f"fetching {st.name}", "bytes")
    progress.advance(st.total_wanted_done, nbytes=st.total_wanted_done)
    for peer in peers:
        connect_peer(handle, peer)
    done, last_change = st.total_wanted_done, time.monotonic()
    while True:
        st = handle.status()
        if st.total_wanted_done != done:
            progress.advance(st.total_wanted_done - done, nbytes=max(0, st.total_wanted_done - done))
            done, last_change = st.total_wanted_done, time.monotonic()
        if st.is_seeding or st.is_finished:
            report.complete = True
            break
        if st.errc.value():
            report.reason = f"storage error: {st.errc.message()}"
            break
        if progress.cancelled():
            report.reason = "interrupted; run the same fetch again to resume"
            break
        if time.monotonic() - last_change > req.stall_timeout:
            report.reason = f"no progress for {req.stall_timeout:.0f} s; run again to resume"
            break
        if st.num_peers == 0:
            for peer in peers:
                connect_peer(handle, peer)
        failed = _storage_failure(ses.pop_alerts(), Path(req.to))
        if failed:
            report.reason = failed
            break
        time.sleep(0.05)
    report.bytes_downloaded = st.total_wanted_done - report.bytes_already_had
    return report


def _storage_failure(alerts: list, to: Path) -> str:
    """One line for the first file error libtorrent reports (a full disk, a read-only folder).

    libtorrent pauses the torrent on a file error and says so only in a ``file_error_alert``;
    the status looks like a stall, which was reported as "no progress" after the stall timeout.
    """
    for a in alerts:
        if isinstance(a, lt.file_error_alert):
            err = a.error
            name = a.filename() or "a file"
            shown = os.path.relpath(name, to) if os.path.isabs(name) else name
            if err.value() == errno.ENOSPC:
                return f"{shown}: disk full: free space in {to} and run the same fetch again to resume"
            return f"{shown}: cannot write: {err.message()}; fix it and run the same fetch again to resume"
    return ""


def _save_resume(ses: lt.session, handle: lt.torrent_handle, to: Path) -> None:
    """Ask for resume data and write it; best effort (a re-check works without it)."""
    try:
        if not handle.is_valid() or not handle.status().has_metadata:
            return
        handle.save_resume_data(lt.save_resume_flags_t.save_info_dict)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            for a in ses.pop_alerts():
                if isinstance(a, lt.save_resume_data_alert):
                    folder = Path(to) / RESUME_DIR
                    folder.mkdir(exist_ok=True)
                    (folder / f"{handle.info_hashes().v1}.resume").write_bytes(
                        lt.write_resume_data_buf(a.params))
                    return
                if isinstance(a, lt.save_resume_data_failed_alert):
                    return
            time.sleep(0.02)
    except (RuntimeError, OSError):
        return


def resolve_release(arg: str, releases: Path) -> tuple[Path, Path]:
    """(torrent, save path) for a release name, a bag folder or a .torrent file."""
    path = Path(arg)
    if path.suffix == ".torrent" and path.is_file():
        info = read_torrent(path)
        for base in (path.parent, path.parent.parent):
            if (base / info.name).is_dir():
                return path, base
        raise BadInput(path, f"its data folder {info.name!r} is neither beside it nor one level up")
    bag = path if path.is_dir() else Path(releases) / arg
    if not bag.is_dir():
        raise BadInput(arg, f"not a release name in {releases}, a bag folder or a .torrent file")
    torrent = find_torrent(bag)
    if torrent is not None:
        return torrent, bag.parent
    raise BadInput(bag, "no .torrent for it in torrents/ or beside it")
