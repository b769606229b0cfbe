"""The object a create/update/patch request produced, for rules that judge content.

Order of preference (issue 11):
1. ``responseObject`` (RequestResponse level): the object as stored, after defaulting and
   mutating admission;
2. create/update: ``requestObject``, the whole object as sent;
3. patch: the patch document applied to the last state of the object seen in this stream
   (ObjectMemory), or, when nothing is known, the patch document itself read as a partial object
   (a strategic-merge, merge or server-side-apply patch has the object's shape) or, for a JSON
   patch, its add/replace operations applied to an empty object.

The audit log does not record a patch's content type. Merging treats lists of objects with a
``name`` (containers, volumes, env ...) by name, as strategic merge does; for a JSON merge patch
that keeps list items the patch replaced, which can only over-report what the object holds.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from typing import Any

MERGE_KEYS = ("name", "mountPath", "containerPort", "devicePath", "ip")


def _merge_key(items: list[Any]) -> str | None:
    if not items or not all(isinstance(i, dict) for i in items):
        return None
    for k in MERGE_KEYS:
        if all(k in i for i in items):
            return k
    return None


def merge(base: Any, patch: Any) -> Any:
    """Strategic-merge-like application of ``patch`` onto ``base`` (neither is modified)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if not k.startswith("$")}
    out = copy.deepcopy(base) if isinstance(base, dict) else {}
    for k, v in patch.items():
        if k.startswith("$"):  # $setElementOrder/..., $retainKeys, $deleteFromPrimitiveList/...
            continue
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict):
            out[k] = merge(out.get(k), v)
        elif isinstance(v, list) and isinstance(out.get(k), list):
            key = _merge_key(v) or _merge_key(out[k])
            if key is None:
                out[k] = copy.deepcopy(v)
                continue
            merged = list(out[k])
            index = {i.get(key): n for n, i in enumerate(merged) if isinstance(i, dict)}
            for item in v:
                if not isinstance(item, dict):
                    merged.append(copy.deepcopy(item))
                    continue
                n = index.get(item.get(key))
                if item.get("$patch") == "delete":
                    if n is not None:
                        merged[n] = None
                elif n is None:
                    index[item.get(key)] = len(merged)
                    merged.append(merge(None, item))
                else:
                    merged[n] = merge(merged[n], item)
            out[k] = [i for i in merged if i is not None]
        else:
            out[k] = copy.deepcopy(v)
    return out


def _pointer(path: Any) -> list[str] | None:
    if not isinstance(path, str) or (path and not path.startswith("/")):
        return None
    return [p.replace("~1", "/").replace("~0", "~") for p in path.split("/")[1:]]


def _descend(doc: Any, tokens: list[str], create: bool) -> Any:
    """The parent of the location ``tokens`` points at (every token but the last)."""
    cur = doc
    for i, t in enumerate(tokens[:-1]):
        nxt_is_index = i + 1 < len(tokens) and (tokens[i + 1].isdigit() or tokens[i + 1] == "-")
        if isinstance(cur, dict):
            if t not in cur or not isinstance(cur[t], (dict, list)):
                if not create:
                    return None
                cur[t] = [] if nxt_is_index else {}
            cur = cur[t]
        elif isinstance(cur, list) and t.isdigit():
            n = int(t)
            while create and len(cur) <= n:
                cur.append([] if nxt_is_index else {})
            if n >= len(cur):
                return None
            if not isinstance(cur[n], (dict, list)):
                if not create:
                    return None
                cur[n] = [] if nxt_is_index else {}
            cur = cur[n]
        else:
            return None
    return cur


def apply_json_patch(base: Any, ops: list[Any]) -> dict[str, Any]:
    """RFC 6902 operations applied leniently: missing parents are created (the base may be
    unknown), operations that cannot apply are skipped, ``test`` is not checked."""
    doc: Any = copy.deepcopy(base) if isinstance(base, dict) else {}
    for op in ops:
        if not isinstance(op, dict):
            continue
        tokens = _pointer(op.get("path"))
        if not tokens:
            continue
        kind = op.get("op")
        if kind in ("copy", "move"):
            src = _pointer(op.get("from"))
            if not src:
                continue
            parent = _descend(doc, src, False)
            if isinstance(parent, dict):
                value = parent.get(src[-1])
            elif isinstance(parent, list) and src[-1].isdigit() and int(src[-1]) < len(parent):
                value = parent[int(src[-1])]
            else:
                continue
            if kind == "move":
                if isinstance(parent, dict):
                    parent.pop(src[-1], None)
                else:
                    parent.pop(int(src[-1]))
            kind, op = "add", {"value": copy.deepcopy(value)}
        if kind not in ("add", "replace", "remove"):
            continue
        parent = _descend(doc, tokens, kind != "remove")
        last = tokens[-1]
        if isinstance(parent, dict):
            if kind == "remove":
                parent.pop(last, None)
            else:
                parent[last] = copy.deepcopy(op.get("value"))
        elif isinstance(parent, list):
            if last == "-" and kind == "add":
                parent.append(copy.deepcopy(op.get("value")))
            elif last.isdigit():
                n = int(last)
                if kind == "remove":
                    if n < len(parent):
                        parent.pop(n)
                elif kind == "add":
                    parent.insert(min(n, len(parent)), copy.deepcopy(op.get("value")))
                elif n < len(parent):
                    parent[n] = copy.deepcopy(op.get("value"))
    return doc if isinstance(doc, dict) else {}


class ObjectMemory:
    """The last produced state of recently changed objects, by (cluster, resource, namespace,
    name): the base a later patch applies to. Bounded (least recently written go)."""

    def __init__(self, capacity: int = 4096) -> None:
        self.capacity = capacity
        self._objs: OrderedDict[tuple[str, ...], dict[str, Any]] = OrderedDict()

    def get(self, key: tuple[str, ...]) -> dict[str, Any] | None:
        return self._objs.get(key)

    def put(self, key: tuple[str, ...], obj: dict[str, Any]) -> None:
        self._objs[key] = obj
        self._objs.move_to_end(key)
        while len(self._objs) > self.capacity:
            self._objs.popitem(last=False)

    def forget(self, key: tuple[str, ...]) -> None:
        self._objs.pop(key, None)

    def __len__(self) -> int:
        return len(self._objs)
