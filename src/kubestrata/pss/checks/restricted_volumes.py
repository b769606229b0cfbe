"""Volume Types (restricted, check ``restrictedVolumes``, upstream check_restrictedVolumes.go;
overrides ``hostPathVolumes``).

The Restricted policy only permits the following volume types.

Restricted Fields: spec.volumes[*]
Allowed Values: Every item in the spec.volumes[*] list must set one of the following fields to a
non-null value: spec.volumes[*].configMap, .csi, .downwardAPI, .emptyDir, .ephemeral, .image,
.persistentVolumeClaim, .projected, .secret
"""

from __future__ import annotations

from kubestrata.pss.checks.base import Rule, Violation, join_quote, pluralize
from kubestrata.pss.view import VOLUME_SOURCES, PodView

_ALLOWED = frozenset(
    {
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "image",
        "persistentVolumeClaim",
        "projected",
        "secret",
    }
)
# upstream's list of the sources it names in the message, in its order; others are "unknown"
_RESTRICTED = (
    "hostPath",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "nfs",
    "iscsi",
    "glusterfs",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "fc",
    "azureFile",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "portworxVolume",
    "scaleIO",
    "storageos",
)

Found = list[tuple[int, str, str]]  # (volume index, name, type)


class RestrictedVolumes(Rule[Found]):
    check = "restrictedVolumes"

    def find(self, p: PodView) -> Found | None:
        vols = p.spec.get("volumes")
        if not vols:
            return None
        found = []
        for i, v in enumerate(vols):
            if v is None:
                v = {}
            allowed = False
            for k, src in v.items():
                if src is not None and k in _ALLOWED:
                    allowed = True
                    break
            if allowed:
                continue
            t = next((s for s in _RESTRICTED if v.get(s) is not None), None)
            if t is None:
                if not any(v.get(s) is not None for s in VOLUME_SOURCES):
                    # the API server defaults a volume without a source to emptyDir (SetDefaults_Volume)
                    # before admission sees it, so PSA judges an emptyDir
                    continue
                t = "unknown"
            found.append((i, v.get("name") or "", t))
        return found or None

    def word(self, found: Found) -> tuple[str, str]:
        names = [n for _, n, _ in found]
        types = sorted({t for _, _, t in found})
        n = len(names)
        return (
            "restricted volume types",
            f"{pluralize('volume', 'volumes', n)} {join_quote(names)} {pluralize('uses', 'use', n)} "
            f"{pluralize('restricted volume type', 'restricted volume types', len(types))} {join_quote(types)}",
        )

    def explain(self, p: PodView, found: Found) -> list[Violation]:
        return [
            Violation(
                self.check,
                "restricted volume types",
                f'volume "{name}" uses restricted volume type "{t}"',
                f"{p.spec_path}.volumes[{i}]" + (f".{t}" if t != "unknown" else ""),
                None,
                None,
                "use a configMap, csi, downwardAPI, emptyDir, ephemeral, image, "
                "persistentVolumeClaim, projected or secret volume instead",
            )
            for i, name, t in found
        ]


restricted_volumes_1_0 = RestrictedVolumes()
