"""The site model as dense integer indices and per-checkpoint rules, built once at start.

Checkpoint index i is the i-th checkpoint of the site model. Occupancy targets are the
buildings some checkpoint changes (in site order), then the site itself (`"site"`).
"""

from __future__ import annotations

from typing import Final

import numpy as np
from numpy.typing import NDArray

from gateway.headcount.errors import HeadcountError
from gateway.headcount.settings import HeadcountSettings
from gateway.site import SiteModel

SITE: Final = "site"


class HeadcountIndex:
    """Names → indices and the counting rules of every checkpoint (docs/headcount.md)."""

    def __init__(self, site: SiteModel, settings: HeadcountSettings) -> None:
        cps = site.checkpoints
        n = len(cps)
        self.checkpoint_ids: tuple[str, ...] = tuple(cp.id for cp in cps)
        self.checkpoint_index: dict[str, int] = {cp: i for i, cp in enumerate(self.checkpoint_ids)}
        self.n_checkpoints = n
        self.has_reader: NDArray[np.bool_] = np.array(
            [bool(cp.access or cp.doors) for cp in cps], dtype=bool
        )
        self.has_camera: NDArray[np.bool_] = np.array([bool(cp.cameras) for cp in cps], dtype=bool)
        # Double counting: people are counted by the camera wherever there is one (swipes
        # are authorizations), by the readers' passages where there is no camera.
        self.counts_by_camera: NDArray[np.bool_] = self.has_camera | ~self.has_reader
        self.tailgate: NDArray[np.bool_] = self.has_camera & self.has_reader
        self.inflow_limit: NDArray[np.float64] = np.array(
            [np.nan if cp.inflow_limit_per_min is None else cp.inflow_limit_per_min for cp in cps],
            dtype=np.float64,
        )
        self.tailgate_min_count: NDArray[np.float64] = np.array(
            [
                settings.tailgate_min_count
                if cp.tailgate_min_count is None
                else cp.tailgate_min_count
                for cp in cps
            ],
            dtype=np.float64,
        )
        self.tailgate_ratio: NDArray[np.float64] = np.array(
            [
                settings.tailgate_ratio if cp.tailgate_ratio is None else cp.tailgate_ratio
                for cp in cps
            ],
            dtype=np.float64,
        )
        self.device_checkpoints: dict[str, tuple[int, ...]] = {}
        self.door_checkpoint: dict[str, int] = {}
        for i, cp in enumerate(cps):
            for dev in (*cp.access, *cp.cameras):
                self.device_checkpoints[dev] = (*self.device_checkpoints.get(dev, ()), i)
            for door in cp.doors:
                self.door_checkpoint.setdefault(door, i)
        self._targets(site)
        if settings.site_occupancy_limit is not None:
            self.occupancy_limit[self.site_target] = float(settings.site_occupancy_limit)
        self._max_cameras = settings.max_cameras
        self._camera_slots: dict[str, int] = {}
        self.camera_ids: list[str] = []  # slot -> camera device id
        for cp in cps:
            for cam in cp.cameras:
                self.camera_slot(cam)

    def _targets(self, site: SiteModel) -> None:
        """Occupancy targets and which checkpoint changes which target."""
        if any(b.id == SITE for b in site.buildings):
            raise HeadcountError(
                f"building id {SITE!r} clashes with the site-wide occupancy target; rename it"
            )
        single = {cp.leads_to[0] for cp in site.checkpoints if len(cp.leads_to) == 1}
        buildings = [b for b in site.buildings if b.id in single]
        self.target_ids: tuple[str, ...] = (*(b.id for b in buildings), SITE)
        self.target_index: dict[str, int] = {t: i for i, t in enumerate(self.target_ids)}
        self.site_target = len(self.target_ids) - 1
        self.n_targets = len(self.target_ids)
        n = self.n_checkpoints
        matrix = np.zeros((self.n_targets, n), dtype=np.int64)
        display = np.full(n, self.site_target, dtype=np.int64)
        for i, cp in enumerate(site.checkpoints):
            if not cp.inside_perimeter:
                matrix[self.site_target, i] = 1
            if len(cp.leads_to) == 1:
                target = self.target_index[cp.leads_to[0]]
                matrix[target, i] = 1
                display[i] = target
        self.target_matrix: NDArray[np.int64] = matrix
        self.display_target: NDArray[np.int64] = display
        self.target_checkpoints: tuple[tuple[int, ...], ...] = tuple(
            tuple(int(i) for i in np.flatnonzero(row)) for row in matrix
        )
        self.target_is_building = tuple(t != SITE for t in self.target_ids)
        limits = {b.id: b.occupancy_limit for b in buildings}
        self.occupancy_limit: NDArray[np.float64] = np.array(
            [np.nan if limits.get(t) is None else limits[t] for t in self.target_ids[:-1]]
            + [np.nan],
            dtype=np.float64,
        )

    def checkpoint(self, checkpoint_id: str) -> int:
        """The dense index of a checkpoint id; HeadcountError when the site has no such one."""
        try:
            return self.checkpoint_index[checkpoint_id]
        except KeyError:
            raise HeadcountError(f"unknown checkpoint {checkpoint_id!r}") from None

    def target(self, target_id: str) -> int:
        """The index of an occupancy target: a building some checkpoint leads to, or `site`."""
        try:
            return self.target_index[target_id]
        except KeyError:
            known = ", ".join(self.target_ids)
            raise HeadcountError(
                f"no occupancy is kept for {target_id!r} (kept for: {known})"
            ) from None

    def camera_slot(self, device: str) -> int:
        """The counter slot of a camera (a new one for cameras the site model does not list);
        -1 once `max_cameras` slots are taken, so unknown ids cannot grow memory."""
        slot = self._camera_slots.get(device)
        if slot is None:
            if len(self._camera_slots) >= self._max_cameras:
                return -1
            slot = self._camera_slots[device] = len(self._camera_slots)
            self.camera_ids.append(device)
        return slot

    @property
    def n_cameras(self) -> int:
        """How many camera counter slots are taken."""
        return len(self._camera_slots)
