"""A snapshot of a cluster (from manifests or a live API server), indexed for the engines."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from kubestrata.kube.objects import KubeObject, ObjectRef, Source
from kubestrata.kube.selectors import LabelSelector

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


@dataclass
class Cluster:
    """Objects indexed by kind, by (kind, namespace) and by ref.

    Namespaces referenced by namespaced objects but absent from the input are synthesized, labelled
    ``kubernetes.io/metadata.name`` as the API server labels every namespace, and marked synthesized.
    Every Namespace gets that label if it lacks it.
    """

    objects: list[KubeObject] = field(default_factory=list)
    origin: str = "manifests"  # "manifests" or a cluster URL/context
    synthesized_namespaces: set[str] = field(default_factory=set)
    # kinds the source could not provide (a live API server answered 403 or 404): engines must not
    # read their absence as "there are none"
    missing_kinds: set[str] = field(default_factory=set)
    # the same object (kind, namespace, name) read more than once: identical copies are merged into the
    # first one (their sources listed here), conflicting ones are all kept and listed in ``conflicts``
    duplicates: dict[tuple[str, str, str], list[Source]] = field(default_factory=dict)
    conflicts: dict[tuple[str, str, str], list[KubeObject]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._by_kind: dict[str, list[KubeObject]] = defaultdict(list)
        self._by_kind_ns: dict[tuple[str, str], list[KubeObject]] = defaultdict(list)
        self._by_ref: dict[tuple[str, str, str], KubeObject] = {}
        objs = self.objects
        self.objects = []
        self.add_all(objs)
        self._synthesize_namespaces()

    def add_all(self, objs: Iterable[KubeObject]) -> None:
        for o in objs:
            self.add(o)

    def add(self, obj: KubeObject) -> None:
        kind = obj.kind
        if kind == "Namespace":
            meta = obj.raw.get("metadata")
            if not isinstance(meta, dict):  # `metadata: null`
                meta = obj.raw["metadata"] = {}
            labels = meta.get("labels")
            if not isinstance(labels, dict):
                labels = meta["labels"] = {}
            labels.setdefault(NAMESPACE_NAME_LABEL, obj.name)
        ns, name = obj.namespace, obj.name
        key = (kind, ns, name)
        first = self._by_ref.get(key)
        if first is not None and name:
            if first.raw == obj.raw:
                # one object in several files: judged once, every source named
                self.duplicates.setdefault(key, []).append(obj.source)
                return
            # different definitions of one object: each is judged; lookups keep the first read, and
            # the conflict itself is reported (which one the cluster holds depends on apply order)
            self.conflicts.setdefault(key, [first]).append(obj)
        self.objects.append(obj)
        self._by_kind[kind].append(obj)
        self._by_kind_ns[(kind, ns)].append(obj)
        if first is None:
            self._by_ref[key] = obj

    def _synthesize_namespaces(self) -> None:
        present = {o.name for o in self._by_kind.get("Namespace", [])}
        wanted = sorted({o.namespace for o in self.objects if o.namespace} - present)
        for ns in wanted:
            self.synthesized_namespaces.add(ns)
            self.add(
                KubeObject(
                    {
                        "apiVersion": "v1",
                        "kind": "Namespace",
                        "metadata": {"name": ns, "labels": {NAMESPACE_NAME_LABEL: ns}},
                    },
                    Source("<synthesized>"),
                )
            )

    # --- queries -------------------------------------------------------------------------------
    def of_kind(self, *kinds: str) -> list[KubeObject]:
        if len(kinds) == 1:
            return self._by_kind.get(kinds[0], [])
        out: list[KubeObject] = []
        for k in kinds:
            out.extend(self._by_kind.get(k, []))
        return out

    def in_namespace(self, kind: str, namespace: str) -> list[KubeObject]:
        return self._by_kind_ns.get((kind, namespace), [])

    def controller_in_input(self, obj: KubeObject) -> bool:
        """Whether the object's controller (a Pod's ReplicaSet, a Job's CronJob) is in this snapshot:
        then it is judged through that controller, so one problem is reported once, on the object a
        person edits."""
        for ref in obj.metadata.get("ownerReferences") or []:
            if (
                isinstance(ref, dict)
                and ref.get("controller")
                and self.get(str(ref.get("kind")), obj.namespace, str(ref.get("name"))) is not None
            ):
                return True
        return False

    def get(self, kind: str, namespace: str, name: str) -> KubeObject | None:
        return self._by_ref.get((kind, namespace, name))

    def get_ref(self, ref: ObjectRef) -> KubeObject | None:
        return self._by_ref.get((ref.kind, ref.namespace, ref.name))

    def namespace(self, name: str) -> KubeObject | None:
        return self._by_ref.get(("Namespace", "", name))

    def namespace_labels(self, name: str) -> dict[str, str]:
        ns = self.namespace(name)
        return ns.labels if ns else {NAMESPACE_NAME_LABEL: name}

    @property
    def namespaces(self) -> list[str]:
        return sorted({o.name for o in self._by_kind.get("Namespace", [])})

    @property
    def kinds(self) -> list[str]:
        return sorted(self._by_kind)

    def select(self, kind: str, selector: LabelSelector, namespace: str | None = None) -> list[KubeObject]:
        pool = self.of_kind(kind) if namespace is None else self.in_namespace(kind, namespace)
        return [o for o in pool if selector.matches(o.labels)]

    def __iter__(self) -> Iterator[KubeObject]:
        return iter(self.objects)

    def __len__(self) -> int:
        return len(self.objects)

    def real_objects(self) -> Iterator[KubeObject]:
        """Objects from the input, without the synthesized namespaces."""
        if not self.synthesized_namespaces:  # every scan pass walks this: no kind test per object
            yield from self.objects
            return
        for o in self.objects:
            if not (o.kind == "Namespace" and o.name in self.synthesized_namespaces):
                yield o

    def sources_of(self, kind: str, namespace: str, name: str) -> list[Source]:
        """Every place the object was read from (one unless it was defined in several files)."""
        first = self.get(kind, namespace, name)
        if first is None:
            return []
        return [first.source, *self.duplicates.get((kind, namespace, name), [])]

    def to_dicts(self) -> list[dict[str, Any]]:
        return [o.raw for o in self.real_objects()]
