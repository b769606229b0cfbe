"""Admission handlers in an explicit registry (kopf style, but an object you build and inject, never
a module global): validating handlers deny, warn and annotate; mutating handlers add JSON patches.

Every handler declares what happens when it raises (`on_error`): ``deny`` fails closed (a policy that
cannot be evaluated must not let the request through), ``allow`` fails open with a warning (advisory
handlers such as best-practice checks). Handler errors are logged by type only and counted.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import jsonpatch

from kubestrata.admission.review import AdmissionRequest, ReviewError, admission_response

log = logging.getLogger("kubestrata.admission")

OnError = Literal["deny", "allow"]


class AdmissionDenied(Exception):
    """Raise from a handler to deny; ``policies`` names what decided (shown in the message)."""

    def __init__(self, message: str, *, policies: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.policies = list(policies)


@dataclass
class AdmissionContext:
    request: AdmissionRequest
    namespace_labels: dict[str, str] | None = None  # None: not looked up (cluster-scoped or not needed)
    state: dict[str, Any] = field(default_factory=dict)  # shared between handlers of one review

    @property
    def dry_run(self) -> bool:
        """Handlers with side effects (none of the built-ins have any) must skip them when True."""
        return self.request.dry_run


@dataclass
class Denial:
    handler: str
    message: str
    policies: list[str] = field(default_factory=list)


@dataclass
class Outcome:
    """What handlers say about one review. Handlers append; the registry builds the response."""

    denials: list[Denial] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    audit_annotations: dict[str, str] = field(default_factory=dict)
    patches: list[tuple[str, list[dict[str, Any]]]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # engines that raised or reported errors

    def deny(self, handler: str, message: str, policies: Iterable[str] = ()) -> None:
        self.denials.append(Denial(handler, message, list(policies)))

    def warn(self, message: str) -> None:
        self.warnings.append(message)

    def annotate(self, key: str, value: str) -> None:
        self.audit_annotations[key] = value

    def engine_error(self, engine: str) -> None:
        self.errors.append(engine)

    def patch(self, handler: str, ops: list[dict[str, Any]]) -> None:
        self.patches.append((handler, ops))

    @property
    def allowed(self) -> bool:
        return not self.denials


HandlerFn = Callable[[AdmissionContext, Outcome], None]


@dataclass(frozen=True)
class Handler:
    name: str
    fn: HandlerFn
    mutating: bool
    engine: str
    on_error: OnError
    operations: frozenset[str] | None = None  # None: all
    kinds: frozenset[str] | None = None  # request.kind.kind values; None: all
    needs_namespace: bool = False

    def applies(self, req: AdmissionRequest) -> bool:
        return (self.operations is None or req.operation in self.operations) and (
            self.kinds is None or req.kind.get("kind") in self.kinds
        )


class AdmissionRegistry:
    def __init__(self) -> None:
        self._handlers: list[Handler] = []
        self.exempt_namespaces: set[str] = set()

    def _add(self, mutating: bool, name: str, **kw: Any) -> Callable[[HandlerFn], HandlerFn]:
        def deco(fn: HandlerFn) -> HandlerFn:
            if any(h.name == name for h in self._handlers):
                raise ValueError(f"duplicate admission handler {name!r}")
            ops, kinds = kw.pop("operations", None), kw.pop("kinds", None)
            self._handlers.append(
                Handler(
                    name,
                    fn,
                    mutating,
                    operations=frozenset(ops) if ops is not None else None,
                    kinds=frozenset(kinds) if kinds is not None else None,
                    **kw,
                )
            )
            return fn

        return deco

    def validating(
        self,
        name: str,
        *,
        engine: str = "custom",
        on_error: OnError = "deny",
        operations: Iterable[str] | None = None,
        kinds: Iterable[str] | None = None,
        needs_namespace: bool = False,
    ) -> Callable[[HandlerFn], HandlerFn]:
        return self._add(
            False,
            name,
            engine=engine,
            on_error=on_error,
            operations=operations,
            kinds=kinds,
            needs_namespace=needs_namespace,
        )

    def mutating(
        self,
        name: str,
        *,
        engine: str = "mutations",
        operations: Iterable[str] | None = None,
        kinds: Iterable[str] | None = None,
        needs_namespace: bool = False,
    ) -> Callable[[HandlerFn], HandlerFn]:
        # a mutation that fails is skipped (the request goes on unpatched): fixes are hardening, and
        # the validating webhook still judges the object
        return self._add(
            True,
            name,
            engine=engine,
            on_error="allow",
            operations=operations,
            kinds=kinds,
            needs_namespace=needs_namespace,
        )

    @property
    def handlers(self) -> list[Handler]:
        return list(self._handlers)

    def selected(self, req: AdmissionRequest, mutating: bool) -> list[Handler]:
        if req.namespace and req.namespace in self.exempt_namespaces:
            return []
        return [h for h in self._handlers if h.mutating == mutating and h.applies(req)]

    def run(self, ctx: AdmissionContext, handlers: list[Handler]) -> Outcome:
        out = Outcome()
        for h in handlers:
            try:
                h.fn(ctx, out)
            except AdmissionDenied as d:
                out.deny(h.name, d.message, d.policies)
            except ReviewError:
                raise  # a malformed review: 400, whatever the handler
            except Exception as e:  # noqa: BLE001 - a handler bug must not crash the webhook
                out.errors.append(h.engine)
                log.error(
                    "admission handler failed",
                    extra={"event": "handler_error", "handler": h.name, "error_type": type(e).__name__},
                )
                if h.on_error == "deny":
                    out.deny(
                        h.name,
                        f"{h.name} could not evaluate the request ({type(e).__name__}); "
                        "denied because this handler fails closed",
                    )
                else:
                    out.warn(f"kubestrata: {h.name} could not evaluate the request ({type(e).__name__})")
        return out

    def validation_response(self, req: AdmissionRequest, out: Outcome) -> dict[str, Any]:
        message = None
        if out.denials:
            message = "; ".join(_denial_text(d) for d in out.denials)
        return admission_response(
            req.uid,
            allowed=out.allowed,
            message=message,
            warnings=out.warnings,
            audit_annotations=out.audit_annotations,
        )

    def mutation_response(self, req: AdmissionRequest, out: Outcome) -> dict[str, Any]:
        ops = combine_patches(req.object or {}, out.patches) if out.patches else []
        return admission_response(
            req.uid,
            allowed=True,
            warnings=out.warnings,
            audit_annotations=out.audit_annotations,
            patch=ops,
        )


def _denial_text(d: Denial) -> str:
    return d.message


def _merge_add(doc: Any, pointer: str, value: Any) -> Any:
    """An ``add`` that merges into an existing object instead of replacing it, so two fixes that each
    add ``securityContext: {...}`` to the same container both survive."""
    parts = jsonpatch.JsonPointer(pointer).parts
    cur = doc
    for p in parts[:-1]:
        cur = cur[int(p)] if isinstance(cur, list) else cur[p]
    last = parts[-1] if parts else None
    if isinstance(cur, dict) and isinstance(cur.get(last), dict) and isinstance(value, dict):
        merged = cur[last]
        for k, v in value.items():
            merged[k] = v
        return doc
    return jsonpatch.apply_patch(doc, [{"op": "add", "path": pointer, "value": value}])


def combine_patches(
    obj: dict[str, Any], patches: list[tuple[str, list[dict[str, Any]]]]
) -> list[dict[str, Any]]:
    """Apply each handler's ops in order to a copy of the object and return one RFC 6902 patch from
    the original to the result (jsonpatch.make_patch). A fix whose ops do not apply (its target moved
    because of an earlier fix) is skipped whole, never half-applied."""
    doc = copy.deepcopy(obj)
    for handler, ops in patches:
        trial = copy.deepcopy(doc)
        try:
            for op in ops:
                if op.get("op") == "add":
                    trial = _merge_add(trial, op["path"], copy.deepcopy(op.get("value")))
                else:
                    trial = jsonpatch.apply_patch(trial, [op])
        except (
            jsonpatch.JsonPatchException,
            jsonpatch.JsonPointerException,
            KeyError,
            IndexError,
            ValueError,
            TypeError,
        ):
            log.info("fix skipped: does not apply", extra={"event": "fix_skipped", "handler": handler})
            continue
        doc = trial
    return list(jsonpatch.make_patch(obj, doc))
